//! Three nodes' Raft groups in one process, on real RocksDB and real gRPC over loopback, with
//! seeded injected network faults (cut links, lost requests, lost replies, delays) changing every
//! few hundred milliseconds while writers propose events. Afterwards: every replica holds the
//! same profiles, every acknowledged event is applied exactly once, and no event whose proposal
//! definitely failed is applied.

#[allow(dead_code)] // each test binary uses part of the harness
mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use raft::net_faults::NetFaults;
use raft::state_machine::{dedupe_key, read_profile};
use raft::{Command, CommandResult, NodeId, RaftOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use storage::Cf;

use common::{start, SHARD};
const USERS: [&str; 4] = ["ann", "bob", "cyd", "dee"];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fate {
    Acknowledged,
    Failed,
    Unknown,
}

/// One seeded run; returns how many events were acknowledged.
async fn run(seed: u64) -> usize {
    let faults = Arc::new(NetFaults::new(seed));
    let opts = RaftOptions {
        heartbeat_ms: 50,
        election_timeout_min_ms: 300,
        election_timeout_max_ms: 600,
        ..Default::default()
    };
    let cluster = Arc::new(start(opts, faults.clone()).await);
    let ids: Vec<NodeId> = cluster.nodes.iter().map(|n| n.0).collect();
    let ledger: Arc<Mutex<HashMap<(String, String), Fate>>> = Arc::default();
    let until = Instant::now() + Duration::from_secs(6);

    let mut writers = Vec::new();
    for w in 0..4u64 {
        let (cluster, ledger) = (cluster.clone(), ledger.clone());
        writers.push(tokio::spawn(async move {
            let mut rng = ChaCha8Rng::seed_from_u64(seed * 100 + w);
            let mut n = 0;
            while Instant::now() < until {
                n += 1;
                let user = USERS[rng.gen_range(0..USERS.len())];
                let id = format!("w{w}-{n}");
                let ev = scoring::Event::new(
                    &id,
                    user,
                    1_790_000_000_000 + n,
                    scoring::EventKind::Login,
                    scoring::Outcome::Success,
                );
                let raft = cluster.leader_or(rng.gen_range(0..3));
                let fate =
                    match tokio::time::timeout(Duration::from_secs(1), raft.client_write(Command::Ingest(vec![ev])))
                        .await
                    {
                        Ok(Ok(r)) if matches!(r.data, CommandResult::Ingest(_)) => Fate::Acknowledged,
                        // Never appended (or truncated): definitely not applied.
                        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => Fate::Failed,
                        _ => Fate::Unknown,
                    };
                ledger.lock().unwrap().insert((user.to_string(), id), fate);
                if fate != Fate::Acknowledged {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }));
    }

    // The nemesis: a new fault every 300 ms, from the same seed.
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xfa17);
    while Instant::now() < until {
        faults.heal();
        match rng.gen_range(0..4) {
            0 => {}
            1 => faults.isolate(ids[rng.gen_range(0..3)], &ids),
            2 => faults.cut(ids[0], ids[rng.gen_range(1..3)]),
            _ => faults.set_lossy(0.2, 0.2, Duration::from_millis(20)),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    faults.heal();
    for w in writers {
        w.await.unwrap();
    }

    // Healed: wait until every replica applied everything the leader has.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let applied: Vec<Option<u64>> = cluster
            .nodes
            .iter()
            .map(|(_, m, _)| m.group(SHARD).unwrap().raft.metrics().borrow().last_applied.map(|l| l.index))
            .collect();
        let leader_log = cluster.leader_or(0).metrics().borrow().last_log_index;
        if applied.iter().all(|a| *a == leader_log && a.is_some()) {
            break;
        }
        assert!(Instant::now() < deadline, "replicas did not converge: applied {applied:?}, leader log {leader_log:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let ledger = ledger.lock().unwrap().clone();
    let (_, _, first) = &cluster.nodes[0];
    for user in USERS {
        let reference = read_profile(first, SHARD, user).unwrap();
        for (id, _, engine) in &cluster.nodes {
            assert_eq!(read_profile(engine, SHARD, user).unwrap(), reference, "replica {id} agrees on {user}");
        }
        let mut present = 0u64;
        for ((u, event), fate) in ledger.iter().filter(|((u, _), _)| u == user) {
            let applied = first.get(Cf::Dedupe, &dedupe_key(SHARD, u, event)).unwrap().is_some();
            present += u64::from(applied);
            match fate {
                Fate::Acknowledged => assert!(applied, "seed {seed}: acknowledged {u}/{event} lost"),
                Fate::Failed => assert!(!applied, "seed {seed}: definitely failed {u}/{event} applied"),
                Fate::Unknown => {}
            }
        }
        let applied = reference.map_or(0, |p| p.events_applied);
        assert_eq!(applied, present, "seed {seed}: {user}'s profile counts each applied event once");
    }
    cluster.shutdown().await;
    ledger.values().filter(|f| **f == Fate::Acknowledged).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_never_lose_or_duplicate_acknowledged_events() {
    for seed in [1, 2, 3] {
        let acked = run(seed).await;
        assert!(acked > 20, "seed {seed}: the cluster made progress between faults ({acked} acknowledged)");
        eprintln!("seed {seed}: {acked} events acknowledged");
    }
}
