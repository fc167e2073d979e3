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
    let cluster = LocalCluster::start(opts).expect("start cluster");
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
