//! The placement driver's pure planning: from the meta state alone (so any node can show the
//! plan, and tests need no cluster) which nodes may hold replicas, the next target placement and
//! the moves it starts, the moves under way and the whole remaining plan.

use std::collections::BTreeSet;

use client::proto::ShardMove;
use raft::MetaState;
use ring::{advance, desired, Move, NodeDesc, Placement, Ring};

/// Nodes that may hold replicas: the active ones.
pub fn eligible(meta: &MetaState) -> Vec<NodeDesc> {
    meta.active_nodes()
        .map(|(id, n)| NodeDesc { id: *id, zone: n.zone.clone(), region: n.region.clone(), capacity: n.capacity })
        .collect()
}

/// The first placement of a cluster whose nodes have all joined.
pub fn initial(meta: &MetaState) -> anyhow::Result<Placement> {
    let cluster = meta.cluster.clone().unwrap_or_default();
    let rf = cluster.replication_factor as usize;
    Ok(desired(&eligible(meta), &Placement { shards: vec![] }, cluster.shards, rf, Ring::DEFAULT_VNODES)?)
}

/// The next target placement and the moves it starts, at most `max_in_flight` shards moving at
/// once; no moves when fewer than RF nodes are active or nothing is placed yet.
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

/// Shards whose reported voters differ from their target.
pub fn moving(meta: &MetaState) -> Vec<ShardMove> {
    meta.moving_shards()
        .into_iter()
        .map(|s| ShardMove { shard: s, from: meta.voters(s).to_vec(), to: meta.replicas(s).to_vec() })
        .collect()
}

/// Every shard change the placement driver still has to start (the whole plan: the driver
/// starts it a few shards at a time, set changes before leader-only ones).
pub fn remaining(meta: &MetaState) -> Vec<ShardMove> {
    let mut meta = meta.clone();
    // As if every move under way had finished.
    meta.members = (0..meta.placement.len() as u32)
        .map(|s| {
            let mut voters = meta.replicas(s).to_vec();
            voters.sort_unstable();
            raft::ShardMembers { voters, log_index: 1 }
        })
        .collect();
    match plan(&meta, usize::MAX) {
        Ok((_, moves)) => moves.into_iter().map(|m| ShardMove { shard: m.shard, from: m.from, to: m.to }).collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
