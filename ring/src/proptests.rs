//! Property tests of placement: balance of movement, locality of removal, zone spread,
//! determinism.

use std::collections::BTreeSet;

use proptest::prelude::*;

use crate::{place, NodeDesc, NodeId, Placement, Ring};

const SHARDS: u32 = 256;
const RF: usize = 3;
const V: u32 = Ring::DEFAULT_VNODES;

pub(crate) fn desc(id: NodeId, zone: usize) -> NodeDesc {
    NodeDesc { id, zone: format!("z{zone}"), region: "r1".to_string(), capacity: 0 }
}

/// `n` distinct random node ids.
pub(crate) fn ids(n: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Vec<NodeId>> {
    prop::collection::btree_set(any::<u64>(), n).prop_map(|s| s.into_iter().collect())
}

/// `n` nodes with arbitrary zones in `0..zones`.
fn nodes_any_zones(n: std::ops::RangeInclusive<usize>, zones: usize) -> impl Strategy<Value = Vec<NodeDesc>> {
    ids(n).prop_flat_map(move |ids| {
        let len = ids.len();
        prop::collection::vec(0..zones, len)
            .prop_map(move |zs| ids.iter().zip(zs).map(|(&id, z)| desc(id, z)).collect::<Vec<_>>())
    })
}

fn set(r: &[NodeId]) -> BTreeSet<NodeId> {
    r.iter().copied().collect()
}

fn zones_of(nodes: &[NodeDesc], r: &[NodeId]) -> BTreeSet<String> {
    r.iter().map(|id| nodes.iter().find(|n| n.id == *id).unwrap().zone.clone()).collect()
}

proptest! {
    /// Adding the (n+1)-th node moves about 1/(n+1) of the replica slots, and only onto the
    /// new node. Zones are assigned round-robin (balanced), 1 to 4 zones.
    #[test]
    fn adding_a_node_moves_about_one_over_n(ids in ids(4..=13), zones in 1usize..=4) {
        let all: Vec<_> = ids.iter().enumerate().map(|(i, &id)| desc(id, i % zones)).collect();
        let n = all.len() - 1;
        let new_id = all[n].id;
        let before = place(&all[..n], SHARDS, RF, V).unwrap();
        let after = place(&all, SHARDS, RF, V).unwrap();

        let moved = before.replicas_moved(&after);
        let frac = moved as f64 / (f64::from(SHARDS) * RF as f64);
        let bound = 1.5 / (n as f64 + 1.0) + 0.05;
        prop_assert!(frac <= bound, "n={} zones={} moved {} ({:.3} > {:.3})", n, zones, moved, frac, bound);

        let mut changed = 0;
        for (old, new) in before.shards.iter().zip(&after.shards) {
            let added: Vec<_> = set(new).difference(&set(old)).copied().collect();
            prop_assert!(added.is_empty() || added == vec![new_id], "added {:?}", added);
            changed += usize::from(!added.is_empty());
        }
        prop_assert_eq!(before.shards_changed(&after), changed);
        prop_assert_eq!(moved, changed);
    }

    /// Removing one node moves only the replicas that were on it, whatever the zones.
    #[test]
    fn removing_a_node_moves_only_its_replicas(
        nodes in nodes_any_zones(4..=13, 4),
        pick in any::<prop::sample::Index>(),
    ) {
        let k = pick.index(nodes.len());
        let removed = nodes[k].id;
        let mut rest = nodes.clone();
        rest.remove(k);
        let before = place(&nodes, SHARDS, RF, V).unwrap();
        let after = place(&rest, SHARDS, RF, V).unwrap();
        for (old, new) in before.shards.iter().zip(&after.shards) {
            let (old, new) = (set(old), set(new));
            let on_removed = usize::from(old.contains(&removed));
            prop_assert!(!new.contains(&removed));
            prop_assert_eq!(new.difference(&old).count(), on_removed);
            let dropped: Vec<_> = old.difference(&new).copied().collect();
            prop_assert!(dropped.is_empty() || dropped == vec![removed]);
        }
        prop_assert_eq!(
            before.replicas_moved(&after),
            before.shards.iter().filter(|r| r.contains(&removed)).count()
        );
    }

    /// Every shard gets `rf` distinct nodes spread over min(rf, zones) zones; with 3 zones and
    /// rf 3 that is one replica per zone.
    #[test]
    fn replicas_distinct_and_zone_spread(
        nodes in nodes_any_zones(3..=12, 3),
        rf in 1usize..=3,
    ) {
        // Make sure all 3 zones exist.
        let mut nodes = nodes;
        for (i, n) in nodes.iter_mut().take(3).enumerate() {
            n.zone = format!("z{i}");
        }
        let p = place(&nodes, SHARDS, rf, V).unwrap();
        prop_assert_eq!(p.shards.len(), SHARDS as usize);
        for r in &p.shards {
            prop_assert_eq!(r.len(), rf);
            prop_assert_eq!(set(r).len(), rf);
            prop_assert_eq!(zones_of(&nodes, r).len(), rf);
        }
    }

    /// With arbitrary (possibly fewer) zones replicas are still distinct and use as many zones
    /// as possible.
    #[test]
    fn replicas_use_as_many_zones_as_possible(
        nodes in nodes_any_zones(1..=10, 5),
        rf in 1usize..=5,
    ) {
        let zones: BTreeSet<_> = nodes.iter().map(|n| n.zone.clone()).collect();
        match place(&nodes, 64, rf, 16) {
            Err(e) => {
                prop_assert!(rf > nodes.len());
                prop_assert_eq!(
                    e,
                    crate::PlacementError::NotEnoughNodes { needed: rf, available: nodes.len() }
                );
            }
            Ok(p) => {
                for r in &p.shards {
                    prop_assert_eq!(set(r).len(), rf);
                    prop_assert_eq!(zones_of(&nodes, r).len(), rf.min(zones.len()));
                }
            }
        }
    }

    /// Same inputs give the same placement, whatever the order of the node list.
    #[test]
    fn deterministic_and_order_independent(
        (nodes, shuffled) in nodes_any_zones(3..=12, 4)
            .prop_flat_map(|n| (Just(n.clone()), Just(n).prop_shuffle())),
        vnodes in 1u32..=128,
    ) {
        let a = place(&nodes, SHARDS, RF, vnodes).unwrap();
        let b = place(&nodes, SHARDS, RF, vnodes).unwrap();
        let c = place(&shuffled, SHARDS, RF, vnodes).unwrap();
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(&a, &c);
        prop_assert_eq!(a.shards_changed(&c), 0);
    }
}

/// Share of shards led (first replica) by each node.
fn leader_shares(p: &Placement, ids: &[NodeId]) -> Vec<f64> {
    ids.iter()
        .map(|id| {
            let led = p.shards.iter().filter(|r| r[0] == *id).count();
            led as f64 / p.shards.len() as f64
        })
        .collect()
}

/// With 5 nodes and 256 shards each node leads between 10% and 30% of shards. Fixed clusters:
/// leader share varies with the ids (std dev ~3.4 points at 64 vnodes), so this is checked on
/// chosen-in-advance clusters rather than as a property of every id set.
#[test]
fn leader_balance_five_nodes() {
    let clusters: [[NodeId; 5]; 4] = [
        [1, 2, 3, 4, 5],
        [0, 10, 20, 30, 40],
        [101, 202, 303, 404, 505],
        [
            0x9e37_79b9_7f4a_7c15,
            0xbf58_476d_1ce4_e5b9,
            0x94d0_49bb_1331_11eb,
            0x2545_f491_4f6c_dd1d,
            0xda94_2042_e4dd_58b5,
        ],
    ];
    for ids in clusters {
        let nodes: Vec<_> = ids.iter().enumerate().map(|(i, &id)| desc(id, i % 3)).collect();
        let p = place(&nodes, SHARDS, RF, V).unwrap();
        for (id, share) in ids.iter().zip(leader_shares(&p, &ids)) {
            assert!((0.10..=0.30).contains(&share), "node {id} of {ids:?} leads {share:.3} of shards");
        }
    }
}

/// A pinned placement: the ring layout is a cross-node contract, so any change to hashing or
/// to the selection rule must show up here.
#[test]
fn pinned_placement() {
    let nodes: Vec<_> = (1..=6).map(|i| desc(i, i as usize % 3)).collect();
    let p = place(&nodes, 4, RF, V).unwrap();
    assert_eq!(p.shards, [[2, 6, 1], [2, 3, 1], [5, 6, 4], [3, 1, 5]]);
}
