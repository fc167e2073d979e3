//! Rebalancing: the pure planning half of moving shard replicas between nodes.
//!
//! Two loops use this module:
//!
//! * The **placement driver** (meta leader) computes the [`desired`] placement for the eligible
//!   nodes (active, not draining, not dead) and moves the target placement toward it with
//!   [`advance`], a few shards at a time. [`diff`] lists the shards whose target changes as
//!   [`Move`]s.
//! * The **leader of each shard** calls [`next_step`] with what it sees of its group
//!   ([`ShardView`]) and executes the returned [`Step`], until it gets [`Step::Done`].
//!
//! # Leaders
//!
//! [`desired`] keeps the replica sets of [`place`] and reorders them with [`balance_leaders`]:
//! at most `ceil(shards / nodes)` leaders per node when achievable, keeping current leaders.
//!
//! # Membership steps
//!
//! [`next_step`] changes at most one replica at a time and never costs the group its quorum. A
//! node is *caught up* when the view says so; the leader always is. The rules, in order:
//!
//! 1. **Add.** Let `n` be the lowest-id target node that is not a voter. Not a learner yet:
//!    [`Step::AddLearner`]. A learner not caught up: [`Step::WaitCatchUp`]. Caught up:
//!    [`Step::Replace`] adding `n` and removing one non-target voter other than the leader
//!    (voters not caught up first, then the highest id), or removing nothing when there is no
//!    such voter (the group then briefly has one voter more than the target).
//! 2. **Remove.** Every target node is a voter but some voters are not in the target: remove a
//!    non-leader one with [`Step::Replace`] (same choice order). If the leader is the only one,
//!    [`Step::TransferLeader`] to `target[0]` when it is caught up, else to the lowest-id
//!    caught-up target voter, else [`Step::WaitCatchUp`] on `target[0]`.
//! 3. **Stray learners** (not in the target): [`Step::RemoveLearner`], lowest id first.
//! 4. **Preferred leader.** `target[0]` is a caught-up voter but not the leader:
//!    [`Step::TransferLeader`] to it. Otherwise [`Step::Done`].
//!
//! Quorum guard: a `Replace` is one joint membership change, so the old and the new voter sets
//! must each have a majority of caught-up members. When one would not, the step is
//! [`Step::WaitCatchUp`] on a lagging voter (target voters first, then the lowest id). The
//! leader is never removed, and an empty target gives [`Step::Done`] (a group is never emptied).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::{place, NodeDesc, NodeId, Placement, PlacementError, ShardId};

/// The desired placement for `nodes`: [`place`]`(nodes, shards, rf, vnodes)` with the replicas
/// of each shard reordered by [`balance_leaders`] relative to `current` (which may be empty or
/// have a different number of shards).
pub fn desired(
    nodes: &[NodeDesc],
    current: &Placement,
    shards: u32,
    rf: usize,
    vnodes: u32,
) -> Result<Placement, PlacementError> {
    let mut p = place(nodes, shards, rf, vnodes)?;
    balance_leaders(&mut p, current);
    Ok(p)
}

/// Reorders each shard's replicas (never changes the sets) so that leaders (first replicas) are
/// balanced: every node leads at most `ceil(shards / distinct nodes in p)` shards where that is
/// achievable; where it is not, leadership moves from the most loaded nodes as long as that
/// lowers their load. A shard keeps `current`'s first replica when that node is still a replica
/// and the balance allows it. The chosen leader moves to the front; the other replicas keep
/// their order. Deterministic.
pub fn balance_leaders(p: &mut Placement, current: &Placement) {
    let mut leaders = Leaders::new(&p.shards);
    let cap = leaders.cap();
    for (s, replicas) in p.shards.iter().enumerate() {
        let kept = current.leader(s as ShardId).filter(|c| replicas.contains(c));
        if let Some(c) = kept {
            leaders.assign(s, c);
        }
    }
    for (s, replicas) in p.shards.iter().enumerate() {
        if leaders.leader[s].is_none() && !replicas.is_empty() {
            let pick = leaders.greedy_pick(replicas, cap);
            leaders.assign(s, pick);
        }
    }
    while leaders.relieve_one(cap) {}
    let chosen = leaders.leader;
    for (replicas, leader) in p.shards.iter_mut().zip(chosen) {
        if let Some(pos) = leader.and_then(|l| replicas.iter().position(|&n| n == l)) {
            replicas[..=pos].rotate_right(1);
        }
    }
}

/// A leader assignment being balanced.
struct Leaders<'a> {
    /// Replicas of each shard.
    replicas: &'a [Vec<NodeId>],
    /// Chosen leader of each shard.
    leader: Vec<Option<NodeId>>,
    /// Shards led by each node that holds any replica.
    load: BTreeMap<NodeId, usize>,
}

impl<'a> Leaders<'a> {
    fn new(replicas: &'a [Vec<NodeId>]) -> Self {
        let load = replicas.iter().flatten().map(|&n| (n, 0)).collect();
        Leaders { replicas, leader: vec![None; replicas.len()], load }
    }

    /// `ceil(non-empty shards / distinct nodes)`.
    fn cap(&self) -> usize {
        self.replicas.iter().filter(|r| !r.is_empty()).count().div_ceil(self.load.len().max(1))
    }

    fn assign(&mut self, shard: usize, node: NodeId) {
        self.leader[shard] = Some(node);
        *self.load.entry(node).or_default() += 1;
    }

    /// The first replica under the cap, else the least loaded one (first in order on ties).
    fn greedy_pick(&self, replicas: &[NodeId], cap: usize) -> NodeId {
        let load = |n: &NodeId| self.load[n];
        let under = replicas.iter().find(|n| load(n) < cap);
        *under.or_else(|| replicas.iter().min_by_key(|n| load(n))).expect("non-empty replicas")
    }

    /// Moves one unit of leadership away from an over-cap node (most loaded first, then lowest
    /// id) along the shortest chain of hand-overs to a node leading at least two shards fewer.
    /// Returns false when no over-cap node has such a chain. Each move lowers the sum of squared
    /// loads, so repeating it terminates.
    fn relieve_one(&mut self, cap: usize) -> bool {
        let mut over: Vec<(NodeId, usize)> =
            self.load.iter().filter(|(_, &l)| l > cap).map(|(&n, &l)| (n, l)).collect();
        over.sort_by_key(|&(n, l)| (std::cmp::Reverse(l), n));
        let mut led: BTreeMap<NodeId, Vec<usize>> = BTreeMap::new();
        for (s, l) in self.leader.iter().enumerate() {
            if let Some(l) = l {
                led.entry(*l).or_default().push(s);
            }
        }
        for (from, l) in over {
            if let Some(chain) = self.chain(from, l - 2, &led) {
                for &(s, to) in &chain {
                    self.leader[s] = Some(to);
                }
                *self.load.get_mut(&from).expect("loaded") -= 1;
                *self.load.get_mut(&chain[0].1).expect("replica") += 1;
                return true;
            }
        }
        false
    }

    /// Breadth-first search from `from` for a node with load `<= limit`. The chain is returned
    /// end first, as `(shard, new leader)` hand-overs.
    fn chain(&self, from: NodeId, limit: usize, led: &BTreeMap<NodeId, Vec<usize>>) -> Option<Vec<(usize, NodeId)>> {
        let mut parent: BTreeMap<NodeId, (NodeId, usize)> = BTreeMap::new();
        let mut queue = VecDeque::from([from]);
        while let Some(x) = queue.pop_front() {
            for &s in led.get(&x).into_iter().flatten() {
                for &y in &self.replicas[s] {
                    if y == from || parent.contains_key(&y) {
                        continue;
                    }
                    parent.insert(y, (x, s));
                    if self.load[&y] <= limit {
                        let (mut chain, mut z) = (Vec::new(), y);
                        while let Some(&(x, s)) = parent.get(&z) {
                            chain.push((s, z));
                            z = x;
                        }
                        return Some(chain);
                    }
                    queue.push_back(y);
                }
            }
        }
        None
    }
}

/// One shard whose target changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    /// The shard.
    pub shard: ShardId,
    /// Target replicas before, preferred leader first (empty for a new shard).
    pub from: Vec<NodeId>,
    /// Target replicas after, preferred leader first (empty for a retired shard).
    pub to: Vec<NodeId>,
}

/// Nodes of `a` not in `b`, in id order.
fn minus(a: &[NodeId], b: &[NodeId]) -> Vec<NodeId> {
    let set: BTreeSet<NodeId> = a.iter().copied().filter(|n| !b.contains(n)).collect();
    set.into_iter().collect()
}

impl Move {
    /// Replicas added (in `to`, not in `from`), in id order.
    pub fn added(&self) -> Vec<NodeId> {
        minus(&self.to, &self.from)
    }

    /// Replicas removed (in `from`, not in `to`), in id order.
    pub fn removed(&self) -> Vec<NodeId> {
        minus(&self.from, &self.to)
    }

    /// True when only the order (the preferred leader) changes: same replica set.
    pub fn leader_only(&self) -> bool {
        self.added().is_empty() && self.removed().is_empty()
    }
}

/// Every shard whose replica list (set or order) differs between `current` and `desired`, by
/// shard id. Shards missing in `current` count as `from = []`, shards missing in `desired` as
/// `to = []`.
pub fn diff(current: &Placement, desired: &Placement) -> Vec<Move> {
    let len = current.shards.len().max(desired.shards.len());
    let replicas = |p: &Placement, s: usize| p.shards.get(s).cloned().unwrap_or_default();
    (0..len)
        .map(|s| Move { shard: s as ShardId, from: replicas(current, s), to: replicas(desired, s) })
        .filter(|m| m.from != m.to)
        .collect()
}

/// The next target: `current` with at most `max_in_flight - in_flight.len()` (saturating) of the
/// moves of [`diff`]`(current, desired)` applied, skipping shards in `in_flight` (their previous
/// move has not finished). Moves that change the replica set go first (lowest shard id first),
/// then leader-only moves. Returns the new placement and the moves taken. Retired shards at the
/// end (beyond `desired`'s length, now empty) are dropped.
pub fn advance(
    current: &Placement,
    desired: &Placement,
    in_flight: &BTreeSet<ShardId>,
    max_in_flight: usize,
) -> (Placement, Vec<Move>) {
    let budget = max_in_flight.saturating_sub(in_flight.len());
    let (mut taken, leader_only): (Vec<Move>, Vec<Move>) =
        diff(current, desired).into_iter().filter(|m| !in_flight.contains(&m.shard)).partition(|m| !m.leader_only());
    taken.extend(leader_only);
    taken.truncate(budget);

    let mut next = current.clone();
    for m in &taken {
        let s = m.shard as usize;
        next.shards.resize(next.shards.len().max(s + 1), Vec::new());
        next.shards[s].clone_from(&m.to);
    }
    while next.shards.len() > desired.shards.len() && next.shards.last().is_some_and(Vec::is_empty) {
        next.shards.pop();
    }
    (next, taken)
}

/// What the leader of one shard sees.
#[derive(Clone, Copy, Debug)]
pub struct ShardView<'a> {
    /// Current voters.
    pub voters: &'a BTreeSet<NodeId>,
    /// Current learners.
    pub learners: &'a BTreeSet<NodeId>,
    /// The node asking, the group's leader (a voter).
    pub leader: NodeId,
    /// Target replicas, preferred leader first.
    pub target: &'a [NodeId],
    /// Voters and learners whose log is (nearly) up to date; the leader always counts as caught up.
    pub caught_up: &'a BTreeSet<NodeId>,
}

/// The next membership step for one shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Voters equal the target set, no stray learners, and the leader is `target[0]` (or
    /// `target[0]` is not caught up): nothing to do.
    Done,
    /// Add this node as a learner (it is in the target, not a voter, not yet a learner).
    AddLearner(NodeId),
    /// This node is being filled (or a lagging voter blocks a change); ask again later.
    WaitCatchUp(NodeId),
    /// Change the voters to `voters + add - remove` in one (joint) membership change.
    Replace {
        /// Caught-up learner to promote.
        add: Option<NodeId>,
        /// Voter to drop (never the leader).
        remove: Option<NodeId>,
    },
    /// Remove a learner that is not in the target.
    RemoveLearner(NodeId),
    /// Hand leadership to this caught-up voter (the leader must be removed, or `target[0]`
    /// should lead).
    TransferLeader(NodeId),
}

impl ShardView<'_> {
    fn caught(&self, n: NodeId) -> bool {
        n == self.leader || self.caught_up.contains(&n)
    }

    fn in_target(&self, n: NodeId) -> bool {
        self.target.contains(&n)
    }

    /// The non-target, non-leader voter to remove first: lagging before caught up, then highest id.
    fn removable(&self) -> Option<NodeId> {
        let extra = self.voters.iter().copied().filter(|&v| v != self.leader && !self.in_target(v));
        extra.max_by_key(|&v| (!self.caught(v), v))
    }

    /// Whether more than half of `set` is caught up.
    fn majority_caught(&self, set: &BTreeSet<NodeId>) -> bool {
        2 * set.iter().filter(|&&n| self.caught(n)).count() > set.len()
    }

    /// `Replace { add, remove }` if both voter sets keep a caught-up majority, else wait for a
    /// lagging voter (target voters first, then lowest id).
    fn replace(&self, add: Option<NodeId>, remove: Option<NodeId>) -> Step {
        let new: BTreeSet<NodeId> = self.voters.iter().copied().chain(add).filter(|&v| Some(v) != remove).collect();
        if self.majority_caught(self.voters) && self.majority_caught(&new) {
            return Step::Replace { add, remove };
        }
        let lagging = self.voters.iter().copied().filter(|&v| !self.caught(v)).min_by_key(|&v| (!self.in_target(v), v));
        // Unreachable fallback: with every old voter caught up both majorities hold.
        Step::WaitCatchUp(lagging.unwrap_or(self.target[0]))
    }

    /// Rule 1: bring target node `n` in.
    fn add_step(&self, n: NodeId) -> Step {
        if !self.learners.contains(&n) {
            Step::AddLearner(n)
        } else if !self.caught(n) {
            Step::WaitCatchUp(n)
        } else {
            self.replace(Some(n), self.removable())
        }
    }

    /// Rule 2: every target node is a voter; drop the others.
    fn remove_step(&self) -> Option<Step> {
        if let Some(r) = self.removable() {
            return Some(self.replace(None, Some(r)));
        }
        if self.in_target(self.leader) {
            return None;
        }
        let preferred = self.target[0];
        let caught_target = |n: &NodeId| self.voters.contains(n) && self.caught(*n);
        let to =
            Some(preferred).filter(caught_target).or_else(|| self.target.iter().copied().filter(caught_target).min());
        Some(to.map_or(Step::WaitCatchUp(preferred), Step::TransferLeader))
    }
}

/// The next membership step for one shard. In order: bring in the lowest-id missing target node
/// (learner, catch-up, then a `Replace` that drops a lagging or the highest non-target voter, never
/// the leader); drop the remaining non-target voters (the leader last, by handing leadership to
/// `target[0]` or another caught-up target voter); remove stray learners; move leadership to
/// `target[0]`. A `Replace` keeps a caught-up majority in both the old and the new voter set;
/// when it would not, the step waits for a lagging voter.
pub fn next_step(view: &ShardView) -> Step {
    if view.target.is_empty() {
        return Step::Done;
    }
    if let Some(n) = view.target.iter().copied().filter(|n| !view.voters.contains(n)).min() {
        return view.add_step(n);
    }
    if let Some(step) = view.remove_step() {
        return step;
    }
    if let Some(&stray) = view.learners.iter().find(|&&l| !view.in_target(l)) {
        return Step::RemoveLearner(stray);
    }
    let preferred = view.target[0];
    if preferred != view.leader && view.voters.contains(&preferred) && view.caught(preferred) {
        return Step::TransferLeader(preferred);
    }
    Step::Done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn move_accessors() {
        let m = Move { shard: 3, from: vec![5, 1, 2], to: vec![4, 2, 1, 6] };
        assert_eq!((m.added(), m.removed(), m.leader_only()), (vec![4, 6], vec![5], false));
        let m = Move { shard: 0, from: vec![1, 2, 3], to: vec![2, 1, 3] };
        assert_eq!((m.added(), m.removed(), m.leader_only()), (vec![], vec![], true));
        let m = Move { shard: 1, from: vec![], to: vec![3, 1] };
        assert_eq!((m.added(), m.removed(), m.leader_only()), (vec![1, 3], vec![], false));
    }
}
