//! The replica mover: on every node, for every shard this node leads, moves the group's voters
//! toward the shard's target placement one safe step at a time (`ring::rebalance::next_step`):
//! add a learner, let openraft fill it (snapshot in chunks, then the log), replace one voter
//! through a joint membership change once it has caught up, hand leadership over, drop stray
//! learners. It also reports the group's committed voters to the meta group, which is how the
//! placement driver learns that a move finished and how removed replicas learn they may go.
//!
//! Everything it needs is in the shard's Raft state and the meta state, so a crash of any
//! participant (this leader included) loses nothing: the next leader takes the next step.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::{ChangeMembers, ServerState};
use raft::meta_propose::propose;
use raft::transfer::CampaignOrder;
use raft::{GroupHandle, MetaCommand, NodeId, NodeInfo};
use ring::{next_step, ShardView, Step};
use tokio::sync::watch;

use super::TICK;
use crate::shared::Shared;

/// A replica whose log is within this many entries of the leader's counts as caught up.
const CAUGHT_UP_SLACK: u64 = 64;
/// Added to the election lease before a new leader starts moving replicas.
const LEADER_SETTLE_MARGIN: Duration = Duration::from_millis(500);
/// How long a hand-over may take before the old leader resumes.
const TRANSFER_PATIENCE: Duration = Duration::from_secs(4);

pub async fn run_mover(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let busy: Arc<Mutex<HashSet<u32>>> = Default::default();
    // Since when this node has led each shard, in which term.
    let mut leading: HashMap<u32, (u64, Instant)> = HashMap::new();
    let settle = Duration::from_millis(shared.config.election_timeout_max_ms) + LEADER_SETTLE_MARGIN;
    loop {
        for g in shared.multi.shards() {
            let m = g.raft.metrics().borrow().clone();
            if m.state != ServerState::Leader {
                leading.remove(&g.group);
                continue;
            }
            let since = leading.entry(g.group).or_insert((m.current_term, Instant::now()));
            if since.0 != m.current_term {
                *since = (m.current_term, Instant::now());
            }
            // A new leader waits out its election lease before moving anything, so a
            // hand-over it starts is granted at once (see `transfer`).
            if since.1.elapsed() < settle || !busy.lock().expect("busy lock").insert(g.group) {
                continue;
            }
            let (shared, busy) = (shared.clone(), busy.clone());
            tokio::spawn(async move {
                if let Err(e) = step_shard(&shared, &g).await {
                    tracing::warn!(shard = g.group, "replica move step: {e:#}");
                }
                busy.lock().expect("busy lock").remove(&g.group);
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One step for one shard this node leads.
async fn step_shard(shared: &Shared, g: &GroupHandle) -> anyhow::Result<()> {
    let me = shared.multi.node_id();
    let shard = g.group;
    let meta = shared.multi.meta().borrow().clone();
    let target = meta.replicas(shard).to_vec();
    let m = g.raft.metrics().borrow().clone();
    if target.is_empty() || m.current_leader != Some(me) {
        return Ok(());
    }
    let stored = m.membership_config.clone();
    let membership = stored.membership();
    let configs = membership.get_joint_config();
    let voters: BTreeSet<NodeId> = configs.last().cloned().unwrap_or_default();
    let learners: BTreeSet<NodeId> = membership.learner_ids().collect();
    let committed = stored.log_id().is_some_and(|l| m.last_applied.is_some_and(|a| a.index >= l.index));
    let log_index = stored.log_id().map_or(0, |l| l.index);

    if committed && configs.len() == 1 {
        let reported = &meta.members.get(shard as usize);
        let known: Vec<NodeId> = voters.iter().copied().collect();
        // Every newer committed membership is reported (learner changes too): a removed
        // learner deletes its replica only once a report at least as new as its own exists.
        if reported.is_some_and(|r| r.voters.is_empty() || r.log_index < log_index) {
            let cmd = MetaCommand::ReportMembers { shard, voters: known, log_index };
            propose(&shared.multi, cmd).await?;
            return Ok(());
        }
    }

    let last = m.last_log_index.unwrap_or(0);
    let matched: BTreeMap<NodeId, u64> = m
        .replication
        .as_ref()
        .map(|r| r.iter().map(|(id, l)| (*id, l.map_or(0, |l| l.index))).collect())
        .unwrap_or_default();
    let mut caught_up: BTreeSet<NodeId> =
        matched.iter().filter(|(_, &idx)| idx + CAUGHT_UP_SLACK >= last).map(|(id, _)| *id).collect();
    caught_up.insert(me);
    let view = ShardView { voters: &voters, learners: &learners, leader: me, target: &target, caught_up: &caught_up };
    let info = |id: NodeId| -> anyhow::Result<NodeInfo> {
        meta.nodes.get(&id).cloned().ok_or_else(|| anyhow::anyhow!("node {id} is not in the meta state"))
    };
    let mut step = next_step(&view);
    // When this leader is the replica to drop, `next_step` grows the group by one voter first.
    // A hand-over among three voters is quick (see `transfer`) and among four it waits out a
    // lease, so hand leadership to a caught-up target voter before growing.
    if let Step::Replace { add: Some(_), remove: None } = step {
        let successor = target.iter().find(|n| **n != me && voters.contains(n) && caught_up.contains(n));
        if voters.len() <= 3 && !target.contains(&me) {
            if let Some(&to) = successor {
                step = Step::TransferLeader(to);
            }
        }
    }
    match step {
        Step::Done | Step::WaitCatchUp(_) => {}
        Step::AddLearner(n) => {
            tracing::info!(shard, node = n, "adding a learner");
            g.raft.add_learner(n, info(n)?, false).await?;
        }
        Step::Replace { add, remove } => {
            let mut next = voters.clone();
            next.extend(add);
            if let Some(r) = remove {
                next.remove(&r);
            }
            tracing::info!(shard, ?add, ?remove, ?next, "changing voters");
            // `retain: false`: a removed voter leaves the group entirely; its node deletes the
            // replica once the meta group records the new voters.
            g.raft.change_membership(ChangeMembers::ReplaceAllVoters(next), false).await?;
        }
        Step::RemoveLearner(n) => {
            tracing::info!(shard, node = n, "removing a stray learner");
            g.raft.change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([n])), false).await?;
        }
        Step::TransferLeader(to) => transfer(shared, g, to, &voters, &meta.nodes).await?,
    }
    Ok(())
}

/// Hands leadership of `g` to `to` (see `raft::transfer`): hold proposals and drain, wait until
/// `to` has everything, stop heartbeats, order the campaign, and resume whatever happened.
async fn transfer(
    shared: &Shared,
    g: &GroupHandle,
    to: NodeId,
    voters: &BTreeSet<NodeId>,
    nodes: &BTreeMap<NodeId, NodeInfo>,
) -> anyhow::Result<()> {
    let me = shared.multi.node_id();
    let shard = g.group;
    let proposer = shared.proposer(g);
    let _hold = proposer.hold().await;
    // `to` must have every entry, or it cannot win.
    let mut rx = g.raft.metrics();
    let synced = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            let m = rx.borrow_and_update().clone();
            let last = m.last_log_index.unwrap_or(0);
            let theirs = m.replication.as_ref().and_then(|r| r.get(&to).cloned().flatten()).map_or(0, |l| l.index);
            if theirs >= last || m.current_leader != Some(me) {
                return m.current_leader == Some(me);
            }
            if rx.changed().await.is_err() {
                return false;
            }
        }
    })
    .await;
    if synced != Ok(true) {
        anyhow::bail!("node {to} did not catch up for the hand-over of shard {shard}");
    }
    let lease_ms = shared.config.election_timeout_max_ms;
    // With three voters, the candidate's own vote and this leader's make a majority, and this
    // leader grants it at once (openraft checks a leader's lease from when it was elected, and
    // `run_mover` lets a leader act only after that lease): the candidate may campaign now.
    // With more voters the others must be asked too, and they refuse until their lease from
    // this leader has run out, so heartbeats stop and the candidate waits that long.
    let fast = voters.len() <= 3;
    let order = CampaignOrder {
        candidate: to,
        campaign_after_ms: if fast { 0 } else { lease_ms + 150 },
        hold_elections_ms: lease_ms + 3000,
    };
    tracing::info!(shard, to, fast, "handing leadership over");
    let rc = g.raft.runtime_config();
    if !fast {
        rc.heartbeat(false);
    }
    rc.elect(false);
    for v in voters.iter().filter(|v| **v != me) {
        let Some(n) = nodes.get(v) else { continue };
        if let Err(e) = raft::network::send_campaign_order(shared.multi.pool(), &n.addr, shard, &order).await {
            tracing::warn!(shard, node = v, "campaign order: {e:#}");
        }
    }
    let moved = tokio::time::timeout(Duration::from_millis(lease_ms) + TRANSFER_PATIENCE, async {
        loop {
            if rx.borrow_and_update().current_leader.is_some_and(|l| l != me) {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
    rc.heartbeat(true);
    rc.elect(true);
    let leader = g.raft.metrics().borrow().current_leader;
    tracing::info!(shard, to, ?leader, timed_out = moved.is_err(), "hand-over finished");
    Ok(())
}
