//! Helpers shared by the end-to-end tests: real `traceo` processes on loopback (the launcher and
//! most helpers are the `testkit` crate's; these bind them to this package's binary).
#![allow(dead_code)]

use std::path::Path;

use testkit::LocalCluster;
#[allow(unused_imports)]
pub use testkit::{event, init_logs, now_ms};

/// The `traceo` binary cargo built for these tests.
pub fn binary() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_traceo"))
}

/// Starts `nodes` real processes with fast elections (tests should not wait seconds per failover).
pub async fn start_cluster(dir: &Path, nodes: usize, shards: u32, rf: u32) -> (LocalCluster, client::Client) {
    testkit::start_cluster(&binary(), dir, nodes, shards, rf).await
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
