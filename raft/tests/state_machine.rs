//! The shard state machine: exact deduplication, and a profile cache that never outlives a
//! snapshot install.

use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftSnapshotBuilder};
use raft::state_machine::read_profile;
use raft::{Applied, Command, CommandResult, StateMachine, TypeConfig};
use scoring::{Event, EventKind, Outcome};
use storage::{Engine, EngineOptions};

fn entry(index: u64, events: &[(&str, &str)]) -> Entry<TypeConfig> {
    let evs = events
        .iter()
        .map(|(user, id)| Event::new(*id, *user, 1_790_000_000_000 + index as i64, EventKind::Login, Outcome::Success))
        .collect();
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(Command::Ingest(evs)),
    }
}

/// "new" / "dup" per event of each entry's result.
fn outcomes(results: &[CommandResult]) -> Vec<Vec<&'static str>> {
    results
        .iter()
        .map(|r| match r {
            CommandResult::Ingest(a) => {
                a.iter().map(|x| if matches!(x, Applied::New(_)) { "new" } else { "dup" }).collect()
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

fn sources() -> raft::state_machine::SharedSources {
    Arc::new(std::sync::Mutex::new(scoring::features::SourceWindow::new(3_600_000, 100)))
}

fn count(engine: &Engine, user: &str) -> u64 {
    read_profile(engine, 3, user).unwrap().map_or(0, |p| p.events_applied)
}

#[tokio::test]
async fn duplicates_are_skipped_and_snapshot_install_resets_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Engine::open(dir.path(), &EngineOptions::default()).unwrap());
    let mut sm = StateMachine::shard(engine.clone(), 3, 100, sources());

    let r = sm.apply([entry(1, &[("u", "a"), ("u", "b"), ("v", "a")])]).await.unwrap();
    assert_eq!(outcomes(&r), [["new", "new", "new"]]);
    // The same ids again, within one apply call and across calls: applied once.
    let r = sm.apply([entry(2, &[("u", "a")]), entry(3, &[("u", "c"), ("u", "c")])]).await.unwrap();
    assert_eq!(outcomes(&r), [vec!["dup"], vec!["new", "dup"]]);
    // The observation is taken against the profile just before the event (u had a and b).
    let CommandResult::Ingest(a) = &r[1] else { unreachable!() };
    let Applied::New(o) = &a[0] else { unreachable!() };
    assert_eq!(o.history_events, 2);
    assert_eq!((count(&engine, "u"), count(&engine, "v")), (3, 1));

    let snap = sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
    sm.apply([entry(4, &[("u", "d"), ("u", "e")])]).await.unwrap();
    assert_eq!(count(&engine, "u"), 5);

    // Back to the snapshot: the cached profile (5 events) must not survive.
    sm.install_snapshot(&snap.meta, snap.snapshot).await.unwrap();
    assert_eq!(count(&engine, "u"), 3);
    let r = sm.apply([entry(5, &[("u", "d")])]).await.unwrap();
    assert_eq!(outcomes(&r), [["new"]], "d was applied after the snapshot only");
    assert_eq!(count(&engine, "u"), 4);
    let (applied, _) = sm.applied_state().await.unwrap();
    assert_eq!(applied.map(|l| l.index), Some(5));
}
