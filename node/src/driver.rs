//! Background control loops of a node.
//!
//! - The **placement driver** acts only on the meta leader: it promotes caught-up meta learners to
//!   voters (up to [`META_VOTERS`]) and, once enough nodes have joined, proposes the first
//!   placement computed by the `ring` crate.
//! - The **reconciler** runs on every node: it starts the local replica of every shard the
//!   placement gives this node, and the preferred leader of a shard initializes its group.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use openraft::ChangeMembers;
use raft::{Command, MetaCommand, NodeId, NodeInfo};
use ring::{NodeDesc, Ring};
use tokio::sync::watch;

use crate::shared::Shared;

/// Voters of the meta group; further nodes hold learner replicas of it.
pub const META_VOTERS: usize = 3;
const TICK: Duration = Duration::from_millis(300);

pub async fn run_placement_driver(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        if let Err(e) = placement_tick(&shared).await {
            tracing::warn!("placement driver: {e:#}");
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn placement_tick(shared: &Shared) -> anyhow::Result<()> {
    let me = shared.multi.node_id();
    let raft = shared.multi.meta_raft();
    let m = raft.metrics().borrow().clone();
    if m.current_leader != Some(me) {
        return Ok(());
    }
    let membership = m.membership_config.membership().clone();
    let in_joint = membership.get_joint_config().len() > 1;
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    if !in_joint && voters.len() < META_VOTERS {
        let last = m.last_log_index.unwrap_or(0);
        let caught_up: BTreeSet<NodeId> = membership
            .learner_ids()
            .filter(|id| {
                let matched = m.replication.as_ref().and_then(|r| r.get(id).cloned().flatten());
                matched.is_some_and(|l| l.index + 64 >= last)
            })
            .take(META_VOTERS - voters.len())
            .collect();
        if !caught_up.is_empty() {
            tracing::info!(?caught_up, "promoting meta learners to voters");
            raft.change_membership(ChangeMembers::AddVoterIds(caught_up), true).await?;
        }
    }
    let meta = shared.multi.meta().borrow().clone();
    if let Some(cluster) = &meta.cluster {
        if meta.placement.is_empty() && meta.nodes.len() >= cluster.replication_factor as usize {
            let nodes: Vec<NodeDesc> = meta
                .nodes
                .iter()
                .map(|(id, n)| NodeDesc { id: *id, zone: n.zone.clone(), region: n.region.clone() })
                .collect();
            let placement =
                ring::place(&nodes, cluster.shards, cluster.replication_factor as usize, Ring::DEFAULT_VNODES)?;
            let cmd = MetaCommand::SetPlacement { expected_epoch: meta.epoch, replicas: placement.shards };
            let r = raft.client_write(Command::Meta(cmd)).await?;
            tracing::info!(result = ?r.data, nodes = nodes.len(), "proposed the initial placement");
        }
    }
    Ok(())
}

pub async fn run_reconciler(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut meta_rx = shared.multi.meta();
    loop {
        if let Err(e) = reconcile(&shared).await {
            tracing::warn!("reconciler: {e:#}");
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = meta_rx.changed() => {}
            _ = stop.changed() => return,
        }
    }
}

async fn reconcile(shared: &Shared) -> anyhow::Result<()> {
    let me = shared.multi.node_id();
    let meta = shared.multi.meta().borrow().clone();
    for (shard, replicas) in meta.placement.iter().enumerate() {
        if !replicas.contains(&me) {
            continue;
        }
        let group = shared.multi.ensure_shard(shard as u32).await?;
        if replicas.first() == Some(&me) && !group.raft.is_initialized().await? {
            let members: BTreeMap<NodeId, NodeInfo> =
                replicas.iter().filter_map(|id| meta.nodes.get(id).map(|n| (*id, n.clone()))).collect();
            match group.raft.initialize(members).await {
                Ok(()) => tracing::info!(shard, ?replicas, "initialized shard group"),
                Err(e) => tracing::debug!(shard, "initialize: {e}"),
            }
        }
    }
    Ok(())
}

pub async fn run_metrics_sampler(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        shared.metrics.sample(&shared.multi);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = stop.changed() => return,
        }
    }
}
