//! Traceo's test kit: real `traceo node` processes on loopback, seen only through the client.
//!
//! What it owns:
//! - [`local_cluster`]: [`LocalCluster`], a cluster of real node processes in one directory
//!   (started, killed, paused, restarted, grown), used by `traceo demo`, `traceo bench`, the
//!   Jepsen runner and the end-to-end tests;
//! - the helpers those tests share: [`start_cluster`] with fast elections, a valid [`event`],
//!   [`now_ms`], [`snapshot_bytes_sent`] by the nodes, [`resident_bytes_of`] a process.
//!
//! What it must not do: depend on the server's crates (`node`, `raft`, `storage`). It runs the
//! `traceo` binary it is given and talks to it as any user would, through `client`; so the
//! black-box checker (`jepsen`) can use it without being tied to the server's internals.

pub mod local_cluster;

use std::path::Path;
use std::time::Duration;

pub use local_cluster::{dir_bytes, LocalCluster, LocalClusterOptions, LocalNode, NodeHost};

/// Test phases are logged (`--- …`); the test runner shows them when a test fails.
pub fn init_logs() {
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("info").try_init();
}

/// Starts `nodes` real processes of `binary` with fast elections (tests should not wait seconds
/// per failover) and waits until the cluster is ready.
pub async fn start_cluster(
    binary: &Path,
    dir: &Path,
    nodes: usize,
    shards: u32,
    rf: u32,
) -> (LocalCluster, client::Client) {
    let mut opts = LocalClusterOptions::new(nodes, dir, binary.to_path_buf());
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

/// Milliseconds since the Unix epoch, by this machine's clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
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

/// Snapshot bytes the nodes that answer have sent to new replicas since they started.
pub async fn snapshot_bytes_sent(client: &client::Client) -> u64 {
    client.cluster_status_all().await.iter().filter_map(|(_, r)| r.as_ref().ok()).map(|s| s.snapshot_bytes_sent).sum()
}

/// Resident memory of process `pid` (a number, or `self`), from `/proc/PID/statm`.
pub fn resident_bytes_of(pid: &str) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
