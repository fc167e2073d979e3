//! The placement driver, which acts only on the meta leader: it keeps the meta group's voters on
//! active nodes (3, or 5 once five are active), watches every node's liveness ([`super::liveness`]),
//! proposes the first placement once enough nodes have joined, and then advances the target
//! placement toward the desired one ([`super::plan`]) at most `max_concurrent_moves` shards at a
//! time. Drained nodes are marked removed and leave the meta group. Shard leaders carry the moves
//! out ([`super::mover`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::ChangeMembers;
use raft::meta_propose::propose;
use raft::{MetaCommand, MetaState, NodeId, NodeState};
use tokio::sync::watch;

use super::liveness::liveness;
use super::plan::{eligible, initial, plan};
use super::TICK;
use crate::shared::Shared;

/// Voters of the meta group with fewer than [`META_VOTERS_LARGE`] active nodes; further nodes
/// hold learner replicas of it.
pub const META_VOTERS: usize = 3;
/// Voters of the meta group once five nodes are active.
pub const META_VOTERS_LARGE: usize = 5;
/// The first placement waits until no node has joined for this long (nodes started together
/// all get replicas at once instead of some being moved to them right after).
const JOIN_SETTLE: Duration = Duration::from_secs(2);

/// What the meta leader remembers between ticks (lost, harmlessly, when leadership moves).
#[derive(Default)]
struct DriverState {
    /// Last successful liveness probe of each node, or when this leader started watching it.
    last_seen: HashMap<NodeId, Instant>,
    /// Node count and when it last changed.
    joined: (usize, Option<Instant>),
}

pub async fn run_placement_driver(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut state = DriverState::default();
    loop {
        if let Err(e) = placement_tick(&shared, &mut state).await {
            tracing::warn!("placement driver: {e:#}");
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn placement_tick(shared: &Shared, st: &mut DriverState) -> anyhow::Result<()> {
    let me = shared.multi.node_id();
    let m = shared.multi.meta_raft().metrics().borrow().clone();
    if m.current_leader != Some(me) {
        *st = DriverState::default();
        return Ok(());
    }
    let meta = shared.multi.meta().borrow().clone();
    if st.joined.0 != meta.nodes.len() {
        st.joined = (meta.nodes.len(), Some(Instant::now()));
    }
    meta_voters(shared, &meta).await?;
    liveness(shared, &meta, &mut st.last_seen).await?;
    let Some(cluster) = &meta.cluster else { return Ok(()) };
    let rf = cluster.replication_factor as usize;
    if meta.placement.is_empty() {
        let settled = st.joined.1.is_none_or(|t| t.elapsed() >= JOIN_SETTLE);
        if meta.nodes.len() >= rf && settled {
            let placement = initial(&meta)?;
            let cmd = MetaCommand::SetPlacement { expected_epoch: meta.epoch, replicas: placement.shards };
            let r = propose(&shared.multi, cmd).await?;
            tracing::info!(result = ?r, nodes = eligible(&meta).len(), "proposed the initial placement");
        }
        return Ok(());
    }
    for (id, _) in meta.nodes.iter().filter(|(id, _)| meta.state(**id) == NodeState::Draining) {
        if !meta.holds_replicas(*id) {
            tracing::info!(node = id, "node drained; removing it");
            propose(&shared.multi, MetaCommand::SetNodeState { id: *id, state: NodeState::Removed }).await?;
            return Ok(());
        }
    }
    let (next, moves) = plan(&meta, shared.config.max_concurrent_moves)?;
    if !moves.is_empty() {
        tracing::info!(moves = ?moves, "advancing the placement");
        let cmd = MetaCommand::SetPlacement { expected_epoch: meta.epoch, replicas: next.shards };
        propose(&shared.multi, cmd).await?;
    }
    Ok(())
}

/// Keeps the meta group's voters on active nodes: replaces voters that are not active with
/// caught-up active learners, grows to [`META_VOTERS_LARGE`] voters when enough nodes are
/// active, and drops removed nodes from the group.
async fn meta_voters(shared: &Shared, meta: &MetaState) -> anyhow::Result<()> {
    let raft = shared.multi.meta_raft();
    let m = raft.metrics().borrow().clone();
    let membership = m.membership_config.membership().clone();
    if membership.get_joint_config().len() > 1 {
        return Ok(());
    }
    let removed: BTreeSet<NodeId> = membership
        .nodes()
        .map(|(id, _)| *id)
        .filter(|id| meta.state(*id) == NodeState::Removed && !membership.voter_ids().any(|v| v == *id))
        .collect();
    if !removed.is_empty() {
        tracing::info!(?removed, "dropping removed nodes from the meta group");
        raft.change_membership(ChangeMembers::RemoveNodes(removed), false).await?;
        return Ok(());
    }
    let active = |id: &NodeId| meta.state(*id) == NodeState::Active;
    let n_active = meta.nodes.keys().filter(|id| active(id)).count();
    let want = if n_active >= META_VOTERS_LARGE { META_VOTERS_LARGE } else { META_VOTERS };
    let last = m.last_log_index.unwrap_or(0);
    let caught_up = |id: &NodeId| {
        let matched = m.replication.as_ref().and_then(|r| r.get(id).cloned().flatten());
        matched.is_some_and(|l| l.index + 64 >= last)
    };
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let mut next: BTreeSet<NodeId> = voters.iter().copied().filter(|id| active(id)).collect();
    for id in membership.learner_ids().filter(|id| active(id) && caught_up(id)) {
        if next.len() >= want {
            break;
        }
        next.insert(id);
    }
    while next.len() > want {
        let Some(extra) = next.iter().rev().copied().find(|id| *id != m.id) else { break };
        next.remove(&extra);
    }
    // Voters that are not active leave only as far as replacements keep the count; those kept
    // are this leader first (it is alive), then the others. A leader that leaves steps down
    // once the change is committed.
    let mut keep: Vec<NodeId> = voters.iter().copied().filter(|id| !active(id)).collect();
    keep.sort_by_key(|id| *id != m.id);
    for id in keep {
        if next.len() >= want.min(voters.len()) {
            break;
        }
        next.insert(id);
    }
    if next != voters && next.len() >= voters.len().min(want) {
        tracing::info!(?voters, ?next, "changing the meta group's voters");
        raft.change_membership(ChangeMembers::ReplaceAllVoters(next), true).await?;
    }
    Ok(())
}
