//! A run's history: every operation as an invocation followed by its completion, and every
//! nemesis action, with monotonic timestamps.
//!
//! On disk a history is JSON lines, one [`Op`] per line, in the order they were recorded (which is
//! the order of their `time_ns`). The format, for other checkers:
//!
//! ```json
//! {"index":0,"process":3,"type":"invoke","f":"append","key":"k7","value":"e-3-17","time_ns":1200,"node":"127.0.0.1:7400"}
//! {"index":1,"process":3,"type":"ok","f":"append","key":"k7","value":"e-3-17","time_ns":5400,"node":"127.0.0.1:7400"}
//! {"index":2,"process":1,"type":"ok","f":"read","key":"k7","value":["e-3-17"],"time_ns":6100,"node":"127.0.0.1:7410"}
//! {"index":3,"process":-1,"type":"info","f":"nemesis","key":"","value":"kill node 2","time_ns":7000,"node":""}
//! ```
//!
//! - `process`: the worker (a worker has at most one operation outstanding; after an `info` it
//!   takes a fresh process number, as in Jepsen). Nemesis events use process -1.
//! - `type`: `invoke`, then exactly one of `ok` (it happened), `fail` (it definitely did not
//!   happen) or `info` (unknown: it may have happened, at any time after its invocation).
//! - `f`: `append` (value: the appended id), `read` (value on `ok`: the ids in order), `write`
//!   and `read` on registers (value: a string or null), `cas` (value: `[expected, new]`), and
//!   `nemesis` (value: what the nemesis did; `type` is `info`).
//! - `time_ns`: nanoseconds since the run started, from a monotonic clock.
//! - `node`: the address the operation went to last ("" when unknown).

use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The nemesis' process number.
pub const NEMESIS: i64 = -1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    Invoke,
    Ok,
    Fail,
    Info,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpF {
    Append,
    Read,
    Write,
    Cas,
    Nemesis,
}

/// One line of a history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Op {
    pub index: u64,
    pub process: i64,
    #[serde(rename = "type")]
    pub kind: OpType,
    pub f: OpF,
    pub key: String,
    pub value: serde_json::Value,
    pub time_ns: u64,
    #[serde(default)]
    pub node: String,
}

/// A history in recording order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    pub ops: Vec<Op>,
}

impl History {
    /// Appends `op`, numbering it.
    pub fn push(&mut self, mut op: Op) -> u64 {
        op.index = self.ops.len() as u64;
        let i = op.index;
        self.ops.push(op);
        i
    }

    pub fn write_jsonl(&self, path: &Path) -> std::io::Result<()> {
        let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
        for op in &self.ops {
            serde_json::to_writer(&mut w, op)?;
            w.write_all(b"\n")?;
        }
        w.flush()
    }

    /// Reads a JSON-lines history; the error names the line.
    pub fn read_jsonl(path: &Path) -> std::io::Result<History> {
        let r = std::io::BufReader::new(std::fs::File::open(path)?);
        let mut ops = Vec::new();
        for (i, line) in r.lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let op: Op = serde_json::from_str(&line).map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}:{}: {e}", path.display(), i + 1))
            })?;
            ops.push(op);
        }
        Ok(History { ops })
    }

    /// Pairs every invocation with its completion (`None`: none recorded, which counts as
    /// `info`). Nemesis lines are skipped. Returns `(invoke, completion)` index pairs in
    /// invocation order.
    pub fn pairs(&self) -> Vec<(usize, Option<usize>)> {
        let mut open: std::collections::HashMap<i64, usize> = std::collections::HashMap::new();
        let mut out: Vec<(usize, Option<usize>)> = Vec::new();
        let mut slot: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
        for (i, op) in self.ops.iter().enumerate() {
            if op.process == NEMESIS {
                continue;
            }
            match op.kind {
                OpType::Invoke => {
                    open.insert(op.process, i);
                    slot.insert(i, out.len());
                    out.push((i, None));
                }
                _ => {
                    if let Some(inv) = open.remove(&op.process) {
                        out[slot[&inv]].1 = Some(i);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(process: i64, kind: OpType, f: OpF, value: serde_json::Value, t: u64) -> Op {
        Op { index: 0, process, kind, f, key: "k".into(), value, time_ns: t, node: String::new() }
    }

    #[test]
    fn round_trips_through_json_lines_and_pairs_operations() {
        let mut h = History::default();
        h.push(op(1, OpType::Invoke, OpF::Append, "a".into(), 1));
        h.push(op(2, OpType::Invoke, OpF::Read, serde_json::Value::Null, 2));
        h.push(op(NEMESIS, OpType::Info, OpF::Nemesis, "kill".into(), 3));
        h.push(op(1, OpType::Ok, OpF::Append, "a".into(), 4));
        h.push(op(3, OpType::Invoke, OpF::Append, "b".into(), 5));
        h.push(op(2, OpType::Ok, OpF::Read, serde_json::json!(["a"]), 6));
        let dir = std::env::temp_dir().join(format!("traceo-history-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("h.jsonl");
        h.write_jsonl(&p).unwrap();
        let back = History::read_jsonl(&p).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.pairs(), vec![(0, Some(3)), (1, Some(5)), (4, None)]);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.lines().next().unwrap().contains(r#""type":"invoke""#), "{text}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
