//! Each kind of bad input is rejected with INVALID_ARGUMENT naming the event and the field, and
//! nothing of the batch is written — checked against a real node process, bypassing the client's
//! own validation so the server's is what is tested.

mod common;

use client::proto::traceo_client::TraceoClient;
use client::proto::{Event, FeedbackRequest, Geo, GetProfileRequest, IngestRequest, SetOverrideRequest};
use common::{event, now_ms, start_cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_rejected_whole_with_the_field_named() {
    common::init_logs();
    let dir = tempfile::tempdir().unwrap();
    let (mut cluster, client) = start_cluster(dir.path(), 1, 4, 1).await;
    let mut raw = TraceoClient::connect(format!("http://{}", cluster.nodes[0].addr)).await.unwrap();
    let now = now_ms();
    let geo = |lat: f64, lon: f64| Some(Geo { lat, lon, country: "NO".into() });
    let cases: Vec<(&str, Event, &str)> = vec![
        ("empty event id", Event { event_id: String::new(), ..event("u", "x", now) }, "event_id"),
        ("empty user id", Event { user_id: String::new(), ..event("u", "x", now) }, "user_id"),
        ("over-long user id", Event { user_id: "u".repeat(200), ..event("u", "x", now) }, "user_id"),
        ("NaN latitude", Event { geo: geo(f64::NAN, 1.0), ..event("u", "x", now) }, "geo.lat"),
        ("latitude out of range", Event { geo: geo(95.0, 1.0), ..event("u", "x", now) }, "geo.lat"),
        ("longitude out of range", Event { geo: geo(1.0, 200.0), ..event("u", "x", now) }, "geo.lon"),
        ("invalid IP", Event { ip: Some("10.0.0.300".into()), ..event("u", "x", now) }, "ip"),
        ("event time far in the future", event("u", "x", now + 86_400_000), "time_ms"),
        ("unknown kind", Event { kind: 42, ..event("u", "x", now) }, "kind"),
    ];
    for (i, (what, bad, field)) in cases.into_iter().enumerate() {
        let victim = format!("victim-{i}");
        // A valid event for another user first: it must not be written either.
        let good = event(&victim, "good-1", now);
        let err = raw.ingest(IngestRequest { events: vec![good, bad] }).await.expect_err(what);
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{what}: {err:?}");
        assert!(err.message().contains(&format!("field `{field}`")), "{what}: message {:?}", err.message());
        assert!(err.message().starts_with("event 1 "), "{what}: names the event: {:?}", err.message());
        let p = raw.get_profile(GetProfileRequest { user_id: victim.clone(), stale_ok: false }).await.unwrap();
        assert!(!p.into_inner().found, "{what}: nothing of the batch may be written");
    }

    // An oversize batch.
    let big: Vec<Event> = (0..1001).map(|i| event("bulk", &format!("b{i}"), now)).collect();
    let err = raw.ingest(IngestRequest { events: big }).await.expect_err("oversize batch");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("field `events`"), "{}", err.message());
    assert!(err.message().starts_with("batch: "), "a batch-level error names no event: {}", err.message());
    let p = raw.get_profile(GetProfileRequest { user_id: "bulk".into(), stale_ok: false }).await.unwrap();
    assert!(!p.into_inner().found);

    // Reads and analysts' writes check a lone user_id by the rules an event's ids follow.
    let bad_user = "al\u{7}ice".to_string();
    let want = "field `user_id`: must not contain control characters";
    let e = raw.get_profile(GetProfileRequest { user_id: bad_user.clone(), stale_ok: true }).await.unwrap_err();
    assert_eq!((e.code(), e.message()), (tonic::Code::InvalidArgument, want));
    let e = raw.feedback(FeedbackRequest { user_id: bad_user.clone(), ..Default::default() }).await.unwrap_err();
    assert_eq!((e.code(), e.message()), (tonic::Code::InvalidArgument, want));
    let e = raw.set_override(SetOverrideRequest { user_id: bad_user, ..Default::default() }).await.unwrap_err();
    assert_eq!((e.code(), e.message()), (tonic::Code::InvalidArgument, want));

    // The client refuses the same input before sending anything.
    let e = client.ingest(&[event("c", "1", now), Event { kind: 42, ..event("c", "2", now) }]).await.unwrap_err();
    assert!(matches!(e, client::ClientError::InvalidArgument(ref f) if f.field == "kind" && f.index == Some(1)), "{e}");

    // And a good batch is applied, with duplicates recognised.
    let ok = client.ingest(&[event("c", "1", now), event("c", "2", now)]).await.unwrap();
    assert!(ok.iter().all(|o| matches!(o, client::Outcome::Ok { duplicate: false, verdict: Some(_) })), "{ok:?}");
    let again = client.ingest(&[event("c", "1", now)]).await.unwrap();
    assert_eq!(again, vec![client::Outcome::Ok { duplicate: true, verdict: None }]);
    let p = client.get_profile("c", false).await.unwrap().expect("profile of c");
    assert_eq!(p.events_applied, 2);
    cluster.terminate_all(std::time::Duration::from_secs(10));
}

#[test]
fn node_refuses_bad_configuration_naming_the_setting() {
    let out = std::process::Command::new(common::binary())
        .args(["node", "--shards", "0", "--data-dir", "/tmp/traceo-never-created"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`shards`"), "stderr: {stderr}");
    assert!(!std::path::Path::new("/tmp/traceo-never-created").exists());
}

/// A node may refuse a part the client let through (here: the client allows far more clock skew
/// than the nodes). Only that node's part fails; the other parts' outcomes are kept, and nothing
/// refused is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_one_node_refuses_fails_alone() {
    common::init_logs();
    let dir = tempfile::tempdir().unwrap();
    let (mut cluster, _) = start_cluster(dir.path(), 3, 8, 3).await;
    let lenient = client::ClientOptions {
        limits: client::Limits { max_future_skew_ms: 7 * 86_400_000, ..client::Limits::default() },
        ..client::ClientOptions::default()
    };
    let client = client::Client::connect(cluster.seeds(), lenient).await.unwrap();
    client.refresh_routing().await.unwrap();
    let now = now_ms();
    // One event a day ahead (every node refuses it), the others for users on every shard.
    let mut batch = vec![event("skewed", "s1", now + 86_400_000)];
    batch.extend((0..40).map(|i| event(&format!("user-{i}"), "e1", now)));
    let out = client.ingest(&batch).await.expect("outcomes, not an error for the whole call");
    match &out[0] {
        client::Outcome::Failed { reason } => assert!(reason.contains("field `time_ms`"), "{reason}"),
        other => panic!("the skewed event: {other:?}"),
    }
    let ok = out.iter().filter(|o| o.is_ok()).count();
    assert!(ok > 0, "parts sent to other nodes are applied: {out:?}");
    for (e, o) in batch.iter().zip(&out) {
        let p = client.get_profile(&e.user_id, false).await.unwrap();
        match o {
            client::Outcome::Ok { .. } => assert_eq!(p.map(|p| p.events_applied), Some(1), "{}", e.user_id),
            client::Outcome::Failed { .. } => assert!(p.is_none(), "{} refused, yet written", e.user_id),
            other => panic!("{}: {other:?}", e.user_id),
        }
    }
    cluster.terminate_all(std::time::Duration::from_secs(10));
}
