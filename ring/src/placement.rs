//! Placement proposals: replica sets for every shard, and how two placements differ.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{NodeDesc, NodeId, PlacementError, Ring, ShardId};

/// Replica sets for every shard `0..shards`; `shards[s]` is in preference order (first =
/// preferred leader).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// Replicas of each shard, indexed by [`ShardId`].
    pub shards: Vec<Vec<NodeId>>,
}

/// Proposes replica sets of `rf` distinct nodes for every shard `0..shards`, using a [`Ring`]
/// with `vnodes` virtual nodes per node. Deterministic, and independent of the order of `nodes`.
pub fn place(nodes: &[NodeDesc], shards: u32, rf: usize, vnodes: u32) -> Result<Placement, PlacementError> {
    if shards == 0 {
        return Err(PlacementError::ZeroShards);
    }
    let ring = Ring::new(nodes, vnodes)?;
    let shards = (0..shards).map(|s| ring.replicas_for_shard(s, rf)).collect::<Result<Vec<_>, _>>()?;
    Ok(Placement { shards })
}

fn set(replicas: Option<&Vec<NodeId>>) -> BTreeSet<NodeId> {
    replicas.into_iter().flatten().copied().collect()
}

impl Placement {
    /// Replicas of `shard`, in preference order, or `None` if out of range.
    pub fn replicas(&self, shard: ShardId) -> Option<&[NodeId]> {
        self.shards.get(shard as usize).map(Vec::as_slice)
    }

    /// Preferred leader (first replica) of `shard`.
    pub fn leader(&self, shard: ShardId) -> Option<NodeId> {
        self.replicas(shard).and_then(|r| r.first().copied())
    }

    /// Number of shards whose replica SET differs from `other` (same shard count assumed;
    /// shards present in only one of the two count as changed). Order is ignored.
    pub fn shards_changed(&self, other: &Placement) -> usize {
        let len = self.shards.len().max(other.shards.len());
        (0..len).filter(|&s| set(self.shards.get(s)) != set(other.shards.get(s))).count()
    }

    /// Count of (shard, node) replica slots that differ: replicas present in `other` but not in
    /// `self` (shards missing from `self` count all of their replicas in `other`).
    pub fn replicas_moved(&self, other: &Placement) -> usize {
        let len = self.shards.len().max(other.shards.len());
        (0..len)
            .map(|s| {
                let mine = set(self.shards.get(s));
                set(other.shards.get(s)).difference(&mine).count()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::tests::node;

    #[test]
    fn argument_errors() {
        let nodes: Vec<_> = (1..=3).map(|i| node(i, "a")).collect();
        assert_eq!(place(&nodes, 0, 3, 64), Err(PlacementError::ZeroShards));
        assert_eq!(place(&nodes, 16, 0, 64), Err(PlacementError::ZeroReplicationFactor));
        assert_eq!(place(&nodes[..2], 16, 3, 64), Err(PlacementError::NotEnoughNodes { needed: 3, available: 2 }));
        let mut dup = nodes.clone();
        dup.push(node(2, "b"));
        assert_eq!(place(&dup, 16, 3, 64), Err(PlacementError::DuplicateNode(2)));
    }

    #[test]
    fn diff_counts() {
        let a = Placement { shards: vec![vec![1, 2, 3], vec![1, 2, 3], vec![4, 5, 6]] };
        let b = Placement { shards: vec![vec![3, 2, 1], vec![1, 2, 4], vec![7, 8, 9]] };
        assert_eq!(a.shards_changed(&a), 0);
        assert_eq!(a.replicas_moved(&a), 0);
        // Reordering is not a change.
        assert_eq!(a.shards_changed(&b), 2);
        assert_eq!(a.replicas_moved(&b), 1 + 3);
        assert_eq!(b.replicas_moved(&a), 1 + 3);
        let longer = Placement { shards: vec![vec![1, 2, 3], vec![1, 2, 3], vec![4, 5, 6], vec![1, 2]] };
        assert_eq!(a.shards_changed(&longer), 1);
        assert_eq!(a.replicas_moved(&longer), 2);
        assert_eq!(longer.replicas_moved(&a), 0);
    }

    #[test]
    fn accessors() {
        let nodes: Vec<_> = (1..=4).map(|i| node(i, "a")).collect();
        let p = place(&nodes, 8, 3, 64).unwrap();
        assert_eq!(p.shards.len(), 8);
        assert_eq!(p.leader(3), Some(p.shards[3][0]));
        assert_eq!(p.replicas(3), Some(p.shards[3].as_slice()));
        assert_eq!(p.replicas(8), None);
        assert_eq!(p.leader(8), None);
    }

    #[test]
    fn serde_impls_exist() {
        // Compile-time check only: the meta group stores placements and node descriptions.
        fn assert_serde<T: Serialize + for<'de> Deserialize<'de>>() {}
        assert_serde::<Placement>();
        assert_serde::<NodeDesc>();
    }
}
