//! Analysts' feedback through a real cluster: it is written to the user's profile on the shard
//! leader, replicated, and later scores follow it.

mod common;

use client::proto::feedback_request::Kind;
use client::proto::{Event, Geo, MarkEvent};
use common::{event, now_ms, start_cluster};

const HOUR: i64 = 3_600_000;

/// A login from Berlin on a device the user never used: new country and new device.
fn berlin(user: &str, id: &str, t: i64) -> Event {
    Event {
        ip: Some("192.0.2.44".into()),
        geo: Some(Geo { lat: 52.52, lon: 13.40, country: "DE".into() }),
        asn: Some(64_500),
        device_id: Some("laptop-2".into()),
        ..event(user, id, t)
    }
}

fn codes(v: &client::proto::Verdict) -> Vec<&str> {
    v.reasons.iter().map(|r| r.code.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_changes_later_scores() {
    common::init_logs();
    let dir = tempfile::tempdir().unwrap();
    let (_cluster, client) = start_cluster(dir.path(), 3, 4, 3).await;
    // Two weeks of Oslo logins on laptop-1, twice a day, the last two days ago.
    let now = now_ms();
    let history: Vec<Event> = (0..30)
        .map(|i| Event { asn: Some(64_500), ..event("bob", &format!("h{i}"), now - 48 * HOUR - (29 - i) * 12 * HOUR) })
        .collect();
    client.ingest(&history).await.unwrap();

    let before = client.score(&berlin("bob", "probe-1", now)).await.unwrap().verdict.unwrap();
    assert!(codes(&before).contains(&"new_country") && codes(&before).contains(&"new_device"), "{before:?}");

    tracing::info!("--- trust the country and the device");
    client.feedback("bob", Kind::TrustCountry("DE".into())).await.unwrap();
    client.feedback("bob", Kind::TrustDevice("laptop-2".into())).await.unwrap();
    let trusted = client.score(&berlin("bob", "probe-2", now)).await.unwrap().verdict.unwrap();
    assert!(!codes(&trusted).contains(&"new_country") && !codes(&trusted).contains(&"new_device"), "{trusted:?}");
    assert!(trusted.score < before.score, "trust lowers the score: {} -> {}", before.score, trusted.score);
    let profile = client.get_profile("bob", false).await.unwrap().unwrap();
    assert_eq!(profile.trusted_countries, vec!["DE"]);
    assert_eq!(profile.trusted_devices, vec!["laptop-2"]);
    assert_eq!(profile.events_applied, 30, "feedback is not an event");

    tracing::info!("--- confirm an earlier event as an attack");
    let mark = |malicious| Kind::MarkEvent(MarkEvent { event_id: "h29".into(), malicious });
    client.feedback("bob", mark(true)).await.unwrap();
    let marked = client.score(&berlin("bob", "probe-3", now)).await.unwrap().verdict.unwrap();
    assert!(codes(&marked).contains(&"analyst_confirmed_compromise"), "{marked:?}");
    assert!(marked.score > trusted.score, "a confirmed compromise raises the score: {marked:?}");
    // Ingested (not only scored), the event carries the same verdict.
    let out = client.ingest(&[berlin("bob", "e-1", now)]).await.unwrap();
    let client::Outcome::Ok { verdict: Some(v), .. } = &out[0] else { panic!("{:?}", out[0]) };
    assert!(codes(v).contains(&"analyst_confirmed_compromise"), "{v:?}");

    tracing::info!("--- withdraw it");
    client.feedback("bob", mark(false)).await.unwrap();
    let cleared = client.score(&berlin("bob", "probe-4", now)).await.unwrap().verdict.unwrap();
    assert!(!codes(&cleared).contains(&"analyst_confirmed_compromise"), "{cleared:?}");
    let profile = client.get_profile("bob", false).await.unwrap().unwrap();
    assert_eq!((profile.marked_malicious, profile.marked_benign), (1, 1));
    assert_eq!(profile.compromised_event_id, "");

    tracing::info!("--- bad feedback names the field");
    let err = client.feedback("bob", Kind::TrustCountry("germany".into())).await.unwrap_err().to_string();
    assert!(err.contains("country"), "{err}");
    let err = client.feedback("bob", Kind::MarkEvent(MarkEvent::default())).await.unwrap_err().to_string();
    assert!(err.contains("event_id"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_is_a_compare_and_set_register_that_verdicts_follow() {
    use client::proto::{Action, AnalystOverride};
    common::init_logs();
    let dir = tempfile::tempdir().unwrap();
    let (_cluster, client) = start_cluster(dir.path(), 3, 4, 3).await;
    let now = now_ms();
    let history: Vec<Event> = (0..30)
        .map(|i| Event { asn: Some(64_500), ..event("eve", &format!("h{i}"), now - 48 * HOUR - (29 - i) * 12 * HOUR) })
        .collect();
    client.ingest(&history).await.unwrap();
    let before = client.score(&berlin("eve", "probe-1", now)).await.unwrap().verdict.unwrap();
    assert_ne!(before.action, Action::Allow as i32, "a new country and device are not allowed: {before:?}");
    let ov = |action: Action, note: &str| AnalystOverride { action: action as i32, note: note.into() };

    tracing::info!("--- set only if none: allow");
    let r = client.set_override("eve", Some(ov(Action::Allow, "travelling, INC-7")), Some(None)).await.unwrap();
    assert!(r.applied, "{r:?}");
    let allowed = client.score(&berlin("eve", "probe-2", now)).await.unwrap().verdict.unwrap();
    assert_eq!((allowed.action, allowed.score), (Action::Allow as i32, before.score), "{allowed:?}");
    assert_eq!(codes(&allowed)[0], "analyst_override");
    let profile = client.get_profile("eve", false).await.unwrap().unwrap();
    assert_eq!(profile.analyst_override, Some(ov(Action::Allow, "travelling, INC-7")));
    assert_eq!(profile.events_applied, 30, "an override is not an event");

    tracing::info!("--- compare-and-set: a stale expectation changes nothing");
    let r = client.set_override("eve", Some(ov(Action::Block, "x")), Some(None)).await.unwrap();
    assert!(!r.applied);
    assert_eq!(r.current, Some(ov(Action::Allow, "travelling, INC-7")));
    let expected = Some(Some(ov(Action::Allow, "travelling, INC-7")));
    let r = client.set_override("eve", Some(ov(Action::Block, "stolen laptop, INC-9")), expected).await.unwrap();
    assert!(r.applied, "{r:?}");
    let out = client.ingest(&[berlin("eve", "e-1", now)]).await.unwrap();
    let client::Outcome::Ok { verdict: Some(v), .. } = &out[0] else { panic!("{:?}", out[0]) };
    assert_eq!((v.action, v.require_mfa), (Action::Block as i32, true), "{v:?}");
    assert!(v.reasons[0].evidence.contains("stolen laptop, INC-9"), "{v:?}");

    tracing::info!("--- clear");
    assert!(client.set_override("eve", None, None).await.unwrap().applied);
    assert_eq!(client.get_profile("eve", false).await.unwrap().unwrap().analyst_override, None);
    let after = client.score(&berlin("eve", "probe-3", now)).await.unwrap().verdict.unwrap();
    assert!(!codes(&after).contains(&"analyst_override"), "{after:?}");

    tracing::info!("--- bad writes name the field and write nothing");
    let err = client.set_override("eve", Some(ov(Action::Block, "")), None).await.unwrap_err().to_string();
    assert!(err.contains("value.note"), "{err}");
    let err = client.set_override("eve", Some(ov(Action::Unspecified, "n")), None).await.unwrap_err().to_string();
    assert!(err.contains("value.action"), "{err}");
    assert_eq!(client.get_profile("eve", false).await.unwrap().unwrap().analyst_override, None);
}
