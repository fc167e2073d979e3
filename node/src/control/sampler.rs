//! The metrics sampler: every 2 s (and on every `/metrics` scrape) it copies Raft, placement and
//! RocksDB state into the node's gauges ([`crate::metrics::Metrics`] only defines and renders them).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use storage::Cf;
use tokio::sync::watch;

use crate::metrics::resident_bytes;
use crate::shared::Shared;

pub async fn run_metrics_sampler(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        sample(&shared);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Refreshes the gauges that mirror Raft, placement and RocksDB state.
pub fn sample(shared: &Shared) {
    let m = &shared.metrics;
    let multi = &shared.multi;
    let mut groups = multi.shards();
    groups.push(multi.group(raft::META_GROUP).expect("meta group"));
    // Replicas come and go: only the groups hosted now are reported.
    for v in [&m.raft_term, &m.raft_leader, &m.raft_last_log, &m.raft_last_applied, &m.raft_follower_lag] {
        v.reset();
    }
    let me = multi.node_id();
    m.shards_led
        .set(multi.shards().iter().filter(|g| g.raft.metrics().borrow().current_leader == Some(me)).count() as i64);
    let meta = multi.meta().borrow().clone();
    m.moves_in_flight.set(meta.moving_shards().len() as i64);
    m.moves_planned.set(super::remaining_plan(shared, &meta).len() as i64);
    m.snapshot_bytes_sent.set(multi.pool().moves.bytes_sent() as i64);
    for id in meta.nodes.keys() {
        let l = [id.to_string()];
        let l = [l[0].as_str()];
        m.node_replicas.with_label_values(&l).set(meta.placement.iter().filter(|r| r.contains(id)).count() as i64);
        let state = match meta.state(*id) {
            raft::NodeState::Active => 0,
            raft::NodeState::Draining => 1,
            raft::NodeState::Dead => 2,
            raft::NodeState::Removed => 3,
        };
        m.node_state.with_label_values(&l).set(state);
    }
    for g in groups {
        let r = g.raft.metrics().borrow().clone();
        let name = if g.group == raft::META_GROUP { "meta".to_string() } else { g.group.to_string() };
        let l = [name.as_str()];
        m.raft_term.with_label_values(&l).set(r.current_term as i64);
        m.raft_leader.with_label_values(&l).set(r.current_leader.unwrap_or(0) as i64);
        m.raft_last_log.with_label_values(&l).set(r.last_log_index.unwrap_or(0) as i64);
        m.raft_last_applied.with_label_values(&l).set(r.last_applied.map_or(0, |x| x.index) as i64);
        if let Some(rep) = &r.replication {
            let last = r.last_log_index.unwrap_or(0);
            for (node, matched) in rep {
                let lag = last.saturating_sub(matched.map_or(0, |x| x.index));
                m.raft_follower_lag.with_label_values(&[name.as_str(), &node.to_string()]).set(lag as i64);
            }
        }
    }
    for (peer, link) in multi.pool().links.snapshot() {
        let l = [peer.to_string()];
        let l = [l[0].as_str()];
        m.append_answered.with_label_values(&l).set(link.answered as i64);
        m.append_timeouts.with_label_values(&l).set(link.timeouts as i64);
        m.append_round_trip.with_label_values(&l).set(link.round_trip.as_secs_f64());
    }
    let fs = multi.flush_stats();
    m.log_syncs.set(fs.syncs.load(Ordering::Relaxed) as i64);
    m.log_appends.set(fs.appends.load(Ordering::Relaxed) as i64);
    let engine = multi.engine();
    m.memtable_bytes.set(engine.memtable_bytes() as i64);
    for cf in Cf::ALL {
        m.live_bytes.with_label_values(&[cf.name()]).set(engine.estimated_live_bytes(cf) as i64);
    }
    m.rss_bytes.set(resident_bytes().unwrap_or(0) as i64);
}
