//! `traceo bench --add-nodes K`: steady load on the cluster, K nodes added mid-run, the moves
//! waited for, and the cost measured: replica slots moved against the ideal `K / (N + K)` of
//! all slots, bytes moved, time to rebalance, and request latency before, during and after.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use client::proto::ClusterStatusResponse;
use client::Client;
use serde_json::json;

use super::BenchArgs;
use crate::load::{run_load, LoadOptions};
use testkit::{dir_bytes, LocalCluster, LocalClusterOptions};

/// The status with the newest epoch among the nodes that answer.
async fn newest(client: &Client) -> Option<ClusterStatusResponse> {
    client.cluster_status_all().await.into_iter().filter_map(|(_, r)| r.ok()).max_by_key(|s| s.epoch)
}

fn placement(s: &ClusterStatusResponse) -> Vec<BTreeSet<u64>> {
    s.shard_status.iter().map(|x| x.replicas.iter().copied().collect()).collect()
}

/// Leaders per node as the nodes report them (shards whose leader they see themselves as).
async fn leaders_per_node(client: &Client) -> serde_json::Value {
    let mut counts = std::collections::BTreeMap::<u64, u32>::new();
    for (_, r) in client.cluster_status_all().await {
        if let Ok(s) = r {
            let led = s.shard_status.iter().filter(|x| x.hosted && x.role == "leader").count() as u32;
            counts.insert(s.node_id, led);
        }
    }
    json!(counts)
}

pub async fn run(args: &BenchArgs, add: usize) -> anyhow::Result<serde_json::Value> {
    let tmp = tempfile::Builder::new().prefix("traceo-bench-scale-").tempdir()?;
    // TRACEO_BENCH_KEEP=1 keeps the nodes' data and logs for a look afterwards.
    let dir = if std::env::var_os("TRACEO_BENCH_KEEP").is_some() { tmp.keep() } else { tmp.path().to_path_buf() };
    let mut opts = LocalClusterOptions::new(args.nodes, &dir, std::env::current_exe()?);
    opts.shards = args.shards;
    opts.replication_factor = 3.min(args.nodes as u32);
    opts.log_filter = "warn,node=info".into();
    let mut cluster = LocalCluster::start(opts.clone())?;
    let client = cluster.wait_ready(Duration::from_secs(90)).await?;
    let before = newest(&client).await.ok_or_else(|| anyhow::anyhow!("no node answers"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let phase = Arc::new(AtomicUsize::new(0));
    let load = tokio::spawn(run_load(
        client.clone(),
        LoadOptions {
            clients: args.clients,
            batch: args.batch,
            duration: None,
            max_events: None,
            users: args.users,
            seed: args.seed,
            progress: false,
            stop: Some(stop.clone()),
            phase: Some(phase.clone()),
        },
    ));
    let steady = args.duration / 3;
    let say = |m: String| {
        if !args.json {
            eprintln!("{m}");
        }
    };
    say(format!("{} nodes ready; steady load for {steady:?}", args.nodes));
    tokio::time::sleep(steady).await;

    phase.store(1, Ordering::Relaxed);
    let added_at = Instant::now();
    let mut added = Vec::new();
    for _ in 0..add {
        added.push(cluster.add_node()?);
    }
    say(format!("added {add} nodes; waiting for the moves"));
    let want_nodes = args.nodes + add;
    let deadline = added_at + Duration::from_secs(900);
    let after = loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Some(s) = newest(&client).await {
            let placed = s.nodes.len() == want_nodes && s.nodes.iter().all(|n| n.replicas > 0);
            if placed && s.moving.is_empty() && s.moves_planned == 0 {
                break s;
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "the moves did not finish within 15 minutes");
    };
    let rebalance = added_at.elapsed();
    phase.store(2, Ordering::Relaxed);
    say(format!("moves done in {rebalance:.1?}; load goes on for {steady:?}"));
    tokio::time::sleep(steady).await;
    stop.store(true, Ordering::Relaxed);
    let report = load.await?;

    let slots = |p: &[BTreeSet<u64>]| p.iter().map(BTreeSet::len).sum::<usize>();
    let (p0, p1) = (placement(&before), placement(&after));
    let moved: usize = p0.iter().zip(&p1).map(|(a, b)| b.difference(a).count()).sum();
    let sets_changed = p0.iter().zip(&p1).filter(|(a, b)| a != b).count();
    let ideal = slots(&p1) as f64 * add as f64 / want_nodes as f64;
    let snapshot_bytes = testkit::snapshot_bytes_sent(&client).await;
    let new_node_bytes: u64 = added.iter().map(|&i| dir_bytes(&cluster.nodes[i].data_dir)).sum();
    let leaders = leaders_per_node(&client).await;
    cluster.terminate_all(Duration::from_secs(15));

    let phase_ms = |p: usize, q: f64| report.phase_latency_ms(p, q).0;
    let p99_steady = phase_ms(0, 0.99);
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    Ok(json!({
        "nodes_before": args.nodes,
        "nodes_added": add,
        "shards": args.shards,
        "replication_factor": opts.replication_factor,
        "replica_slots_moved": moved,
        "replica_slots_ideal": round(ideal),
        "shards_moved_vs_ideal": round(moved as f64 / ideal.max(1e-9)),
        "shard_replica_sets_changed": sets_changed,
        "bytes_moved_snapshots": snapshot_bytes,
        "bytes_on_new_nodes": new_node_bytes,
        "time_to_rebalance_s": round(rebalance.as_secs_f64()),
        "p50_ms": { "steady": phase_ms(0, 0.5), "during": phase_ms(1, 0.5), "after": phase_ms(2, 0.5) },
        "p99_ms": { "steady": p99_steady, "during": phase_ms(1, 0.99), "after": phase_ms(2, 0.99) },
        "max_ms": { "steady": phase_ms(0, 1.0), "during": phase_ms(1, 1.0), "after": phase_ms(2, 1.0) },
        "requests": { "steady": report.phase_latency_ms(0, 0.5).1, "during": report.phase_latency_ms(1, 0.5).1,
                      "after": report.phase_latency_ms(2, 0.5).1 },
        "p99_during_vs_steady": round(phase_ms(1, 0.99) / p99_steady.max(1e-9)),
        "errors": report.errors(),
        "events_ok": report.events_ok,
        "events_per_s": report.events_per_s().round(),
        "leaders_per_node_after": leaders,
        "clients": args.clients,
        "batch": args.batch,
        "error_samples": report.sample_errors,
        "targets": { "shards_moved_vs_ideal": 1.25, "p99_during_vs_steady": 2.0, "errors": 0 },
    }))
}
