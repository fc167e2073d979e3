//! The reconciler, on every node: it starts the local replica of every shard whose target or
//! reported voters include this node, initializes a never-formed group on its preferred leader,
//! and deletes replicas the group has committed a membership without.

use std::collections::BTreeMap;
use std::sync::Arc;

use raft::{NodeId, NodeInfo};
use tokio::sync::watch;

use super::TICK;
use crate::shared::Shared;

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
