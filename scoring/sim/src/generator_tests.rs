use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::labels::LabelRecord;
use scoring::calendar::{hour_of_day, weekday, MS_PER_DAY};
use scoring::event::{EventKind, Outcome};
use scoring::geo::{haversine_km, VPN_EXITS};

/// A benign population (no attacks, no leaves).
fn gen(seed: u64, users: usize) -> Generator {
    Generator::new(GeneratorConfig { seed, users, attacks_per_1000_user_days: 0.0, ..GeneratorConfig::default() })
}

/// 28 days of 300 users with attacks, labelled.
fn attacked(seed: u64) -> Vec<(Event, LabelRecord)> {
    let mut g = Generator::new(GeneratorConfig { seed, users: 300, ..GeneratorConfig::default() });
    let end = g.config().start_ms + 28 * MS_PER_DAY;
    std::iter::from_fn(|| Some(g.next_labelled())).take_while(|(e, _)| e.time_ms < end).collect()
}

fn user_index(user_id: &str) -> usize {
    user_id.rsplit('-').next().unwrap().parse().unwrap()
}

#[test]
fn same_seed_same_events() {
    let a: Vec<Event> = gen(7, 50).take(1000).collect();
    let b: Vec<Event> = gen(7, 50).take(1000).collect();
    assert_eq!(a, b);
    assert_eq!(a[0].event_id, "7-0000000000");
    assert_eq!(a[999].event_id, "7-0000000999");
    let c: Vec<Event> = gen(8, 50).take(1000).collect();
    assert_ne!(a, c);
}

#[test]
fn a_users_behaviour_does_not_depend_on_population_size() {
    let of_user0 = |g: Generator| -> Vec<(i64, EventKind)> {
        g.take(3000).filter(|e| e.user_id.ends_with("-000000")).map(|e| (e.time_ms, e.kind)).take(30).collect()
    };
    assert_eq!(of_user0(gen(3, 20)), of_user0(gen(3, 40)));
}

#[test]
fn different_seeds_are_disjoint() {
    let (a, b) = (gen(1, 100), gen(2, 100));
    let ua: BTreeSet<String> = a.user_ids().map(str::to_owned).collect();
    let ub: BTreeSet<String> = b.user_ids().map(str::to_owned).collect();
    assert_eq!((ua.len(), ub.len()), (100, 100));
    assert!(ua.is_disjoint(&ub));
    let ea: BTreeSet<String> = a.take(2000).map(|e| e.event_id).collect();
    let eb: BTreeSet<String> = b.take(2000).map(|e| e.event_id).collect();
    assert_eq!((ea.len(), eb.len()), (2000, 2000));
    assert!(ea.is_disjoint(&eb));
    // Devices are per seed too.
    let da: BTreeSet<String> =
        gen(1, 100).users().iter().flat_map(|u| u.devices.iter().map(|d| d.id.clone())).collect();
    let db: BTreeSet<String> =
        gen(2, 100).users().iter().flat_map(|u| u.devices.iter().map(|d| d.id.clone())).collect();
    assert!(da.is_disjoint(&db));
}

#[test]
fn times_never_decrease_and_kinds_vary() {
    // That every generated event passes the API's validation is checked in `node` (convert.rs),
    // where the API's rules live.
    let mut g = gen(11, 100);
    let start = g.config().start_ms;
    let mut prev = i64::MIN;
    let mut kinds = BTreeSet::new();
    for _ in 0..30_000 {
        let ev = g.next_event();
        assert!(ev.time_ms >= prev && ev.time_ms >= start);
        prev = ev.time_ms;
        kinds.insert(ev.kind);
    }
    for k in [EventKind::Login, EventKind::Logout, EventKind::ApiCall, EventKind::DataAccess, EventKind::MfaChallenge] {
        assert!(kinds.contains(&k), "{k} never generated");
    }
}

#[test]
fn every_user_is_active_and_logins_follow_working_hours() {
    let mut g = gen(5, 200);
    let events: Vec<Event> = (0..20_000).map(|_| g.next_event()).collect();
    let mut per_user = BTreeMap::new();
    let (mut logins, mut in_hours) = (0, 0);
    for ev in &events {
        let u = &g.users()[user_index(&ev.user_id)];
        *per_user.entry(u.index).or_insert(0) += 1;
        if ev.kind == EventKind::Login {
            let local = ev.time_ms + i64::from(CITIES[u.home_city].utc_offset_min) * 60_000;
            logins += 1;
            if u.is_workday(weekday(local.div_euclid(MS_PER_DAY))) && u.in_working_hours(hour_of_day(local)) {
                in_hours += 1;
            }
        }
    }
    assert_eq!(per_user.len(), 200, "some users produced nothing");
    let share = f64::from(in_hours) / f64::from(logins);
    assert!(share > 0.7, "only {share:.2} of {logins} logins in working hours");
}

#[test]
fn average_rate_matches_configuration() {
    let users = 60;
    let mut g = gen(9, users);
    let start = g.config().start_ms;
    let days = 56;
    let mut n = 0u64;
    while g.next_event().time_ms < start + days * MS_PER_DAY {
        n += 1;
    }
    let rate = n as f64 / (users as f64 * days as f64);
    assert!((rate - 20.0).abs() < 3.0, "{rate:.2} events per user per day");
}

#[test]
fn travel_between_logins_is_physically_plausible() {
    let vpn_asns: BTreeSet<u32> = VPN_EXITS.iter().map(|v| v.asn).collect();
    let mut last: BTreeMap<String, (i64, f64, f64)> = BTreeMap::new();
    let (mut moves, mut countries) = (0, BTreeSet::new());
    for ev in gen(13, 150).take(150_000) {
        if ev.kind != EventKind::Login || ev.outcome != Outcome::Success || vpn_asns.contains(&ev.asn.unwrap()) {
            continue;
        }
        let geo = ev.geo.unwrap();
        countries.insert(geo.country.clone());
        if let Some((t, lat, lon)) = last.insert(ev.user_id, (ev.time_ms, geo.lat, geo.lon)) {
            let km = haversine_km(lat, lon, geo.lat, geo.lon);
            if km > 1.0 {
                moves += 1;
                let hours = (ev.time_ms - t) as f64 / 3_600_000.0;
                assert!(km / hours < 1000.0, "{km:.0} km in {hours:.2} h");
            }
        }
    }
    assert!(moves > 10, "only {moves} trips");
    assert!(countries.len() > 10);
}

#[test]
fn habits_show_up_in_the_stream() {
    let mut g = gen(21, 150);
    let events: Vec<Event> = (0..150_000).map(|_| g.next_event()).collect();
    let failed_then_ok = events.windows(2).any(|w| w[0].outcome == Outcome::Failure && w[0].kind == EventKind::Login);
    assert!(failed_then_ok);
    let vpn_asns: BTreeSet<u32> = VPN_EXITS.iter().map(|v| v.asn).collect();
    assert!(events.iter().any(|e| vpn_asns.contains(&e.asn.unwrap())), "no VPN hops");
    assert!(events.iter().any(|e| matches!(e.ip, Some(std::net::IpAddr::V6(_)))), "no IPv6");
    let new_phones = g.users().iter().filter(|u| u.devices.iter().any(|d| d.retired)).count();
    assert!(new_phones > 0, "nobody got a new phone");
    let night = events
        .iter()
        .filter(|e| {
            let u = &g.users()[user_index(&e.user_id)];
            let local = e.time_ms + i64::from(CITIES[u.home_city].utc_offset_min) * 60_000;
            u.role.on_call() && hour_of_day(local) < 5
        })
        .count();
    assert!(night > 0, "no on-call nights");
}

#[test]
fn every_attack_scenario_is_injected_and_labelled() {
    let events = attacked(31);
    let mut per: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for (e, l) in &events {
        assert_eq!(e.event_id, l.event_id);
        assert_eq!(l.malicious(), crate::labels::is_attack(&l.scenario));
        let c = per.entry(l.scenario.as_str()).or_default();
        c.0 += u64::from(l.label);
        c.1 += 1;
    }
    for s in crate::labels::ATTACKS {
        let (bad, all) = per.get(s).copied().unwrap_or_default();
        assert!(bad >= 5 && bad == all, "{s}: {bad} malicious of {all}");
    }
    for s in crate::labels::BENIGN_LOOKALIKES {
        let (bad, all) = per.get(s).copied().unwrap_or_default();
        assert!(all > 0 && bad == 0, "{s}: {bad} malicious of {all}");
    }
    let start = events[0].0.time_ms;
    let first_attack = events.iter().find(|(_, l)| l.malicious()).unwrap().0.time_ms;
    assert!(first_attack >= start + crate::attacks::LEARNING_DAYS * MS_PER_DAY - MS_PER_DAY);
    assert!(events.windows(2).all(|w| w[0].0.time_ms <= w[1].0.time_ms));
    assert_eq!(attacked(31), events, "reproducible");
}

#[test]
fn attacks_leave_benign_behaviour_unchanged_except_for_leaves() {
    let with = attacked(33);
    let cfg = GeneratorConfig { seed: 33, users: 300, attacks_per_1000_user_days: 0.0, ..GeneratorConfig::default() };
    let mut g = Generator::new(cfg);
    let end = g.config().start_ms + 28 * MS_PER_DAY;
    let without: Vec<Event> = std::iter::from_fn(|| Some(g.next_event())).take_while(|e| e.time_ms < end).collect();
    type Seq = Vec<(i64, EventKind, Option<std::net::IpAddr>)>;
    let mut a: BTreeMap<&str, Seq> = BTreeMap::new();
    for (e, l) in with.iter().filter(|(_, l)| !l.malicious()) {
        let _ = l;
        a.entry(e.user_id.as_str()).or_default().push((e.time_ms, e.kind, e.ip));
    }
    let mut b: BTreeMap<&str, Seq> = BTreeMap::new();
    for e in &without {
        b.entry(e.user_id.as_str()).or_default().push((e.time_ms, e.kind, e.ip));
    }
    let mut same = 0;
    for (user, seq) in &b {
        match a.get(user) {
            Some(s) if s == seq => same += 1,
            other => {
                // A user on leave: a gap of at least 10 days, or gone (dormant).
                let s = other.map(Vec::as_slice).unwrap_or(&[]);
                let gap = s.windows(2).map(|w| w[1].0 - w[0].0).max().unwrap_or(0);
                let gone = s.last().is_none_or(|x| x.0 < end - 10 * MS_PER_DAY);
                assert!(gap >= 10 * MS_PER_DAY || gone, "{user} changed without a leave");
            }
        }
    }
    assert!(same * 10 >= b.len() * 9, "{same} of {} users unchanged", b.len());
}
