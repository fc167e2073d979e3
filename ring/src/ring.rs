//! Consistent-hash ring with virtual nodes and zone-spread replica selection.
//!
//! Point layout (part of the cross-node contract; changing it changes every placement):
//!
//! * vnode `i` of node `id`: `xxh3_64_with_seed(id.to_le_bytes() ++ (i as u32).to_le_bytes(),
//!   VNODE_SEED)`;
//! * shard `s`: `xxh3_64_with_seed(s.to_le_bytes(), SHARD_SEED)`.
//!
//! Ring entries are sorted by `(point, node id)`, so equal points are ordered deterministically.

use std::collections::BTreeMap;

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::{NodeDesc, NodeId, PlacementError, ShardId};

/// Seed for virtual node points ("traceovn").
const VNODE_SEED: u64 = u64::from_le_bytes(*b"traceovn");
/// Seed for shard points ("traceosh").
const SHARD_SEED: u64 = u64::from_le_bytes(*b"traceosh");

/// Ring point of virtual node `vnode` of node `id`.
fn vnode_point(id: NodeId, vnode: u32) -> u64 {
    let mut buf = [0u8; 12];
    buf[..8].copy_from_slice(&id.to_le_bytes());
    buf[8..].copy_from_slice(&vnode.to_le_bytes());
    xxh3_64_with_seed(&buf, VNODE_SEED)
}

/// Ring point of a shard.
fn shard_point(shard: ShardId) -> u64 {
    xxh3_64_with_seed(&shard.to_le_bytes(), SHARD_SEED)
}

/// Consistent-hash ring over nodes with `vnodes` virtual nodes each.
#[derive(Clone, Debug)]
pub struct Ring {
    /// Nodes sorted by id.
    nodes: Vec<NodeDesc>,
    /// Interned `(region, zone)` of each node, parallel to `nodes`.
    zone_of: Vec<usize>,
    /// Number of distinct zones.
    zones: usize,
    /// `(point, index into nodes)`, sorted; index order equals node id order.
    points: Vec<(u64, usize)>,
    vnodes: u32,
}

impl Ring {
    /// Virtual nodes per node used by default.
    pub const DEFAULT_VNODES: u32 = 64;

    /// Builds the ring. The order of `nodes` does not matter. `vnodes == 0` is treated as 1.
    ///
    /// An empty node list gives an empty ring, for which every lookup fails with
    /// [`PlacementError::NotEnoughNodes`].
    pub fn new(nodes: &[NodeDesc], vnodes: u32) -> Result<Ring, PlacementError> {
        let vnodes = vnodes.max(1);
        let mut sorted = nodes.to_vec();
        sorted.sort_by_key(|n| n.id);
        if let Some(w) = sorted.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(PlacementError::DuplicateNode(w[0].id));
        }

        let mut interned: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        let zone_of: Vec<usize> = sorted
            .iter()
            .map(|n| {
                let next = interned.len();
                *interned.entry((n.region.as_str(), n.zone.as_str())).or_insert(next)
            })
            .collect();
        let zones = interned.len();

        let mut points: Vec<(u64, usize)> = sorted
            .iter()
            .enumerate()
            .flat_map(|(idx, n)| (0..n.vnodes(vnodes)).map(move |v| (vnode_point(n.id, v), idx)))
            .collect();
        points.sort_unstable();

        Ok(Ring { nodes: sorted, zone_of, zones, points, vnodes })
    }

    /// The nodes of the ring, sorted by id.
    pub fn nodes(&self) -> &[NodeDesc] {
        &self.nodes
    }

    /// Virtual nodes per node actually used.
    pub fn vnodes(&self) -> u32 {
        self.vnodes
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the ring has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The first `rf` DISTINCT nodes clockwise from the shard's point on the ring, preferring
    /// nodes in zones not yet used (zone spread), then filling with any distinct node. Order =
    /// preference order (first = preferred leader).
    ///
    /// Precisely: walking clockwise, the first node met of each zone is taken, in walk order,
    /// until `rf` nodes are taken; if there are fewer than `rf` zones, the remaining slots are
    /// filled with the next not-yet-taken nodes in walk order.
    pub fn replicas_for_shard(&self, shard: ShardId, rf: usize) -> Result<Vec<NodeId>, PlacementError> {
        if rf == 0 {
            return Err(PlacementError::ZeroReplicationFactor);
        }
        let n = self.nodes.len();
        if rf > n {
            return Err(PlacementError::NotEnoughNodes { needed: rf, available: n });
        }

        let start = self.points.partition_point(|&(p, _)| p < shard_point(shard));
        let mut seen = vec![false; n];
        let mut taken = vec![false; n];
        let mut zone_used = vec![false; self.zones];
        // Distinct nodes in walk order; only needed when zones alone cannot fill `rf`.
        let mut walk: Vec<usize> = Vec::with_capacity(n);
        let mut picked: Vec<usize> = Vec::with_capacity(rf);

        let (after, before) = self.points.split_at(start);
        for &(_, idx) in before.iter().chain(after) {
            if seen[idx] {
                continue;
            }
            seen[idx] = true;
            walk.push(idx);
            let zone = self.zone_of[idx];
            if !zone_used[zone] {
                zone_used[zone] = true;
                taken[idx] = true;
                picked.push(idx);
                if picked.len() == rf {
                    break;
                }
            }
            if walk.len() == n {
                break;
            }
        }
        for idx in walk {
            if picked.len() == rf {
                break;
            }
            if !taken[idx] {
                taken[idx] = true;
                picked.push(idx);
            }
        }
        debug_assert_eq!(picked.len(), rf);
        Ok(picked.into_iter().map(|i| self.nodes[i].id).collect())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::BTreeSet;

    pub(crate) fn node(id: NodeId, zone: &str) -> NodeDesc {
        NodeDesc { id, zone: zone.to_string(), region: "r1".to_string(), capacity: 0 }
    }

    fn zone_of(nodes: &[NodeDesc], id: NodeId) -> (String, String) {
        let n = nodes.iter().find(|n| n.id == id).unwrap();
        (n.region.clone(), n.zone.clone())
    }

    #[test]
    fn rf_distinct_nodes_single_zone() {
        let nodes: Vec<_> = (1..=5).map(|i| node(i, "a")).collect();
        let ring = Ring::new(&nodes, Ring::DEFAULT_VNODES).unwrap();
        for shard in 0..256 {
            for rf in 1..=5 {
                let r = ring.replicas_for_shard(shard, rf).unwrap();
                assert_eq!(r.len(), rf);
                assert_eq!(r.iter().collect::<BTreeSet<_>>().len(), rf, "{r:?}");
            }
        }
    }

    #[test]
    fn three_zones_spread() {
        // 7 nodes, unbalanced zones: a has 4, b has 2, c has 1.
        let zones = ["a", "a", "b", "a", "b", "c", "a"];
        let nodes: Vec<_> = zones.iter().enumerate().map(|(i, z)| node(i as NodeId + 10, z)).collect();
        let ring = Ring::new(&nodes, Ring::DEFAULT_VNODES).unwrap();
        for shard in 0..256 {
            let r = ring.replicas_for_shard(shard, 3).unwrap();
            let zs: BTreeSet<_> = r.iter().map(|&id| zone_of(&nodes, id)).collect();
            assert_eq!(zs.len(), 3, "shard {shard}: {r:?}");
        }
    }

    #[test]
    fn same_zone_name_in_two_regions_is_two_zones() {
        let mut nodes = vec![node(1, "a"), node(2, "a"), node(3, "a")];
        nodes[1].region = "r2".into();
        nodes[2].region = "r3".into();
        let ring = Ring::new(&nodes, 8).unwrap();
        assert_eq!(ring.zones, 3);
    }

    #[test]
    fn fewer_zones_than_rf_fills_distinct() {
        let nodes = vec![node(1, "a"), node(2, "a"), node(3, "b"), node(4, "b")];
        let ring = Ring::new(&nodes, Ring::DEFAULT_VNODES).unwrap();
        for shard in 0..256 {
            let r = ring.replicas_for_shard(shard, 3).unwrap();
            assert_eq!(r.iter().collect::<BTreeSet<_>>().len(), 3);
            // The first two are one per zone.
            assert_ne!(zone_of(&nodes, r[0]), zone_of(&nodes, r[1]));
        }
    }

    #[test]
    fn errors() {
        let nodes = vec![node(1, "a"), node(2, "b")];
        let ring = Ring::new(&nodes, 4).unwrap();
        assert_eq!(ring.replicas_for_shard(0, 3), Err(PlacementError::NotEnoughNodes { needed: 3, available: 2 }));
        assert_eq!(ring.replicas_for_shard(0, 0), Err(PlacementError::ZeroReplicationFactor));
        assert_eq!(
            Ring::new(&[node(1, "a"), node(2, "a"), node(1, "b")], 4).unwrap_err(),
            PlacementError::DuplicateNode(1)
        );
        let empty = Ring::new(&[], 4).unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.replicas_for_shard(0, 1), Err(PlacementError::NotEnoughNodes { needed: 1, available: 0 }));
    }

    #[test]
    fn zero_vnodes_is_one() {
        let ring = Ring::new(&[node(1, "a"), node(2, "b")], 0).unwrap();
        assert_eq!(ring.vnodes(), 1);
        assert_eq!(ring.points.len(), 2);
        assert_eq!(ring.replicas_for_shard(5, 2).unwrap().len(), 2);
    }

    #[test]
    fn first_replica_is_owner_of_shard_point() {
        let nodes: Vec<_> = (1..=6).map(|i| node(i, ["a", "b", "c"][i as usize % 3])).collect();
        let ring = Ring::new(&nodes, 16).unwrap();
        for shard in 0..256 {
            let p = shard_point(shard);
            let owner = ring.points.iter().find(|&&(q, _)| q >= p).unwrap_or(&ring.points[0]).1;
            let r = ring.replicas_for_shard(shard, 3).unwrap();
            assert_eq!(r[0], ring.nodes[owner].id);
        }
    }

    #[test]
    fn pinned_hashes() {
        // The ring layout is a cross-node contract; these must never change.
        assert_eq!(vnode_point(1, 0), 0xda59_1591_5360_69a6);
        assert_eq!(shard_point(0), 0x97aa_b68f_62dd_653a);
    }

    #[test]
    fn capacity_scales_a_nodes_share_of_replicas() {
        // One zone, so only the ring decides.
        let mut nodes: Vec<NodeDesc> = (1..=10).map(|i| node(i, "a")).collect();
        nodes[9].capacity = 200;
        let p = crate::place(&nodes, 2048, 3, 64).unwrap();
        let count = |id: NodeId| p.shards.iter().filter(|r| r.contains(&id)).count() as f64;
        let standard = (1..=9).map(count).sum::<f64>() / 9.0;
        let ratio = count(10) / standard;
        // Twice the virtual nodes: about twice the replicas (a node holds at most one per shard,
        // so few nodes would cap it).
        assert!((1.6..=2.3).contains(&ratio), "a capacity-200 node holds {ratio:.2}x a standard node's replicas");
        assert_eq!(nodes[9].vnodes(64), 128);
        assert_eq!(node(9, "a").vnodes(64), 64, "0 counts as standard");
        assert_eq!(NodeDesc { capacity: 1, ..node(9, "a") }.vnodes(64), 1, "at least one");
    }
}
