//! Who is in the cluster: node ids, what every membership records about a node, and where a
//! node stands. Plain data, used by commands, the meta state and the Raft type configuration.

use std::fmt;

use serde::{Deserialize, Serialize};

pub type NodeId = u64;

/// What every group's membership records about a node: where to reach it and where it stands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// gRPC address (client API and Raft peer RPC), `host:port`.
    pub addr: String,
    /// Admin HTTP address (`/metrics`, `/healthz`, `/readyz`), `host:port`.
    pub admin_addr: String,
    pub zone: String,
    pub region: String,
    /// Relative capacity (100 = a standard node; 0 counts as 100): its share of replicas.
    pub capacity: u32,
}

impl fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (zone {}, region {})", self.addr, self.zone, self.region)
    }
}

/// Where a node stands. Only `Active` nodes receive replicas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeState {
    #[default]
    Active,
    /// Being decommissioned: its replicas move away, then it is `Removed`.
    Draining,
    /// Unreachable for longer than the configured delay: its replicas are rebuilt elsewhere. It
    /// becomes `Active` again if it comes back.
    Dead,
    /// Drained and out of every group, the meta group included. Its id is never reused.
    Removed,
}

impl NodeState {
    pub fn name(self) -> &'static str {
        match self {
            NodeState::Active => "active",
            NodeState::Draining => "draining",
            NodeState::Dead => "dead",
            NodeState::Removed => "removed",
        }
    }
}
