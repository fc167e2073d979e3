use super::*;
use crate::event::Geo;

/// 2026-11-23T09:30:00Z, a Monday.
const MON_0930: i64 = 1_795_426_200_000;

fn ev(id: &str, t: i64, kind: EventKind, outcome: Outcome) -> Event {
    Event::new(id, "alice", t, kind, outcome)
}

fn rich(i: i64) -> Event {
    let mut e = ev(&format!("e{i}"), MON_0930 + i * 997_000, EventKind::ALL[(i % 8) as usize], Outcome::Success);
    if i % 5 == 0 {
        e.outcome = Outcome::Failure;
    }
    e.ip = Some(format!("198.51.{}.{}", i % 7, i % 200).parse().unwrap());
    e.geo = Some(Geo { lat: 59.9 + (i % 3) as f64, lon: 10.7, country: ["NO", "SE", "DK"][(i % 3) as usize].into() });
    e.asn = Some(64_500 + (i % 4) as u32);
    e.device_id = Some(format!("dev-{}", i % 3));
    e.resource = Some(format!("res/{}", i % 40));
    e.bytes = (i % 2 == 0).then_some((i as u64 * 7919) % 100_000);
    e
}

#[test]
fn fold_is_deterministic() {
    let events: Vec<Event> = (0..500).map(|i| rich((i * 37) % 500)).collect();
    let mut a = Profile::new("alice");
    let mut b = Profile::new("alice");
    for e in &events {
        a.fold(e);
    }
    for e in &events {
        b.fold(e);
    }
    assert_eq!(a, b);
    // Bit-identical, including the floats, and stable through serialization.
    assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
    let back: Profile = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
    assert_eq!(back, a);
    assert_eq!(a.events_applied, 500);
    assert_eq!(a.kinds.values().sum::<u64>(), 500);
    assert_eq!(a.failures_total + a.successes_total, 500);
    assert_eq!(a.bytes.count, 250);
}

#[test]
fn bounded_sets_stay_within_capacity() {
    let mut p = Profile::new("alice");
    for i in 0..200 {
        p.fold(&rich(i));
        assert!(p.resources.len() <= 32 && p.ip_prefixes.len() <= 32);
    }
    assert_eq!(p.resources.len(), 32);
    // res/0..res/39 cycle; the 8 keys seen least recently (res/0..res/7 at i = 160..167) are gone.
    assert!(!p.resources.contains("res/7") && p.resources.contains("res/8"));
    assert_eq!(p.devices.len(), 3);
    assert_eq!(p.countries.get("NO").unwrap().count, 67);
    assert!(p.asns.contains("64503"));
    assert!(p.ip_prefixes.contains("198.51.6.0/24"));
}

#[test]
fn hour_bin_of_a_known_timestamp() {
    let mut p = Profile::new("alice");
    p.fold(&ev("a", MON_0930, EventKind::Login, Outcome::Success));
    assert_eq!(p.hour_of_week.len(), HOUR_BINS);
    assert_eq!(p.hour_of_week[9], 1.0);
    assert_eq!(p.hour_of_week.iter().sum::<f32>(), 1.0);
    // One half-life (and an hour) later the old bin has decayed to about 0.5.
    p.fold(&ev("b", MON_0930 + HOUR_HALF_LIFE_MS + MS_PER_HOUR, EventKind::Login, Outcome::Success));
    let want = 0.5 * 2f64.powf(-1.0 / (14.0 * 24.0));
    assert!((f64::from(p.hour_of_week[9]) - want).abs() < 1e-6);
    assert_eq!(p.hour_of_week[10], 1.0);
    assert_eq!(p.hour_decay_ref_ms, MON_0930 + HOUR_HALF_LIFE_MS + MS_PER_HOUR);
}

#[test]
fn failure_streak_resets_on_success() {
    let mut p = Profile::new("alice");
    for i in 0..4 {
        p.fold(&ev(&format!("f{i}"), MON_0930 + i, EventKind::Login, Outcome::Failure));
    }
    p.fold(&ev("api", MON_0930 + 5, EventKind::ApiCall, Outcome::Success));
    p.fold(&ev("mfa", MON_0930 + 6, EventKind::MfaChallenge, Outcome::Failure));
    assert_eq!(p.failure_streak, 5);
    p.fold(&ev("ok", MON_0930 + 7, EventKind::Login, Outcome::Success));
    assert_eq!(p.failure_streak, 0);
    assert_eq!((p.failures_total, p.successes_total), (5, 2));
}

#[test]
fn recent_ids_bounded_and_ordered() {
    let mut p = Profile::new("alice");
    for i in 0..100 {
        p.fold(&ev(&format!("e{i:03}"), MON_0930 + i, EventKind::ApiCall, Outcome::Success));
    }
    assert_eq!(p.recent_event_ids.len(), Profile::RECENT_IDS);
    let want: Vec<String> = (36..100).map(|i| format!("e{i:03}")).collect();
    assert_eq!(p.recent_event_ids.iter().cloned().collect::<Vec<_>>(), want);
}

#[test]
fn out_of_order_events_match_in_order_fold() {
    let times = [0, 3, 30, 2, 200, 1, 199, 50];
    let mut shuffled = Profile::new("alice");
    for (i, h) in times.iter().enumerate() {
        let mut e = ev(&format!("e{i}"), MON_0930 + h * MS_PER_HOUR, EventKind::Login, Outcome::Success);
        e.geo = Some(Geo { lat: *h as f64 / 10.0, lon: 0.0, country: "NO".into() });
        e.bytes = Some(*h as u64);
        shuffled.fold(&e);
    }
    let mut sorted_times = times;
    sorted_times.sort();
    let mut ordered = Profile::new("alice");
    for (i, h) in sorted_times.iter().enumerate() {
        ordered.fold(&ev(&format!("e{i}"), MON_0930 + h * MS_PER_HOUR, EventKind::Login, Outcome::Success));
    }
    assert_eq!(shuffled.first_seen_ms, MON_0930);
    assert_eq!(shuffled.last_seen_ms, MON_0930 + 200 * MS_PER_HOUR);
    assert_eq!(shuffled.hour_decay_ref_ms, ordered.hour_decay_ref_ms);
    for (a, b) in shuffled.hour_of_week.iter().zip(&ordered.hour_of_week) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    let (ra, rb) = (&shuffled.rate, &ordered.rate);
    assert_eq!((ra.bucket_hour, ra.bucket_count, ra.hours_closed), (rb.bucket_hour, rb.bucket_count, rb.hours_closed));
    assert!((ra.ewma - rb.ewma).abs() < 1e-12, "{} vs {}", ra.ewma, rb.ewma);
    assert!((ra.mean_per_hour().unwrap() - rb.mean_per_hour().unwrap()).abs() < 1e-12);
    // The last login is the latest by event time, not the last applied.
    assert_eq!(shuffled.last_login.as_ref().unwrap().time_ms, MON_0930 + 200 * MS_PER_HOUR);
    assert_eq!(shuffled.last_login.as_ref().unwrap().lat, 20.0);
}

#[test]
fn rate_stats_track_hourly_counts() {
    let mut r = RateStats::default();
    assert_eq!(r.mean_per_hour(), None);
    for h in 0..200 {
        for k in 0..4 {
            r.observe(MON_0930 + h * MS_PER_HOUR + k);
        }
    }
    assert_eq!((r.bucket_count, r.hours_closed), (4, 199));
    assert!((r.mean_per_hour().unwrap() - 4.0).abs() < 1e-9);
    // A quiet gap of 10 hours pulls the mean down.
    r.observe(MON_0930 + 210 * MS_PER_HOUR);
    assert!(r.mean_per_hour().unwrap() < 4.0 * 0.9f64.powi(9));
}

#[test]
fn running_stats_welford() {
    let mut s = RunningStats::default();
    for x in [2u64, 4, 4, 4, 5, 5, 7, 9] {
        s.push(x);
    }
    assert_eq!((s.count, s.mean, s.max), (8, 5.0, 9));
    assert!((s.variance() - 32.0 / 7.0).abs() < 1e-12);
}

#[test]
fn ip_prefixes() {
    assert_eq!(ip_prefix(&"203.0.113.77".parse().unwrap()), "203.0.113.0/24");
    assert_eq!(ip_prefix(&"2001:db8:1:2::5".parse().unwrap()), "2001:db8:1::/48");
    assert_eq!(ip_prefix(&"::ffff:198.51.100.9".parse().unwrap()), "198.51.100.0/24");
}

#[test]
fn default_profile_folds_too() {
    let mut p = Profile::default();
    p.fold(&ev("a", MON_0930, EventKind::Login, Outcome::Success));
    assert_eq!((p.user_id.as_str(), p.hour_of_week.len()), ("alice", HOUR_BINS));
    // Empty optional strings count as absent.
    let mut e = ev("b", MON_0930, EventKind::ApiCall, Outcome::Success);
    e.device_id = Some(String::new());
    e.resource = Some(String::new());
    p.fold(&e);
    assert!(p.devices.is_empty() && p.resources.is_empty());
}
