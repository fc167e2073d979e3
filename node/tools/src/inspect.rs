//! `traceo profile USER` and `traceo cluster status`.

use client::{Client, ClientOptions};

use crate::SeedArgs;

#[derive(clap::Args, Debug)]
pub struct ProfileArgs {
    pub user_id: String,
    #[command(flatten)]
    pub seeds: SeedArgs,
    /// Serve from any replica without a read index (may be stale).
    #[arg(long)]
    pub stale_ok: bool,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub seeds: SeedArgs,
    /// Print every node's raw answer as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn profile(args: ProfileArgs) -> anyhow::Result<()> {
    let client = Client::connect(args.seeds.seeds, ClientOptions::default()).await?;
    match client.get_profile(&args.user_id, args.stale_ok).await? {
        Some(p) => println!("{}", serde_json::to_string_pretty(&p)?),
        None => anyhow::bail!("no profile for user {:?}", args.user_id),
    }
    Ok(())
}

pub async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let client = Client::connect(args.seeds.seeds, ClientOptions::default()).await?;
    print_status(&client, args.json).await
}

/// Links with an append unanswered within this long ago are shown.
const RECENT_LINK_TIMEOUT_MS: u64 = 60_000;

/// Raft links (from the answering nodes) on which appends recently went unanswered within
/// heartbeat_ms: the peer is unreachable or its round trip is longer, and replication stalls.
fn print_slow_links(ok: &[&client::proto::ClusterStatusResponse]) {
    let slow: Vec<_> = ok
        .iter()
        .flat_map(|s| s.links.iter().map(move |l| (s.node_id, l)))
        .filter(|(_, l)| l.timeouts > 0 && l.ms_since_last_timeout < RECENT_LINK_TIMEOUT_MS)
        .collect();
    if slow.is_empty() {
        println!("raft links: every append answered within heartbeat_ms in the last 60 s");
        return;
    }
    println!(
        "raft links with appends unanswered within heartbeat_ms in the last 60 s (peer unreachable, or its round \
         trip is longer: replication to it stalls; raise heartbeat_ms above the slowest round trip)"
    );
    for (from, l) in slow {
        println!(
            "  {from} -> {}: {} unanswered since start, the last {:.1} s ago; {} answered, round trip {:.1} ms",
            l.peer,
            l.timeouts,
            l.ms_since_last_timeout as f64 / 1e3,
            l.answered,
            l.round_trip_ms
        );
    }
}

/// Nodes, then one line per shard: replicas, leader, term, and each follower's lag.
pub async fn print_status(client: &Client, as_json: bool) -> anyhow::Result<()> {
    let answers = client.cluster_status_all().await;
    if as_json {
        let all: Vec<_> = answers
            .iter()
            .map(|(a, r)| match r {
                Ok(s) => serde_json::json!({ "addr": a, "status": s }),
                Err(e) => serde_json::json!({ "addr": a, "error": e.message() }),
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    let ok: Vec<_> = answers.iter().filter_map(|(_, r)| r.as_ref().ok()).collect();
    let Some(view) = ok.iter().max_by_key(|s| s.epoch) else {
        anyhow::bail!("no node answered");
    };
    println!(
        "cluster {}  epoch {}  shards {}  RF {}",
        view.cluster_id, view.epoch, view.shards, view.replication_factor
    );
    println!(
        "{:<5} {:<22} {:<10} {:<5} {:<9} {:>4} {:>7} {:>7}",
        "node", "address", "zone", "up", "state", "cap", "shards", "leads"
    );
    for n in &view.nodes {
        let up = answers.iter().any(|(a, r)| a == &n.addr && r.is_ok());
        let hosted = view.shard_status.iter().filter(|s| s.replicas.contains(&n.id)).count();
        let leads = ok
            .iter()
            .flat_map(|s| s.shard_status.iter())
            .filter(|s| s.hosted && s.role == "leader" && s.leader_id == n.id)
            .count();
        println!(
            "{:<5} {:<22} {:<10} {:<5} {:<9} {:>4} {:>7} {:>7}",
            n.id,
            n.addr,
            n.zone,
            if up { "up" } else { "DOWN" },
            n.state,
            if n.capacity == 0 { 100 } else { n.capacity },
            hosted,
            leads
        );
    }
    let bytes: u64 = ok.iter().map(|s| s.snapshot_bytes_sent).sum();
    println!(
        "moves: {} in flight, {} planned; {:.1} MiB sent as snapshots since the nodes started",
        view.moving.len(),
        view.moves_planned,
        bytes as f64 / (1 << 20) as f64
    );
    for m in &view.moving {
        let ids = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        println!("  shard {:<5} voters [{}] -> target [{}]", m.shard, ids(&m.from), ids(&m.to));
    }
    print_slow_links(&ok);
    println!(
        "{:<6} {:<12} {:<7} {:>6} {:>10}  lag (entries behind the leader)",
        "shard", "replicas", "leader", "term", "last log"
    );
    for s in &view.shard_status {
        let leader_view = ok
            .iter()
            .flat_map(|a| a.shard_status.iter())
            .filter(|x| x.shard == s.shard && x.hosted && x.role == "leader")
            .max_by_key(|x| x.term);
        let replicas = s.replicas.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(",");
        match leader_view {
            Some(l) => {
                let lag = l
                    .followers
                    .iter()
                    .map(|f| format!("{}:{}", f.node_id, l.last_log_index.saturating_sub(f.matched_index)))
                    .collect::<Vec<_>>()
                    .join(" ");
                println!(
                    "{:<6} {:<12} {:<7} {:>6} {:>10}  {}",
                    s.shard, replicas, l.leader_id, l.term, l.last_log_index, lag
                );
            }
            None => println!("{:<6} {:<12} {:<7} {:>6} {:>10}  no leader seen", s.shard, replicas, "-", "-", "-"),
        }
    }
    Ok(())
}
