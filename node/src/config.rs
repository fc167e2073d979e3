//! Node configuration: defaults, then a TOML file, then `TRACEO_*` environment variables, then
//! command-line flags (the last one wins). [`NodeConfig::validate`] names the offending setting.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Everything a node needs to start. Field names are the TOML keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Directory of the node's RocksDB and node identity. Created if missing.
    pub data_dir: PathBuf,
    /// gRPC listen address (client API and Raft peer RPC).
    pub listen_addr: String,
    /// Address other nodes and clients use to reach this node; defaults to `listen_addr`.
    pub advertise_addr: Option<String>,
    /// Admin HTTP listen address: `/metrics`, `/healthz`, `/readyz`.
    pub admin_addr: String,
    /// Addresses of existing nodes to join. Empty: this node founds a new cluster.
    pub join: Vec<String>,
    /// For fault-injection tests: dial these peer addresses (keys) through other addresses
    /// (values, a fault-injecting proxy). Empty in production.
    pub dial_via: BTreeMap<String, String>,
    pub zone: String,
    pub region: String,
    /// Relative capacity (100 = a standard node): the node's share of replicas scales with it.
    pub capacity: u32,
    /// Shards of a new cluster (fixed at creation; ignored when joining).
    pub shards: u32,
    /// Replicas per shard of a new cluster (fixed at creation; ignored when joining).
    pub replication_factor: u32,
    /// RocksDB block cache (memtables are charged to it too), MiB.
    pub cache_mb: usize,
    /// RocksDB memtable budget across column families, MiB (part of `cache_mb`).
    pub memtable_mb: usize,
    /// Profiles kept decoded in memory by the shard state machines (all shards; ~5 KiB each).
    pub profile_cache_entries: usize,
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Raft snapshot (and log purge) after this many applied entries per group.
    pub snapshot_after_entries: u64,
    /// Entries kept in the log behind a snapshot: a follower or new replica further behind is
    /// sent the snapshot instead.
    pub keep_entries_after_snapshot: u64,
    /// Ingest proposals in flight on this node; more wait (back pressure).
    pub max_inflight_proposals: usize,
    /// Events per ingest request.
    pub max_batch_events: usize,
    /// Largest gRPC request accepted, MiB.
    pub max_request_mb: usize,
    /// How long the node waits for a proposal to commit before answering INDETERMINATE.
    pub request_timeout_ms: u64,
    /// A node unreachable this long is declared dead and its replicas are rebuilt elsewhere
    /// (acted on by the meta leader).
    pub dead_node_after_secs: u64,
    /// Shards moving at once, cluster-wide (acted on by the meta leader).
    pub max_concurrent_moves: usize,
    /// Snapshot bytes this node sends per second to new replicas, MiB (0: unlimited).
    pub move_rate_mb: u64,
    /// The `[scoring]` section.
    pub scoring: ScoringConfig,
}

/// `[scoring]`: verdicts, rules and the action policy (`[scoring.rules]`, `[scoring.policy]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoringConfig {
    /// Score every applied event (the verdict in each ingest answer). Off: ingest answers carry no
    /// verdict and no models are loaded; `Score` still answers, with the rules alone.
    pub enabled: bool,
    /// Until a model version is deployed to the cluster, score with the models built into the
    /// binary. Off: rules only until a deployment.
    pub builtin_models: bool,
    /// Model batches computed at once on the blocking pool (0: one per core).
    pub workers: usize,
    pub rules: scoring::detectors::RuleConfig,
    pub policy: scoring::scorer::Policy,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        ScoringConfig {
            enabled: true,
            builtin_models: true,
            workers: 0,
            rules: Default::default(),
            policy: Default::default(),
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            data_dir: PathBuf::from("traceo-data"),
            listen_addr: "127.0.0.1:7400".into(),
            advertise_addr: None,
            admin_addr: "127.0.0.1:7401".into(),
            join: Vec::new(),
            dial_via: BTreeMap::new(),
            zone: "zone-a".into(),
            region: "local".into(),
            capacity: 100,
            shards: 16,
            replication_factor: 3,
            cache_mb: 256,
            memtable_mb: 128,
            profile_cache_entries: 32_768,
            heartbeat_ms: 250,
            election_timeout_min_ms: 1000,
            election_timeout_max_ms: 2000,
            snapshot_after_entries: 20_000,
            keep_entries_after_snapshot: 2_000,
            max_inflight_proposals: 1024,
            max_batch_events: 1000,
            max_request_mb: 16,
            request_timeout_ms: 5000,
            dead_node_after_secs: 60,
            max_concurrent_moves: 3,
            move_rate_mb: 64,
            scoring: ScoringConfig::default(),
        }
    }
}

/// A setting that is missing, malformed or inconsistent.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: `{setting}`: {reason}")]
pub struct ConfigError {
    pub setting: String,
    pub reason: String,
}

fn bad(setting: &str, reason: impl Into<String>) -> Result<(), ConfigError> {
    Err(ConfigError { setting: setting.into(), reason: reason.into() })
}

impl NodeConfig {
    /// Reads a TOML file over the defaults; unknown keys are errors.
    pub fn from_toml_file(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            setting: "config".into(),
            reason: format!("reading {}: {e}", path.display()),
        })?;
        toml::from_str(&text)
            .map_err(|e| ConfigError { setting: "config".into(), reason: format!("{}: {e}", path.display()) })
    }

    pub fn advertise(&self) -> &str {
        self.advertise_addr.as_deref().unwrap_or(&self.listen_addr)
    }

    /// Checks every setting; the first problem found is returned with the setting's name.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return bad("data_dir", "must not be empty");
        }
        for (name, value) in [("listen_addr", &self.listen_addr), ("admin_addr", &self.admin_addr)] {
            if value.parse::<SocketAddr>().is_err() {
                return bad(name, format!("{value:?} is not an IP:port address"));
            }
        }
        if let Some(a) = &self.advertise_addr {
            if !a.contains(':') || a.ends_with(':') {
                return bad("advertise_addr", format!("{a:?} is not host:port"));
            }
        }
        if self.listen_addr == self.admin_addr {
            return bad("admin_addr", "must differ from listen_addr");
        }
        for j in &self.join {
            if !j.contains(':') || j.ends_with(':') {
                return bad("join", format!("{j:?} is not host:port"));
            }
        }
        for (peer, via) in &self.dial_via {
            if peer.parse::<SocketAddr>().is_err() || via.parse::<SocketAddr>().is_err() {
                return bad("dial_via", format!("{peer:?} = {via:?}: both must be IP:port addresses"));
            }
        }
        for (name, value) in [("zone", &self.zone), ("region", &self.region)] {
            if value.is_empty() || value.len() > 64 || value.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return bad(name, "must be 1-64 characters without spaces");
            }
        }
        if !(1..=10_000).contains(&self.capacity) {
            return bad("capacity", "must be within 1..=10000 (100 = a standard node)");
        }
        if !(1..=4096).contains(&self.shards) {
            return bad("shards", format!("{} is outside 1..=4096", self.shards));
        }
        if !(1..=7).contains(&self.replication_factor) {
            return bad("replication_factor", format!("{} is outside 1..=7", self.replication_factor));
        }
        if self.cache_mb < 16 {
            return bad("cache_mb", "must be at least 16");
        }
        if self.memtable_mb < 8 || self.memtable_mb >= self.cache_mb {
            return bad("memtable_mb", format!("must be at least 8 and below cache_mb ({})", self.cache_mb));
        }
        if self.profile_cache_entries > 1_000_000 {
            return bad("profile_cache_entries", "must be at most 1000000 (about 5 GiB)");
        }
        if self.heartbeat_ms == 0 {
            return bad("heartbeat_ms", "must be positive");
        }
        if self.election_timeout_min_ms < 3 * self.heartbeat_ms {
            return bad("election_timeout_min_ms", "must be at least 3 × heartbeat_ms");
        }
        if self.election_timeout_max_ms <= self.election_timeout_min_ms {
            return bad("election_timeout_max_ms", "must exceed election_timeout_min_ms");
        }
        if self.snapshot_after_entries < 100 {
            return bad("snapshot_after_entries", "must be at least 100");
        }
        if self.max_inflight_proposals == 0 {
            return bad("max_inflight_proposals", "must be positive");
        }
        if !(1..=10_000).contains(&self.max_batch_events) {
            return bad("max_batch_events", "must be within 1..=10000");
        }
        if !(1..=256).contains(&self.max_request_mb) {
            return bad("max_request_mb", "must be within 1..=256");
        }
        if self.request_timeout_ms < 100 {
            return bad("request_timeout_ms", "must be at least 100");
        }
        if !(2..=86_400).contains(&self.dead_node_after_secs) {
            return bad("dead_node_after_secs", "must be within 2..=86400");
        }
        if !(1..=64).contains(&self.max_concurrent_moves) {
            return bad("max_concurrent_moves", "must be within 1..=64");
        }
        if self.scoring.workers > 256 {
            return bad("scoring.workers", "must be at most 256");
        }
        if let Err(e) = self.scoring.rules.validate() {
            return bad("scoring.rules", e);
        }
        if let Err(e) = self.scoring.policy.validate() {
            return bad("scoring.policy", e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        NodeConfig::default().validate().unwrap();
    }

    #[test]
    fn errors_name_the_setting() {
        let setting = |c: NodeConfig| c.validate().unwrap_err().setting;
        assert_eq!(setting(NodeConfig { listen_addr: "nope".into(), ..Default::default() }), "listen_addr");
        assert_eq!(setting(NodeConfig { shards: 0, ..Default::default() }), "shards");
        assert_eq!(setting(NodeConfig { replication_factor: 9, ..Default::default() }), "replication_factor");
        assert_eq!(
            setting(NodeConfig { election_timeout_min_ms: 100, ..Default::default() }),
            "election_timeout_min_ms"
        );
        assert_eq!(setting(NodeConfig { join: vec!["host".into()], ..Default::default() }), "join");
        let via = BTreeMap::from([("127.0.0.1:7400".to_string(), "proxy".to_string())]);
        assert_eq!(setting(NodeConfig { dial_via: via, ..Default::default() }), "dial_via");
        assert_eq!(setting(NodeConfig { zone: "a b".into(), ..Default::default() }), "zone");
        assert_eq!(setting(NodeConfig { memtable_mb: 512, ..Default::default() }), "memtable_mb");
        assert_eq!(setting(NodeConfig { dead_node_after_secs: 1, ..Default::default() }), "dead_node_after_secs");
        assert_eq!(setting(NodeConfig { max_concurrent_moves: 0, ..Default::default() }), "max_concurrent_moves");
    }

    #[test]
    fn toml_overrides_defaults_and_rejects_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("n.toml");
        std::fs::write(&p, "shards = 8\nzone = \"z1\"\n").unwrap();
        let c = NodeConfig::from_toml_file(&p).unwrap();
        assert_eq!((c.shards, c.zone.as_str(), c.replication_factor), (8, "z1", 3));
        std::fs::write(&p, "shardz = 8\n").unwrap();
        let e = NodeConfig::from_toml_file(&p).unwrap_err();
        assert!(e.reason.contains("shardz"), "{e}");
    }

    #[test]
    fn scoring_section_sets_rules_and_policy_and_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("n.toml");
        let text = "[scoring]\nenabled = false\n[scoring.rules]\nimpossible_travel_kmh = 900.0\n\
                    [scoring.policy]\nblock_at = 90\n";
        std::fs::write(&p, text).unwrap();
        let c = NodeConfig::from_toml_file(&p).unwrap();
        assert!(!c.scoring.enabled);
        assert_eq!(c.scoring.rules.impossible_travel_kmh, 900.0);
        assert_eq!(c.scoring.policy.block_at, 90);
        assert_eq!(c.scoring.policy.challenge_at, scoring::scorer::Policy::default().challenge_at);
        c.validate().unwrap();
        std::fs::write(&p, "[scoring.rules]\nimpossible_travel_kph = 900.0\n").unwrap();
        assert!(NodeConfig::from_toml_file(&p).unwrap_err().reason.contains("impossible_travel_kph"));
        let mut c = NodeConfig::default();
        c.scoring.policy.challenge_at = 95;
        let e = c.validate().unwrap_err();
        assert_eq!(e.setting, "scoring.policy");
        assert!(e.reason.contains("challenge_at"), "{e}");
        let mut c = NodeConfig::default();
        c.scoring.rules.volume_spike_z = 0.0;
        assert!(c.validate().unwrap_err().reason.contains("volume_spike_z"));
    }
}
