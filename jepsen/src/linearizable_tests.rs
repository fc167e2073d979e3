use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::history::OpF::{Cas, Read as R, Write as W};
use crate::history::OpType::{Fail, Info, Invoke, Ok as Done};
use crate::history::{History, Op, OpF};
use crate::testgen::{simulate, Register, Rng, Script, Sim};

const LIMIT: Duration = Duration::from_secs(30);

/// An operation on register `x` by process `p`, invoked and completed (`kind`) at once.
fn op(s: &mut Script, p: i64, f: OpF, inv: Value, kind: OpType, done: Value) -> (u64, u64) {
    (s.ev(p, Invoke, f, "x", inv), s.ev(p, kind, f, "x", done))
}

fn write(s: &mut Script, p: i64, v: &str) -> (u64, u64) {
    op(s, p, W, json!(v), Done, json!(v))
}

fn read(s: &mut Script, p: i64, v: Value) -> (u64, u64) {
    op(s, p, R, Value::Null, Done, v)
}

fn verdict(s: &Script) -> Validity {
    check(&s.h, LIMIT).valid
}

#[test]
fn a_read_overlapping_a_write_may_return_either_value() {
    for seen in [json!("a"), json!("b")] {
        let mut s = Script::default();
        write(&mut s, 1, "a");
        s.ev(1, Invoke, W, "x", json!("b"));
        s.ev(2, Invoke, R, "x", Value::Null);
        s.ev(2, Done, R, "x", seen.clone());
        s.ev(1, Done, W, "x", json!("b"));
        read(&mut s, 2, json!("b"));
        assert_eq!(verdict(&s), Validity::Valid, "read {seen}");
    }
    // Before any write completes, a read may see the initial null or the concurrent write.
    let mut s = Script::default();
    s.ev(1, Invoke, W, "x", json!("a"));
    read(&mut s, 2, Value::Null);
    read(&mut s, 3, json!("a"));
    s.ev(1, Done, W, "x", json!("a"));
    let r = check(&s.h, LIMIT);
    assert_eq!(r.valid, Validity::Valid, "{r:#?}");
    assert_eq!((r.keys.len(), r.keys[0].ops), (1, 3));
}

#[test]
fn a_read_of_the_old_value_after_a_write_completed_is_invalid() {
    let mut s = Script::default();
    let (w1, _) = write(&mut s, 1, "a");
    let (w2, _) = write(&mut s, 1, "b");
    let (ri, ro) = read(&mut s, 2, json!("a"));
    let r = check(&s.h, LIMIT);
    assert_eq!(r.valid, Validity::Invalid);
    let k = &r.keys[0];
    assert_eq!((k.linearized.clone(), k.failed_op.clone()), (vec![w1, w2], vec![ri, ro]), "{k:#?}");
    assert!(k.explanation.contains(r#"read returning "a""#) && k.explanation.contains(r#"holds "b""#), "{k:#?}");
}

#[test]
fn a_read_of_a_value_never_written_is_invalid() {
    let mut s = Script::default();
    s.ev(1, Invoke, W, "x", json!("a"));
    let (ri, ro) = read(&mut s, 2, json!("z"));
    s.ev(1, Done, W, "x", json!("a"));
    op(&mut s, 3, W, json!("z"), Fail, json!("z")); // failed: never happened
    let k = &check(&s.h, LIMIT).keys[0];
    assert_eq!((k.valid, k.failed_op.clone()), (Validity::Invalid, vec![ri, ro]), "{k:#?}");
}

#[test]
fn an_indeterminate_write_may_take_effect_late_or_never() {
    for seen in [Value::Null, json!("a")] {
        let mut s = Script::default();
        op(&mut s, 1, W, json!("a"), Info, json!("a"));
        read(&mut s, 2, Value::Null);
        read(&mut s, 2, seen.clone()); // after its info: applied late, or still not
        s.ev(3, Invoke, W, "x", json!("b")); // never completes
        let r = check(&s.h, LIMIT);
        assert_eq!(r.valid, Validity::Valid, "seen {seen}: {r:#?}");
        assert_eq!((r.keys[0].ops, r.keys[0].indeterminate), (4, 2));
    }
    // Once seen it happened: it cannot be undone.
    let mut s = Script::default();
    op(&mut s, 1, W, json!("a"), Info, json!("a"));
    read(&mut s, 2, json!("a"));
    read(&mut s, 2, Value::Null);
    assert_eq!(verdict(&s), Validity::Invalid);
}

#[test]
fn cas_succeeds_only_on_the_expected_value() {
    let ok = |s: &mut Script, e: &str, n: &str| op(s, 1, Cas, json!([e, n]), Done, json!([e, n]));
    let mut s = Script::default();
    write(&mut s, 1, "a");
    ok(&mut s, "a", "b");
    op(&mut s, 1, Cas, json!(["a", "c"]), Fail, json!(["a", "c"])); // dropped
    read(&mut s, 2, json!("b"));
    assert_eq!(verdict(&s), Validity::Valid);

    let mut s = Script::default();
    write(&mut s, 1, "a");
    ok(&mut s, "c", "b"); // the register held a, not c
    assert_eq!(verdict(&s), Validity::Invalid);

    // From the initial null; an indeterminate cas happens only if its expectation held.
    let mut s = Script::default();
    op(&mut s, 1, Cas, json!([null, "a"]), Done, json!([null, "a"]));
    op(&mut s, 1, Cas, json!(["a", "b"]), Info, json!(["a", "b"]));
    read(&mut s, 2, json!("b"));
    assert_eq!(verdict(&s), Validity::Valid);
    let mut s = Script::default();
    write(&mut s, 1, "c");
    op(&mut s, 1, Cas, json!(["a", "b"]), Info, json!(["a", "b"]));
    read(&mut s, 2, json!("b"));
    assert_eq!(verdict(&s), Validity::Invalid);

    let mut s = Script::default();
    op(&mut s, 1, Cas, json!("a"), Done, json!("a"));
    let k = &check(&s.h, LIMIT).keys[0];
    assert_eq!(k.valid, Validity::Unknown, "{k:#?}");
}

#[test]
fn keys_are_checked_independently() {
    let mut s = Script::default();
    write(&mut s, 1, "a");
    s.ev(2, Invoke, W, "y", json!("a"));
    s.ev(2, Done, W, "y", json!("a"));
    read(&mut s, 3, json!("a"));
    s.ev(3, Invoke, R, "y", Value::Null);
    s.ev(3, Done, R, "y", Value::Null); // y was written before: stale
    let r = check(&s.h, LIMIT);
    let verdicts: Vec<(&str, Validity)> = r.keys.iter().map(|k| (k.key.as_str(), k.valid)).collect();
    assert_eq!(verdicts, vec![("x", Validity::Valid), ("y", Validity::Invalid)]);
    assert_eq!(r.valid, Validity::Invalid);
    assert!(serde_json::to_string(&r).unwrap().contains(r#""valid":"invalid""#));
}

fn generated(seed: u64, keys: usize, workers: usize, ops: usize, info: u64, sequential: bool) -> History {
    let sim = Sim { workers, ops_per_worker: ops, info_per_mille: info, fail_per_mille: 30, sequential };
    simulate(&mut Register::new(keys, 3), &sim, &mut Rng::new(seed))
}

#[test]
fn a_large_concurrent_history_checks_valid_quickly() {
    for seed in 0..3 {
        let h = generated(seed, 1, 10, 200, 20, false);
        let started = Instant::now();
        let r = check(&h, LIMIT);
        let k = &r.keys[0];
        assert_eq!(r.valid, Validity::Valid, "seed {seed}: {k:#?}");
        assert!(k.ops > 1500 && k.indeterminate > 0, "{k:#?}");
        assert!(started.elapsed() < Duration::from_secs(5), "seed {seed}: took {:?}", started.elapsed());
    }
}

/// `n` concurrent writes that never complete, and a read of a value none of them wrote: proving
/// it invalid means trying every subset of the writes in every order.
fn pathological(n: usize) -> History {
    let mut s = Script::default();
    for p in 0..n {
        s.ev(p as i64, Invoke, W, "x", json!(format!("v{p}")));
    }
    read(&mut s, 100, json!("never"));
    s.h
}

#[test]
fn a_search_cut_short_by_the_time_limit_is_unknown() {
    let r = check(&pathological(30), Duration::from_millis(20));
    assert_eq!(r.valid, Validity::Unknown, "{r:#?}");
    assert!(r.keys[0].explanation.contains("time limit"));
    // Small enough, the same search completes.
    let r = check(&pathological(6), LIMIT);
    assert_eq!(r.valid, Validity::Invalid, "{r:#?}");
}

/// A random operation for the oracle: `(f, value, invocation time, duration, outcome)`.
type Rand = (u8, u8, u8, u8, u8);

/// A history of arbitrary overlapping operations (one process each), not necessarily valid.
fn arbitrary(ops: &[Rand]) -> History {
    let v = |x: u8| match x % 3 {
        0 => Value::Null,
        1 => json!("a"),
        _ => json!("b"),
    };
    let mut events: Vec<(u64, u8, Op)> = Vec::new();
    for (p, &(f, x, start, len, end)) in ops.iter().enumerate() {
        let (f, inv, done) = match f % 3 {
            0 => (R, Value::Null, v(x)),
            1 => (W, v(x), v(x)),
            _ => (Cas, json!([v(x), v(x / 3)]), json!([v(x), v(x / 3)])),
        };
        let ev = |kind, value, t: u8| Op {
            index: 0,
            process: p as i64,
            kind,
            f,
            key: "x".into(),
            value,
            time_ns: t as u64,
            node: String::new(),
        };
        let (start, stop) = (start % 8, start % 8 + len % 5);
        events.push((start as u64, 0, ev(Invoke, inv.clone(), start)));
        match end % 5 {
            0 => events.push((stop as u64, 1, ev(Info, inv, stop))),
            1 => {} // never completes
            2 if f != R => events.push((stop as u64, 1, ev(Fail, inv, stop))),
            _ => events.push((stop as u64, 1, ev(Done, done, stop))),
        }
    }
    events.sort_by_key(|e| (e.0, e.1));
    let mut h = History::default();
    for (_, _, op) in events {
        h.push(op);
    }
    h
}

/// Is there an order of all `ok` operations, and some of the indeterminate ones, that respects
/// real time and the register? By trying every one.
fn brute_force(h: &History) -> bool {
    // (f, invocation value, completion value, invoked, returned: None if indeterminate)
    type O = (OpF, Value, Value, u64, Option<u64>);
    let ops: Vec<O> = h
        .pairs()
        .into_iter()
        .filter_map(|(i, c)| {
            let (inv, done) = (&h.ops[i], c.map(|c| &h.ops[c]));
            match done.map(|d| d.kind) {
                Some(Fail) => None,
                Some(Done) => Some((
                    inv.f,
                    inv.value.clone(),
                    done.unwrap().value.clone(),
                    inv.time_ns,
                    Some(done.unwrap().time_ns),
                )),
                _ if inv.f == R => None,
                _ => Some((inv.f, inv.value.clone(), Value::Null, inv.time_ns, None)),
            }
        })
        .collect();
    fn go(ops: &[O], left: &mut Vec<bool>, state: &Value) -> bool {
        if !(0..ops.len()).any(|i| left[i] && ops[i].4.is_some()) {
            return true;
        }
        for i in 0..ops.len() {
            let blocked = (0..ops.len()).any(|j| left[j] && ops[j].4.is_some_and(|r| r < ops[i].3));
            if !left[i] || blocked {
                continue;
            }
            let (f, inv, done) = (&ops[i].0, &ops[i].1, &ops[i].2);
            let next = match f {
                R if done == state => state.clone(),
                W => inv.clone(),
                Cas if inv[0] == *state => inv[1].clone(),
                _ => continue,
            };
            left[i] = false;
            let found = go(ops, left, &next);
            left[i] = true;
            if found {
                return true;
            }
        }
        false
    }
    go(&ops, &mut vec![true; ops.len()], &Value::Null)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn agrees_with_a_brute_force_search(ops in proptest::collection::vec(any::<Rand>(), 1..8)) {
        let h = arbitrary(&ops);
        let expected = if brute_force(&h) { Validity::Valid } else { Validity::Invalid };
        prop_assert_eq!(check(&h, LIMIT).valid, expected, "{:#?}", h.ops);
    }

    #[test]
    fn histories_of_real_executions_are_linearizable(
        seed in any::<u64>(), keys in 1usize..4, workers in 1usize..7, ops in 1usize..30,
    ) {
        let r = check(&generated(seed, keys, workers, ops, 40, false), LIMIT);
        prop_assert_eq!(r.valid, Validity::Valid, "{:#?}", r);
    }

    #[test]
    fn corrupting_a_read_of_a_sequential_history_is_invalid(
        seed in any::<u64>(), workers in 1usize..5, pick in any::<usize>(), wrong in 0usize..4,
    ) {
        let mut h = generated(seed, 1, workers, 15, 0, true);
        let reads: Vec<usize> = (0..h.ops.len()).filter(|&i| h.ops[i].f == R && h.ops[i].kind == Done).collect();
        prop_assume!(!reads.is_empty());
        let read = &mut h.ops[reads[pick % reads.len()]];
        let values = [Value::Null, json!("v0"), json!("v1"), json!("v2")];
        let replacement = values.iter().cycle().skip(wrong).find(|v| **v != read.value).unwrap();
        read.value = replacement.clone();
        let r = check(&h, LIMIT);
        prop_assert_eq!(r.valid, Validity::Invalid, "{:#?}", r);
    }
}
