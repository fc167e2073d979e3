//! A node's background control loops, and the pure planning they act on.
//!
//! - [`placement`]: the placement driver, on the meta leader only: meta voters, first placement,
//!   advancing the target placement; with [`liveness`] (nodes declared dead and alive again).
//! - [`plan`]: pure functions of the meta state (eligible nodes, the next placement step, the
//!   moves under way, the whole remaining plan), unit-tested without a cluster.
//! - [`reconciler`]: on every node, starts, initializes and deletes local replicas.
//! - [`mover`]: on every shard leader, moves the group's voters toward the target placement.
//! - [`model_watch`]: keeps this node's scoring models equal to the meta group's registry.
//! - [`sampler`]: copies Raft, placement and RocksDB state into the metrics gauges.
//!
//! Loops read the node's [`Shared`] state and act through Raft proposals; none of them serves
//! a request (that is [`crate::api`]).

pub mod liveness;
pub mod model_watch;
pub mod mover;
pub mod placement;
pub mod plan;
pub mod reconciler;
pub mod sampler;

use std::sync::Arc;
use std::time::Duration;

use client::proto::ShardMove;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::shared::Shared;

/// How often the placement driver, liveness, the reconciler and the mover run (the reconciler also runs on
/// every change of the meta state).
pub(crate) const TICK: Duration = Duration::from_millis(300);

/// Starts every loop; each ends when `stop` turns true.
pub fn spawn_all(shared: &Arc<Shared>, stop: &watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    vec![
        tokio::spawn(placement::run_placement_driver(shared.clone(), stop.clone())),
        tokio::spawn(reconciler::run_reconciler(shared.clone(), stop.clone())),
        tokio::spawn(mover::run_mover(shared.clone(), stop.clone())),
        tokio::spawn(model_watch::run(shared.clone(), stop.clone())),
        tokio::spawn(sampler::run_metrics_sampler(shared.clone(), stop.clone())),
    ]
}

/// The placement driver's remaining plan for `meta` ([`plan::remaining`]), computed once per
/// meta epoch and shared by status answers, liveness probes, the rebalance view and metrics.
pub fn remaining_plan(shared: &Shared, meta: &raft::MetaState) -> Arc<Vec<ShardMove>> {
    let mut cache = shared.plan.lock().expect("plan cache lock");
    match &*cache {
        Some((epoch, plan)) if *epoch == meta.epoch => plan.clone(),
        _ => {
            let plan = Arc::new(plan::remaining(meta));
            *cache = Some((meta.epoch, plan.clone()));
            plan
        }
    }
}
