//! [`MultiRaft`]: the Raft groups hosted on one node — the meta group, always, and one group per
//! local shard replica — sharing one engine, one log-sync thread and one connection pool.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use openraft::{Config, SnapshotPolicy};
use storage::keys::{GroupId, META_GROUP};
use storage::Engine;
use tokio::sync::watch;

use crate::flusher::{FlushStats, Flusher};
use crate::log_store::LogStore;
use crate::meta::MetaState;
use crate::net_faults::NetFaults;
use crate::network::{ChannelPool, PeerNetworkFactory};
use crate::state_machine::{SharedSources, StateMachine};
use crate::types::{NodeId, Raft};
use scoring::features::SourceWindow;

/// Raft timing and log-compaction settings, shared by every group on the node.
#[derive(Clone, Debug)]
pub struct RaftOptions {
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Build a snapshot (and allow purging the log) after this many applied entries.
    pub snapshot_after_entries: u64,
    /// Entries kept in the log behind the last snapshot, so lagging followers need no snapshot.
    pub keep_entries_after_snapshot: u64,
    /// Profiles cached in memory by the shard state machines of this node, all shards together.
    pub profile_cache_entries: usize,
    /// Source addresses remembered by the node's window of failed logins (spray / stuffing).
    pub source_window_addresses: usize,
    /// Injected faults on this node's outgoing peer messages (in-process tests only).
    pub net_faults: Option<Arc<NetFaults>>,
    /// Peer addresses dialled through another address (a fault-injecting proxy in tests):
    /// `peer address -> address to dial instead`. Empty in production.
    pub dial_via: HashMap<String, String>,
}

/// Failed logins per source address are counted over the last hour of event time.
pub const SOURCE_WINDOW_MS: i64 = 3_600_000;

impl Default for RaftOptions {
    fn default() -> Self {
        RaftOptions {
            heartbeat_ms: 250,
            election_timeout_min_ms: 1000,
            election_timeout_max_ms: 2000,
            snapshot_after_entries: 20_000,
            keep_entries_after_snapshot: 2_000,
            profile_cache_entries: 32_768,
            source_window_addresses: 100_000,
            net_faults: None,
            dial_via: HashMap::new(),
        }
    }
}

impl RaftOptions {
    fn openraft_config(&self) -> Result<Config, openraft::ConfigError> {
        Config {
            cluster_name: "traceo".into(),
            heartbeat_interval: self.heartbeat_ms,
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_after_entries),
            max_in_snapshot_log_to_keep: self.keep_entries_after_snapshot,
            // An entry carries up to 2,000 events (~0.5 MiB); an append must finish within the
            // heartbeat interval, so a lagging or new replica is fed in batches of a few MiB.
            max_payload_entries: 16,
            // Snapshot chunks to a new replica may wait for the move rate limit.
            install_snapshot_timeout: 10_000,
            snapshot_max_chunk_size: 1 << 20,
            ..Default::default()
        }
        .validate()
    }
}

/// One hosted group.
#[derive(Clone)]
pub struct GroupHandle {
    pub group: GroupId,
    pub raft: Raft,
}

pub struct MultiRaft {
    node_id: NodeId,
    engine: Arc<Engine>,
    flusher: Flusher,
    pool: ChannelPool,
    config: Arc<Config>,
    profile_cache_entries: usize,
    sources: SharedSources,
    groups: RwLock<HashMap<GroupId, GroupHandle>>,
    meta_rx: watch::Receiver<Arc<MetaState>>,
    /// Serializes group creation so two callers never build the same group twice.
    create: tokio::sync::Mutex<()>,
}

impl MultiRaft {
    /// Starts the node's meta group replica (initialized or not) and the log-sync thread.
    pub async fn start(node_id: NodeId, engine: Arc<Engine>, opts: &RaftOptions) -> anyhow::Result<Arc<MultiRaft>> {
        let config = Arc::new(opts.openraft_config()?);
        let flusher = Flusher::start(engine.clone());
        let pool = ChannelPool::with_faults(node_id, opts.net_faults.clone()).dialling_via(opts.dial_via.clone());
        let (sm, meta_rx) = StateMachine::meta(engine.clone(), META_GROUP)?;
        let log = LogStore::new(engine.clone(), META_GROUP, flusher.clone());
        let net = PeerNetworkFactory { group: META_GROUP, pool: pool.clone() };
        let raft = Raft::new(node_id, config.clone(), net, log, sm).await?;
        let mut groups = HashMap::new();
        groups.insert(META_GROUP, GroupHandle { group: META_GROUP, raft });
        Ok(Arc::new(MultiRaft {
            node_id,
            engine,
            flusher,
            pool,
            config,
            profile_cache_entries: opts.profile_cache_entries,
            sources: Arc::new(std::sync::Mutex::new(SourceWindow::new(SOURCE_WINDOW_MS, opts.source_window_addresses))),
            groups: RwLock::new(groups),
            meta_rx,
            create: tokio::sync::Mutex::new(()),
        }))
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The node's window of failed logins per source address (scoring context).
    pub fn sources(&self) -> &SharedSources {
        &self.sources
    }

    pub fn pool(&self) -> &ChannelPool {
        &self.pool
    }

    pub fn flush_stats(&self) -> &FlushStats {
        self.flusher.stats()
    }

    /// The meta state as last applied on this node; changes are signalled on the receiver.
    pub fn meta(&self) -> watch::Receiver<Arc<MetaState>> {
        self.meta_rx.clone()
    }

    pub fn meta_raft(&self) -> Raft {
        self.group(META_GROUP).expect("the meta group is created at start").raft
    }

    pub fn group(&self, group: GroupId) -> Option<GroupHandle> {
        self.groups.read().expect("groups lock").get(&group).cloned()
    }

    /// Every hosted shard group (not the meta group), by shard id.
    pub fn shards(&self) -> Vec<GroupHandle> {
        let mut v: Vec<_> =
            self.groups.read().expect("groups lock").values().filter(|g| g.group != META_GROUP).cloned().collect();
        v.sort_by_key(|g| g.group);
        v
    }

    /// Returns the local replica of `shard`, starting it (from its durable state) if needed.
    pub async fn ensure_shard(&self, shard: GroupId) -> anyhow::Result<GroupHandle> {
        if let Some(g) = self.group(shard) {
            return Ok(g);
        }
        let _guard = self.create.lock().await;
        if let Some(g) = self.group(shard) {
            return Ok(g);
        }
        // The cache budget is split evenly over the cluster's shards (a node hosts at most all).
        let shards = self.meta_rx.borrow().shards().max(1) as usize;
        let sm =
            StateMachine::shard(self.engine.clone(), shard, self.profile_cache_entries / shards, self.sources.clone());
        let log = LogStore::new(self.engine.clone(), shard, self.flusher.clone());
        let net = PeerNetworkFactory { group: shard, pool: self.pool.clone() };
        let raft = Raft::new(self.node_id, self.config.clone(), net, log, sm).await?;
        let handle = GroupHandle { group: shard, raft };
        self.groups.write().expect("groups lock").insert(shard, handle.clone());
        tracing::info!(shard, "started shard replica");
        Ok(handle)
    }

    /// Stops the local replica of `shard` (if running) and deletes every byte it stored: log,
    /// Raft state, profiles, dedupe keys, state-machine metadata and snapshot. Only for a replica
    /// the group has committed a membership without (the caller checks the meta group's record).
    pub async fn remove_shard(&self, shard: GroupId) -> anyhow::Result<()> {
        anyhow::ensure!(shard != META_GROUP, "the meta group replica is never removed this way");
        let _guard = self.create.lock().await;
        let handle = self.groups.write().expect("groups lock").remove(&shard);
        if let Some(g) = handle {
            if let Err(e) = g.raft.shutdown().await {
                tracing::warn!(shard, "raft shutdown: {e}");
            }
        }
        let (start, end) = storage::keys::group_range(shard);
        let mut batch = storage::Batch::new();
        for cf in storage::Cf::ALL.into_iter().filter(|cf| *cf != storage::Cf::Node) {
            batch.delete_range(cf, start.clone(), end.clone());
        }
        self.engine.write(batch, true)?;
        tracing::info!(shard, "removed shard replica and its data");
        Ok(())
    }

    /// Shard groups that have Raft state on this node's disk (running or not).
    pub fn shards_on_disk(&self) -> anyhow::Result<Vec<GroupId>> {
        let mut found = Vec::new();
        let mut from = 0u32;
        loop {
            let (start, _) = storage::keys::group_range(from);
            let (_, end) = storage::keys::group_range(META_GROUP - 1);
            let Some((key, _)) = self.engine.scan(storage::Cf::RaftState, &start, &end, 1)?.into_iter().next() else {
                break;
            };
            let Some(group) = storage::keys::key_group(&key) else { break };
            found.push(group);
            match group.checked_add(1) {
                Some(next) if next < META_GROUP => from = next,
                _ => break,
            }
        }
        Ok(found)
    }

    /// Stops every group (in-flight proposals fail; durable state stays for the next start).
    pub async fn shutdown(&self) {
        let all: Vec<GroupHandle> = self.groups.read().expect("groups lock").values().cloned().collect();
        for g in all {
            if let Err(e) = g.raft.shutdown().await {
                tracing::warn!(group = g.group, "raft shutdown: {e}");
            }
        }
    }
}
