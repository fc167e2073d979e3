//! Dynamic membership with real node processes: a cluster grows from 3 to 5 nodes (its meta
//! leader killed and restarted mid-move) and shrinks back (decommission) under continuous client
//! load, and a node killed for good has its replicas rebuilt on the others.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client::proto::ClusterStatusResponse;
use client::Client;
use common::{event, now_ms};
use jepsen::ledger::{Fate, Ledger};
use testkit::{LocalCluster, LocalClusterOptions};

const USERS: usize = 500;
const BATCH: usize = 20;
const CLIENTS: usize = 8;

fn args(dead_after_secs: u64) -> Vec<String> {
    let dead = dead_after_secs.to_string();
    [
        "--heartbeat-ms",
        "100",
        "--election-timeout-min-ms",
        "500",
        "--election-timeout-max-ms",
        "1000",
        "--dead-node-after-secs",
        &dead,
        "--max-concurrent-moves",
        "2",
        // Snapshots (and log purges) happen during the test, so new replicas get snapshots.
        "--snapshot-after-entries",
        "200",
        "--keep-entries-after-snapshot",
        "20",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

async fn start(dir: &std::path::Path, nodes: usize, dead_after_secs: u64) -> (LocalCluster, Client) {
    let mut opts = LocalClusterOptions::new(nodes, dir, common::binary());
    opts.shards = 8;
    opts.extra_args = args(dead_after_secs);
    let mut cluster = LocalCluster::start(opts).expect("start cluster");
    let client = cluster.wait_ready(Duration::from_secs(60)).await.expect("cluster ready");
    (cluster, client)
}

/// The status with the newest epoch among the nodes that answer.
async fn newest(client: &Client) -> ClusterStatusResponse {
    let all = client.cluster_status_all().await;
    all.into_iter().filter_map(|(_, r)| r.ok()).max_by_key(|s| s.epoch).expect("some node answers")
}

/// Polls until `done(status)` holds, or panics after `timeout` naming `what`.
async fn wait_for(client: &Client, what: &str, timeout: Duration, done: impl Fn(&ClusterStatusResponse) -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        let s = newest(client).await;
        if done(&s) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}; last status: {s:#?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn settled(s: &ClusterStatusResponse) -> bool {
    s.moving.is_empty() && s.moves_planned == 0
}

/// Every shard has `rf` reported voters equal to its target, on active nodes spread over as
/// many zones as the active nodes offer (up to `rf`).
fn assert_replicated(s: &ClusterStatusResponse, rf: usize) {
    let zone: BTreeMap<u64, &str> = s.nodes.iter().map(|n| (n.id, n.zone.as_str())).collect();
    let state: BTreeMap<u64, &str> = s.nodes.iter().map(|n| (n.id, n.state.as_str())).collect();
    let active_zones: BTreeSet<&str> =
        s.nodes.iter().filter(|n| n.state == "active").map(|n| n.zone.as_str()).collect();
    for sh in &s.shard_status {
        let target: BTreeSet<u64> = sh.replicas.iter().copied().collect();
        let voters: BTreeSet<u64> = sh.voters.iter().copied().collect();
        assert_eq!(voters, target, "shard {} voters vs target", sh.shard);
        assert_eq!(voters.len(), rf, "shard {} has {:?}", sh.shard, voters);
        assert!(voters.iter().all(|v| state[v] == "active"), "shard {} on {:?}: {state:?}", sh.shard, voters);
        let zones: BTreeSet<&str> = voters.iter().map(|v| zone[v]).collect();
        assert_eq!(zones.len(), rf.min(active_zones.len()), "shard {} voters {:?} share zones", sh.shard, voters);
    }
}

/// Continuous ingest from `CLIENTS` workers until `stop`, every outcome in the ledger.
struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    ledger: Arc<Mutex<Ledger>>,
    events: Arc<Mutex<BTreeMap<String, client::proto::Event>>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(client: &Client) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let events = Arc::new(Mutex::new(BTreeMap::new()));
        let t0 = now_ms() - 3_600_000;
        let workers = (0..CLIENTS)
            .map(|w| {
                let (client, stop, sent, ledger, events) =
                    (client.clone(), stop.clone(), sent.clone(), ledger.clone(), events.clone());
                tokio::spawn(async move {
                    let mut i = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        let batch: Vec<_> = (0..BATCH)
                            .map(|k| {
                                let n = (i * BATCH + k) * CLIENTS + w;
                                event(&format!("user-{:04}", n % USERS), &format!("ev-{w}-{i}-{k}"), t0 + n as i64)
                            })
                            .collect();
                        i += 1;
                        let outcomes = client.ingest(&batch).await.expect("valid batch");
                        common::record(&ledger, &batch, &outcomes);
                        let mut ev = events.lock().unwrap();
                        ev.extend(batch.into_iter().map(|e| (e.event_id.clone(), e)));
                        sent.fetch_add(BATCH, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Load { stop, sent, ledger, events, workers }
    }

    /// Stops the load, retries every indeterminate event until definite, then checks every
    /// user's profile counts exactly the acknowledged events. Returns (acknowledged, failed).
    async fn finish(self, client: &Client) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            w.await.unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let pending = self.ledger.lock().unwrap().indeterminate();
            if pending.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "{} events still indeterminate", pending.len());
            let retry: Vec<_> = {
                let ev = self.events.lock().unwrap();
                pending.iter().map(|(_, id)| ev[id].clone()).collect()
            };
            for chunk in retry.chunks(BATCH) {
                let outcomes = client.ingest(chunk).await.unwrap();
                common::record(&self.ledger, chunk, &outcomes);
            }
        }
        let ledger = std::mem::take(&mut *self.ledger.lock().unwrap());
        common::assert_exactly_once(client, &ledger, CLIENTS).await;
        (ledger.count(Fate::Acknowledged), ledger.count(Fate::Failed))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grow_to_five_and_shrink_back_to_three_under_load() {
    common::init_logs();
    let dir = tempfile::tempdir().unwrap();
    let (mut cluster, client) = start(dir.path(), 3, 60).await;
    let load = Load::start(&client);
    tokio::time::sleep(Duration::from_secs(2)).await;

    tracing::info!("--- adding two nodes");
    let added = [cluster.add_node().unwrap(), cluster.add_node().unwrap()];
    // Mid-move, the meta leader (the placement driver) dies and comes back: the moves resume.
    wait_for(&client, "moves under way", Duration::from_secs(60), |s| !s.moving.is_empty()).await;
    let meta_leader = newest(&client).await.meta_leader;
    let addr = newest(&client).await.nodes.iter().find(|n| n.id == meta_leader).unwrap().addr.clone();
    let victim = cluster.index_of_addr(&addr).unwrap();
    tracing::info!(meta_leader, "--- killing the meta leader mid-move");
    cluster.kill(victim).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.restart(victim).unwrap();
    wait_for(&client, "5 active nodes, each with replicas, moves done", Duration::from_secs(150), |s| {
        s.nodes.len() == 5 && s.nodes.iter().all(|n| n.state == "active" && n.replicas > 0) && settled(s)
    })
    .await;
    let grown = newest(&client).await;
    assert_replicated(&grown, 3);
    let bytes = testkit::snapshot_bytes_sent(&client).await;
    tracing::info!(bytes, sent = load.sent.load(Ordering::Relaxed), "--- grown to 5");
    assert!(bytes > 0, "new replicas are filled with snapshots");

    let new_ids: Vec<u64> = grown.nodes.iter().map(|n| n.id).filter(|id| *id > 3).collect();
    assert_eq!(new_ids.len(), 2);
    for id in &new_ids {
        tracing::info!(id, "--- decommissioning");
        assert_eq!(client.decommission(*id).await.unwrap(), "draining");
    }
    wait_for(&client, "both added nodes removed", Duration::from_secs(150), |s| {
        new_ids.iter().all(|id| s.nodes.iter().any(|n| n.id == *id && n.state == "removed")) && settled(s)
    })
    .await;
    // A removed node's process exits on its own.
    let deadline = Instant::now() + Duration::from_secs(20);
    while added.iter().any(|&i| cluster.is_running(i)) {
        assert!(Instant::now() < deadline, "a decommissioned node is still running");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_replicated(&newest(&client).await, 3);

    let (acked, failed) = load.finish(&client).await;
    tracing::info!(acked, failed, "--- every acknowledged event present exactly once");
    assert!(acked >= 2_000, "only {acked} events acknowledged");
    cluster.terminate_all(Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_for_good_has_its_replicas_rebuilt() {
    common::init_logs();
    let dir = tempfile::tempdir().unwrap();
    let (mut cluster, client) = start(dir.path(), 4, 4).await;
    let load = Load::start(&client);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = newest(&client).await;
    assert_replicated(&before, 3);
    // The node with the most replicas, other than the founder.
    let victim = before.nodes.iter().filter(|n| n.id != 1).max_by_key(|n| n.replicas).unwrap().clone();
    let index = cluster.index_of_addr(&victim.addr).unwrap();
    tracing::info!(victim = victim.id, replicas = victim.replicas, "--- killing for good");
    cluster.kill(index).unwrap();

    wait_for(&client, "the dead node's replicas rebuilt", Duration::from_secs(120), |s| {
        s.nodes.iter().any(|n| n.id == victim.id && n.state == "dead" && n.replicas == 0) && settled(s)
    })
    .await;
    let after = newest(&client).await;
    assert_replicated(&after, 3);
    let (acked, _) = load.finish(&client).await;
    tracing::info!(acked, "--- RF 3 again, nothing lost");
    cluster.terminate_all(Duration::from_secs(10));
}
