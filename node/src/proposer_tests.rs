//! The entry batcher over a submit function that records each entry and waits for the test to
//! release it, so the tests decide when entries are in flight.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use raft::Applied;
use tokio::sync::Semaphore;

use super::*;
use crate::config::ScoringConfig;

/// Entries as submitted (their event ids), and a gate each entry waits on before its fate.
#[derive(Clone)]
struct FakeRaft {
    entries: Arc<Mutex<Vec<Vec<String>>>>,
    gate: Arc<Semaphore>,
}

impl Default for FakeRaft {
    fn default() -> Self {
        FakeRaft { entries: Default::default(), gate: Arc::new(Semaphore::new(0)) }
    }
}

impl FakeRaft {
    /// A proposer whose every entry ends as `fate(entry's events)` once the gate lets it.
    fn proposer(&self, fate: fn(&[scoring::Event]) -> EntryFate) -> Proposer {
        let scoring = Arc::new(ScoringService::new(&ScoringConfig { enabled: false, ..Default::default() }).unwrap());
        let me = self.clone();
        Proposer::spawn_with(scoring, move |events: Vec<scoring::Event>| {
            let me = me.clone();
            me.entries.lock().unwrap().push(events.iter().map(|e| e.event_id.clone()).collect());
            async move {
                me.gate.acquire().await.unwrap().forget();
                fate(&events)
            }
        })
    }

    fn entries(&self) -> Vec<Vec<String>> {
        self.entries.lock().unwrap().clone()
    }
}

fn events(prefix: &str, n: usize) -> Vec<scoring::Event> {
    (0..n)
        .map(|i| {
            scoring::Event::new(
                format!("{prefix}{i}"),
                "u",
                1_790_000_000_000,
                scoring::EventKind::Login,
                scoring::Outcome::Success,
            )
        })
        .collect()
}

/// Every event applied; those whose id ends in "dup" were applied before.
fn all_applied(events: &[scoring::Event]) -> EntryFate {
    EntryFate::Applied(
        events
            .iter()
            .map(|e| match e.event_id.ends_with("dup") {
                true => Applied::Duplicate,
                false => {
                    Applied::New(Box::new(scoring::features::Observation::observe(&scoring::Profile::new("u"), e, 0)))
                }
            })
            .collect(),
    )
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[tokio::test]
async fn parts_that_arrive_while_the_pipeline_is_full_share_the_next_entry() {
    let raft = FakeRaft::default();
    let p = raft.proposer(all_applied);
    let mut waiting = Vec::new();
    // The first MAX_PIPELINE parts each go out at once, as their own entry.
    for i in 0..MAX_PIPELINE {
        let p = p.clone();
        waiting.push(tokio::spawn(async move { p.propose(events(&format!("a{i}-"), 2)).await }));
        settle().await;
    }
    assert_eq!(raft.entries().len(), MAX_PIPELINE, "an idle shard waits for nothing");
    // Three more arrive while both slots are taken: they wait and are gathered into one entry.
    for name in ["b-", "c-", "d-"] {
        let p = p.clone();
        waiting.push(tokio::spawn(async move { p.propose(events(name, 3)).await }));
    }
    settle().await;
    assert_eq!(raft.entries().len(), MAX_PIPELINE, "nothing more is proposed while the pipeline is full");
    raft.gate.add_permits(100);
    let answers: Vec<Proposed> = futures::future::join_all(waiting).await.into_iter().map(Result::unwrap).collect();
    let entries = raft.entries();
    assert_eq!(entries.len(), MAX_PIPELINE + 1, "{entries:?}");
    assert_eq!(entries[MAX_PIPELINE].len(), 9, "the three waiting parts became one entry: {entries:?}");
    assert_eq!(entries[MAX_PIPELINE][0], "b-0");
    // Every part gets exactly its own events' answers.
    for (answer, want) in answers.iter().zip([2, 2, 3, 3, 3]) {
        match answer {
            Proposed::Applied(a) => assert_eq!(a.len(), want),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn an_entry_is_cut_at_max_entry_events() {
    let raft = FakeRaft::default();
    let p = raft.proposer(all_applied);
    let mut waiting = Vec::new();
    for i in 0..MAX_PIPELINE {
        let p = p.clone();
        waiting.push(tokio::spawn(async move { p.propose(events(&format!("a{i}-"), 1)).await }));
        settle().await;
    }
    // Queued while the pipeline is full: more than one entry's worth, in parts of 700 events.
    let parts = 5;
    for i in 0..parts {
        let p = p.clone();
        waiting.push(tokio::spawn(async move { p.propose(events(&format!("q{i}-"), 700)).await }));
    }
    settle().await;
    raft.gate.add_permits(1000);
    for w in waiting {
        assert!(matches!(w.await.unwrap(), Proposed::Applied(_)));
    }
    let sizes: Vec<usize> = raft.entries().iter().map(Vec::len).collect();
    assert_eq!(sizes.iter().sum::<usize>(), MAX_PIPELINE + parts * 700);
    // A part is never split; an entry stops taking parts once it holds MAX_ENTRY_EVENTS or more.
    for s in &sizes[MAX_PIPELINE..] {
        assert!(*s < MAX_ENTRY_EVENTS + 700, "{sizes:?}");
        assert_eq!(s % 700, 0, "whole parts only: {sizes:?}");
    }
    assert!(sizes.len() > MAX_PIPELINE + 1, "more than one entry for {} events: {sizes:?}", parts * 700);
}

#[tokio::test]
async fn duplicates_are_answered_per_event_in_order() {
    let raft = FakeRaft::default();
    raft.gate.add_permits(10);
    let p = raft.proposer(all_applied);
    let mut evs = events("e", 3);
    evs[1].event_id = "e1dup".into();
    match p.propose(evs).await {
        Proposed::Applied(a) => {
            assert_eq!(a.iter().map(|x| x.duplicate).collect::<Vec<_>>(), vec![false, true, false]);
            assert!(a.iter().all(|x| x.verdict.is_none()), "scoring is off");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn every_part_of_a_refused_or_unknown_entry_gets_that_fate() {
    let raft = FakeRaft::default();
    raft.gate.add_permits(10);
    let p = raft.proposer(|_| EntryFate::NotLeader(Some((3, None))));
    assert!(matches!(p.propose(events("x", 2)).await, Proposed::NotLeader { leader: Some((3, None)) }));
    let raft = FakeRaft::default();
    raft.gate.add_permits(10);
    let p = raft.proposer(|_| EntryFate::Unknown("raft: stopped".into()));
    match p.propose(events("y", 2)).await {
        Proposed::Unknown(why) => assert_eq!(why, "raft: stopped"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_hold_waits_for_entries_in_flight_and_stops_new_ones_until_released() {
    let raft = FakeRaft::default();
    let p = raft.proposer(all_applied);
    let first = {
        let p = p.clone();
        tokio::spawn(async move { p.propose(events("a", 1)).await })
    };
    settle().await;
    assert_eq!(raft.entries().len(), 1);
    let holding = {
        let p = p.clone();
        tokio::spawn(async move { p.hold().await })
    };
    settle().await;
    assert!(!holding.is_finished(), "the hold waits for the entry in flight");
    raft.gate.add_permits(1);
    let hold = holding.await.unwrap();
    assert!(matches!(first.await.unwrap(), Proposed::Applied(_)));
    let later = {
        let p = p.clone();
        tokio::spawn(async move { p.propose(events("b", 1)).await })
    };
    settle().await;
    assert_eq!(raft.entries().len(), 1, "nothing is proposed while held");
    drop(hold);
    raft.gate.add_permits(1);
    assert!(matches!(later.await.unwrap(), Proposed::Applied(_)));
    assert_eq!(raft.entries().len(), 2);
}
