//! Scoring through real node processes: every applied event comes back with a verdict computed
//! against the profile just before it, and `Score` answers without recording anything.

mod common;

use client::proto::{Action, Event, Geo};
use client::Outcome;
use common::{event, now_ms, start_cluster};

const HOUR: i64 = 3_600_000;

fn sydney(user: &str, id: &str, t: i64) -> Event {
    Event {
        ip: Some("203.0.113.9".into()),
        geo: Some(Geo { lat: -33.87, lon: 151.21, country: "AU".into() }),
        asn: Some(64_999),
        device_id: Some("unknown-device".into()),
        ..event(user, id, t)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_events_carry_verdicts_and_score_records_nothing() {
    common::init_logs();
    let dir = tempfile::tempdir().unwrap();
    let (_cluster, client) = start_cluster(dir.path(), 3, 4, 3).await;
    // Two weeks of logins from Oslo on the same laptop, twice a day, the last 30 minutes ago.
    let now = now_ms();
    let history: Vec<Event> = (0..30)
        .map(|i| Event { asn: Some(64_500), ..event("alice", &format!("h{i}"), now - (29 - i) * 12 * HOUR - HOUR / 2) })
        .collect();
    let out = client.ingest(&history).await.unwrap();
    let version = match &out[0] {
        Outcome::Ok { duplicate: false, verdict: Some(v) } => v.model_version.clone(),
        other => panic!("no verdict: {other:?}"),
    };
    assert!(!version.is_empty() && version != "rules-only", "the built-in models answer: {version}");
    let Outcome::Ok { verdict: Some(usual), .. } = &out[29] else { panic!("{:?}", out[29]) };
    assert!(usual.score < 40, "a usual login scores low: {usual:?}");
    assert_eq!(usual.action, Action::Allow as i32);

    // Score: Oslo → Sydney in 30 minutes, without recording it.
    let probe = sydney("alice", "probe", now);
    let scored = client.score(&probe).await.unwrap();
    let v = scored.verdict.expect("a verdict");
    // 60 = rarer than 1 in 1,000 benign events (docs/SCORING.md): challenged at least.
    assert!(v.score >= 60, "impossible travel from a new device scores high: {v:?}");
    assert!(v.action == Action::Challenge as i32 || v.action == Action::Block as i32, "{v:?}");
    assert!(v.require_mfa);
    assert_eq!(v.model_version, version);
    let travel = v.reasons.iter().find(|r| r.code == "impossible_travel").expect("impossible_travel reason");
    assert!(travel.evidence.contains("km/h from NO to AU"), "{}", travel.evidence);
    assert!(v.reasons.windows(2).all(|w| w[0].points >= w[1].points), "ordered by contribution: {:?}", v.reasons);
    let profile = client.get_profile("alice", false).await.unwrap().unwrap();
    assert_eq!(profile.events_applied, 30, "Score must not record the event");

    // The same event ingested: applied, with the same verdict as Score gave.
    let out = client.ingest(&[sydney("alice", "trip", now)]).await.unwrap();
    let Outcome::Ok { duplicate: false, verdict: Some(w) } = &out[0] else { panic!("{:?}", out[0]) };
    assert_eq!((w.score, w.action), (v.score, v.action));
    // Ingested again: a duplicate, no verdict, nothing changes.
    let again = client.ingest(&[sydney("alice", "trip", now)]).await.unwrap();
    assert_eq!(again[0], Outcome::Ok { duplicate: true, verdict: None });
    assert_eq!(client.get_profile("alice", false).await.unwrap().unwrap().events_applied, 31);

    // Bad input to Score names the field.
    let bad = Event { geo: Some(Geo { lat: 95.0, lon: 0.0, country: "NO".into() }), ..event("alice", "x", now) };
    let err = client.score(&bad).await.unwrap_err().to_string();
    assert!(err.contains("geo.lat"), "{err}");
}
