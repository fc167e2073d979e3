//! The openraft type configuration shared by every group.

use std::fmt;
use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::command::{Command, CommandResult};

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

openraft::declare_raft_types!(
    /// One configuration for shards and the meta group: they differ in their state machine only.
    pub TypeConfig:
        D = Command,
        R = CommandResult,
        NodeId = NodeId,
        Node = NodeInfo,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, NodeInfo>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, NodeInfo>;
pub type StorageError = openraft::StorageError<NodeId>;
