use super::*;
use crate::event::{EventKind, Outcome};
use crate::features::Observation;

/// A quiet, well-known login: nothing fires.
fn base() -> Observation {
    Observation {
        kind: EventKind::Login,
        outcome: Outcome::Success,
        history_events: 500,
        history_days: 60.0,
        distance_km: Some(0.0),
        minutes_since_login: Some(120.0),
        speed_kmh: Some(0.0),
        from_country: Some("NO".into()),
        country: Some("NO".into()),
        new_country: false,
        new_asn: false,
        new_ip_prefix: false,
        new_device: false,
        new_resource: false,
        country_rarity: 0.0,
        hour_of_week_surprise: -1.0,
        hour_of_day_surprise: -1.0,
        hour_utc: 9,
        dormant_days: 0.1,
        bytes: None,
        bytes_z: 0.0,
        typical_bytes: 100_000.0,
        hour_count: 2,
        mean_per_hour: 1.0,
        failure_streak: 0,
        minutes_since_privilege: None,
        source_failed_users: 0,
        compromised: None,
        analyst_override: None,
    }
}

fn codes(o: &Observation) -> Vec<String> {
    detect(o, &RuleConfig::default()).into_iter().map(|r| r.code).collect()
}

#[test]
fn quiet_event_has_no_reasons() {
    assert!(detect(&base(), &RuleConfig::default()).is_empty());
}

#[test]
fn impossible_travel_quotes_its_evidence() {
    let o = Observation {
        distance_km: Some(9_400.0),
        minutes_since_login: Some(40.0),
        speed_kmh: Some(14_100.0),
        country: Some("AU".into()),
        new_country: true,
        ..base()
    };
    let r = detect(&o, &RuleConfig::default());
    assert_eq!(r[0].code, "impossible_travel");
    assert_eq!(r[0].evidence, "9,400 km in 40 min = 14,100 km/h from NO to AU");
    assert_eq!(r[1].code, "new_country");
    // A plane: 9,400 km in 13 hours is 723 km/h.
    let o = Observation { minutes_since_login: Some(780.0), speed_kmh: Some(723.0), ..o };
    assert!(!codes(&o).contains(&"impossible_travel".to_owned()));
    // Thresholds are configurable.
    let cfg = RuleConfig { impossible_travel_kmh: 500.0, ..RuleConfig::default() };
    assert_eq!(detect(&o, &cfg)[0].code, "impossible_travel");
}

#[test]
fn short_hops_and_failed_logins_are_not_travel() {
    let hop =
        Observation { distance_km: Some(60.0), minutes_since_login: Some(1.0), speed_kmh: Some(3_600.0), ..base() };
    assert!(codes(&hop).is_empty());
    let failed =
        Observation { outcome: Outcome::Failure, distance_km: Some(9_400.0), speed_kmh: Some(14_100.0), ..base() };
    assert!(!codes(&failed).contains(&"impossible_travel".to_owned()));
}

#[test]
fn novelty_is_silent_while_learning() {
    let o = Observation { new_country: true, new_device: true, new_asn: true, ..base() };
    assert_eq!(codes(&o), ["new_country", "new_device", "new_asn"]);
    let young = Observation { history_events: 3, ..o };
    assert!(codes(&young).is_empty());
}

#[test]
fn brute_force_spray_dormant_and_privilege() {
    let bf = Observation { failure_streak: 12, ..base() };
    let r = detect(&bf, &RuleConfig::default());
    assert_eq!(
        (r[0].code.as_str(), r[0].evidence.as_str()),
        ("brute_force", "success after 12 failed attempts in a row")
    );
    let streak = Observation { outcome: Outcome::Failure, failure_streak: 11, ..base() };
    assert_eq!(codes(&streak), ["failure_streak"]);
    let spray = Observation { outcome: Outcome::Failure, source_failed_users: 9, ..base() };
    assert_eq!(codes(&spray), ["spray_or_stuffing"]);
    let dormant = Observation { dormant_days: 40.0, ..base() };
    let r = detect(&dormant, &RuleConfig::default());
    assert_eq!(r[0].evidence, "first login after 40 days without activity");
    let mass =
        Observation { kind: EventKind::DataAccess, minutes_since_privilege: Some(12.0), hour_count: 30, ..base() };
    assert_eq!(codes(&mass), ["privilege_then_mass_access"]);
    let late = Observation { minutes_since_privilege: Some(300.0), ..mass };
    assert!(codes(&late).is_empty());
}

#[test]
fn volume_and_hour() {
    let spike = Observation { kind: EventKind::DataAccess, bytes: Some(50_000_000), bytes_z: 7.0, ..base() };
    let r = detect(&spike, &RuleConfig::default());
    assert_eq!(r[0].code, "volume_spike");
    assert_eq!(r[0].evidence, "50,000,000 bytes, 500× the user's typical 100,000 (z = 7.0)");
    let night = Observation { hour_utc: 3, hour_of_day_surprise: 6.0, hour_of_week_surprise: 7.0, ..base() };
    let r = detect(&night, &RuleConfig::default());
    assert_eq!(r[0].code, "unusual_hour");
    assert_eq!(r[0].evidence, "03:00 UTC is about 64× rarer for this user than an even spread");
}

#[test]
fn reasons_are_ordered_by_points() {
    let o = Observation {
        failure_streak: 8,
        new_country: true,
        distance_km: Some(9_400.0),
        speed_kmh: Some(14_100.0),
        ..base()
    };
    let r = detect(&o, &RuleConfig::default());
    assert!(r.windows(2).all(|w| w[0].points >= w[1].points));
    assert!((points(&r) - r.iter().map(|x| x.points).sum::<f64>()).abs() < 1e-12);
}
