//! The cluster RPCs: `ClusterStatus` as seen from this node (meta state plus its own replicas'
//! Raft state and links), `Decommission`, the `Rebalance` plan, and `Join`.

use client::proto::{
    ClusterStatusResponse, DecommissionResponse, FollowerProgress, JoinRequest, JoinResponse, NodeStatus, PeerLink,
    RebalanceResponse, ShardStatus,
};
use openraft::ServerState;
use raft::{CommandResult, MetaCommand, NodeInfo, NodeState};
use tonic::Status;

use super::errors;
use super::shards::meta_write;
use crate::control::plan::moving;
use crate::control::remaining_plan;
use crate::shared::Shared;

fn role(s: ServerState) -> &'static str {
    match s {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    }
}

fn links(shared: &Shared) -> Vec<PeerLink> {
    shared
        .multi
        .pool()
        .links
        .snapshot()
        .into_iter()
        .map(|(peer, l)| PeerLink {
            peer,
            answered: l.answered,
            timeouts: l.timeouts,
            round_trip_ms: l.round_trip.as_secs_f64() * 1e3,
            ms_since_last_timeout: l.last_timeout.map_or(0, |t| t.elapsed().as_millis() as u64),
        })
        .collect()
}

pub async fn cluster_status(shared: &Shared) -> ClusterStatusResponse {
    let meta = shared.multi.meta().borrow().clone();
    let meta_metrics = shared.multi.meta_raft().metrics().borrow().clone();
    let mut shard_status = Vec::with_capacity(meta.placement.len());
    let mut ready = !meta.placement.is_empty();
    for (shard, replicas) in meta.placement.iter().enumerate() {
        let shard = shard as u32;
        let mut s = ShardStatus {
            shard,
            replicas: replicas.clone(),
            voters: meta.voters(shard).to_vec(),
            ..Default::default()
        };
        if let Some(g) = shared.multi.group(shard) {
            let m = g.raft.metrics().borrow().clone();
            s.hosted = true;
            s.leader_id = m.current_leader.unwrap_or(0);
            s.leader_addr = m
                .current_leader
                .and_then(|l| m.membership_config.membership().get_node(&l).map(|n| n.addr.clone()))
                .unwrap_or_default();
            s.term = m.current_term;
            s.role = role(m.state).into();
            s.last_log_index = m.last_log_index.unwrap_or(0);
            s.last_applied_index = m.last_applied.map_or(0, |l| l.index);
            if let Some(rep) = &m.replication {
                s.followers = rep
                    .iter()
                    .filter(|(id, _)| **id != shared.multi.node_id())
                    .map(|(id, matched)| FollowerProgress {
                        node_id: *id,
                        matched_index: matched.map_or(0, |l| l.index),
                    })
                    .collect();
            }
            ready &= m.current_leader.is_some();
        } else if replicas.contains(&shared.multi.node_id()) {
            ready = false;
        }
        shard_status.push(s);
    }
    let cluster = meta.cluster.clone().unwrap_or_default();
    let moving = moving(&meta);
    let moves_planned = remaining_plan(shared, &meta).len() as u32;
    ClusterStatusResponse {
        moving,
        moves_planned,
        snapshot_bytes_sent: shared.multi.pool().moves.bytes_sent(),
        links: links(shared),
        cluster_id: cluster.cluster_id,
        epoch: meta.epoch,
        shards: if meta.placement.is_empty() { 0 } else { cluster.shards },
        replication_factor: cluster.replication_factor,
        nodes: meta
            .nodes
            .iter()
            .map(|(id, n)| NodeStatus {
                id: *id,
                addr: n.addr.clone(),
                admin_addr: n.admin_addr.clone(),
                zone: n.zone.clone(),
                region: n.region.clone(),
                state: meta.state(*id).name().into(),
                capacity: n.capacity,
                replicas: meta.placement.iter().filter(|r| r.contains(id)).count() as u32,
            })
            .collect(),
        shard_status,
        node_id: shared.multi.node_id(),
        meta_leader: meta_metrics.current_leader.unwrap_or(0),
        ready: ready && meta_metrics.current_leader.is_some(),
    }
}

pub async fn decommission(shared: &Shared, id: u64) -> Result<DecommissionResponse, Status> {
    let meta = shared.multi.meta().borrow().clone();
    if !meta.nodes.contains_key(&id) {
        // INVALID_ARGUMENT: final, clients do not retry it.
        return Err(errors::invalid_field("node_id", format!("no node {id} in this cluster")));
    }
    let state = meta.state(id);
    if matches!(state, NodeState::Draining | NodeState::Removed) {
        return Ok(DecommissionResponse { state: state.name().into() });
    }
    let rf = meta.cluster.as_ref().map_or(0, |c| c.replication_factor as usize);
    let others = meta.active_nodes().filter(|(n, _)| **n != id).count();
    if others < rf {
        return Err(errors::invalid_field(
            "node_id",
            format!(
                "node {id} cannot leave: {others} other active nodes would remain for a replication factor of {rf}"
            ),
        ));
    }
    match meta_write(shared, MetaCommand::SetNodeState { id, state: NodeState::Draining }).await? {
        CommandResult::Recorded => Ok(DecommissionResponse { state: "draining".into() }),
        CommandResult::Rejected(why) => Err(errors::invalid(why)),
        other => Err(errors::unexpected(other)),
    }
}

pub fn rebalance(shared: &Shared) -> RebalanceResponse {
    let meta = shared.multi.meta().borrow().clone();
    RebalanceResponse { epoch: meta.epoch, moving: moving(&meta), planned: remaining_plan(shared, &meta).to_vec() }
}

pub async fn join(shared: &Shared, req: JoinRequest) -> Result<JoinResponse, Status> {
    if req.addr.is_empty() || !req.addr.contains(':') {
        return Err(errors::invalid_field("addr", "must be host:port"));
    }
    let meta_raft = shared.multi.meta_raft();
    let info = NodeInfo {
        addr: req.addr,
        admin_addr: req.admin_addr,
        zone: req.zone,
        region: req.region,
        capacity: req.capacity,
    };
    let id = match meta_write(shared, MetaCommand::AddNode { id: None, info: info.clone() }).await? {
        CommandResult::NodeAdded { id } => id,
        other => return Err(errors::unexpected(other)),
    };
    // A learner of the meta group first; the placement driver promotes it to voter once it
    // has caught up. Not blocking: the new node starts serving only after this returns.
    let membership = meta_raft.metrics().borrow().membership_config.clone();
    if !membership.membership().nodes().any(|(nid, _)| *nid == id) {
        if let Err(e) = meta_raft.add_learner(id, info, false).await {
            return Err(errors::unavailable(format!("adding node {id} to the meta group: {e}")));
        }
    }
    let cluster_id = shared.multi.meta().borrow().cluster.as_ref().map(|c| c.cluster_id.clone()).unwrap_or_default();
    tracing::info!(node = id, "node joined");
    Ok(JoinResponse { node_id: id, cluster_id })
}
