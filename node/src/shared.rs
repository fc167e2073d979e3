//! State shared by a node's services and background tasks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use raft::{GroupHandle, MultiRaft, NodeId, NodeInfo};
use tokio::sync::Semaphore;

use crate::config::NodeConfig;
use crate::metrics::Metrics;
use crate::proposer::Proposer;

pub struct Shared {
    pub multi: Arc<MultiRaft>,
    pub config: NodeConfig,
    pub info: NodeInfo,
    pub metrics: Metrics,
    pub limits: client::Limits,
    /// Bounds ingest proposals in flight on this node.
    pub inflight: Arc<Semaphore>,
    /// Entry batching per local shard group, started on first use.
    pub proposers: Mutex<HashMap<u32, Proposer>>,
    /// Models, rules and policy; verdicts for applied and scored events.
    pub scoring: Arc<crate::scoring_service::ScoringService>,
    /// The placement driver's remaining plan by meta epoch, cached for
    /// [`crate::control::remaining_plan`].
    pub plan: Mutex<Option<(u64, Arc<Vec<client::proto::ShardMove>>)>>,
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Shared {
    /// The entry batcher of a local shard group.
    pub fn proposer(&self, group: &GroupHandle) -> Proposer {
        let mut map = self.proposers.lock().expect("proposers lock");
        map.entry(group.group)
            .or_insert_with(|| Proposer::spawn(group.group, group.raft.clone(), self.scoring.clone()))
            .clone()
    }

    /// Address of node `id` as known to `group`'s membership, or else to the meta state.
    pub fn node_info(&self, group: &GroupHandle, id: NodeId) -> Option<NodeInfo> {
        let m = group.raft.metrics().borrow().membership_config.clone();
        if let Some(n) = m.membership().get_node(&id) {
            return Some(n.clone());
        }
        self.multi.meta().borrow().nodes.get(&id).cloned()
    }

    /// For a shard this node does not host: the placement's preferred leader, as a hint.
    pub fn placement_leader_hint(&self, shard: u32) -> Option<(NodeId, NodeInfo)> {
        let meta = self.multi.meta().borrow().clone();
        let first = *meta.replicas(shard).first()?;
        meta.nodes.get(&first).map(|n| (first, n.clone()))
    }
}
