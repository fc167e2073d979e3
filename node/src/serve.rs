//! `traceo node`: run one node until SIGTERM or Ctrl-C, then shut down gracefully.

use std::path::PathBuf;

use crate::config::NodeConfig;
use crate::Node;

/// Settings come from defaults, then `--config FILE` (TOML, same keys as the flags with `_`),
/// then `TRACEO_*` environment variables, then flags.
#[derive(clap::Args, Debug)]
pub struct NodeArgs {
    /// TOML configuration file.
    #[arg(long, env = "TRACEO_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (RocksDB and node identity) [default: traceo-data].
    #[arg(long, env = "TRACEO_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// gRPC listen address [default: 127.0.0.1:7400].
    #[arg(long, env = "TRACEO_LISTEN_ADDR")]
    pub listen_addr: Option<String>,
    /// Address others use to reach this node [default: the listen address].
    #[arg(long, env = "TRACEO_ADVERTISE_ADDR")]
    pub advertise_addr: Option<String>,
    /// Admin HTTP address for /metrics, /healthz, /readyz [default: 127.0.0.1:7401].
    #[arg(long, env = "TRACEO_ADMIN_ADDR")]
    pub admin_addr: Option<String>,
    /// Join the cluster of these nodes (comma-separated host:port) instead of founding one.
    #[arg(long, env = "TRACEO_JOIN", value_delimiter = ',')]
    pub join: Vec<String>,
    /// For fault-injection tests: reach peer PEER through VIA (a proxy), repeatable.
    #[arg(long, value_name = "PEER=VIA", value_parser = parse_dial_via)]
    pub dial_via: Vec<(String, String)>,
    /// Zone label; shard replicas are spread over zones.
    #[arg(long, env = "TRACEO_ZONE")]
    pub zone: Option<String>,
    /// Region label.
    #[arg(long, env = "TRACEO_REGION")]
    pub region: Option<String>,
    /// Relative capacity, 100 = a standard node; its share of replicas scales with it
    /// (registered when the node joins) [default: 100].
    #[arg(long, env = "TRACEO_CAPACITY")]
    pub capacity: Option<u32>,
    /// Shards of a new cluster, fixed at creation [default: 16].
    #[arg(long, env = "TRACEO_SHARDS")]
    pub shards: Option<u32>,
    /// Replicas per shard of a new cluster [default: 3].
    #[arg(long, env = "TRACEO_REPLICATION_FACTOR")]
    pub replication_factor: Option<u32>,
    /// RocksDB cache in MiB, memtables included [default: 256].
    #[arg(long, env = "TRACEO_CACHE_MB")]
    pub cache_mb: Option<usize>,
    /// RocksDB memtable budget in MiB [default: 128].
    #[arg(long, env = "TRACEO_MEMTABLE_MB")]
    pub memtable_mb: Option<usize>,
    /// Profiles cached decoded in memory, all shards together [default: 32768].
    #[arg(long, env = "TRACEO_PROFILE_CACHE_ENTRIES")]
    pub profile_cache_entries: Option<usize>,
    /// Raft heartbeat interval [default: 250]. Also every append's timeout (openraft 0.9): it must
    /// exceed the slowest round trip between replicas, or their shards stall (docs/JEPSEN.md);
    /// `traceo_raft_append_timeouts_total{peer}` on /metrics and a warning in the log show it.
    #[arg(long, env = "TRACEO_HEARTBEAT_MS")]
    pub heartbeat_ms: Option<u64>,
    /// Raft election timeout, lower bound [default: 1000].
    #[arg(long, env = "TRACEO_ELECTION_TIMEOUT_MIN_MS")]
    pub election_timeout_min_ms: Option<u64>,
    /// Raft election timeout, upper bound [default: 2000].
    #[arg(long, env = "TRACEO_ELECTION_TIMEOUT_MAX_MS")]
    pub election_timeout_max_ms: Option<u64>,
    /// Raft snapshot (and log purge) after this many applied entries per group [default: 20000].
    #[arg(long, env = "TRACEO_SNAPSHOT_AFTER_ENTRIES")]
    pub snapshot_after_entries: Option<u64>,
    /// Log entries kept behind a snapshot; replicas further behind get the snapshot [default: 2000].
    #[arg(long, env = "TRACEO_KEEP_ENTRIES_AFTER_SNAPSHOT")]
    pub keep_entries_after_snapshot: Option<u64>,
    /// Ingest proposals in flight before requests wait [default: 1024].
    #[arg(long, env = "TRACEO_MAX_INFLIGHT_PROPOSALS")]
    pub max_inflight_proposals: Option<usize>,
    /// Largest gRPC request a client may send, in MiB (1-256) [default: 16].
    #[arg(long, env = "TRACEO_MAX_REQUEST_MB")]
    pub max_request_mb: Option<usize>,
    /// Events per ingest request [default: 1000].
    #[arg(long, env = "TRACEO_MAX_BATCH_EVENTS")]
    pub max_batch_events: Option<usize>,
    /// Time a proposal may take before the answer is INDETERMINATE [default: 5000].
    #[arg(long, env = "TRACEO_REQUEST_TIMEOUT_MS")]
    pub request_timeout_ms: Option<u64>,
    /// Seconds a node may be unreachable before its replicas are rebuilt elsewhere [default: 60].
    #[arg(long, env = "TRACEO_DEAD_NODE_AFTER_SECS")]
    pub dead_node_after_secs: Option<u64>,
    /// Shards moving at once, cluster-wide, when this node leads the meta group [default: 3].
    #[arg(long, env = "TRACEO_MAX_CONCURRENT_MOVES")]
    pub max_concurrent_moves: Option<usize>,
    /// Snapshot MiB per second this node sends to new replicas, 0 = unlimited [default: 64].
    #[arg(long, env = "TRACEO_MOVE_RATE_MB")]
    pub move_rate_mb: Option<u64>,
    /// Score applied events (`false`: ingest answers carry no verdict; rules and thresholds are
    /// set in the config file's [scoring] section) [default: true].
    #[arg(long, env = "TRACEO_SCORING")]
    pub scoring: Option<bool>,
}

impl NodeArgs {
    pub fn to_config(&self) -> anyhow::Result<NodeConfig> {
        let mut c = match &self.config {
            Some(p) => NodeConfig::from_toml_file(p)?,
            None => NodeConfig::default(),
        };
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = &self.$field { c.$field = v.clone(); } )* };
        }
        set!(
            data_dir,
            listen_addr,
            admin_addr,
            zone,
            region,
            capacity,
            shards,
            replication_factor,
            cache_mb,
            memtable_mb,
            heartbeat_ms,
            election_timeout_min_ms,
            election_timeout_max_ms,
            snapshot_after_entries,
            keep_entries_after_snapshot,
            max_inflight_proposals,
            max_request_mb,
            max_batch_events,
            request_timeout_ms,
            dead_node_after_secs,
            max_concurrent_moves,
            move_rate_mb
        );
        if let Some(on) = self.scoring {
            c.scoring.enabled = on;
        }
        if self.advertise_addr.is_some() {
            c.advertise_addr = self.advertise_addr.clone();
        }
        if !self.join.is_empty() {
            c.join = self.join.clone();
        }
        c.dial_via.extend(self.dial_via.iter().cloned());
        c.validate()?;
        Ok(c)
    }
}

fn parse_dial_via(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(peer, via)| (peer.to_owned(), via.to_owned()))
        .ok_or_else(|| format!("{s:?} is not PEER=VIA"))
}

pub async fn run(args: NodeArgs) -> anyhow::Result<()> {
    let config = args.to_config()?;
    let node = Node::start(config).await?;
    tokio::select! {
        _ = wait_for_signal() => {}
        _ = node.removed() => {
            tracing::info!("this node was decommissioned and drained; shutting down");
            // Let the meta leader see the change committed here before the process goes.
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }
    node.shutdown().await
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        node: super::NodeArgs,
    }

    fn config(args: &[&str]) -> anyhow::Result<crate::NodeConfig> {
        let flags = Flags::try_parse_from(std::iter::once("traceo-node").chain(args.iter().copied()))?;
        flags.node.to_config()
    }

    #[test]
    fn flags_override_the_defaults_and_are_validated() {
        let c = config(&["--max-request-mb", "32", "--max-batch-events", "50"]).unwrap();
        assert_eq!((c.max_request_mb, c.max_batch_events), (32, 50));
        assert_eq!(config(&[]).unwrap().max_request_mb, 16);
        let err = config(&["--max-request-mb", "300"]).unwrap_err().to_string();
        assert!(err.contains("max_request_mb"), "{err}");
    }
}
