//! Shard hashing, the consistent-hash ring, and placement proposals for Traceo.
//!
//! # What this crate owns
//!
//! * [`shard_for`]: the stable mapping from a user id to a shard. Clients and servers both use it
//!   to route requests, so its output must never change between releases.
//! * [`Ring`]: a consistent-hash ring over the cluster's nodes, with virtual nodes, that picks
//!   the replica set of a shard with zone spread.
//! * [`place`] / [`Placement`]: the replica sets of every shard for a given node list, plus
//!   helpers to measure how much two placements differ.
//! * [`desired`], [`diff`], [`advance`], [`next_step`] (the `rebalance` module): the pure
//!   planning half of moving replicas. The placement driver computes the desired placement
//!   (ring placement with balanced preferred leaders), diffs it against the target in force and
//!   advances the target a few shards at a time; the leader of each shard asks [`next_step`]
//!   for the next membership change (add a learner, wait for catch-up, replace one voter,
//!   transfer leadership) that keeps a caught-up majority in both the old and new voter sets.
//!
//! # What it must not do
//!
//! The crate is pure: no I/O, no async, no threads, no clocks, no randomness. It only *proposes*
//! a placement. The placement in force lives in the cluster's meta group; the placement driver
//! compares a proposal from this crate with it and moves replicas one shard at a time.
//!
//! # Determinism
//!
//! Every node computes placements independently and they must agree, so every hash here is
//! XXH3-64 over explicitly little-endian encoded bytes (see [`ring`](crate::Ring) for the
//! layout). XXH3 is specified byte-for-byte and does not depend on the platform, the Rust
//! version or `std::hash::Hash` implementations, which is why the ring is implemented here as
//! a sorted `Vec<(point, node)>` instead of through the `hashring` crate (whose vnode-less
//! API returns duplicate entries and hashes through `std::hash::Hash`). Node input order never
//! matters: nodes are sorted by id and ties between equal ring points are broken by node id.
//!
//! # Placement rule
//!
//! The replicas of a shard are the first `rf` *distinct* nodes met walking clockwise from the
//! shard's point, preferring nodes whose zone (the `(region, zone)` pair) is not yet used, then
//! filling with any distinct node. With this rule, removing a node only moves the replicas that
//! were on it, and adding a node only moves replicas onto the new node.

mod placement;
#[cfg(test)]
mod proptests;
mod rebalance;
#[cfg(test)]
mod rebalance_proptests;
mod ring;
mod shard;

pub use placement::{place, Placement};
pub use rebalance::{advance, balance_leaders, desired, diff, next_step, Move, ShardView, Step};
pub use ring::Ring;
pub use shard::shard_for;

use serde::{Deserialize, Serialize};
use std::fmt;

/// Identifier of a cluster node.
pub type NodeId = u64;

/// Identifier of a shard, in `0..shards`.
pub type ShardId = u32;

/// A node as seen by placement: its id and its failure domains.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDesc {
    /// Unique node id.
    pub id: NodeId,
    /// Availability zone. Zone spread treats `(region, zone)` as the zone identity.
    pub zone: String,
    /// Region containing the zone.
    pub region: String,
    /// Relative capacity ([`STANDARD_CAPACITY`] = a standard node): the node's virtual nodes,
    /// and so its share of replicas, scale with it. 0 counts as standard.
    pub capacity: u32,
}

/// The capacity of a standard node: it gets exactly the ring's virtual-node count.
pub const STANDARD_CAPACITY: u32 = 100;

impl NodeDesc {
    /// Virtual nodes of this node on a ring of `vnodes` per standard node (at least 1).
    pub fn vnodes(&self, vnodes: u32) -> u32 {
        let capacity = if self.capacity == 0 { STANDARD_CAPACITY } else { self.capacity };
        (u64::from(vnodes) * u64::from(capacity) / u64::from(STANDARD_CAPACITY)).clamp(1, 1 << 16) as u32
    }
}

/// Why a placement could not be computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlacementError {
    /// Fewer distinct nodes than the replication factor.
    NotEnoughNodes {
        /// Replicas requested (the replication factor).
        needed: usize,
        /// Distinct nodes in the ring.
        available: usize,
    },
    /// A placement over zero shards was requested.
    ZeroShards,
    /// A replication factor of zero was requested.
    ZeroReplicationFactor,
    /// The same node id appears more than once in the node list.
    DuplicateNode(NodeId),
}

impl fmt::Display for PlacementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlacementError::NotEnoughNodes { needed, available } => {
                write!(f, "not enough nodes: {needed} replicas needed, {available} nodes available")
            }
            PlacementError::ZeroShards => f.write_str("shard count must be at least 1"),
            PlacementError::ZeroReplicationFactor => f.write_str("replication factor must be at least 1"),
            PlacementError::DuplicateNode(id) => write!(f, "duplicate node id {id}"),
        }
    }
}

impl std::error::Error for PlacementError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_display() {
        let e = PlacementError::NotEnoughNodes { needed: 3, available: 2 };
        assert_eq!(e.to_string(), "not enough nodes: 3 replicas needed, 2 nodes available");
        assert_eq!(PlacementError::DuplicateNode(7).to_string(), "duplicate node id 7");
        let boxed: Box<dyn std::error::Error> = Box::new(PlacementError::ZeroShards);
        assert_eq!(boxed.to_string(), "shard count must be at least 1");
    }
}
