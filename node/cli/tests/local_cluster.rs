//! The local cluster harness every multi-process test and the Jepsen runner start from: a node
//! that cannot start must fail the wait for readiness at once, naming the node and its error,
//! not after the whole timeout.

mod common;

use std::time::{Duration, Instant};

use testkit::{LocalCluster, LocalClusterOptions, NodeHost};

#[tokio::test]
async fn a_node_that_cannot_listen_fails_the_wait_at_once_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    // Node 0 listens on 127.0.0.2:7400 / :7401; hold the admin port first.
    let _taken = std::net::TcpListener::bind("127.0.0.2:7401").expect("127.0.0.2:7401 free");
    let mut opts = LocalClusterOptions::new(1, dir.path(), common::binary());
    opts.hosts = Some(vec![NodeHost { ip: Some("127.0.0.2".into()), ..NodeHost::default() }]);
    let mut cluster = LocalCluster::start(opts).expect("the process starts");
    let started = Instant::now();
    let err = cluster.wait_ready(Duration::from_secs(60)).await.err().expect("never ready");
    let message = format!("{err:#}");
    assert!(started.elapsed() < Duration::from_secs(20), "failed after {:?}", started.elapsed());
    assert!(message.contains("node 0 (127.0.0.2:7400) exited"), "{message}");
    assert!(message.contains("admin_addr 127.0.0.2:7401: cannot listen"), "{message}");
}
