//! 3 real node processes; ≥ 20,000 events for ≥ 2,000 users from 16 concurrent clients; a shard
//! leader is killed with SIGKILL mid-load and restarted. Every indeterminate event is retried
//! (same id) until definite; then every user's profile must count exactly the acknowledged events
//! (nothing lost, nothing applied twice) and the restarted node must have caught up.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client::proto::traceo_client::TraceoClient;
use client::proto::GetProfileRequest;
use common::{event, now_ms, start_cluster};
use jepsen::ledger::{Fate, Ledger};

const USERS: usize = 2_000;
const EVENTS: usize = 24_000;
const CLIENTS: usize = 16;
const BATCH: usize = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_of_a_shard_leader_loses_nothing_acknowledged() {
    common::init_logs();
    let dir = tempfile::tempdir().unwrap();
    let (mut cluster, client) = start_cluster(dir.path(), 3, 8, 3).await;
    tracing::info!("--- cluster ready");

    let t0 = now_ms() - 3_600_000;
    let events: Vec<_> =
        (0..EVENTS).map(|i| event(&format!("user-{:05}", i % USERS), &format!("ev-{i:06}"), t0 + i as i64)).collect();
    let batches: Arc<Vec<Vec<client::proto::Event>>> = Arc::new(events.chunks(BATCH).map(|c| c.to_vec()).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let ledger = Arc::new(Mutex::new(Ledger::default()));

    let mut workers = Vec::new();
    for _ in 0..CLIENTS {
        let (client, batches, next, ledger) = (client.clone(), batches.clone(), next.clone(), ledger.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(batch) = batches.get(i) else { break };
                let outcomes = client.ingest(batch).await.expect("valid batch");
                common::record(&ledger, batch, &outcomes);
            }
        }));
    }

    // Mid-load: find shard 0's leader and SIGKILL it.
    while next.load(Ordering::Relaxed) < batches.len() / 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = client.cluster_status_all().await;
    let leader_addr = status
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .flat_map(|s| s.shard_status.iter())
        .find(|s| s.shard == 0 && s.role == "leader")
        .map(|s| s.leader_addr.clone())
        .expect("shard 0 has a leader");
    let victim = cluster.index_of_addr(&leader_addr).expect("leader is one of ours");
    let applied_before_kill = next.load(Ordering::Relaxed) * BATCH;
    cluster.kill(victim).unwrap();
    tracing::info!(victim, applied_before_kill, "--- killed the leader of shard 0");
    // Keep going without it until two thirds of the load is done (and at least 2 s have passed).
    let killed_at = Instant::now();
    while (next.load(Ordering::Relaxed) < 2 * batches.len() / 3 || killed_at.elapsed() < Duration::from_secs(2))
        && !workers.iter().all(|w| w.is_finished())
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(next.load(Ordering::Relaxed) * BATCH > applied_before_kill, "load must keep going without the node");
    cluster.restart(victim).unwrap();
    tracing::info!(victim, "--- restarted");

    for w in workers {
        w.await.unwrap();
    }
    tracing::info!("--- load done; settling indeterminate events");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let pending = ledger.lock().unwrap().indeterminate();
        if pending.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{} events still indeterminate", pending.len());
        let by_id: BTreeMap<&str, &client::proto::Event> = events.iter().map(|e| (e.event_id.as_str(), e)).collect();
        let retry: Vec<_> = pending.iter().map(|(_, id)| by_id[id.as_str()].clone()).collect();
        for chunk in retry.chunks(BATCH) {
            let outcomes = client.ingest(chunk).await.unwrap();
            common::record(&ledger, chunk, &outcomes);
        }
    }

    let ledger = std::mem::take(&mut *ledger.lock().unwrap());
    let acked = ledger.count(Fate::Acknowledged);
    assert!(acked >= 20_000, "only {acked} events acknowledged");
    let users: Vec<String> = ledger.users().map(String::from).collect();
    assert!(users.len() >= USERS);
    tracing::info!(users = users.len(), "--- reading every profile (linearizable)");
    let applied = common::assert_exactly_once(&client, &ledger, CLIENTS).await;
    tracing::info!(acked, failed = ledger.count(Fate::Failed), "--- every acknowledged event applied exactly once");

    // The restarted node caught up: stale reads served by its own replicas agree.
    let mut raw = TraceoClient::connect(format!("http://{}", cluster.nodes[victim].addr)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    'users: for u in users.iter().step_by(7) {
        loop {
            let r =
                raw.get_profile(GetProfileRequest { user_id: u.clone(), stale_ok: true }).await.unwrap().into_inner();
            let got = r.profile.map_or(0, |p| p.events_applied);
            if got == applied[u] {
                continue 'users;
            }
            assert!(Instant::now() < deadline, "restarted node has {got} events for {u}, leader {}", applied[u]);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    cluster.terminate_all(Duration::from_secs(10));
}
