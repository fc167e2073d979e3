//! Background control loops of a node.
//!
//! - The **placement driver** acts only on the meta leader: it keeps the meta group's voters on
//!   active nodes (3, or 5 once five are active), watches every node's liveness (a node
//!   unreachable for `dead_node_after_secs` is declared dead), proposes the first placement once
//!   enough nodes have joined, and then advances the target placement toward the desired one
//!   (`ring::rebalance`) at most `max_concurrent_moves` shards at a time. Drained nodes are
//!   marked removed and leave the meta group. Shard leaders carry the moves out
//!   ([`crate::mover`]).
//! - The **reconciler** runs on every node: it starts the local replica of every shard whose
//!   target or reported voters include this node, initializes a never-formed group on its
//!   preferred leader, and deletes replicas the group has committed a membership without.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::ChangeMembers;
use raft::meta_propose::propose;
use raft::{MetaCommand, MetaState, NodeId, NodeInfo, NodeState};
use ring::{advance, desired, Move};
use ring::{NodeDesc, Placement, Ring};
use tokio::sync::watch;

use crate::shared::Shared;

/// Voters of the meta group with fewer than [`META_VOTERS_LARGE`] active nodes; further nodes
/// hold learner replicas of it.
pub const META_VOTERS: usize = 3;
/// Voters of the meta group once five nodes are active.
pub const META_VOTERS_LARGE: usize = 5;
const TICK: Duration = Duration::from_millis(300);
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
    liveness(shared, &meta, st).await?;
    let Some(cluster) = &meta.cluster else { return Ok(()) };
    let rf = cluster.replication_factor as usize;
    if meta.placement.is_empty() {
        let settled = st.joined.1.is_none_or(|t| t.elapsed() >= JOIN_SETTLE);
        if meta.nodes.len() >= rf && settled {
            let nodes = eligible(&meta);
            let placement = desired(&nodes, &Placement { shards: vec![] }, cluster.shards, rf, Ring::DEFAULT_VNODES)?;
            let cmd = MetaCommand::SetPlacement { expected_epoch: meta.epoch, replicas: placement.shards };
            let r = propose(&shared.multi, cmd).await?;
            tracing::info!(result = ?r, nodes = nodes.len(), "proposed the initial placement");
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

/// Nodes that may hold replicas.
pub fn eligible(meta: &MetaState) -> Vec<NodeDesc> {
    meta.active_nodes()
        .map(|(id, n)| NodeDesc { id: *id, zone: n.zone.clone(), region: n.region.clone(), capacity: n.capacity })
        .collect()
}

/// The next target placement and the moves it starts, from the meta state alone (so any node
/// can show the plan); no moves when fewer than RF nodes are active.
pub fn plan(meta: &MetaState, max_in_flight: usize) -> anyhow::Result<(Placement, Vec<Move>)> {
    let cluster = meta.cluster.clone().unwrap_or_default();
    let current = Placement { shards: meta.placement.clone() };
    let nodes = eligible(meta);
    if nodes.len() < cluster.replication_factor as usize || meta.placement.is_empty() {
        return Ok((current, Vec::new()));
    }
    let want = desired(&nodes, &current, cluster.shards, cluster.replication_factor as usize, Ring::DEFAULT_VNODES)?;
    // A shard whose group has never reported its voters is still forming: not moved yet.
    let in_flight: BTreeSet<u32> = meta.moving_shards().into_iter().collect();
    Ok(advance(&current, &want, &in_flight, max_in_flight))
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

/// Probes every node that is not removed; declares a node dead after `dead_node_after_secs`
/// without an answer and active again when it answers.
async fn liveness(shared: &Shared, meta: &MetaState, st: &mut DriverState) -> anyhow::Result<()> {
    let me = shared.multi.node_id();
    let watched: Vec<(NodeId, NodeInfo)> = meta
        .nodes
        .iter()
        .filter(|(id, _)| **id != me && meta.state(**id) != NodeState::Removed)
        .map(|(id, n)| (*id, n.clone()))
        .collect();
    let probes = watched.iter().map(|(id, n)| {
        let pool = shared.multi.pool().clone();
        let addr = n.addr.clone();
        let id = *id;
        async move { (id, probe(&pool, &addr).await) }
    });
    let now = Instant::now();
    let dead_after = Duration::from_secs(shared.config.dead_node_after_secs);
    let answers: BTreeMap<NodeId, bool> = futures::future::join_all(probes).await.into_iter().collect();
    for (id, ok) in answers {
        let seen = st.last_seen.entry(id).or_insert(now);
        if ok {
            *seen = now;
        }
        let state = meta.state(id);
        let new_state = match state {
            NodeState::Active if now.duration_since(*seen) >= dead_after => Some(NodeState::Dead),
            NodeState::Dead if ok => Some(NodeState::Active),
            _ => None,
        };
        if let Some(s) = new_state {
            tracing::warn!(node = id, from = state.name(), to = s.name(), "node liveness changed");
            propose(&shared.multi, MetaCommand::SetNodeState { id, state: s }).await?;
        }
    }
    Ok(())
}

/// True when the node at `addr` answers a peer RPC within a second.
async fn probe(pool: &raft::network::ChannelPool, addr: &str) -> bool {
    let Ok(channel) = pool.get(addr) else { return false };
    let mut c = client::proto::traceo_client::TraceoClient::new(channel);
    let mut req = tonic::Request::new(client::proto::ClusterStatusRequest {});
    req.set_timeout(Duration::from_secs(1));
    tokio::time::timeout(Duration::from_secs(1), c.cluster_status(req)).await.is_ok_and(|r| r.is_ok())
}

pub async fn run_reconciler(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut meta_rx = shared.multi.meta();
    let mut swept = false;
    loop {
        if let Err(e) = reconcile(&shared, &mut swept).await {
            tracing::warn!("reconciler: {e:#}");
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = meta_rx.changed() => {}
            _ = stop.changed() => return,
        }
    }
}

async fn reconcile(shared: &Shared, swept: &mut bool) -> anyhow::Result<()> {
    let me = shared.multi.node_id();
    let meta = shared.multi.meta().borrow().clone();
    if meta.placement.is_empty() {
        return Ok(());
    }
    for (shard, replicas) in meta.placement.iter().enumerate() {
        let shard = shard as u32;
        let voters = meta.voters(shard);
        if !replicas.contains(&me) && !voters.contains(&me) {
            continue;
        }
        let group = shared.multi.ensure_shard(shard).await?;
        // Only a group that never formed is initialized, by its preferred leader; after that,
        // replicas join as learners of the running group.
        let never_formed = meta.members.get(shard as usize).is_some_and(|m| m.voters.is_empty());
        if never_formed && replicas.first() == Some(&me) && !group.raft.is_initialized().await? {
            let members: BTreeMap<NodeId, NodeInfo> =
                replicas.iter().filter_map(|id| meta.nodes.get(id).map(|n| (*id, n.clone()))).collect();
            match group.raft.initialize(members).await {
                Ok(()) => tracing::info!(shard, ?replicas, "initialized shard group"),
                Err(e) => tracing::debug!(shard, "initialize: {e}"),
            }
        }
    }
    // Replicas on disk from before a restart run again first, so the check below sees them.
    if !*swept {
        for shard in shared.multi.shards_on_disk()? {
            shared.multi.ensure_shard(shard).await?;
        }
        *swept = true;
    }
    // A replica is deleted once the meta group has a report of its group's membership that is
    // at least as new as the newest one this replica knows and leaves it out, and the target
    // leaves it out too. A stale local meta replica only delays this: it holds an older report.
    for g in shared.multi.shards() {
        let local = g.raft.metrics().borrow().membership_config.log_id().map_or(0, |l| l.index);
        let shard = g.group;
        let report = meta.members.get(shard as usize);
        let gone = report.is_some_and(|r| !r.voters.is_empty() && r.log_index >= local && !r.voters.contains(&me));
        if gone && !meta.replicas(shard).contains(&me) {
            shared.proposers.lock().expect("proposers lock").remove(&shard);
            shared.multi.remove_shard(shard).await?;
        }
    }
    Ok(())
}

pub async fn run_metrics_sampler(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        shared.metrics.sample(&shared);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = stop.changed() => return,
        }
    }
}
