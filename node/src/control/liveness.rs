//! Liveness, on the meta leader: every node that is not removed is probed each tick; one that has
//! not answered for `dead_node_after_secs` is declared dead, and active again once it answers.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use raft::meta_propose::propose;
use raft::{MetaCommand, MetaState, NodeId, NodeInfo, NodeState};

use crate::shared::Shared;

/// Probes every node that is not removed; declares a node dead after `dead_node_after_secs`
/// without an answer and active again when it answers.
pub(super) async fn liveness(
    shared: &Shared,
    meta: &MetaState,
    last_seen: &mut HashMap<NodeId, Instant>,
) -> anyhow::Result<()> {
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
        let seen = last_seen.entry(id).or_insert(now);
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
