//! Ingest: a batch is validated whole (nothing is written if any event is bad), split by shard,
//! and each shard's part is proposed through that shard's entry batcher ([`crate::proposer`]) on
//! this node, its leader. Each event gets its own answer: applied (with its verdict), duplicate,
//! not leader (definitely not applied, with the leader when known), unavailable, or indeterminate.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use client::proto::{Event, EventResult, EventStatus, IngestRequest, IngestResponse};
use convert::event_from_proto;
use tonic::Status;

use super::errors;
use crate::proposer::Proposed;
use crate::shared::{now_ms, Shared};

fn result(status: EventStatus, shard: u32, message: impl Into<String>) -> EventResult {
    EventResult { status: status as i32, shard, message: message.into(), ..Default::default() }
}

/// `NOT_LEADER` (definitely not applied), naming the leader's id and address when known.
fn redirect(shard: u32, message: &str, leader: Option<(u64, String)>) -> EventResult {
    let mut r = result(EventStatus::NotLeader, shard, message);
    if let Some((id, addr)) = leader {
        r.leader_id = id;
        r.leader_addr = addr;
    }
    r
}

pub async fn ingest(shared: &Shared, req: IngestRequest) -> Result<IngestResponse, Status> {
    let started = Instant::now();
    shared.metrics.ingest_requests.inc();
    let events = req.events;
    tracing::Span::current().record("events", events.len());
    client::validate::validate_batch(&events, now_ms(), &shared.limits).map_err(errors::invalid)?;
    let meta = shared.multi.meta().borrow().clone();
    if meta.placement.is_empty() {
        return Err(errors::not_placed());
    }
    let mut by_shard: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        by_shard.entry(ring::shard_for(&e.user_id, meta.shards())).or_default().push(i);
    }
    let parts = by_shard.iter().map(|(shard, idx)| {
        let evs: Vec<&Event> = idx.iter().map(|&i| &events[i]).collect();
        ingest_shard(shared, *shard, evs)
    });
    let answers = futures::future::join_all(parts).await;
    let mut results = vec![EventResult::default(); events.len()];
    for ((_, idx), answer) in by_shard.iter().zip(answers) {
        for (&i, r) in idx.iter().zip(answer) {
            results[i] = r;
        }
    }
    for r in &results {
        let label = EventStatus::try_from(r.status).map_or("unknown", |s| s.as_str_name());
        shared.metrics.ingest_events.with_label_values(&[label]).inc();
    }
    shared.metrics.rpc_latency.with_label_values(&["ingest"]).observe(started.elapsed().as_secs_f64());
    Ok(IngestResponse { results, epoch: meta.epoch })
}

/// Proposes one shard's part of a batch and answers each of its events.
async fn ingest_shard(shared: &Shared, shard: u32, events: Vec<&Event>) -> Vec<EventResult> {
    let n = events.len();
    let all = |r: EventResult| vec![r; n];
    let Some(group) = shared.multi.group(shard) else {
        let hint = shared.placement_leader_hint(shard).map(|(id, info)| (id, info.addr));
        return all(redirect(shard, "shard not hosted on this node", hint));
    };
    // Refuse up front when another node leads: definitely not applied, and cheap.
    let leader = group.raft.current_leader().await;
    if leader != Some(shared.multi.node_id()) {
        return all(match leader.and_then(|id| shared.node_info(&group, id).map(|i| (id, i.addr))) {
            Some(hint) => redirect(shard, "not the shard leader", Some(hint)),
            None => result(EventStatus::Unavailable, shard, "shard has no leader right now"),
        });
    }
    let mut domain = Vec::with_capacity(n);
    for e in &events {
        match event_from_proto(e) {
            Ok(d) => domain.push(d),
            // Validation ran on the whole request first, so this is a bug, not bad input.
            Err(field) => return all(result(EventStatus::Unavailable, shard, format!("unconvertible field {field}"))),
        }
    }
    let Ok(_permit) = shared.inflight.clone().acquire_owned().await else {
        return all(result(EventStatus::Unavailable, shard, "node is shutting down"));
    };
    let timeout = Duration::from_millis(shared.config.request_timeout_ms);
    let proposer = shared.proposer(&group);
    match tokio::time::timeout(timeout, proposer.propose(domain)).await {
        Ok(Proposed::Applied(answers)) => answers
            .into_iter()
            .map(|a| match a.duplicate {
                false => EventResult { verdict: a.verdict, ..result(EventStatus::Applied, shard, "") },
                true => result(EventStatus::Duplicate, shard, ""),
            })
            .collect(),
        Ok(Proposed::NotLeader { leader }) => {
            let hint = leader.map(|(id, node)| (id, node.map(|n| n.addr).unwrap_or_default()));
            all(redirect(shard, "leadership changed", hint))
        }
        Ok(Proposed::Unknown(why)) => all(result(EventStatus::Indeterminate, shard, why)),
        Err(_) => all(result(EventStatus::Indeterminate, shard, format!("not committed within {timeout:?}"))),
    }
}
