//! The meta group's state: cluster identity, nodes, the placement in force (with its epoch) and
//! the scoring models deployed.
//! Every node holds a replica (voter or learner), so every node can route and place.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::command::{CommandResult, MetaCommand};
use crate::model_registry::ModelRegistry;
use crate::types::{NodeId, NodeInfo};

/// Fixed at cluster creation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterConfig {
    pub cluster_id: String,
    pub shards: u32,
    pub replication_factor: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetaState {
    pub cluster: Option<ClusterConfig>,
    pub nodes: BTreeMap<NodeId, NodeInfo>,
    /// Bumped by every placement change; clients and nodes compare epochs to detect stale routing.
    pub epoch: u64,
    /// `placement[shard]` = replica node ids, preferred leader first. Empty until first placed.
    pub placement: Vec<Vec<NodeId>>,
    /// The scoring models every node runs.
    pub models: ModelRegistry,
}

impl MetaState {
    /// Applies one command deterministically (every meta replica runs this).
    pub fn apply(&mut self, cmd: &MetaCommand) -> CommandResult {
        match cmd {
            MetaCommand::InitCluster { cluster_id, shards, replication_factor } => {
                if let Some(c) = &self.cluster {
                    return CommandResult::Rejected(format!("cluster {} already initialized", c.cluster_id));
                }
                self.cluster = Some(ClusterConfig {
                    cluster_id: cluster_id.clone(),
                    shards: *shards,
                    replication_factor: *replication_factor,
                });
                CommandResult::PlacementSet { epoch: self.epoch }
            }
            MetaCommand::AddNode { id, info } => {
                // A node that retries its join (same address) keeps its id.
                if let Some((existing, _)) = self.nodes.iter().find(|(_, n)| n.addr == info.addr) {
                    let existing = *existing;
                    self.nodes.insert(existing, info.clone());
                    return CommandResult::NodeAdded { id: existing };
                }
                let id = match id {
                    Some(wanted) if self.nodes.contains_key(wanted) => {
                        return CommandResult::Rejected(format!("node id {wanted} belongs to another address"));
                    }
                    Some(wanted) => *wanted,
                    // Id 1 is the founder's, even if a joiner's request is applied first.
                    None => self.nodes.keys().next_back().map_or(1, |last| *last).max(1) + 1,
                };
                self.nodes.insert(id, info.clone());
                CommandResult::NodeAdded { id }
            }
            MetaCommand::SetPlacement { expected_epoch, replicas } => {
                if *expected_epoch != self.epoch {
                    return CommandResult::Rejected(format!("placement epoch is {}, not {expected_epoch}", self.epoch));
                }
                if let Some(unknown) = replicas.iter().flatten().find(|id| !self.nodes.contains_key(id)) {
                    return CommandResult::Rejected(format!("placement names unknown node {unknown}"));
                }
                self.placement = replicas.clone();
                self.epoch += 1;
                CommandResult::PlacementSet { epoch: self.epoch }
            }
            MetaCommand::Models(cmd) => match self.models.apply(cmd) {
                Ok(_) => {
                    CommandResult::ModelsSet { live: self.models.live.clone(), shadow: self.models.shadow.clone() }
                }
                Err(why) => CommandResult::Rejected(why),
            },
        }
    }

    pub fn shards(&self) -> u32 {
        self.cluster.as_ref().map_or(0, |c| c.shards)
    }

    pub fn replicas(&self, shard: u32) -> &[NodeId] {
        self.placement.get(shard as usize).map_or(&[], |r| r.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(addr: &str) -> NodeInfo {
        NodeInfo { addr: addr.into(), ..Default::default() }
    }

    #[test]
    fn node_ids_are_allocated_once_per_address() {
        let mut m = MetaState::default();
        let add = |id, a: &str| MetaCommand::AddNode { id, info: node(a) };
        // A joiner applied before the founder still never gets id 1.
        assert_eq!(m.apply(&add(None, "b:1")), CommandResult::NodeAdded { id: 2 });
        assert_eq!(m.apply(&add(Some(1), "a:1")), CommandResult::NodeAdded { id: 1 });
        assert_eq!(m.apply(&add(None, "c:1")), CommandResult::NodeAdded { id: 3 });
        assert_eq!(m.apply(&add(None, "a:1")), CommandResult::NodeAdded { id: 1 });
        assert!(matches!(m.apply(&add(Some(2), "d:1")), CommandResult::Rejected(_)));
        assert_eq!(m.nodes.len(), 3);
    }

    #[test]
    fn placement_needs_current_epoch_and_known_nodes() {
        let mut m = MetaState::default();
        m.apply(&MetaCommand::AddNode { id: None, info: node("a:1") });
        let bad = m.apply(&MetaCommand::SetPlacement { expected_epoch: 0, replicas: vec![vec![2, 9]] });
        assert!(matches!(bad, CommandResult::Rejected(_)));
        let ok = m.apply(&MetaCommand::SetPlacement { expected_epoch: 0, replicas: vec![vec![2]] });
        assert_eq!(ok, CommandResult::PlacementSet { epoch: 1 });
        let stale = m.apply(&MetaCommand::SetPlacement { expected_epoch: 0, replicas: vec![vec![2]] });
        assert!(matches!(stale, CommandResult::Rejected(_)));
        let init = MetaCommand::InitCluster { cluster_id: "c".into(), shards: 4, replication_factor: 3 };
        assert!(!matches!(m.apply(&init), CommandResult::Rejected(_)));
        assert!(matches!(m.apply(&init), CommandResult::Rejected(_)));
    }
}
