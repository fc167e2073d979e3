//! Replicas behind slow links, in one process (real RocksDB, real gRPC over loopback, delays
//! injected on the leader's outgoing messages; a delayed message still arrives when the sender
//! gives up on it, as on a real network).
//!
//! This reproduces the finding of the Jepsen latency runs: openraft 0.9 gives every append,
//! heartbeats included, `heartbeat_ms` to be answered, so a quorum behind round trips longer than
//! that commits nothing, while the followers, still hearing the late heartbeats, never elect
//! another leader. The node reports it (per-peer append timeouts, a warning naming the setting);
//! the operating rule is a heartbeat above the slowest round trip, checked by the second test.

#[allow(dead_code)] // each test binary uses part of the harness
mod common;

use std::sync::Arc;
use std::time::Duration;

use raft::net_faults::NetFaults;
use raft::{Command, NodeId, Raft, RaftOptions};

use common::start;

const ROUND_TRIP: Duration = Duration::from_millis(150);

async fn write(raft: &Raft, id: &str, within: Duration) -> bool {
    let ev = scoring::Event::new(id, "ann", 1_790_000_000_000, scoring::EventKind::Login, scoring::Outcome::Success);
    matches!(tokio::time::timeout(within, raft.client_write(Command::Ingest(vec![ev]))).await, Ok(Ok(_)))
}

/// Starts three nodes with `opts`, commits one event, then slows the leader's links to both
/// followers to [`ROUND_TRIP`]. Returns the cluster, the leader's index and the followers' ids.
async fn slowed(opts: RaftOptions) -> (common::Cluster, usize, Vec<NodeId>) {
    let faults = Arc::new(NetFaults::new(1));
    let cluster = start(opts, faults.clone()).await;
    let l = cluster.await_leader(Duration::from_secs(10)).await;
    assert!(write(&cluster.raft(l), "healthy", Duration::from_secs(5)).await, "a healthy cluster commits");
    let leader = cluster.nodes[l].0;
    let followers: Vec<NodeId> = cluster.nodes.iter().map(|n| n.0).filter(|&id| id != leader).collect();
    for &f in &followers {
        faults.slow(leader, f, ROUND_TRIP);
    }
    (cluster, l, followers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_trip_above_the_heartbeat_stalls_commits_without_an_election_and_is_reported() {
    let opts = RaftOptions {
        heartbeat_ms: 50,
        election_timeout_min_ms: 300,
        election_timeout_max_ms: 600,
        ..Default::default()
    };
    let (cluster, l, followers) = slowed(opts).await;
    let leader = cluster.raft(l);
    let term = leader.metrics().borrow().current_term;

    assert!(!write(&leader, "slow", Duration::from_secs(3)).await, "no append is answered within its timeout");
    let m = leader.metrics().borrow().clone();
    assert_eq!(m.current_term, term, "the followers hear the late heartbeats and never call an election");
    assert_eq!(m.current_leader, Some(cluster.nodes[l].0));
    let links = &cluster.nodes[l].1.pool().links;
    for f in followers {
        let link = links.link(f);
        assert!(link.timeouts >= 10, "appends to node {f} are counted as timed out: {link:?}");
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_above_the_round_trip_keeps_committing() {
    // The defaults: heartbeat 250 ms, elections 1–2 s.
    let (cluster, l, followers) = slowed(RaftOptions::default()).await;
    let leader = cluster.raft(l);
    for i in 0..5 {
        assert!(write(&leader, &format!("slow-{i}"), Duration::from_secs(5)).await, "write {i} commits");
    }
    // A dozen more heartbeats bring the smoothed round trip close to the slow one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let links = &cluster.nodes[l].1.pool().links;
    for f in followers {
        let link = links.link(f);
        assert!(link.round_trip >= ROUND_TRIP * 3 / 4, "node {f}'s slow round trip is measured: {link:?}");
    }
    cluster.shutdown().await;
}
