use super::*;
use crate::calendar::{MS_PER_DAY, MS_PER_HOUR};
use crate::detectors::{detect, points, RuleConfig};
use crate::event::{Event, EventKind, Geo, Outcome};
use crate::features::{Observation, COMPROMISE_WINDOW_MS};
use crate::profile::{Compromise, Profile};

const T0: i64 = 1_767_571_200_000; // 2026-01-05T00:00:00Z, a Monday

fn login(id: &str, t: i64, country: &str, device: &str) -> Event {
    let mut e = Event::new(id, "alice", t, EventKind::Login, Outcome::Success);
    e.geo = Some(Geo { lat: 59.91, lon: 10.75, country: country.into() });
    e.ip = Some("81.2.3.4".parse().unwrap());
    e.asn = Some(2119);
    e.device_id = Some(device.into());
    e
}

/// Twenty daily 09:00 logins from the same laptop in Norway; returns the last event time.
fn history() -> (Profile, i64) {
    let mut p = Profile::new("alice");
    let mut last = T0;
    for d in 0..20 {
        last = T0 + d * MS_PER_DAY + 9 * MS_PER_HOUR;
        p.fold(&login(&format!("e{d}"), last, "NO", "laptop"));
    }
    (p, last)
}

fn mark(event_id: &str, malicious: bool, at_ms: i64) -> Feedback {
    Feedback::MarkEvent { event_id: event_id.into(), malicious, at_ms }
}

fn codes(p: &Profile, ev: &Event) -> Vec<String> {
    detect(&Observation::observe(p, ev, 0), &RuleConfig::default()).into_iter().map(|r| r.code).collect()
}

#[test]
fn validate_names_the_field() {
    let ok = [
        mark("e-1", true, 1),
        Feedback::TrustDevice { device_id: "d".repeat(128) },
        Feedback::TrustCountry { country: "NO".into() },
    ];
    for f in &ok {
        assert_eq!(f.validate(), Ok(()), "{f:?}");
    }
    let field = |f: Feedback| f.validate().unwrap_err().split(':').next().unwrap().to_owned();
    assert_eq!(field(mark("", true, 1)), "event_id");
    assert_eq!(field(mark(&"x".repeat(129), false, 1)), "event_id");
    assert_eq!(field(mark("e\n1", true, 1)), "event_id");
    assert_eq!(field(mark("e-1", true, 0)), "at_ms");
    assert_eq!(field(mark("e-1", true, -5)), "at_ms");
    assert_eq!(field(Feedback::TrustDevice { device_id: String::new() }), "device_id");
    assert_eq!(field(Feedback::TrustDevice { device_id: "a\u{7f}b".into() }), "device_id");
    for bad in ["", "N", "no", "NOR", "N1", "ÅL"] {
        assert_eq!(field(Feedback::TrustCountry { country: bad.into() }), "country", "{bad:?}");
    }
    assert_eq!(
        mark("", true, 1).validate().unwrap_err(),
        "event_id: must not be empty",
        "the message says what is wrong"
    );
}

#[test]
fn marks_update_counters_and_the_mark_in_force() {
    let (mut p, last) = history();
    let before = p.clone();
    p.apply_feedback(&mark("e3", true, last + MS_PER_HOUR));
    assert_eq!(p.compromised, Some(Compromise { event_id: "e3".into(), marked_at_ms: last + MS_PER_HOUR }));
    // A later mark wins; an earlier one (another node's clock) does not displace it.
    p.apply_feedback(&mark("e5", true, last + 2 * MS_PER_HOUR));
    p.apply_feedback(&mark("e4", true, last));
    assert_eq!(p.compromised.as_ref().map(|c| c.event_id.as_str()), Some("e5"));
    // A benign verdict on another event leaves the mark; on the marked event it withdraws it.
    p.apply_feedback(&mark("e3", false, last + 3 * MS_PER_HOUR));
    assert!(p.compromised.is_some());
    p.apply_feedback(&mark("e5", false, last + 4 * MS_PER_HOUR));
    assert_eq!(p.compromised, None);
    assert_eq!((p.marked_malicious, p.marked_benign), (3, 2));
    // Feedback leaves the event history alone.
    p.apply_feedback(&Feedback::TrustDevice { device_id: "phone".into() });
    assert_eq!((p.events_applied, p.first_seen_ms, p.last_seen_ms), (20, before.first_seen_ms, last));
    let reset =
        Profile { trusted_devices: before.trusted_devices.clone(), marked_malicious: 0, marked_benign: 0, ..p.clone() };
    assert_eq!(reset, before);
}

#[test]
fn trusted_device_and_country_are_never_new() {
    let (mut p, last) = history();
    let ev = login("x1", last + MS_PER_DAY, "SE", "phone");
    let o = Observation::observe(&p, &ev, 0);
    assert!(o.new_device && o.new_country);
    assert_eq!((o.features()[2], o.features()[5]), (1.0, 1.0), "new_country, new_device");
    let c = codes(&p, &ev);
    assert!(c.contains(&"new_device".to_owned()) && c.contains(&"new_country".to_owned()), "{c:?}");

    p.apply_feedback(&Feedback::TrustDevice { device_id: "phone".into() });
    let o = Observation::observe(&p, &ev, 0);
    assert!(!o.new_device && o.new_country);
    assert_eq!(o.features()[5], 0.0);
    assert!(!codes(&p, &ev).contains(&"new_device".to_owned()));

    p.apply_feedback(&Feedback::TrustCountry { country: "SE".into() });
    let o = Observation::observe(&p, &ev, 0);
    assert!(!o.new_device && !o.new_country);
    assert_eq!(o.features()[2], 0.0);
    assert!(!codes(&p, &ev).contains(&"new_country".to_owned()));
    // Trust is about the key, not this event: another unseen device is still new.
    assert!(Observation::observe(&p, &login("x2", last + MS_PER_DAY, "SE", "tablet"), 0).new_device);
}

#[test]
fn trusted_sets_are_bounded_and_keep_the_latest_trust() {
    let mut p = Profile::new("alice");
    for i in 0..40 {
        p.apply_feedback(&Feedback::TrustDevice { device_id: format!("d{i:02}") });
        assert!(p.trusted_devices.contains(&format!("d{i:02}")), "the newest trust is always kept");
    }
    assert_eq!(p.trusted_devices.len(), usize::from(crate::BoundedSet::DEFAULT_CAPACITY));
    assert!(!p.trusted_devices.contains("d07") && p.trusted_devices.contains("d08"));
    // Trusting again refreshes: d08 survives the next newcomer, d09 goes.
    p.apply_feedback(&Feedback::TrustDevice { device_id: "d08".into() });
    p.apply_feedback(&Feedback::TrustDevice { device_id: "new".into() });
    assert!(p.trusted_devices.contains("d08") && !p.trusted_devices.contains("d09"));
}

#[test]
fn malicious_mark_adds_a_reason_and_points_until_withdrawn() {
    let (mut p, last) = history();
    let ev = login("x1", last + 4 * MS_PER_HOUR, "NO", "laptop");
    let quiet = detect(&Observation::observe(&p, &ev, 0), &RuleConfig::default());
    assert!(quiet.is_empty(), "{quiet:?}");
    let features_before = Observation::observe(&p, &ev, 0).features();

    p.apply_feedback(&mark("e19", true, last + MS_PER_HOUR));
    let o = Observation::observe(&p, &ev, 0);
    assert_eq!(o.compromised.as_ref().map(|c| c.minutes_after_mark), Some(180.0));
    assert_eq!(o.features(), features_before, "the mark is not a model input");
    let r = detect(&o, &RuleConfig::default());
    assert_eq!(r[0].code, "analyst_confirmed_compromise");
    assert_eq!(r[0].evidence, "event e19 of this user was marked malicious by an analyst 3 h 0 min ago");
    assert_eq!(points(&r), points(&quiet) + 60.0);
    let cfg = RuleConfig { compromise_points: 25.0, ..RuleConfig::default() };
    assert_eq!(points(&detect(&o, &cfg)), 25.0);

    p.apply_feedback(&mark("e19", false, last + 2 * MS_PER_HOUR));
    assert_eq!(Observation::observe(&p, &ev, 0).compromised, None);
    assert!(codes(&p, &ev).is_empty());
}

#[test]
fn the_mark_holds_for_seven_days_after_it() {
    let (mut p, last) = history();
    let at = last + MS_PER_HOUR;
    p.apply_feedback(&mark("e19", true, at));
    let in_force = |t: i64| Observation::observe(&p, &login("x", t, "NO", "laptop"), 0).compromised.is_some();
    assert_eq!(COMPROMISE_WINDOW_MS, 7 * MS_PER_DAY);
    assert!(in_force(at + COMPROMISE_WINDOW_MS));
    assert!(!in_force(at + COMPROMISE_WINDOW_MS + 1));
    // Events older than the mark (arriving late, or re-scored) count too.
    assert!(in_force(at - 30 * MS_PER_DAY));
    let o = Observation::observe(&p, &login("x", at - 3 * MS_PER_DAY, "NO", "laptop"), 0);
    let r = detect(&o, &RuleConfig::default());
    let reason = r.iter().find(|r| r.code == "analyst_confirmed_compromise").unwrap();
    assert_eq!(reason.evidence, "event e19 of this user was marked malicious by an analyst 3 days after this event");
}

#[test]
fn profile_with_feedback_round_trips() {
    let (mut p, last) = history();
    for f in [
        mark("e3", true, last),
        mark("e4", false, last + 1),
        Feedback::TrustDevice { device_id: "phone".into() },
        Feedback::TrustCountry { country: "SE".into() },
    ] {
        f.validate().unwrap();
        p.apply_feedback(&f);
        let back: Feedback = postcard::from_bytes(&postcard::to_allocvec(&f).unwrap()).unwrap();
        assert_eq!(back, f);
    }
    let bytes = postcard::to_allocvec(&p).unwrap();
    let back: Profile = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, p);
    assert!(back.compromised.is_some() && back.trusted_countries.contains("SE"));
    let json: Profile = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
    assert_eq!(json, p);
}
