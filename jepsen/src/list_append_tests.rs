use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::history::Op;
use crate::history::OpF::{Append as A, Read as R};
use crate::history::OpType::{Fail, Info, Invoke, Ok as Done};
use crate::testgen::{final_reads, simulate, Lists, Rng, Script, Sim};

fn kinds(r: &ListAppendResult) -> Vec<&str> {
    r.anomalies.iter().map(|a| a.kind.as_str()).collect()
}

/// `append` on `k` by process `p`, invoked and completed (`kind`) at once.
fn append(s: &mut Script, p: i64, id: &str, kind: OpType) -> (u64, u64) {
    (s.ev(p, Invoke, A, "k", json!(id)), s.ev(p, kind, A, "k", json!(id)))
}

fn read(s: &mut Script, p: i64, ids: &[&str]) -> (u64, u64) {
    (s.ev(p, Invoke, R, "k", Value::Null), s.ev(p, Done, R, "k", json!(ids)))
}

#[test]
fn a_valid_concurrent_history() {
    let mut s = Script::default();
    s.ev(1, Invoke, A, "k", json!("a"));
    s.ev(2, Invoke, A, "k", json!("b"));
    s.ev(3, Invoke, R, "k", Value::Null);
    s.ev(2, Done, A, "k", json!("b")); // b applied first, a still in flight
    s.ev(3, Done, R, "k", json!(["b"]));
    s.ev(4, Invoke, R, "k", Value::Null);
    s.ev(1, Done, A, "k", json!("a"));
    s.ev(4, Done, R, "k", json!(["b", "a"]));
    s.ev(2, Invoke, A, "j", json!("c"));
    s.ev(2, Done, A, "j", json!("c"));
    read(&mut s, 5, &["b", "a"]);
    s.ev(5, Invoke, R, "j", Value::Null);
    s.ev(5, Done, R, "j", json!(["c"]));
    let r = check(&s.h);
    assert_eq!(r.valid, Validity::Valid, "{r:#?}");
    assert_eq!((r.keys, r.appends_ok, r.reads_ok, r.unconfirmed), (2, 3, 4, 0));
}

#[test]
fn a_lost_acknowledged_append_is_invalid() {
    let mut s = Script::default();
    let (ai, ao) = append(&mut s, 1, "a", Done);
    let (fi, fo) = read(&mut s, 2, &[]);
    let r = check(&s.h);
    assert_eq!(kinds(&r), vec!["lost"], "{r:#?}");
    assert_eq!(r.anomalies[0].ops, vec![ai, ao, fi, fo]);

    // Seen, then gone: lost, and the final read went back in time.
    let mut s = Script::default();
    let (ai, ao) = append(&mut s, 1, "a", Done);
    append(&mut s, 1, "b", Done);
    read(&mut s, 2, &["a", "b"]);
    let (fi, fo) = read(&mut s, 2, &["b"]); // the final read: a is gone
    let r = check(&s.h);
    assert_eq!(r.valid, Validity::Invalid);
    let lost: Vec<&Anomaly> = r.anomalies.iter().filter(|a| a.kind == "lost").collect();
    assert_eq!(lost.len(), 1, "{r:#?}");
    assert_eq!(lost[0].ops, vec![ai, ao, fi, fo]);
    assert!(lost[0].explanation.contains("seen by 1 earlier"), "{}", lost[0].explanation);
    assert!(kinds(&r).contains(&"non-monotonic-read"), "{r:#?}");
}

#[test]
fn a_duplicate_in_a_read_is_invalid() {
    let mut s = Script::default();
    append(&mut s, 1, "a", Done);
    let (ri, ro) = read(&mut s, 2, &["a", "a"]);
    let r = check(&s.h);
    assert_eq!(kinds(&r), vec!["duplicate"], "{r:#?}");
    assert_eq!(r.anomalies[0].ops, vec![ri, ro]);
}

#[test]
fn reads_that_disagree_on_order_are_invalid() {
    let mut s = Script::default();
    s.ev(1, Invoke, A, "k", json!("a"));
    s.ev(2, Invoke, A, "k", json!("b"));
    let (r1i, r1o) = read(&mut s, 3, &["b"]);
    s.ev(1, Done, A, "k", json!("a"));
    s.ev(2, Done, A, "k", json!("b"));
    let (r2i, r2o) = read(&mut s, 3, &["a", "b"]);
    let r = check(&s.h);
    assert_eq!(kinds(&r), vec!["order"], "{r:#?}");
    assert_eq!(r.anomalies[0].ops, vec![r1i, r1o, r2i, r2o]);
}

#[test]
fn a_read_invoked_after_an_acknowledged_append_must_see_it() {
    let mut s = Script::default();
    let (ai, ao) = append(&mut s, 1, "a", Done);
    let (ri, ro) = read(&mut s, 2, &[]); // a stale follower
    read(&mut s, 2, &["a"]);
    let r = check(&s.h);
    assert_eq!(kinds(&r), vec!["stale-read"], "{r:#?}");
    assert_eq!(r.anomalies[0].ops, vec![ri, ro, ai, ao]);

    // Concurrent with the append, the same read is fine.
    let mut s = Script::default();
    s.ev(1, Invoke, A, "k", json!("a"));
    read(&mut s, 2, &[]);
    s.ev(1, Done, A, "k", json!("a"));
    read(&mut s, 2, &["a"]);
    assert_eq!(check(&s.h).valid, Validity::Valid);
}

#[test]
fn a_read_must_not_go_back_in_time() {
    let mut s = Script::default();
    s.ev(1, Invoke, A, "k", json!("a")); // never acknowledged, so only the reads can show it
    let (r1i, r1o) = read(&mut s, 2, &["a"]);
    let (r2i, r2o) = read(&mut s, 3, &[]);
    read(&mut s, 3, &["a"]);
    let r = check(&s.h);
    assert_eq!(kinds(&r), vec!["non-monotonic-read"], "{r:#?}");
    assert_eq!(r.anomalies[0].ops, vec![r1i, r1o, r2i, r2o]);
}

#[test]
fn a_failed_append_must_not_be_visible() {
    let mut s = Script::default();
    let (ai, ao) = append(&mut s, 1, "a", Fail);
    let (ri, ro) = read(&mut s, 2, &["a"]);
    read(&mut s, 2, &["a"]);
    let r = check(&s.h);
    assert_eq!(kinds(&r), vec!["failed-append-visible"], "{r:#?}");
    assert_eq!(r.anomalies[0].ops, vec![ai, ao, ri, ro]);
    assert!(r.anomalies[0].explanation.contains("2 read(s)"));
    assert_eq!(r.appends_fail, 1);
}

#[test]
fn an_id_never_appended_is_a_phantom() {
    let mut s = Script::default();
    append(&mut s, 1, "a", Done);
    s.ev(1, Invoke, A, "j", json!("b")); // b went to another key
    read(&mut s, 2, &["a", "b"]);
    let r = check(&s.h);
    assert_eq!(kinds(&r), vec!["phantom"], "{r:#?}");
    assert!(r.anomalies[0].explanation.starts_with("b was never appended to k"));
}

#[test]
fn a_read_cannot_see_an_append_invoked_after_it_completed() {
    let mut s = Script::default();
    read(&mut s, 2, &["a"]);
    append(&mut s, 1, "a", Done);
    read(&mut s, 2, &["a"]);
    assert_eq!(kinds(&check(&s.h)), vec!["future-read"]);
}

#[test]
fn indeterminate_appends_may_or_may_not_appear() {
    for visible in [false, true] {
        let mut s = Script::default();
        append(&mut s, 1, "a", Done);
        append(&mut s, 2, "b", Info);
        s.ev(3, Invoke, A, "k", json!("c")); // never completed
        let ids: &[&str] = if visible { &["a", "c", "b"] } else { &["a"] };
        read(&mut s, 4, ids);
        let r = check(&s.h);
        assert_eq!(r.valid, Validity::Valid, "visible {visible}: {r:#?}");
        assert_eq!(r.appends_info, 2);
    }
}

#[test]
fn an_acknowledged_append_no_later_read_confirms_is_unknown() {
    let mut s = Script::default();
    s.ev(1, Invoke, A, "k", json!("a"));
    read(&mut s, 2, &[]);
    s.ev(1, Done, A, "k", json!("a"));
    let r = check(&s.h);
    assert_eq!((r.valid, r.unconfirmed), (Validity::Unknown, 1), "{r:#?}");
}

#[test]
fn anomalies_are_bounded_but_all_counted() {
    let mut s = Script::default();
    for i in 0..150 {
        read(&mut s, 2, &[&format!("x{i}")]);
    }
    let r = check(&s.h);
    assert_eq!((r.anomalies.len(), r.anomalies_dropped), (MAX_ANOMALIES, 50 + 149));
    assert_eq!(r.anomaly_counts["phantom"], 150);
    assert!(serde_json::to_string(&r).unwrap().contains(r#""valid":"invalid""#));
}

fn generated(seed: u64, workers: usize, ops: usize, info: u64) -> (History, Lists) {
    let mut lists = Lists { keys: 3, ..Lists::default() };
    let sim = Sim { workers, ops_per_worker: ops, info_per_mille: info, fail_per_mille: 50, sequential: false };
    let mut h = simulate(&mut lists, &sim, &mut Rng::new(seed));
    final_reads(&mut h, &lists);
    (h, lists)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn histories_of_real_executions_are_valid(seed in any::<u64>(), workers in 1usize..8, ops in 1usize..40) {
        let (h, _) = generated(seed, workers, ops, 60);
        let r = check(&h);
        prop_assert_eq!(r.valid, Validity::Valid, "{:#?}", r);
    }

    #[test]
    fn dropping_an_acknowledged_id_from_a_final_read_is_lost(seed in any::<u64>(), pick in any::<usize>()) {
        let (mut h, _) = generated(seed, 4, 20, 0);
        let acked: Vec<String> = h.ops.iter().filter(|o| o.f == A && o.kind == Done)
            .map(|o| o.value.as_str().unwrap().to_string()).collect();
        prop_assume!(!acked.is_empty());
        let id = &acked[pick % acked.len()];
        let holds = |o: &Op| o.f == R && o.kind == Done && o.value.as_array().unwrap().contains(&json!(id));
        let last = h.ops.iter_mut().rev().find(|o| holds(o));
        last.unwrap().value.as_array_mut().unwrap().retain(|v| v != id);
        let r = check(&h);
        prop_assert_eq!(r.valid, Validity::Invalid);
        prop_assert!(kinds(&r).contains(&"lost"), "{:#?}", r);
    }
}
