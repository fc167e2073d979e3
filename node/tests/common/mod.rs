//! Helpers shared by the integration tests: real `traceo` processes on loopback.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use node::local_cluster::{LocalCluster, LocalClusterOptions};

/// Test phases are logged (`--- …`); the runner shows them when a test fails.
pub fn init_logs() {
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("info").try_init();
}

pub fn binary() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_traceo"))
}

/// Starts `nodes` real processes with fast elections (tests should not wait seconds per failover).
pub async fn start_cluster(dir: &Path, nodes: usize, shards: u32, rf: u32) -> (LocalCluster, client::Client) {
    let mut opts = LocalClusterOptions::new(nodes, dir, binary());
    opts.shards = shards;
    opts.replication_factor = rf;
    opts.extra_args =
        ["--heartbeat-ms", "100", "--election-timeout-min-ms", "500", "--election-timeout-max-ms", "1000"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    let mut cluster = LocalCluster::start(opts).expect("start cluster");
    let client = cluster.wait_ready(Duration::from_secs(60)).await.expect("cluster ready");
    (cluster, client)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A valid login event.
pub fn event(user: &str, id: &str, time_ms: i64) -> client::proto::Event {
    client::proto::Event {
        event_id: id.into(),
        user_id: user.into(),
        time_ms,
        kind: client::proto::EventKind::Login as i32,
        outcome: client::proto::Outcome::Success as i32,
        ip: Some("198.51.100.7".into()),
        geo: Some(client::proto::Geo { lat: 59.91, lon: 10.75, country: "NO".into() }),
        device_id: Some("laptop-1".into()),
        ..Default::default()
    }
}

/// Reads every user of `ledger` (linearizable, `concurrency` at a time) and asserts that each
/// profile counts exactly its acknowledged events: nothing lost, nothing applied twice, nothing
/// left indeterminate. Returns each user's applied count.
pub async fn assert_exactly_once(
    client: &client::Client,
    ledger: &jepsen::ledger::Ledger,
    concurrency: usize,
) -> std::collections::BTreeMap<String, u64> {
    use futures::StreamExt;
    let users: Vec<String> = ledger.users().map(String::from).collect();
    let reads = futures::stream::iter(users)
        .map(|u| {
            let client = client.clone();
            async move {
                let p = client.get_profile(&u, false).await.unwrap();
                (u, p.map_or(0, |p| p.events_applied))
            }
        })
        .buffer_unordered(concurrency);
    let applied: std::collections::BTreeMap<String, u64> = reads.collect().await;
    let check = ledger.check_counts(&applied);
    assert!(
        check.valid(),
        "lost: {:?}\nduplicated: {:?}",
        &check.lost[..check.lost.len().min(5)],
        &check.duplicated[..check.duplicated.len().min(5)]
    );
    assert_eq!(check.unsettled, 0);
    applied
}

/// Records each event's client-visible outcome in the ledger.
pub fn record(
    ledger: &std::sync::Mutex<jepsen::ledger::Ledger>,
    batch: &[client::proto::Event],
    outcomes: &[client::Outcome],
) {
    use jepsen::ledger::Fate;
    let mut l = ledger.lock().unwrap();
    for (e, o) in batch.iter().zip(outcomes) {
        let fate = match o {
            client::Outcome::Ok { .. } => Fate::Acknowledged,
            client::Outcome::Failed { .. } => Fate::Failed,
            client::Outcome::Indeterminate { .. } => Fate::Indeterminate,
        };
        l.record(&e.user_id, &e.event_id, fate);
    }
}
