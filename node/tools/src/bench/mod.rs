//! `traceo bench`: a local cluster of real node processes (fsync on, RF 3) driven through the
//! client crate with generated events. Prints the numbers, and one JSON object with `--json`.
//! With `--add-nodes`, the scale-out run of [`scale`].

mod scale;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::load::{run_load, LoadOptions};
use testkit::resident_bytes_of;
use testkit::{LocalCluster, LocalClusterOptions};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Node processes.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Concurrent client tasks.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// How long to drive load (after the cluster is ready).
    #[arg(long, default_value = "30s", value_parser = crate::parse_duration)]
    pub duration: Duration,
    /// Events per request (1 = one event per request, like a single-key store).
    #[arg(long, default_value_t = 50)]
    pub batch: usize,
    /// Distinct users.
    #[arg(long, default_value_t = 20_000)]
    pub users: usize,
    /// Shards of the cluster.
    #[arg(long, default_value_t = 16)]
    pub shards: u32,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON object to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Score every applied event (`on`, as in production), not at all (`off`), or run both, one
    /// after the other on fresh clusters, and report the throughput ratio (`both`).
    #[arg(long, value_enum, default_value_t = ScoringMode::On)]
    pub scoring: ScoringMode,
    /// Scale-out run: steady load for a third of --duration, then add this many nodes, wait
    /// until every replica move has finished, and keep the load on for another third. Reports
    /// replica slots moved vs the ideal fraction, bytes moved, time to rebalance and latency
    /// before / during / after.
    #[arg(long)]
    pub add_nodes: Option<usize>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScoringMode {
    On,
    Off,
    Both,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let out = match (args.add_nodes, args.scoring) {
        (Some(add), _) => scale::run(&args, add).await?,
        (None, scoring) => match scoring {
            ScoringMode::On => run_once(&args, true).await?,
            ScoringMode::Off => run_once(&args, false).await?,
            ScoringMode::Both => {
                let on = run_once(&args, true).await?;
                let off = run_once(&args, false).await?;
                let rate = |v: &serde_json::Value| v["events_per_s"].as_f64().unwrap_or(0.0);
                let ratio = rate(&on) / rate(&off).max(1.0);
                json!({
                    "scoring_on": on,
                    "scoring_off": off,
                    "scoring_throughput_ratio": (ratio * 1000.0).round() / 1000.0,
                    "target_ratio": 0.8,
                })
            }
        },
    };
    if let Some(path) = &args.out {
        std::fs::write(path, serde_json::to_string_pretty(&out)? + "\n")?;
    }
    if args.json {
        println!("{out}");
    } else {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

/// One cluster, one load run; the numbers as JSON.
async fn run_once(args: &BenchArgs, scoring: bool) -> anyhow::Result<serde_json::Value> {
    let dir = tempfile::Builder::new().prefix("traceo-bench-").tempdir()?;
    let mut opts = LocalClusterOptions::new(args.nodes, dir.path(), std::env::current_exe()?);
    opts.shards = args.shards;
    opts.replication_factor = 3.min(args.nodes as u32);
    opts.log_filter = "warn".into();
    opts.extra_args.extend(["--scoring".to_owned(), scoring.to_string()]);
    let mut cluster = LocalCluster::start(opts.clone())?;
    let client = cluster.wait_ready(Duration::from_secs(90)).await?;
    if !args.json {
        let mode = if scoring { "on" } else { "off" };
        eprintln!("cluster ready (scoring {mode}); driving load for {:?}…", args.duration);
    }

    // Sample every node's resident memory while the load runs.
    let pids: Vec<u32> = (0..args.nodes).filter_map(|i| cluster.pid(i)).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut peak = vec![0u64; pids.len()];
            while !stop.load(Ordering::Relaxed) {
                for (p, pid) in peak.iter_mut().zip(&pids) {
                    *p = (*p).max(resident_bytes_of(&pid.to_string()).unwrap_or(0));
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            peak
        })
    };
    let report = run_load(
        client,
        LoadOptions {
            clients: args.clients,
            batch: args.batch,
            duration: Some(args.duration),
            max_events: None,
            users: args.users,
            seed: args.seed,
            progress: !args.json,
            stop: None,
            phase: None,
        },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.await.unwrap_or_default();
    cluster.terminate_all(Duration::from_secs(15));
    let disk = cluster.disk_bytes();
    // One replica set's bytes per profile: total on disk / (users with data × replicas).
    let replicas = opts.replication_factor.max(1) as f64;
    let disk_per_profile = disk as f64 / (report.users_written.max(1) as f64 * replicas);
    let out = json!({
        "events_per_s": report.events_per_s().round(),
        "p50_ms": report.latency_ms(0.50),
        "p95_ms": report.latency_ms(0.95),
        "p99_ms": report.latency_ms(0.99),
        "errors": report.errors(),
        "events_ok": report.events_ok,
        "events_failed": report.events_failed,
        "events_indeterminate": report.events_indeterminate,
        "requests": report.requests,
        "peak_rss_mb_per_node": peak.iter().map(|b| (*b as f64 / 1048576.0 * 10.0).round() / 10.0).collect::<Vec<_>>(),
        "disk_bytes_per_profile": disk_per_profile.round(),
        "disk_bytes_total": disk,
        "users_written": report.users_written,
        "nodes": args.nodes,
        "clients": args.clients,
        "batch": args.batch,
        "shards": args.shards,
        "replication_factor": opts.replication_factor,
        "duration_s": report.elapsed.as_secs_f64(),
        "fsync": true,
        "scoring": scoring,
        "scored_events": report.verdicts,
        "challenged": report.challenged,
        "blocked": report.blocked,
        "error_samples": report.sample_errors,
    });
    Ok(out)
}
