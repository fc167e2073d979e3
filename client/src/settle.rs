//! The bookkeeping of one `Client::ingest` call, without I/O: what each event's attempts so far
//! say about it, how one node's answer (or failure) for some of the events changes that and the
//! routing table, and what the events still unsettled at the deadline become.
//!
//! `Client::ingest` sends, waits and backs off; [`Settlement`] decides. An event is settled
//! [`Outcome::Ok`] as soon as a node answers `APPLIED` or `DUPLICATE`; otherwise it is retried
//! until the deadline and then reported [`Outcome::Indeterminate`] if *any* attempt may have
//! applied it, else [`Outcome::Failed`].

use tonic::Status;

use crate::contract;
use crate::outcome::Outcome;
use crate::proto::{Event, EventStatus, IngestResponse};
use crate::routing::Routing;

/// What the attempts so far say about one event.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct EventState {
    /// Its final outcome, once it has one.
    pub outcome: Option<Outcome>,
    /// Some attempt may have applied it (an `INDETERMINATE` answer, a missing answer, a failure
    /// that is not [`contract::is_definitely_not_applied`]). Never cleared: once maybe applied,
    /// later definite refusals cannot make it `Failed`.
    pub maybe_applied: bool,
    /// Why the last attempt did not settle it (reported with `Failed` / `Indeterminate`).
    pub reason: String,
}

impl EventState {
    /// No more attempts: `Indeterminate` if some attempt may have applied it, else `Failed`.
    fn give_up(&mut self, reason: String) {
        self.outcome =
            Some(if self.maybe_applied { Outcome::Indeterminate { reason } } else { Outcome::Failed { reason } });
    }
}

/// What one round of attempts leaves to do.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Round {
    /// Events to send again, in the order the answers named them.
    pub retry: Vec<usize>,
    /// The routing table is out of date (a newer epoch was seen, a leader is unknown, a node
    /// failed): refresh it before the next round.
    pub stale: bool,
}

/// Every event's state during one ingest call, indexed like the call's events.
#[derive(Debug)]
pub(crate) struct Settlement {
    events: Vec<EventState>,
}

impl Settlement {
    /// `n` events, none settled, none maybe applied.
    pub fn new(n: usize) -> Settlement {
        Settlement { events: vec![EventState::default(); n] }
    }

    /// The state of event `i`.
    #[cfg(test)]
    pub fn state(&self, i: usize) -> &EventState {
        &self.events[i]
    }

    /// Applies one node's `Ingest` answer to the events `idx` it was sent (in request order):
    /// settles the applied and duplicate ones, records `NOT_LEADER` hints in `routing` and queues
    /// every other event in `round` for another attempt. A result missing at the end of a short
    /// answer leaves its event maybe applied.
    pub fn apply_response(&mut self, idx: &[usize], resp: &IngestResponse, routing: &mut Routing, round: &mut Round) {
        if resp.epoch > routing.epoch {
            round.stale = true;
        }
        for (&i, r) in idx.iter().zip(resp.results.iter()) {
            let shard = r.shard;
            let e = &mut self.events[i];
            match EventStatus::try_from(r.status).unwrap_or(EventStatus::Unspecified) {
                EventStatus::Applied => e.outcome = Some(Outcome::Ok { duplicate: false, verdict: r.verdict.clone() }),
                EventStatus::Duplicate => e.outcome = Some(Outcome::Ok { duplicate: true, verdict: None }),
                EventStatus::NotLeader => {
                    if r.leader_id != 0 {
                        routing.set_leader(shard, r.leader_id, &r.leader_addr);
                    } else {
                        routing.forget_leader(shard);
                        round.stale = true;
                    }
                    e.reason = format!("shard {shard}: not leader");
                    round.retry.push(i);
                }
                EventStatus::Indeterminate => {
                    e.maybe_applied = true;
                    e.reason = format!("shard {shard}: {}", r.message);
                    round.retry.push(i);
                }
                // UNAVAILABLE, and a status this client does not know: refused, retried.
                EventStatus::Unavailable | EventStatus::Unspecified => {
                    e.reason = format!("shard {shard}: {}", r.message);
                    round.retry.push(i);
                }
            }
        }
        // A reply shorter than the request leaves the rest unanswered: retry them.
        for &i in idx.iter().skip(resp.results.len()) {
            self.events[i].maybe_applied = true;
            round.retry.push(i);
        }
    }

    /// Applies a failed attempt (transport error or error status, not [`contract::is_final`]) for
    /// the events `idx` of `events`: forgets their shards' leaders, marks the routing stale, queues
    /// them again, and marks them maybe applied unless the status is definite.
    pub fn apply_error(
        &mut self,
        idx: &[usize],
        status: &Status,
        events: &[Event],
        routing: &mut Routing,
        round: &mut Round,
    ) {
        round.stale = true;
        let definite = contract::is_definitely_not_applied(status);
        for &i in idx {
            let shard = routing.shard_of(&events[i].user_id);
            routing.forget_leader(shard);
            let e = &mut self.events[i];
            e.maybe_applied |= !definite;
            e.reason = format!("shard {shard}: {:?}: {}", status.code(), status.message());
            round.retry.push(i);
        }
    }

    /// Applies a final refusal ([`contract::is_final`]: the node refused the whole request as
    /// invalid before proposing any of it, e.g. its clock is behind the client's) for the events
    /// `idx`: they are not sent again. Each is `Failed`, or `Indeterminate` if an earlier attempt
    /// may have applied it; the other events keep their own answers.
    pub fn apply_rejection(&mut self, idx: &[usize], status: &Status) {
        for &i in idx {
            let e = &mut self.events[i];
            e.give_up(format!("rejected by the server: {}", status.message()));
        }
    }

    /// The deadline passed with `pending` unsettled: each becomes `Indeterminate` if some attempt
    /// may have applied it, else `Failed`, with the last attempt's reason.
    pub fn settle_at_deadline(&mut self, pending: &[usize]) {
        for &i in pending {
            let e = &mut self.events[i];
            let reason = std::mem::take(&mut e.reason);
            e.give_up(reason);
        }
    }

    /// Every event's outcome, in order. Call once nothing is pending (each event was answered or
    /// settled at the deadline).
    pub fn into_outcomes(self) -> Vec<Outcome> {
        // `Client::ingest` leaves its loop only with every event settled: an unsettled one is a bug.
        self.events.into_iter().map(|e| e.outcome.expect("every event settled")).collect()
    }
}

#[cfg(test)]
#[path = "settle_tests.rs"]
mod tests;
