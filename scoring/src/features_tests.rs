use super::*;
use crate::calendar::{MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE};
use crate::event::{Event, EventKind, Geo, Outcome};
use crate::geo::{city_index, CITIES};

const T0: i64 = 1_767_571_200_000; // 2026-01-05T00:00:00Z, a Monday

fn login_at(id: u32, t: i64, city: &str, outcome: Outcome) -> Event {
    let c = &CITIES[city_index(city).unwrap()];
    let mut e = Event::new(format!("e{id}"), "alice", t, EventKind::Login, outcome);
    e.geo = Some(Geo { lat: c.lat, lon: c.lon, country: c.country.to_owned() });
    e.ip = Some("81.2.3.4".parse().unwrap());
    e.asn = Some(c.asns[0]);
    e.device_id = Some("laptop".into());
    e
}

/// A profile with `days` of office-hours logins from Oslo (09:00 and 14:00 UTC on weekdays).
fn oslo_history(days: i64) -> (Profile, i64) {
    let mut p = Profile::new("alice");
    let mut last = T0;
    let mut id = 0;
    for d in 0..days {
        if (d % 7) >= 5 {
            continue;
        }
        for h in [9, 14] {
            last = T0 + d * MS_PER_DAY + h * MS_PER_HOUR;
            p.fold(&login_at(id, last, "Oslo", Outcome::Success));
            id += 1;
        }
    }
    (p, last)
}

#[test]
fn speed_and_distance_of_a_known_hop() {
    let (p, last) = oslo_history(14);
    // Oslo → Sydney (about 15,950 km) 40 minutes after the last login.
    let ev = login_at(999, last + 40 * MS_PER_MINUTE, "Sydney", Outcome::Success);
    let o = Observation::observe(&p, &ev, 0);
    let km = o.distance_km.unwrap();
    assert!((km - 15_949.4).abs() < 160.0, "{km}");
    assert_eq!(o.minutes_since_login, Some(40.0));
    assert!((o.speed_kmh.unwrap() - km * 1.5).abs() < 1e-6);
    assert_eq!((o.from_country.as_deref(), o.country.as_deref()), (Some("NO"), Some("AU")));
    assert!(o.new_country && o.learned() && !o.new_device);
    let f = o.features();
    assert!((f64::from(f[0]) - (1.0 + km * 1.5).log2()).abs() < 1e-3);
    assert_eq!(f[2], 1.0, "new_country");
    // The same place an hour later: no distance, no novelty.
    let ev = login_at(1000, last + MS_PER_HOUR, "Oslo", Outcome::Success);
    let o = Observation::observe(&p, &ev, 0);
    assert_eq!(o.distance_km, Some(0.0));
    assert!(!o.new_country && o.country_rarity == 0.0);
}

#[test]
fn speed_uses_at_least_one_minute() {
    let (p, last) = oslo_history(7);
    let ev = login_at(999, last, "Stockholm", Outcome::Success);
    let o = Observation::observe(&p, &ev, 0);
    assert_eq!(o.minutes_since_login, Some(0.0));
    assert!((o.speed_kmh.unwrap() - o.distance_km.unwrap() * 60.0).abs() < 1e-6);
}

#[test]
fn hour_rarity_follows_the_users_own_history() {
    let (p, last) = oslo_history(28);
    let next_monday = T0 + 28 * MS_PER_DAY;
    assert!(next_monday > last);
    let usual = Observation::observe(&p, &login_at(1, next_monday + 9 * MS_PER_HOUR, "Oslo", Outcome::Success), 0);
    let night = Observation::observe(&p, &login_at(2, next_monday + 3 * MS_PER_HOUR, "Oslo", Outcome::Success), 0);
    assert!(usual.hour_of_week_surprise < 0.0, "a usual hour is likelier than uniform: {usual:?}");
    assert!(night.hour_of_day_surprise > 4.0, "03:00 never seen: {}", night.hour_of_day_surprise);
    assert!(night.hour_of_week_surprise > usual.hour_of_week_surprise + 4.0);
    assert_eq!(night.hour_utc, 3);
}

#[test]
fn novelty_needs_the_learning_period() {
    let mut p = Profile::new("alice");
    let first = login_at(0, T0, "Oslo", Outcome::Success);
    let o = Observation::observe(&p, &first, 0);
    assert!(o.new_device && o.new_country && !o.learned());
    assert_eq!(o.features()[5], 0.0, "no novelty before learning");
    p.fold(&first);
    let (p, last) = oslo_history(14);
    let mut ev = login_at(1, last + MS_PER_HOUR, "Oslo", Outcome::Success);
    ev.device_id = Some("phone".into());
    ev.resource = Some("vault/secrets".into());
    let o = Observation::observe(&p, &ev, 0);
    assert!(o.new_device && !o.new_country && !o.new_asn && !o.new_ip_prefix);
    assert_eq!(o.features()[5], 1.0);
}

#[test]
fn failure_streak_and_brute_force_success() {
    let (mut p, last) = oslo_history(7);
    for i in 0..6 {
        p.fold(&login_at(100 + i, last + i64::from(i) * 1000, "Oslo", Outcome::Failure));
    }
    let o = Observation::observe(&p, &login_at(200, last + 10_000, "Oslo", Outcome::Success), 0);
    assert_eq!(o.failure_streak, 6);
    let f = o.features();
    assert!((f[15] - 7f32.log2()).abs() < 1e-6, "success_after_failures {}", f[15]);
    assert_eq!(f[14], 0.0);
}

#[test]
fn volume_spike_against_own_history() {
    let mut p = Profile::new("bob");
    for i in 0..40u32 {
        let mut e = Event::new(
            format!("d{i}"),
            "bob",
            T0 + i64::from(i) * MS_PER_HOUR,
            EventKind::DataAccess,
            Outcome::Success,
        );
        e.bytes = Some(if i % 2 == 0 { 100_000 } else { 400_000 });
        p.fold(&e);
    }
    let mut e = Event::new("big", "bob", T0 + 50 * MS_PER_HOUR, EventKind::DataAccess, Outcome::Success);
    e.bytes = Some(200_000_000);
    let o = Observation::observe(&p, &e, 0);
    assert!(o.bytes_z > 8.0, "{}", o.bytes_z);
    assert!((o.typical_bytes - 200_000.0).abs() < 1.0, "{}", o.typical_bytes);
    e.bytes = Some(200_000);
    assert!(Observation::observe(&p, &e, 0).bytes_z.abs() < 0.1);
}

#[test]
fn dormancy_and_privilege_recency() {
    let (mut p, last) = oslo_history(7);
    let mut grant = Event::new("g", "alice", last + MS_PER_MINUTE, EventKind::PrivilegeChange, Outcome::Success);
    grant.attributes.insert("role".into(), "admin".into());
    assert_eq!(Observation::observe(&p, &grant, 0).minutes_since_privilege, Some(0.0));
    p.fold(&grant);
    let later = Event::new("a", "alice", last + 21 * MS_PER_MINUTE, EventKind::DataAccess, Outcome::Success);
    let o = Observation::observe(&p, &later, 0);
    assert_eq!(o.minutes_since_privilege, Some(20.0));
    assert!((o.features()[16] - 1.0 / 3.0).abs() < 1e-6);
    let much_later = login_at(5, last + 30 * MS_PER_DAY, "Oslo", Outcome::Success);
    let o = Observation::observe(&p, &much_later, 0);
    assert!((o.dormant_days - 30.0).abs() < 0.01, "{}", o.dormant_days);
}

#[test]
fn source_window_counts_other_users_failing_from_one_address() {
    let mut w = SourceWindow::new(MS_PER_HOUR, 1_000);
    let fail = |user: &str, t: i64, ip: &str| {
        let mut e = Event::new("x", user, t, EventKind::Login, Outcome::Failure);
        e.ip = Some(ip.parse().unwrap());
        e
    };
    for i in 0..10 {
        w.record(&fail(&format!("u{i}"), T0 + i * MS_PER_MINUTE, "5.6.7.8"));
        w.record(&fail(&format!("u{i}"), T0 + i * MS_PER_MINUTE + 1, "5.6.7.8"));
    }
    w.record(&fail("solo", T0, "9.9.9.9"));
    assert_eq!(w.failed_users(&fail("new", T0 + 20 * MS_PER_MINUTE, "5.6.7.8")), 10);
    assert_eq!(w.failed_users(&fail("u3", T0 + 20 * MS_PER_MINUTE, "5.6.7.8")), 9, "excludes the user itself");
    assert_eq!(w.failed_users(&fail("new", T0 + 20 * MS_PER_MINUTE, "9.9.9.9")), 1);
    // An hour after the last failure the window is empty again.
    assert_eq!(w.failed_users(&fail("new", T0 + 70 * MS_PER_MINUTE, "5.6.7.8")), 0);
    // Successes are not recorded.
    let mut ok = fail("z", T0, "1.1.1.1");
    ok.outcome = Outcome::Success;
    w.record(&ok);
    assert_eq!(w.len(), 2);
}

#[test]
fn source_window_is_bounded() {
    let mut w = SourceWindow::new(MS_PER_HOUR, 50);
    for i in 0..500u32 {
        let mut e = Event::new("x", format!("u{i}"), T0 + i64::from(i), EventKind::Login, Outcome::Failure);
        e.ip = Some(std::net::IpAddr::from([10, 0, (i / 256) as u8, i as u8]));
        w.record(&e);
    }
    assert_eq!(w.len(), 50);
    // The newest addresses are kept.
    let mut probe = Event::new("p", "q", T0 + 600, EventKind::Login, Outcome::Failure);
    probe.ip = Some(std::net::IpAddr::from([10, 0, 1, 243]));
    assert_eq!(w.failed_users(&probe), 1);
}

#[test]
fn feature_names_and_vector_agree() {
    assert_eq!(FEATURE_NAMES.len(), N_FEATURES);
    let (p, last) = oslo_history(7);
    let f = Observation::observe(&p, &login_at(1, last + 1, "Oslo", Outcome::Success), 0).features();
    assert!(f.iter().all(|x| x.is_finite()));
}
