//! The meta group's state: cluster identity, nodes, the placement in force (with its epoch) and
//! the scoring models deployed.
//! Every node holds a replica (voter or learner), so every node can route and place.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::command::{CommandResult, MetaCommand};
pub use crate::member::NodeState;
use crate::member::{NodeId, NodeInfo};
use crate::model_registry::ModelRegistry;

/// Fixed at cluster creation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterConfig {
    pub cluster_id: String,
    pub shards: u32,
    pub replication_factor: u32,
}

/// A shard group's voters as its leader last reported them, and the log index of the
/// membership entry they come from (0 for the initial one). No voters: not reported yet.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardMembers {
    pub voters: Vec<NodeId>,
    pub log_index: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetaState {
    pub cluster: Option<ClusterConfig>,
    pub nodes: BTreeMap<NodeId, NodeInfo>,
    /// Bumped by every placement change; clients and nodes compare epochs to detect stale routing.
    pub epoch: u64,
    /// `placement[shard]` = the shard's target replicas, preferred leader first. Empty until
    /// first placed. The shard's leader moves the group's voters toward it.
    pub placement: Vec<Vec<NodeId>>,
    /// What each shard group's voters are (committed, as reported by its leader); empty for a
    /// shard whose group has not reported yet. A shard is moving while this differs from its
    /// placement.
    pub members: Vec<ShardMembers>,
    /// Standing of every node; a node missing here is `Active`.
    pub node_states: BTreeMap<NodeId, NodeState>,
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
                if let Some(bad) = replicas.iter().flatten().find(|id| self.state(**id) == NodeState::Removed) {
                    return CommandResult::Rejected(format!("placement names removed node {bad}"));
                }
                self.placement = replicas.clone();
                self.members.resize(self.placement.len(), ShardMembers::default());
                self.epoch += 1;
                CommandResult::PlacementSet { epoch: self.epoch }
            }
            MetaCommand::SetNodeState { id, state } => {
                if !self.nodes.contains_key(id) {
                    return CommandResult::Rejected(format!("no node {id}"));
                }
                if self.state(*id) == NodeState::Removed && *state != NodeState::Removed {
                    return CommandResult::Rejected(format!("node {id} was removed; its id is not reused"));
                }
                if *state == NodeState::Removed && self.holds_replicas(*id) {
                    return CommandResult::Rejected(format!("node {id} still holds replicas"));
                }
                self.node_states.insert(*id, *state);
                self.epoch += 1;
                CommandResult::Recorded
            }
            MetaCommand::ReportMembers { shard, voters, log_index } => {
                let Some(slot) = self.members.get_mut(*shard as usize) else {
                    return CommandResult::Rejected(format!("no shard {shard}"));
                };
                if *log_index < slot.log_index || (*log_index == slot.log_index && !slot.voters.is_empty()) {
                    return CommandResult::Rejected(format!("members of shard {shard} at {log_index} are stale"));
                }
                let mut voters = voters.clone();
                voters.sort_unstable();
                *slot = ShardMembers { voters, log_index: *log_index };
                self.epoch += 1;
                CommandResult::Recorded
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

    /// The reported voters of `shard` (empty until its leader has reported).
    pub fn voters(&self, shard: u32) -> &[NodeId] {
        self.members.get(shard as usize).map_or(&[], |m| m.voters.as_slice())
    }

    pub fn state(&self, id: NodeId) -> NodeState {
        self.node_states.get(&id).copied().unwrap_or_default()
    }

    /// True while `id` is in some shard's target or reported voters.
    pub fn holds_replicas(&self, id: NodeId) -> bool {
        self.placement.iter().any(|r| r.contains(&id)) || self.members.iter().any(|m| m.voters.contains(&id))
    }

    /// Shards whose reported voters differ from their target set (a move is under way).
    pub fn moving_shards(&self) -> Vec<u32> {
        (0..self.placement.len() as u32)
            .filter(|&s| {
                let mut target = self.replicas(s).to_vec();
                target.sort_unstable();
                target != self.voters(s)
            })
            .collect()
    }

    /// Nodes that may receive replicas (active), by id.
    pub fn active_nodes(&self) -> impl Iterator<Item = (&NodeId, &NodeInfo)> {
        self.nodes.iter().filter(|(id, _)| self.state(**id) == NodeState::Active)
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

    #[test]
    fn node_states_and_members_reports() {
        let mut m = MetaState::default();
        for (i, a) in ["a:1", "b:1", "c:1", "d:1"].into_iter().enumerate() {
            let id = (i == 0).then_some(1);
            m.apply(&MetaCommand::AddNode { id, info: node(a) });
        }
        let place = MetaCommand::SetPlacement { expected_epoch: 0, replicas: vec![vec![1, 2, 3], vec![2, 3, 4]] };
        assert_eq!(m.apply(&place), CommandResult::PlacementSet { epoch: 1 });
        assert_eq!(m.moving_shards(), vec![0, 1], "nothing reported yet");
        let report = |shard, voters: Vec<NodeId>, log_index| MetaCommand::ReportMembers { shard, voters, log_index };
        assert_eq!(m.apply(&report(0, vec![3, 1, 2], 0)), CommandResult::Recorded);
        assert_eq!(m.voters(0), &[1, 2, 3], "stored sorted");
        assert_eq!(m.moving_shards(), vec![1]);
        assert!(matches!(m.apply(&report(0, vec![1, 2, 4], 0)), CommandResult::Rejected(_)), "same index again");
        assert_eq!(m.apply(&report(0, vec![1, 2, 4], 7)), CommandResult::Recorded);
        assert!(matches!(m.apply(&report(0, vec![1, 2, 3], 5)), CommandResult::Rejected(_)), "older report");
        assert!(matches!(m.apply(&report(9, vec![1], 1)), CommandResult::Rejected(_)), "no such shard");
        assert_eq!(m.moving_shards(), vec![0, 1]);

        let set = |id, state| MetaCommand::SetNodeState { id, state };
        assert!(matches!(m.apply(&set(9, NodeState::Draining)), CommandResult::Rejected(_)));
        assert_eq!(m.apply(&set(4, NodeState::Draining)), CommandResult::Recorded);
        assert_eq!(m.active_nodes().count(), 3);
        assert!(matches!(m.apply(&set(4, NodeState::Removed)), CommandResult::Rejected(_)), "still a replica");
        let moved = MetaCommand::SetPlacement { expected_epoch: m.epoch, replicas: vec![vec![1, 2, 3], vec![2, 3, 1]] };
        assert!(matches!(m.apply(&moved), CommandResult::PlacementSet { .. }));
        assert!(m.holds_replicas(4), "reported voters still include it");
        m.apply(&report(0, vec![1, 2, 3], 9));
        assert!(!m.holds_replicas(4));
        assert_eq!(m.apply(&set(4, NodeState::Removed)), CommandResult::Recorded);
        assert!(matches!(m.apply(&set(4, NodeState::Active)), CommandResult::Rejected(_)), "removed is final");
        let back = MetaCommand::SetPlacement { expected_epoch: m.epoch, replicas: vec![vec![1, 2, 4], vec![2, 3, 1]] };
        assert!(matches!(m.apply(&back), CommandResult::Rejected(_)), "a removed node gets no replicas");
    }
}
