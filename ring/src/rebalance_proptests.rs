//! Property tests of rebalancing: movement when a node joins or leaves, leader balance, bounded
//! advancement of the target, and a simulation of one shard's membership steps.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use crate::{advance, balance_leaders, desired, diff, next_step, place, NodeDesc, NodeId, Placement, Ring};
use crate::{ShardId, ShardView, Step};

const RF: usize = 3;
const V: u32 = Ring::DEFAULT_VNODES;

use crate::proptests::{desc, ids};

/// Random ids with zones assigned round-robin over `zones` zones (balanced zones).
fn round_robin(ids: &[NodeId], zones: usize) -> Vec<NodeDesc> {
    ids.iter().enumerate().map(|(i, &id)| desc(id, i % zones)).collect()
}

fn empty() -> Placement {
    Placement { shards: Vec::new() }
}

fn set(r: &[NodeId]) -> BTreeSet<NodeId> {
    r.iter().copied().collect()
}

/// Shards led (first replica) by each node.
fn leader_counts(p: &Placement) -> BTreeMap<NodeId, usize> {
    let mut counts = BTreeMap::new();
    for r in &p.shards {
        *counts.entry(r[0]).or_default() += 1;
    }
    counts
}

proptest! {
    /// Adding the n-th node moves about 1/n of the replica slots, all onto the new node. As in
    /// `proptests.rs` the bound is a share of all slots, 1.25 / n + 0.05, plus a sampling term
    /// (2 * sqrt(ideal) slots) because small shard counts are noisy.
    #[test]
    fn adding_a_node_moves_about_one_over_n(ids in ids(4..=9), zones in 1usize..=3, shards in 16u32..=256) {
        let all = round_robin(&ids, zones);
        let n = all.len();
        let new_id = all[n - 1].id;
        let before = desired(&all[..n - 1], &empty(), shards, RF, V).unwrap();
        let after = desired(&all, &before, shards, RF, V).unwrap();

        let moves = diff(&before, &after);
        let added: usize = moves.iter().map(|m| m.added().len()).sum();
        let slots = f64::from(shards) * RF as f64;
        let ideal = slots / n as f64;
        let bound = 1.25 / n as f64 + 0.05 + 2.0 * ideal.sqrt() / slots;
        let frac = added as f64 / slots;
        prop_assert!(frac <= bound, "n={} zones={} added {} ({:.3} > {:.3})", n, zones, added, frac, bound);
        for m in &moves {
            let a = m.added();
            prop_assert!(a.is_empty() || a == vec![new_id], "shard {} added {:?}", m.shard, a);
        }
    }

    /// Removing one node changes only the replica sets that contained it, by replacing it.
    #[test]
    fn removing_a_node_moves_only_its_shards(
        ids in ids(4..=9),
        zones in prop::collection::vec(0usize..3, 9),
        pick in any::<prop::sample::Index>(),
        shards in 16u32..=256,
    ) {
        let nodes: Vec<_> = ids.iter().zip(&zones).map(|(&id, &z)| desc(id, z)).collect();
        let k = pick.index(nodes.len());
        let gone = nodes[k].id;
        let mut rest = nodes.clone();
        rest.remove(k);
        let before = desired(&nodes, &empty(), shards, RF, V).unwrap();
        let after = desired(&rest, &before, shards, RF, V).unwrap();
        for m in diff(&before, &after).iter().filter(|m| !m.leader_only()) {
            prop_assert!(m.from.contains(&gone), "shard {} changed without {}", m.shard, gone);
            prop_assert_eq!(m.removed(), vec![gone]);
            prop_assert_eq!(m.added().len(), 1);
        }
        let holding = before.shards.iter().filter(|r| r.contains(&gone)).count();
        prop_assert_eq!(before.shards_changed(&after), holding);
    }

    /// With balanced zones no node leads more than ceil(shards / n) + 1 shards; the replica sets
    /// are those of `place`; and the desired placement is a fixed point of itself.
    #[test]
    fn leaders_balanced_and_stable(ids in ids(3..=9), zones in 1usize..=3, shards in 1u32..=256) {
        let nodes = round_robin(&ids, zones);
        let d = desired(&nodes, &empty(), shards, RF, V).unwrap();
        let placed = place(&nodes, shards, RF, V).unwrap();
        for (a, b) in d.shards.iter().zip(&placed.shards) {
            prop_assert_eq!(set(a), set(b));
        }
        let max = leader_counts(&d).into_values().max().unwrap();
        prop_assert!(max <= (shards as usize).div_ceil(nodes.len()) + 1, "max {} leaders", max);
        let again = desired(&nodes, &d, shards, RF, V).unwrap();
        prop_assert!(diff(&d, &again).is_empty());
    }

    /// With arbitrary zones the cap may be out of reach, but no shard led by an over-cap node
    /// has a replica leading two shards fewer (no single hand-over would help).
    #[test]
    fn leaders_locally_optimal(ids in ids(3..=9), zones in prop::collection::vec(0usize..3, 9), shards in 1u32..=256) {
        let nodes: Vec<_> = ids.iter().zip(&zones).map(|(&id, &z)| desc(id, z)).collect();
        let d = desired(&nodes, &empty(), shards, RF, V).unwrap();
        let counts = leader_counts(&d);
        let load = |n: &NodeId| counts.get(n).copied().unwrap_or(0);
        let cap = (shards as usize).div_ceil(set(&d.shards.concat()).len());
        for r in d.shards.iter().filter(|r| load(&r[0]) > cap) {
            prop_assert!(r.iter().all(|n| load(n) + 2 > load(&r[0])), "{:?} {:?}", r, counts);
        }
    }

    /// `advance` respects the in-flight budget, leaves in-flight shards alone, takes set changes
    /// first, and repeated rounds reach the desired placement in ceil(moves / max) rounds.
    #[test]
    fn advance_bounded_and_converges(
        ids in ids(4..=9),
        gone in any::<(prop::sample::Index, prop::sample::Index)>(),
        from_empty in any::<bool>(),
        shards in 1u32..=64,
        in_flight in prop::collection::btree_set(0 as ShardId..64, 0..=6),
        max in 1usize..=8,
    ) {
        let nodes = round_robin(&ids, 3);
        let without = |i: &prop::sample::Index| {
            let mut n = nodes.clone();
            n.remove(i.index(n.len()));
            n
        };
        let cur = if from_empty { empty() } else { desired(&without(&gone.0), &empty(), shards, RF, V).unwrap() };
        let des = desired(&without(&gone.1), &cur, shards, RF, V).unwrap();
        let all = diff(&cur, &des);

        let (next, taken) = advance(&cur, &des, &in_flight, max);
        let eligible: Vec<_> = all.iter().filter(|m| !in_flight.contains(&m.shard)).collect();
        prop_assert_eq!(taken.len(), eligible.len().min(max.saturating_sub(in_flight.len())));
        let kinds: Vec<bool> = taken.iter().map(|m| m.leader_only()).collect();
        prop_assert!(kinds.windows(2).all(|w| w[0] <= w[1]), "set changes first");
        for m in &taken {
            prop_assert!(!in_flight.contains(&m.shard));
            prop_assert!(eligible.contains(&m));
            prop_assert_eq!(next.replicas(m.shard), Some(m.to.as_slice()));
        }
        let mut by_shard = taken.clone();
        by_shard.sort_by_key(|m| m.shard);
        prop_assert_eq!(diff(&cur, &next), by_shard);

        let mut p = cur;
        let rounds = all.len().div_ceil(max);
        for _ in 0..rounds {
            p = advance(&p, &des, &BTreeSet::new(), max).0;
        }
        prop_assert_eq!(p, des);
    }

    /// One shard from random voters to a random target with at most one dead voter: the steps
    /// reach the target safely (see `simulate`).
    #[test]
    fn steps_reach_target_safely(
        voters in prop::collection::btree_set(1 as NodeId..=8, 3),
        target in prop::sample::subsequence((1..=8).collect::<Vec<NodeId>>(), 3).prop_shuffle(),
        picks in any::<(prop::sample::Index, prop::sample::Index)>(),
        learner in prop::option::of(1 as NodeId..=8),
        with_dead in any::<bool>(),
    ) {
        let v: Vec<NodeId> = voters.iter().copied().collect();
        let leader = v[picks.0.index(3)];
        let dead = Some(v[picks.1.index(3)]).filter(|d| with_dead && *d != leader && !target.contains(d));
        let learners = learner.filter(|l| !voters.contains(l)).into_iter().collect();
        let mut g = Group { voters, learners, leader, caught: BTreeSet::new(), dead: dead.into_iter().collect() };
        g.caught = g.voters.iter().copied().filter(|n| !g.dead.contains(n)).collect();
        let steps = simulate(&mut g, &target)?;
        prop_assert!(steps <= 30);
        prop_assert_eq!(&g.voters, &set(&target));
        prop_assert_eq!(g.leader, target[0]);
        prop_assert!(g.learners.is_empty());
    }
}

/// One shard's group as the simulation models it.
struct Group {
    voters: BTreeSet<NodeId>,
    learners: BTreeSet<NodeId>,
    leader: NodeId,
    /// Up-to-date nodes: live voters, and live learners after one wait.
    caught: BTreeSet<NodeId>,
    /// Nodes that never catch up.
    dead: BTreeSet<NodeId>,
}

impl Group {
    fn live_majority(&self, voters: &BTreeSet<NodeId>) -> bool {
        2 * voters.iter().filter(|n| !self.dead.contains(n)).count() > voters.len()
    }
}

/// Applies `next_step` until `Done` (at most 30 steps) and returns the number of steps taken.
/// Every `Replace` must keep a live majority in the old and new voter sets and keep the leader.
fn simulate(g: &mut Group, target: &[NodeId]) -> Result<usize, TestCaseError> {
    for steps in 0..=30 {
        let view =
            ShardView { voters: &g.voters, learners: &g.learners, leader: g.leader, target, caught_up: &g.caught };
        match next_step(&view) {
            Step::Done => return Ok(steps),
            Step::AddLearner(n) => prop_assert!(g.learners.insert(n) && !g.voters.contains(&n)),
            Step::WaitCatchUp(n) => {
                prop_assert!(g.learners.contains(&n) && !g.dead.contains(&n), "waits on {}", n);
                g.caught.insert(n);
            }
            Step::Replace { add, remove } => {
                prop_assert!(remove != Some(g.leader), "removes the leader");
                let mut new = g.voters.clone();
                if let Some(a) = add {
                    prop_assert!(g.learners.remove(&a) && g.caught.contains(&a));
                    new.insert(a);
                }
                if let Some(r) = remove {
                    prop_assert!(new.remove(&r));
                }
                prop_assert!(g.live_majority(&g.voters) && g.live_majority(&new), "{:?} -> {:?}", g.voters, new);
                g.voters = new;
            }
            Step::RemoveLearner(n) => prop_assert!(g.learners.remove(&n) && !target.contains(&n)),
            Step::TransferLeader(n) => {
                prop_assert!(g.voters.contains(&n) && g.caught.contains(&n));
                g.leader = n;
            }
        }
    }
    Err(TestCaseError::fail("not done after 30 steps"))
}

/// Stickiness: current leaders are kept where the balance allows; the chosen leader moves to the
/// front and the other replicas keep their order.
#[test]
fn balance_keeps_current_leaders() {
    let current = Placement { shards: vec![vec![2, 1, 3], vec![3, 1, 2], vec![9, 1, 2], vec![1, 2, 3]] };
    let mut p = Placement { shards: vec![vec![1, 2, 3]; 3] };
    p.shards.push(vec![3, 2, 1]);
    balance_leaders(&mut p, &current);
    assert_eq!(p.shards, [vec![2, 1, 3], vec![3, 1, 2], vec![1, 2, 3], vec![1, 3, 2]]);
}

/// Leadership moves along a chain of hand-overs when no direct one helps, and stops at the best
/// reachable balance when the cap cannot be met.
#[test]
fn balance_uses_chains_and_stops_when_cap_unreachable() {
    let current = Placement { shards: vec![vec![1, 2], vec![2, 3], vec![1, 2]] };
    let mut p = current.clone();
    balance_leaders(&mut p, &current);
    assert_eq!(p.shards, [vec![2, 1], vec![3, 2], vec![1, 2]]);

    let mut p = Placement { shards: vec![vec![1, 2]; 5] };
    p.shards.push(vec![3, 4]);
    balance_leaders(&mut p, &Placement { shards: vec![vec![1]; 6] });
    let counts = leader_counts(&p);
    assert_eq!((counts[&1], counts[&2], counts[&3]), (3, 2, 1));
}

/// A retired shard (in `current` only) is emptied and then dropped.
#[test]
fn advance_adds_and_retires_shards() {
    let cur = Placement { shards: vec![vec![1, 2], vec![2, 3]] };
    let des = Placement { shards: vec![vec![2, 1]] };
    let (next, taken) = advance(&cur, &des, &BTreeSet::new(), 1);
    assert_eq!((next.shards.as_slice(), taken[0].shard), ([vec![1, 2]].as_slice(), 1));
    assert!(advance(&cur, &des, &BTreeSet::from([0, 1]), 2).1.is_empty());
    let (next, taken) = advance(&empty(), &des, &BTreeSet::new(), 5);
    assert_eq!((next, taken.len()), (des, 1));
}

/// A `next_step` case: voters, learners, leader, target, caught-up nodes, expected step.
type Case = (&'static [NodeId], &'static [NodeId], NodeId, &'static [NodeId], &'static [NodeId], Step);

/// Every branch of `next_step`, with the choice orders and the quorum guard.
#[test]
fn next_step_branches() {
    use Step::*;
    let all: &[NodeId] = &[1, 2, 3, 4, 5, 6, 7];
    let (add, remove) = (None, None);
    #[rustfmt::skip]
    let cases: &[Case] = &[
        (&[1, 2, 3], &[], 1, &[1, 2, 3], all, Done),
        (&[1, 2, 3], &[], 2, &[1, 2, 3], &[2, 3], Done), // target[0] lags: stay
        (&[1, 2, 3], &[], 1, &[], all, Done), // empty target: never empty the group
        (&[1, 2, 3], &[], 1, &[5, 4, 1], all, AddLearner(4)), // lowest id first
        (&[1, 2, 3], &[4], 1, &[1, 2, 4], &[1, 2, 3], WaitCatchUp(4)),
        (&[1, 2, 3], &[4], 1, &[1, 4, 5], all, Replace { add: Some(4), remove: Some(3) }), // highest id
        (&[1, 2, 3], &[4], 1, &[1, 4, 5], &[1, 3, 4], Replace { add: Some(4), remove: Some(2) }), // lagging first
        (&[1, 2, 3], &[4], 3, &[1, 2, 4], all, Replace { add: Some(4), remove }), // never the leader
        (&[1, 2], &[3], 1, &[1, 2, 3], all, Replace { add: Some(3), remove }), // grow
        (&[1, 2, 3, 4], &[], 1, &[1, 2, 3], all, Replace { add, remove: Some(4) }),
        (&[1, 2, 3, 4, 5], &[], 1, &[1, 2, 3], &[1, 2, 3, 5], Replace { add, remove: Some(4) }),
        (&[1, 2, 3, 4], &[], 4, &[2, 1, 3], all, TransferLeader(2)), // leader leaves
        (&[1, 2, 3, 4], &[], 4, &[2, 3, 1], &[1, 3], TransferLeader(1)), // lowest caught-up id
        (&[1, 2, 3, 4], &[], 4, &[2, 1, 3], &[], WaitCatchUp(2)),
        (&[1, 2, 3], &[7, 6], 1, &[1, 2, 3], all, RemoveLearner(6)),
        (&[1, 2, 3], &[], 2, &[1, 2, 3], all, TransferLeader(1)), // preferred leader
        // Quorum guard: old set {1,2,3} has only the leader caught up.
        (&[1, 2, 3], &[4], 1, &[1, 4, 5], &[4], WaitCatchUp(2)),
        // Old set has 3 of 5 caught up, but dropping 5 would leave 2 of 4: wait on target voter 2.
        (&[1, 2, 3, 4, 5], &[], 1, &[1, 2, 3], &[4, 5], WaitCatchUp(2)),
        (&[1, 2, 3, 4, 5], &[], 1, &[1, 2, 3], &[2, 4, 5], Replace { add, remove: Some(5) }),
    ];
    for (i, (v, l, leader, target, caught, want)) in cases.iter().enumerate() {
        let (voters, learners, caught_up) = (set(v), set(l), set(caught));
        let view = ShardView { voters: &voters, learners: &learners, leader: *leader, target, caught_up: &caught_up };
        assert_eq!(&next_step(&view), want, "case {i}: {view:?}");
    }
}

/// `diff` reports order-only changes and new shards; `desired` passes placement errors through.
#[test]
fn diff_and_desired() {
    let a = Placement { shards: vec![vec![1, 2], vec![2, 3]] };
    let b = Placement { shards: vec![vec![1, 2], vec![3, 2], vec![1, 3]] };
    let moves = diff(&a, &b);
    assert_eq!(moves.iter().map(|m| (m.shard, m.leader_only())).collect::<Vec<_>>(), [(1, true), (2, false)]);
    assert_eq!(moves[1].from, Vec::<NodeId>::new());
    assert_eq!(desired(&[], &a, 4, 3, 64), Err(crate::PlacementError::NotEnoughNodes { needed: 3, available: 0 }));
}
