//! The history being recorded: shared by the workers and the nemesis, stamped with a monotonic
//! clock from the start of the run.

use std::sync::Mutex;
use std::time::Instant;

use jepsen::history::{History, Op, OpF, OpType, NEMESIS};
use serde_json::Value;

pub struct Recorder {
    start: Instant,
    history: Mutex<History>,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder { start: Instant::now(), history: Mutex::new(History::default()) }
    }

    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    pub fn record(&self, process: i64, kind: OpType, f: OpF, key: &str, value: Value, node: &str) {
        // Stamped under the lock, so lines are in time order.
        let mut h = self.history.lock().expect("history lock");
        let op = Op {
            index: 0,
            process,
            kind,
            f,
            key: key.to_owned(),
            value,
            time_ns: self.now_ns(),
            node: node.to_owned(),
        };
        h.push(op);
    }

    pub fn nemesis(&self, what: &str) {
        tracing::info!("nemesis: {what}");
        self.record(NEMESIS, OpType::Info, OpF::Nemesis, "", Value::String(what.to_owned()), "");
    }

    pub fn take(&self) -> History {
        std::mem::take(&mut *self.history.lock().expect("history lock"))
    }
}
