//! `traceo cluster decommission NODE` and `traceo cluster rebalance --dry-run`.

use std::time::{Duration, Instant};

use client::proto::ShardMove;
use client::{Client, ClientOptions};
use indicatif::{ProgressBar, ProgressStyle};

use crate::SeedArgs;

#[derive(clap::Args, Debug)]
pub struct DecommissionArgs {
    /// Id of the node to drain and remove (see `traceo cluster status`).
    pub node_id: u64,
    #[command(flatten)]
    pub seeds: SeedArgs,
    /// Return once draining has started instead of waiting until the node is removed.
    #[arg(long)]
    pub no_wait: bool,
    /// Give up waiting after this long (the drain goes on).
    #[arg(long, default_value = "30m", value_parser = crate::parse_duration)]
    pub timeout: Duration,
}

#[derive(clap::Args, Debug)]
pub struct RebalanceArgs {
    #[command(flatten)]
    pub seeds: SeedArgs,
    /// Print the plan without changing anything. The placement driver carries the plan out on
    /// its own, a few shards at a time (`max_concurrent_moves`), so this is the only mode.
    #[arg(long, required = true)]
    pub dry_run: bool,
}

fn ids(v: &[u64]) -> String {
    v.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

fn print_moves(title: &str, moves: &[ShardMove]) {
    println!("{title}: {}", moves.len());
    for m in moves {
        let added: Vec<u64> = m.to.iter().copied().filter(|n| !m.from.contains(n)).collect();
        let removed: Vec<u64> = m.from.iter().copied().filter(|n| !m.to.contains(n)).collect();
        let what = if added.is_empty() && removed.is_empty() {
            format!("leader -> {}", m.to.first().copied().unwrap_or(0))
        } else {
            format!("+[{}] -[{}]", ids(&added), ids(&removed))
        };
        println!("  shard {:<5} [{}] -> [{}]  {}", m.shard, ids(&m.from), ids(&m.to), what);
    }
}

pub async fn rebalance(args: RebalanceArgs) -> anyhow::Result<()> {
    let client = Client::connect(args.seeds.seeds, ClientOptions::default()).await?;
    let plan = client.rebalance_plan().await?;
    println!("placement epoch {}", plan.epoch);
    print_moves("moving now (voters -> target)", &plan.moving);
    print_moves("planned (target -> desired)", &plan.planned);
    Ok(())
}

pub async fn decommission(args: DecommissionArgs) -> anyhow::Result<()> {
    let client = Client::connect(args.seeds.seeds, ClientOptions::default()).await?;
    let state = client.decommission(args.node_id).await?;
    println!("node {}: {state}", args.node_id);
    if args.no_wait || state == "removed" {
        return Ok(());
    }
    let started = Instant::now();
    let status = client.cluster_status().await?;
    let total = status.nodes.iter().find(|n| n.id == args.node_id).map_or(0, |n| n.replicas).max(1);
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} draining node {msg} [{bar:30}] {pos}/{len} replicas moved, {elapsed} (about {eta} left)",
        )
        .expect("static template"),
    );
    bar.set_message(args.node_id.to_string());
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        anyhow::ensure!(
            started.elapsed() < args.timeout,
            "node {} is still draining after {:?}; it goes on in the background",
            args.node_id,
            args.timeout
        );
        let Ok(s) = client.cluster_status().await else { continue };
        let Some(n) = s.nodes.iter().find(|n| n.id == args.node_id) else { continue };
        let left = s.shard_status.iter().filter(|x| x.replicas.contains(&n.id) || x.voters.contains(&n.id)).count();
        bar.set_position(total.saturating_sub(left as u32) as u64);
        if n.state == "removed" {
            bar.finish_and_clear();
            println!("node {} removed after {:.1?}; its process exits on its own", args.node_id, started.elapsed());
            return Ok(());
        }
    }
}
