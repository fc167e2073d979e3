//! The linearizability checker for registers: `write(v)`, `read -> v` (null: never written) and
//! `cas([expected, new])` on independent keys.
//!
//! Each key is checked on its own (P-compositionality) by the Wing–Gong–Lowe search as Porcupine
//! does it: the history becomes a list of call and return events in time order; a depth-first
//! search linearizes, one by one, calls that no pending return precedes, backtracking when it
//! reaches a return whose call it could not linearize, and remembers every (set of linearized
//! operations, register value) it has been in so that it never explores one twice.
//!
//! Outcomes: `fail` operations definitely did not happen and are dropped; `info` (or unfinished)
//! reads constrain nothing and are dropped; `info` writes and cas return at +infinity, so they may
//! take effect anywhere after their invocation, and may be left out (never happened): the search
//! succeeds once every `ok` operation is linearized. Events at the same instant count as
//! concurrent. The time limit covers the whole check; a key whose search it cuts short is
//! `unknown`, never valid.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::history::{History, OpF, OpType};
use crate::verdict::Validity;

/// The verdict of [`check`]: invalid if any key is, else unknown if any key is.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LinearizableResult {
    pub valid: Validity,
    /// Per key, in key order.
    pub keys: Vec<KeyResult>,
}

/// The verdict for one key.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KeyResult {
    pub key: String,
    pub valid: Validity,
    /// Operations checked (`ok`, and `info` writes and cas).
    pub ops: usize,
    /// Of those, the `info` ones (may or may not have happened).
    pub indeterminate: usize,
    /// When invalid: the longest linearizable prefix found, as the invocation `index` of each
    /// operation in linearization order.
    pub linearized: Vec<u64>,
    /// When invalid: the operation that could not be linearized after that prefix, as the `index`
    /// of its invocation and of its completion.
    pub failed_op: Vec<u64>,
    pub explanation: String,
}

/// A register operation, values interned (0 is null).
#[derive(Clone, Copy, Debug)]
enum Call {
    Read(u32),
    Write(u32),
    Cas(u32, u32),
}

struct RegOp {
    call: Call,
    invoke_ns: u64,
    /// `None`: indeterminate, returns at +infinity.
    return_ns: Option<u64>,
    invoke: u64,
    done: Option<u64>,
}

/// Distinct register values, by their JSON text.
struct Values {
    ids: HashMap<String, u32>,
    texts: Vec<String>,
}

impl Values {
    fn new() -> Values {
        Values { ids: HashMap::from([("null".to_string(), 0)]), texts: vec!["null".to_string()] }
    }

    fn id(&mut self, v: &serde_json::Value) -> u32 {
        let text = v.to_string();
        let next = self.texts.len() as u32;
        *self.ids.entry(text).or_insert_with_key(|t| {
            self.texts.push(t.clone());
            next
        })
    }
}

/// Checks every key of a register history, within `limit` in all.
pub fn check(history: &History, limit: Duration) -> LinearizableResult {
    let deadline = Instant::now().checked_add(limit);
    let mut values = Values::new();
    let mut keys: BTreeMap<&str, Result<Vec<RegOp>, String>> = BTreeMap::new();
    for (i, c) in history.pairs() {
        let inv = &history.ops[i];
        if !matches!(inv.f, OpF::Read | OpF::Write | OpF::Cas) {
            continue;
        }
        let slot = keys.entry(&inv.key).or_insert_with(|| Ok(Vec::new()));
        let done = c.map(|c| &history.ops[c]).filter(|d| d.kind != OpType::Info);
        let call = match (inv.f, done.map(|d| (d.kind, &d.value))) {
            (_, Some((OpType::Fail, _))) | (OpF::Read, None) => continue,
            (OpF::Read, Some((_, v))) => Call::Read(values.id(v)),
            (OpF::Write, _) => Call::Write(values.id(&inv.value)),
            _ => match inv.value.as_array().map(Vec::as_slice) {
                Some([e, n]) => Call::Cas(values.id(e), values.id(n)),
                _ => {
                    if slot.is_ok() {
                        *slot = Err(format!("cas at index {} has value {}, not [expected, new]", inv.index, inv.value));
                    }
                    continue;
                }
            },
        };
        if let Ok(ops) = slot {
            ops.push(RegOp {
                call,
                invoke_ns: inv.time_ns,
                return_ns: done.map(|d| d.time_ns.max(inv.time_ns)),
                invoke: inv.index,
                done: done.map(|d| d.index),
            });
        }
    }
    let results: Vec<KeyResult> = keys
        .into_iter()
        .map(|(key, ops)| match ops {
            Ok(ops) => check_key(key, &ops, deadline, &values),
            Err(why) => KeyResult {
                key: key.to_string(),
                valid: Validity::Unknown,
                ops: 0,
                indeterminate: 0,
                linearized: Vec::new(),
                failed_op: Vec::new(),
                explanation: why,
            },
        })
        .collect();
    LinearizableResult { valid: Validity::all(results.iter().map(|k| k.valid)), keys: results }
}

fn check_key(key: &str, ops: &[RegOp], deadline: Option<Instant>, values: &Values) -> KeyResult {
    let mut res = KeyResult {
        key: key.to_string(),
        valid: Validity::Valid,
        ops: ops.len(),
        indeterminate: ops.iter().filter(|o| o.return_ns.is_none()).count(),
        linearized: Vec::new(),
        failed_op: Vec::new(),
        explanation: String::new(),
    };
    match search(ops, deadline) {
        Search::Linearizable => {}
        Search::TimedOut => {
            res.valid = Validity::Unknown;
            res.explanation = "the time limit ran out before the search could decide".to_string();
        }
        Search::NotLinearizable { prefix, blocked, state } => {
            let b = &ops[blocked];
            res.valid = Validity::Invalid;
            res.linearized = prefix.iter().map(|&i| ops[i].invoke).collect();
            res.failed_op = std::iter::once(b.invoke).chain(b.done).collect();
            let v = |id: u32| values.texts[id as usize].as_str();
            let what = match b.call {
                Call::Read(x) => format!("read returning {}", v(x)),
                Call::Write(x) => format!("write of {}", v(x)),
                Call::Cas(e, n) => format!("cas from {} to {}", v(e), v(n)),
            };
            res.explanation = format!(
                "at most {} operations linearize (the register then holds {}); the {what} invoked at index {} \
                 cannot be placed before it completed",
                prefix.len(),
                v(state),
                b.invoke
            );
        }
    }
    res
}

enum Search {
    Linearizable,
    TimedOut,
    /// The longest linearization found (operation positions in order), the operation whose
    /// return it could not get past, and the register's value after the linearization.
    NotLinearizable {
        prefix: Vec<usize>,
        blocked: usize,
        state: u32,
    },
}

/// The register: the value after applying `call` to `state`, if `call` can happen in `state`.
fn step(state: u32, call: Call) -> Option<u32> {
    match call {
        Call::Read(v) => (v == state).then_some(state),
        Call::Write(v) => Some(v),
        Call::Cas(expected, new) => (expected == state).then_some(new),
    }
}

const NIL: usize = usize::MAX;
const HEAD: usize = 0;

/// The event list: node 0 is the head; node `1 + 2i` is operation i's call, `2 + 2i` its return.
struct Events {
    next: Vec<usize>,
    prev: Vec<usize>,
}

impl Events {
    fn new(ops: &[RegOp]) -> Events {
        // (time, call before return at the same instant, node); indeterminate returns last.
        let mut order: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * ops.len());
        for (i, op) in ops.iter().enumerate() {
            order.push((op.invoke_ns, 0, 1 + 2 * i));
            order.push((op.return_ns.unwrap_or(u64::MAX), 1, 2 + 2 * i));
        }
        order.sort_unstable();
        let n = 1 + 2 * ops.len();
        let (mut next, mut prev) = (vec![NIL; n], vec![NIL; n]);
        let mut last = HEAD;
        for (_, _, node) in order {
            next[last] = node;
            prev[node] = last;
            last = node;
        }
        Events { next, prev }
    }

    fn unlink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = n;
        if n != NIL {
            self.prev[n] = p;
        }
    }

    fn relink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = node;
        if n != NIL {
            self.prev[n] = node;
        }
    }

    /// Takes operation `op`'s call and return out of the list.
    fn lift(&mut self, op: usize) {
        self.unlink(1 + 2 * op);
        self.unlink(2 + 2 * op);
    }

    /// Undoes [`Events::lift`] of the last operation lifted.
    fn unlift(&mut self, op: usize) {
        self.relink(2 + 2 * op);
        self.relink(1 + 2 * op);
    }
}

fn search(ops: &[RegOp], deadline: Option<Instant>) -> Search {
    let mut events = Events::new(ops);
    let mut linearized = vec![0u64; ops.len().div_ceil(64)];
    let mut seen: HashSet<(Vec<u64>, u32)> = HashSet::new();
    let mut calls: Vec<(usize, u32)> = Vec::new(); // (operation, register value before it)
    let mut state = 0u32;
    let mut best: Option<(Vec<usize>, usize, u32)> = None;
    let mut steps = 0u64;
    let mut node = events.next[HEAD];
    while node != NIL {
        steps += 1;
        if steps.is_multiple_of(1024) && deadline.is_some_and(|d| Instant::now() >= d) {
            return Search::TimedOut;
        }
        let op = (node - 1) / 2;
        if node % 2 == 1 {
            // A call: linearize it here if the register allows and the result is new.
            if let Some(after) = step(state, ops[op].call) {
                let mut set = linearized.clone();
                set[op / 64] |= 1 << (op % 64);
                if seen.insert((set, after)) {
                    calls.push((op, state));
                    state = after;
                    linearized[op / 64] |= 1 << (op % 64);
                    events.lift(op);
                    node = events.next[HEAD];
                    continue;
                }
            }
            node = events.next[node];
        } else if ops[op].return_ns.is_none() {
            // Only indeterminate operations remain: leave them out.
            return Search::Linearizable;
        } else {
            // A return whose call is not linearized: undo the last linearized call.
            if best.as_ref().is_none_or(|(p, _, _)| calls.len() > p.len()) {
                best = Some((calls.iter().map(|c| c.0).collect(), op, state));
            }
            let Some((last, before)) = calls.pop() else { break };
            state = before;
            linearized[last / 64] &= !(1 << (last % 64));
            events.unlift(last);
            node = events.next[1 + 2 * last];
        }
    }
    match best {
        Some((prefix, blocked, state)) if node != NIL => Search::NotLinearizable { prefix, blocked, state },
        _ => Search::Linearizable,
    }
}

#[cfg(test)]
#[path = "linearizable_tests.rs"]
mod tests;
