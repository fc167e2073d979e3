use std::collections::BTreeSet;

use raft::{ClusterConfig, MetaState, NodeId, NodeInfo, NodeState, ShardMembers};

use super::*;

const SHARDS: u32 = 12;
const RF: u32 = 3;

fn node(zone: &str) -> NodeInfo {
    NodeInfo { addr: format!("127.0.0.1:7{zone}"), zone: zone.into(), capacity: 100, ..Default::default() }
}

/// A cluster of `nodes` nodes in three zones, placed and settled (every group reports its target
/// voters).
fn settled(nodes: u64) -> MetaState {
    let mut meta = MetaState {
        cluster: Some(ClusterConfig { cluster_id: "c".into(), shards: SHARDS, replication_factor: RF }),
        ..Default::default()
    };
    for id in 1..=nodes {
        meta.nodes.insert(id, node(["a", "b", "c"][(id % 3) as usize]));
    }
    meta.placement = initial(&meta).unwrap().shards;
    settle(&mut meta);
    meta
}

/// Every group reports its target voters, as if every move had finished.
fn settle(meta: &mut MetaState) {
    meta.members = meta
        .placement
        .iter()
        .map(|r| {
            let mut voters = r.clone();
            voters.sort_unstable();
            ShardMembers { voters, log_index: 7 }
        })
        .collect();
}

fn holders(meta: &MetaState) -> BTreeSet<NodeId> {
    meta.placement.iter().flatten().copied().collect()
}

#[test]
fn the_initial_placement_puts_rf_distinct_active_nodes_on_every_shard() {
    let meta = settled(3);
    assert_eq!(meta.placement.len(), SHARDS as usize);
    for r in &meta.placement {
        let distinct: BTreeSet<_> = r.iter().collect();
        assert_eq!(distinct.len(), RF as usize, "{r:?}");
    }
    // Preferred leaders (first replica) are spread over all three nodes.
    let leaders: BTreeSet<_> = meta.placement.iter().map(|r| r[0]).collect();
    assert_eq!(leaders.len(), 3);
}

#[test]
fn a_settled_balanced_cluster_has_nothing_to_do() {
    let meta = settled(3);
    let (next, moves) = plan(&meta, 4).unwrap();
    assert!(moves.is_empty(), "{moves:?}");
    assert_eq!(next.shards, meta.placement);
    assert!(moving(&meta).is_empty());
    assert!(remaining(&meta).is_empty());
}

#[test]
fn a_new_node_gets_replicas_a_few_shards_at_a_time_until_the_plan_is_done() {
    let mut meta = settled(3);
    meta.nodes.insert(4, node("a"));
    let whole = remaining(&meta);
    assert!(!whole.is_empty(), "the new node must receive replicas");
    assert!(whole.iter().any(|m| m.to.contains(&4)));
    let mut rounds = 0;
    loop {
        let (next, moves) = plan(&meta, 2).unwrap();
        if moves.is_empty() {
            break;
        }
        assert!(moves.len() <= 2, "at most max_in_flight moves start at once: {moves:?}");
        meta.placement = next.shards;
        meta.epoch += 1;
        // Not settled yet: replica-set changes under way use up the budget (a leader-only move
        // changes no voters, so it is not in flight).
        let set_changes = moves.iter().filter(|m| !m.leader_only()).count();
        assert_eq!(moving(&meta).len(), set_changes);
        let more = plan(&meta, 2).unwrap().1;
        assert!(more.len() <= 2 - set_changes, "{set_changes} in flight, then {more:?}");
        assert!(more.iter().all(|m| !moving(&meta).iter().any(|x| x.shard == m.shard)), "a moving shard waits");
        settle(&mut meta);
        rounds += 1;
        assert!(rounds <= SHARDS * 2, "the plan converges");
    }
    assert!(remaining(&meta).is_empty());
    assert!(holders(&meta).contains(&4));
    // Node 4 shares zone a with node 3: every shard keeps one replica per zone, and the two
    // split zone a's replicas (about 6 each of 12; the ring's virtual nodes are not exact).
    let on_new = meta.placement.iter().filter(|r| r.contains(&4)).count();
    assert!((3..=9).contains(&on_new), "node 4 holds {on_new} of zone a's 12 replicas");
    for r in &meta.placement {
        let zones: BTreeSet<&str> = r.iter().map(|id| meta.nodes[id].zone.as_str()).collect();
        assert_eq!(zones.len(), 3, "one replica per zone: {r:?}");
    }
}

#[test]
fn a_draining_node_is_planned_off_every_shard() {
    let mut meta = settled(4);
    assert!(holders(&meta).contains(&2));
    meta.node_states.insert(2, NodeState::Draining);
    assert!(!eligible(&meta).iter().any(|n| n.id == 2));
    let whole = remaining(&meta);
    assert!(whole.iter().all(|m| !m.to.contains(&2)), "{whole:?}");
    let (next, _) = plan(&meta, usize::MAX).unwrap();
    assert!(next.shards.iter().all(|r| !r.contains(&2)));
}

#[test]
fn fewer_active_nodes_than_the_replication_factor_moves_nothing() {
    let mut meta = settled(3);
    meta.node_states.insert(3, NodeState::Dead);
    let (next, moves) = plan(&meta, 4).unwrap();
    assert!(moves.is_empty());
    assert_eq!(next.shards, meta.placement);
    assert!(remaining(&meta).is_empty());
}

#[test]
fn moving_reports_shards_whose_voters_differ_from_their_target() {
    let mut meta = settled(3);
    meta.members[5].voters = vec![1, 2];
    let m = moving(&meta);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].shard, 5);
    assert_eq!(m[0].from, vec![1, 2]);
    assert_eq!(m[0].to, meta.placement[5]);
}
