//! `ClusterStatus` as seen from this node: meta state plus its own replicas' Raft state.

use client::proto::{ClusterStatusResponse, FollowerProgress, NodeStatus, PeerLink, ShardMove, ShardStatus};
use openraft::ServerState;

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
    let moves_planned = shared.planned(&meta).len() as u32;
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

/// Shards whose reported voters differ from their target.
pub fn moving(meta: &raft::MetaState) -> Vec<ShardMove> {
    meta.moving_shards()
        .into_iter()
        .map(|s| ShardMove { shard: s, from: meta.voters(s).to_vec(), to: meta.replicas(s).to_vec() })
        .collect()
}

/// Every shard change the placement driver still has to start (the whole plan: the driver
/// starts it a few shards at a time, set changes before leader-only ones).
pub fn planned(meta: &raft::MetaState) -> Vec<ShardMove> {
    let mut meta = meta.clone();
    // As if every move under way had finished.
    meta.members = (0..meta.placement.len() as u32)
        .map(|s| {
            let mut voters = meta.replicas(s).to_vec();
            voters.sort_unstable();
            raft::ShardMembers { voters, log_index: 1 }
        })
        .collect();
    match crate::driver::plan(&meta, usize::MAX) {
        Ok((_, moves)) => moves.into_iter().map(|m| ShardMove { shard: m.shard, from: m.from, to: m.to }).collect(),
        Err(_) => Vec::new(),
    }
}
