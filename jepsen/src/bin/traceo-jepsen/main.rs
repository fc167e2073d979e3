//! `traceo-jepsen`: runs a workload against a local cluster of real `traceo` processes while a
//! nemesis breaks them, records every operation, checks the history and writes a report.
//!
//! `traceo-jepsen run --nodes 5 --workload list-append --nemesis kill,pause --duration 60s
//! --rate 200 --seed 7 --out DIR` exits 0 only when every checker says valid.

mod links;
mod nemesis;
mod net;
mod plots;
mod recorder;
mod register;
mod report;
mod runner;
mod workload;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::runner::RunOptions;

/// Jepsen-style testing of Traceo: workloads under faults, checked histories.
#[derive(Parser, Debug)]
#[command(name = "traceo-jepsen", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start a cluster, run the workload under the nemesis, check, and write the report to --out.
    Run(Box<RunArgs>),
    /// Check a recorded history.jsonl again (and rewrite its results.json and plots).
    Check {
        /// A run directory (with history.jsonl).
        dir: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Node processes.
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Shards of the cluster (RF 3).
    #[arg(long, default_value_t = 8)]
    shards: u32,
    /// The workload: list-append (appends of unique ids to hot users, linearizable reads of the
    /// ids in order) or register (each user's analyst override written, compare-and-set and
    /// read; checked for linearizability).
    #[arg(long, default_value = "list-append")]
    workload: String,
    /// Faults, comma-separated: kill (SIGKILL and restart a minority, or a shard leader), pause
    /// (SIGSTOP/SIGCONT a minority), partition (cut links: isolate, split, bridge, random
    /// pairs; see --net), latency (delay and loss on a minority's links; see --net), clock (libfaketime: a minority's clocks jump
    /// by up to ±60 s), member (a node joins, then is decommissioned: replicas move both ways
    /// under load; not with partition, latency or clock). Empty: no faults.
    #[arg(long, value_delimiter = ',', default_value = "kill,pause")]
    nemesis: Vec<String>,
    /// How long the workload runs (faults stop at the end; then healing and final reads).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Operations per second over all workers.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Concurrent workers (each with at most one operation outstanding).
    #[arg(long, default_value_t = 10)]
    concurrency: usize,
    /// Keys (users) written at once; each retires after 60 appends (list-append) or 40 writes
    /// (register).
    #[arg(long, default_value_t = 5)]
    hot_keys: usize,
    /// Fraction of operations that are reads.
    #[arg(long, default_value_t = 0.5)]
    read_fraction: f64,
    /// How long each fault lasts.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    fault: Duration,
    /// How long the cluster runs healed between faults.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    heal: Duration,
    /// How partition and latency break the network: netns (each node in its own network
    /// namespace; needs root, latency needs the kernel's netem), proxy (each node dials every
    /// peer through a fault-injecting TCP proxy in this process; no privileges), or auto
    /// (netns where it works, else proxy).
    #[arg(long, default_value = "auto")]
    net: String,
    /// Seed of the workload's and the nemesis' choices.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Rerun the options recorded in DIR/run.json (same seed, same schedule of choices).
    #[arg(long, value_name = "DIR")]
    reproduce: Option<PathBuf>,
    /// The run's directory (history.jsonl, results.json, plots, run.json, node logs on failure).
    #[arg(long)]
    out: PathBuf,
    /// The `traceo` binary [default: next to this one].
    #[arg(long)]
    traceo: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e} (examples: 30s, 500ms, 2m)"))
}

impl RunArgs {
    fn options(&self) -> anyhow::Result<RunOptions> {
        if let Some(dir) = &self.reproduce {
            let path = dir.join("run.json");
            let text = std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            return serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()));
        }
        anyhow::ensure!(self.nodes >= 3, "--nodes: at least 3 (RF 3)");
        anyhow::ensure!(
            ["list-append", "register"].contains(&self.workload.as_str()),
            "--workload: {:?} is not one of list-append, register",
            self.workload
        );
        anyhow::ensure!(self.rate > 0.0, "--rate: must be positive");
        anyhow::ensure!((0.0..=1.0).contains(&self.read_fraction), "--read-fraction: must be within 0..=1");
        anyhow::ensure!(self.concurrency >= 1, "--concurrency: at least 1");
        anyhow::ensure!(
            ["auto", "netns", "proxy"].contains(&self.net.as_str()),
            "--net: {:?} is not one of auto, netns, proxy",
            self.net
        );
        let nemesis: Vec<String> = self.nemesis.iter().filter(|n| !n.is_empty()).cloned().collect();
        for n in &nemesis {
            n.parse::<nemesis::Fault>().map_err(|e| anyhow::anyhow!("--nemesis: {e}"))?;
        }
        Ok(RunOptions {
            nodes: self.nodes,
            shards: self.shards,
            workload: self.workload.clone(),
            nemesis,
            duration_s: self.duration.as_secs_f64(),
            rate: self.rate,
            concurrency: self.concurrency,
            hot_keys: self.hot_keys,
            read_fraction: self.read_fraction,
            fault_s: self.fault.as_secs_f64(),
            heal_s: self.heal.as_secs_f64(),
            seed: self.seed,
            net: self.net.clone(),
        })
    }
}

fn traceo_binary(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(p) => p,
        None => std::env::current_exe()?.with_file_name("traceo"),
    };
    anyhow::ensure!(path.is_file(), "the traceo binary {} does not exist (build it, or pass --traceo)", path.display());
    Ok(path)
}

async fn run(args: RunArgs) -> anyhow::Result<bool> {
    let opts = args.options()?;
    let traceo = traceo_binary(args.traceo)?;
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("run.json"), serde_json::to_string_pretty(&opts)? + "\n")?;
    eprintln!(
        "traceo-jepsen: {} nodes, {} under {:?} for {:.0} s at {} ops/s, seed {}",
        opts.nodes, opts.workload, opts.nemesis, opts.duration_s, opts.rate, opts.seed
    );
    let output = runner::run(&opts, traceo, &args.out).await?;
    output.history.write_jsonl(&args.out.join("history.jsonl"))?;
    std::fs::write(args.out.join("unread.json"), serde_json::to_string(&output.unread)? + "\n")?;
    std::fs::write(args.out.join("links.json"), serde_json::to_string_pretty(&output.links)? + "\n")?;
    eprintln!(
        "raft appends unanswered within heartbeat_ms (cut links, or round trips above it): {} on {} nodes (links.json)",
        links::total_timeouts(&output.links),
        output.links.len()
    );
    let valid = report::check_and_write(&output.history, &args.out, Some(output.faults), &output.unread)?;
    // TRACEO_JEPSEN_KEEP=1 keeps the node logs and data of a valid run too.
    if valid && std::env::var_os("TRACEO_JEPSEN_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&output.cluster_dir);
    } else {
        eprintln!("node logs and data kept in {}", output.cluster_dir.display());
    }
    Ok(valid)
}

fn main() {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,traceo_jepsen=info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    let result = match cli.command {
        Command::Run(args) => {
            tokio::runtime::Runtime::new().map_err(anyhow::Error::from).and_then(|rt| rt.block_on(run(*args)))
        }
        Command::Check { dir } => jepsen::history::History::read_jsonl(&dir.join("history.jsonl"))
            .map_err(anyhow::Error::from)
            .and_then(|h| {
                let unread: Vec<String> = std::fs::read_to_string(dir.join("unread.json"))
                    .ok()
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or_default();
                report::check_and_write(&h, &dir, None, &unread)
            }),
    };
    match result {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
