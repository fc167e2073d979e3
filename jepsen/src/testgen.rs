//! Test-only: hand-written histories, and histories recorded from a real (simulated) execution of
//! a sequential object by concurrent workers, which are valid by construction.

use serde_json::{json, Value};

use crate::history::{History, Op, OpF, OpType};

/// A small deterministic generator (SplitMix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.next() % 1000 < per_mille
    }
}

/// Writes a history by hand, one event at a time, each 10 ns after the last.
#[derive(Default)]
pub struct Script {
    pub h: History,
    t: u64,
}

impl Script {
    /// Records an event; returns its index.
    pub fn ev(&mut self, process: i64, kind: OpType, f: OpF, key: &str, value: Value) -> u64 {
        self.t += 10;
        self.h.push(Op { index: 0, process, kind, f, key: key.into(), value, time_ns: self.t, node: String::new() })
    }
}

/// A sequential object the simulation drives.
pub trait Model {
    /// A new operation: `(f, key, invocation value)`.
    fn invoke(&mut self, rng: &mut Rng) -> (OpF, String, Value);
    /// Applies it at its linearization point: `(Ok or Fail, completion value)`.
    fn apply(&mut self, f: OpF, key: &str, value: &Value) -> (OpType, Value);
}

pub struct Sim {
    pub workers: usize,
    pub ops_per_worker: usize,
    /// Chance that an operation ends `info` (whether it was applied yet or not).
    pub info_per_mille: u64,
    /// Chance that an operation ends `fail` without being applied.
    pub fail_per_mille: u64,
    /// No two operations overlap in time.
    pub sequential: bool,
}

enum Phase {
    Invoked,
    Applied(OpType, Value),
}

/// Runs `sim` against `model`: every operation takes effect at one instant between its invocation
/// and its completion, except `info` ones not yet applied, which take effect later or never.
pub fn simulate<M: Model>(model: &mut M, sim: &Sim, rng: &mut Rng) -> History {
    let mut h = History::default();
    let mut t = 0u64;
    let mut procs: Vec<i64> = (0..sim.workers as i64).collect();
    let mut next_proc = sim.workers as i64;
    let mut left = vec![sim.ops_per_worker; sim.workers];
    let mut pending: Vec<Option<(OpF, String, Value, Phase)>> = (0..sim.workers).map(|_| None).collect();
    let mut ghosts: Vec<(OpF, String, Value)> = Vec::new();
    let record = |h: &mut History, t: u64, p: i64, kind: OpType, f: OpF, key: &str, value: Value| {
        h.push(Op { index: 0, process: p, kind, f, key: key.into(), value, time_ns: t, node: String::new() });
    };
    loop {
        let busy: Vec<usize> = (0..sim.workers).filter(|&w| pending[w].is_some()).collect();
        let active: Vec<usize> = if sim.sequential && !busy.is_empty() {
            busy
        } else {
            (0..sim.workers).filter(|&w| left[w] > 0 || pending[w].is_some()).collect()
        };
        if active.is_empty() {
            return h;
        }
        t += 1 + rng.below(3) as u64;
        if !ghosts.is_empty() && rng.chance(100) {
            let (f, key, value) = ghosts.swap_remove(rng.below(ghosts.len()));
            model.apply(f, &key, &value);
            continue;
        }
        let w = active[rng.below(active.len())];
        match pending[w].take() {
            None => {
                let (f, key, value) = model.invoke(rng);
                record(&mut h, t, procs[w], OpType::Invoke, f, &key, value.clone());
                pending[w] = Some((f, key, value, Phase::Invoked));
                left[w] -= 1;
            }
            Some((f, key, value, Phase::Invoked)) => {
                if rng.chance(sim.info_per_mille) {
                    record(&mut h, t, procs[w], OpType::Info, f, &key, value.clone());
                    ghosts.push((f, key, value));
                    procs[w] = next_proc;
                    next_proc += 1;
                } else if rng.chance(sim.fail_per_mille) {
                    record(&mut h, t, procs[w], OpType::Fail, f, &key, value);
                } else {
                    let (kind, out) = model.apply(f, &key, &value);
                    pending[w] = Some((f, key, value, Phase::Applied(kind, out)));
                }
            }
            Some((f, key, value, Phase::Applied(kind, out))) => {
                if rng.chance(sim.info_per_mille) {
                    record(&mut h, t, procs[w], OpType::Info, f, &key, value);
                    procs[w] = next_proc;
                    next_proc += 1;
                } else {
                    record(&mut h, t, procs[w], kind, f, &key, out);
                }
            }
        }
    }
}

/// A register per key: reads, writes of a few values, and cas among them.
pub struct Register {
    pub keys: usize,
    pub values: usize,
    pub state: std::collections::HashMap<String, Value>,
}

impl Register {
    pub fn new(keys: usize, values: usize) -> Register {
        Register { keys, values, state: Default::default() }
    }

    fn value(&self, rng: &mut Rng) -> Value {
        json!(format!("v{}", rng.below(self.values)))
    }
}

impl Model for Register {
    fn invoke(&mut self, rng: &mut Rng) -> (OpF, String, Value) {
        let key = format!("r{}", rng.below(self.keys));
        match rng.below(5) {
            0 | 1 => (OpF::Read, key, Value::Null),
            2 | 3 => (OpF::Write, key, self.value(rng)),
            _ => {
                let expected = if rng.chance(200) { Value::Null } else { self.value(rng) };
                (OpF::Cas, key, json!([expected, self.value(rng)]))
            }
        }
    }

    fn apply(&mut self, f: OpF, key: &str, value: &Value) -> (OpType, Value) {
        let cur = self.state.entry(key.to_string()).or_insert(Value::Null);
        match f {
            OpF::Read => (OpType::Ok, cur.clone()),
            OpF::Write => {
                *cur = value.clone();
                (OpType::Ok, value.clone())
            }
            _ if *cur == value[0] => {
                *cur = value[1].clone();
                (OpType::Ok, value.clone())
            }
            _ => (OpType::Fail, value.clone()),
        }
    }
}

/// A list per key: appends of unique ids and reads of whole lists.
#[derive(Default)]
pub struct Lists {
    pub keys: usize,
    pub next_id: usize,
    pub lists: std::collections::BTreeMap<String, Vec<String>>,
}

impl Model for Lists {
    fn invoke(&mut self, rng: &mut Rng) -> (OpF, String, Value) {
        let key = format!("k{}", rng.below(self.keys));
        if rng.chance(500) {
            return (OpF::Read, key, Value::Null);
        }
        self.next_id += 1;
        (OpF::Append, key, json!(format!("e{}", self.next_id)))
    }

    fn apply(&mut self, f: OpF, key: &str, value: &Value) -> (OpType, Value) {
        let list = self.lists.entry(key.to_string()).or_default();
        match f {
            OpF::Append => {
                list.push(value.as_str().unwrap().to_string());
                (OpType::Ok, value.clone())
            }
            _ => (OpType::Ok, json!(list)),
        }
    }
}

/// Appends the final reads: every key, one after the other, after everything else.
pub fn final_reads(h: &mut History, lists: &Lists) {
    let mut t = h.ops.last().map_or(0, |o| o.time_ns);
    for k in 0..lists.keys {
        let key = format!("k{k}");
        let list = lists.lists.get(&key).cloned().unwrap_or_default();
        for (kind, value) in [(OpType::Invoke, Value::Null), (OpType::Ok, json!(list))] {
            t += 1;
            h.push(Op {
                index: 0,
                process: 1_000_000,
                kind,
                f: OpF::Read,
                key: key.clone(),
                value,
                time_ns: t,
                node: "".into(),
            });
        }
    }
}
