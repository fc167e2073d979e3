//! Raft entry batching on the shard leader.
//!
//! Every ingest request carries a few events for each shard; proposing each part as its own Raft
//! entry would pay the per-entry cost (encode, log write, replication message, apply batch) for a
//! handful of events. A [`Proposer`] per local shard instead keeps at most
//! [`MAX_PIPELINE`] entries in flight and, while they are, gathers the parts that arrive into the
//! next entry (up to [`MAX_ENTRY_EVENTS`] events). Under light load an entry carries one request's
//! part and waits for nothing; under heavy load entries grow, which is where throughput comes from.
//!
//! The entry's events are also scored together, once applied: one model batch per entry rather
//! than one per request part, so the per-call cost of the models is shared by up to
//! [`MAX_ENTRY_EVENTS`] events. Scoring runs after the pipeline slot is released.

use std::future::Future;
use std::sync::Arc;

use client::proto;
use openraft::error::{ClientWriteError, RaftError};
use raft::{Applied, Command, CommandResult, NodeId, NodeInfo, Raft};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};

use crate::scoring_service::ScoringService;

/// Raft entries of one shard proposed and not yet answered.
pub const MAX_PIPELINE: usize = 2;
/// Events in one Raft entry (bounds entry size: a few hundred KiB).
pub const MAX_ENTRY_EVENTS: usize = 2000;
/// Parts waiting to be gathered into an entry; more make the sender wait (back pressure).
const QUEUE: usize = 1024;

/// The fate of one request's part.
#[derive(Debug)]
pub enum Proposed {
    /// Committed and applied, one answer per event.
    Applied(Vec<EventAnswer>),
    /// Definitely not applied: this node is not (or no longer) the leader.
    NotLeader { leader: Option<(NodeId, Option<NodeInfo>)> },
    /// The proposal's fate is unknown (Raft stopped, unexpected result).
    Unknown(String),
}

/// One applied event's answer.
#[derive(Debug)]
pub struct EventAnswer {
    /// Applied before: nothing changed (and no verdict).
    pub duplicate: bool,
    /// The score of a newly applied event (none when scoring is off).
    pub verdict: Option<proto::Verdict>,
}

struct Part {
    events: Vec<scoring::Event>,
    reply: oneshot::Sender<Proposed>,
}

#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::Sender<Part>,
    /// While true, nothing new is proposed (a leadership hand-over is under way).
    hold: Arc<watch::Sender<bool>>,
    slots: Arc<Semaphore>,
}

/// Proposals stay held until this is dropped.
pub struct Hold {
    hold: Arc<watch::Sender<bool>>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.hold.send_replace(false);
    }
}

impl Proposer {
    /// Starts the batching task of one shard group; it ends when every `Proposer` clone is gone.
    pub fn spawn(shard: u32, raft: Raft, scoring: Arc<ScoringService>) -> Proposer {
        Proposer::spawn_with(scoring, move |events| {
            let raft = raft.clone();
            async move { submit(shard, &raft, events).await }
        })
    }

    /// Starts the batching task over `submit`, which proposes one entry and reports its fate
    /// ([`submit`] through Raft; a test gives its own).
    pub(crate) fn spawn_with<S, F>(scoring: Arc<ScoringService>, submit: S) -> Proposer
    where
        S: Fn(Vec<scoring::Event>) -> F + Send + 'static,
        F: Future<Output = EntryFate> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(QUEUE);
        let hold = Arc::new(watch::Sender::new(false));
        let slots = Arc::new(Semaphore::new(MAX_PIPELINE));
        tokio::spawn(run(submit, scoring, rx, hold.subscribe(), slots.clone()));
        Proposer { tx, hold, slots }
    }

    /// Stops proposing new entries and waits until the entries in flight are answered. Parts
    /// that arrive meanwhile wait in the queue; after the hold they are proposed (and answered
    /// `NotLeader` if leadership moved).
    pub async fn hold(&self) -> Hold {
        self.hold.send_replace(true);
        let hold = Hold { hold: self.hold.clone() };
        if let Ok(all) = self.slots.acquire_many(MAX_PIPELINE as u32).await {
            drop(all);
        }
        hold
    }

    /// Proposes `events` (as part of some entry) and waits for their fate.
    pub async fn propose(&self, events: Vec<scoring::Event>) -> Proposed {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Part { events, reply }).await.is_err() {
            // Never handed to Raft.
            return Proposed::NotLeader { leader: None };
        }
        rx.await.unwrap_or_else(|_| Proposed::Unknown("the proposal task stopped".into()))
    }
}

/// What became of one proposed entry.
pub(crate) enum EntryFate {
    /// Applied: one result per event, in order.
    Applied(Vec<Applied>),
    /// Definitely not applied: this node is not (or no longer) the leader.
    NotLeader(Option<(NodeId, Option<NodeInfo>)>),
    /// Unknown: it may or may not be applied.
    Unknown(String),
}

/// Proposes `events` as one Raft entry of `shard` and waits for its fate.
async fn submit(shard: u32, raft: &Raft, events: Vec<scoring::Event>) -> EntryFate {
    let n = events.len();
    match raft.client_write(Command::Ingest(events)).await {
        Ok(resp) => match resp.data {
            CommandResult::Ingest(applied) if applied.len() == n => EntryFate::Applied(applied),
            other => EntryFate::Unknown(format!("unexpected apply result {other:?}")),
        },
        // openraft answers ForwardToLeader only for entries it never appended or that were
        // truncated: definitely not applied.
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            EntryFate::NotLeader(f.leader_id.map(|id| (id, f.leader_node)))
        }
        Err(e) => {
            tracing::warn!(shard, "proposal failed: {e}");
            EntryFate::Unknown(format!("raft: {e}"))
        }
    }
}

async fn run<S, F>(
    submit: S,
    scoring: Arc<ScoringService>,
    mut rx: mpsc::Receiver<Part>,
    mut hold: watch::Receiver<bool>,
    slots: Arc<Semaphore>,
) where
    S: Fn(Vec<scoring::Event>) -> F,
    F: Future<Output = EntryFate> + Send + 'static,
{
    while let Some(first) = rx.recv().await {
        // Wait for a free pipeline slot first: parts arriving meanwhile join this entry. The hold
        // flag is checked after taking the slot, so `Proposer::hold` (which takes every slot)
        // returns only when nothing is in flight and nothing new will be.
        let permit = loop {
            let Ok(permit) = slots.clone().acquire_owned().await else { return };
            if !*hold.borrow() {
                break permit;
            }
            drop(permit);
            if hold.wait_for(|held| !held).await.is_err() {
                return;
            }
        };
        let mut parts = vec![first];
        let mut n = parts[0].events.len();
        while n < MAX_ENTRY_EVENTS {
            match rx.try_recv() {
                Ok(p) => {
                    n += p.events.len();
                    parts.push(p);
                }
                Err(_) => break,
            }
        }
        let mut events = Vec::with_capacity(n);
        let mut replies = Vec::with_capacity(parts.len());
        for p in parts {
            replies.push((p.events.len(), p.reply));
            events.extend(p.events);
        }
        let entry = submit(events);
        let scoring = scoring.clone();
        tokio::spawn(async move {
            let fate = entry.await;
            drop(permit);
            answer(fate, replies, &scoring).await;
        });
    }
}

/// Answers every part of an entry: applied events with their verdicts (scored together, one
/// model batch per entry), each part its own slice in order; otherwise the entry's fate.
async fn answer(fate: EntryFate, replies: Vec<(usize, oneshot::Sender<Proposed>)>, scoring: &Arc<ScoringService>) {
    match fate {
        EntryFate::Applied(applied) => {
            let observed: Vec<_> = applied
                .into_iter()
                .map(|a| match a {
                    Applied::New(o) => Some(*o),
                    Applied::Duplicate => None,
                })
                .collect();
            let duplicate: Vec<bool> = observed.iter().map(Option::is_none).collect();
            let verdicts = scoring.ingest_verdicts(observed).await;
            let mut rest =
                duplicate.into_iter().zip(verdicts).map(|(duplicate, verdict)| EventAnswer { duplicate, verdict });
            for (len, reply) in replies {
                let _ = reply.send(Proposed::Applied(rest.by_ref().take(len).collect()));
            }
        }
        EntryFate::NotLeader(leader) => {
            for (_, reply) in replies {
                let _ = reply.send(Proposed::NotLeader { leader: leader.clone() });
            }
        }
        EntryFate::Unknown(why) => {
            for (_, reply) in replies {
                let _ = reply.send(Proposed::Unknown(why.clone()));
            }
        }
    }
}

#[cfg(test)]
#[path = "proposer_tests.rs"]
mod tests;
