//! `traceo demo`: the first command a newcomer runs. Starts a local 3-node cluster (real node
//! processes, RF 3, fsync on) in a fresh directory, streams generated events through the client,
//! and prints a summary.

use std::path::PathBuf;
use std::time::Duration;

use indicatif::ProgressBar;

use crate::inspect::print_status;
use crate::load::{run_load, LoadOptions};
use testkit::{LocalCluster, LocalClusterOptions};

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Node processes to start.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Events to stream.
    #[arg(long, default_value_t = 30_000)]
    pub events: u64,
    /// Distinct users in the generated population.
    #[arg(long, default_value_t = 2_000)]
    pub users: usize,
    /// Concurrent client tasks.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Events per request.
    #[arg(long, default_value_t = 50)]
    pub batch: usize,
    /// Generator seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Directory for the cluster [default: a fresh temporary directory, removed afterwards].
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let tmp = tempfile::Builder::new().prefix("traceo-demo-").tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let binary = std::env::current_exe()?;
    let mut opts = LocalClusterOptions::new(args.nodes, &dir, binary);
    opts.replication_factor = opts.replication_factor.min(args.nodes as u32);
    println!(
        "Starting a local cluster: {} nodes, {} shards, RF {}, in {}",
        args.nodes,
        opts.shards,
        opts.replication_factor,
        dir.display()
    );
    let mut cluster = LocalCluster::start(opts)?;
    let spinner = ProgressBar::new_spinner();
    spinner.set_message("waiting for every shard to elect a leader…");
    spinner.enable_steady_tick(Duration::from_millis(100));
    let client = cluster.wait_ready(Duration::from_secs(60)).await;
    spinner.finish_and_clear();
    let client = client?;
    println!(
        "Cluster ready. Streaming {} events for {} users from {} clients ({} per request)…",
        args.events, args.users, args.clients, args.batch
    );

    let report = run_load(
        client.clone(),
        LoadOptions {
            clients: args.clients,
            batch: args.batch,
            duration: None,
            max_events: Some(args.events),
            users: args.users,
            seed: args.seed,
            progress: true,
            stop: None,
            phase: None,
        },
    )
    .await;

    println!();
    println!("Summary");
    println!(
        "  events applied   {:>10}   ({} failed, {} indeterminate)",
        report.events_ok, report.events_failed, report.events_indeterminate
    );
    println!("  throughput       {:>10.0} events/s over {:.1} s", report.events_per_s(), report.elapsed.as_secs_f64());
    println!(
        "  request latency  p50 {:.1} ms   p99 {:.1} ms   ({} requests of {} events)",
        report.latency_ms(0.50),
        report.latency_ms(0.99),
        report.requests,
        args.batch
    );
    println!("  users            {:>10}", report.users_written);
    println!(
        "  verdicts         {:>10}   ({} challenged, {} blocked)",
        report.verdicts, report.challenged, report.blocked
    );
    for e in &report.sample_errors {
        println!("  error sample     {e}");
    }
    println!();
    print_status(&client, false).await?;

    if let Some(user) = &report.busiest_user {
        if let Ok(Some(p)) = client.get_profile(user, false).await {
            let countries: Vec<&str> = p.countries.iter().map(|c| c.key.as_str()).collect();
            println!();
            println!(
                "Profile of {} (linearizable read): {} events, {} devices, countries {:?}, {} resources, last login from {}",
                p.user_id,
                p.events_applied,
                p.devices.len(),
                countries,
                p.resources.len(),
                p.last_login.as_ref().map_or("-", |l| l.country.as_str()),
            );
        }
    }
    cluster.terminate_all(Duration::from_secs(10));
    if args.dir.is_some() {
        println!("\nData kept in {}", dir.display());
    }
    anyhow::ensure!(report.events_ok > 0, "no event was applied: see the node logs in {}", dir.display());
    Ok(())
}
