//! The list-append checker: `append` adds a unique id to the list at a key, `read` returns the
//! key's whole list in apply order. Keys are independent and checked one by one for:
//!
//! - `duplicate`: a read holds an id twice;
//! - `phantom`: a read holds an id no one tried to append to that key;
//! - `failed-append-visible`: a read holds an id whose append definitely failed;
//! - `future-read`: a read completed before the append of an id it holds was invoked;
//! - `order`: a read is not a prefix of the key's longest read (all reads must be prefixes of one
//!   total order);
//! - `lost`: an acknowledged append is missing from the key's final read (the last one to
//!   complete), though that read was invoked after the acknowledgement;
//! - `stale-read`: a read invoked after an append was acknowledged misses it (ids already
//!   reported lost are left out: the loss explains them);
//! - `non-monotonic-read`: a read invoked after another read completed is shorter than it;
//! - `malformed-read`: a read's value is not a list (or null, read as empty).
//!
//! Appends that ended `info` (or never ended) may or may not appear. An acknowledged append that
//! no read invoked after its acknowledgement could confirm leaves the verdict unknown.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::history::{History, OpF, OpType};
use crate::verdict::Validity;

/// At most this many anomalies are kept in a result; the rest are only counted.
pub const MAX_ANOMALIES: usize = 100;
/// At most this many ids (or appends) are named in one anomaly.
const MAX_NAMED: usize = 8;

/// One anomaly, with the history lines that show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Anomaly {
    /// One of the kinds in the module documentation.
    pub kind: String,
    pub key: String,
    /// The `index` of every history line involved: invocation and completion of each operation.
    pub ops: Vec<u64>,
    /// What is wrong, naming each operation by the `index` of its completion (reads) or its ids.
    pub explanation: String,
}

/// The verdict of [`check`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ListAppendResult {
    pub valid: Validity,
    pub keys: usize,
    pub appends_ok: u64,
    pub appends_fail: u64,
    pub appends_info: u64,
    pub reads_ok: u64,
    /// Acknowledged appends that no read invoked after their acknowledgement saw or missed.
    pub unconfirmed: u64,
    /// Anomalies found, per kind (including those not kept).
    pub anomaly_counts: BTreeMap<String, u64>,
    /// The first [`MAX_ANOMALIES`] anomalies found.
    pub anomalies: Vec<Anomaly>,
    /// Anomalies found beyond those kept.
    pub anomalies_dropped: u64,
}

struct Append {
    invoke: u64,
    done: Option<u64>,
    outcome: OpType,
    invoke_ns: u64,
    ok_ns: u64,
}

impl Append {
    fn lines(&self) -> impl Iterator<Item = u64> {
        std::iter::once(self.invoke).chain(self.done)
    }
}

struct Read {
    invoke: u64,
    done: u64,
    invoke_ns: u64,
    done_ns: u64,
    ids: Vec<String>,
}

#[derive(Default)]
struct Key {
    appends: HashMap<String, Append>,
    reads: Vec<Read>,
}

/// Checks a list-append history; see the module documentation for what is checked.
pub fn check(history: &History) -> ListAppendResult {
    let mut res = ListAppendResult {
        valid: Validity::Valid,
        keys: 0,
        appends_ok: 0,
        appends_fail: 0,
        appends_info: 0,
        reads_ok: 0,
        unconfirmed: 0,
        anomaly_counts: BTreeMap::new(),
        anomalies: Vec::new(),
        anomalies_dropped: 0,
    };
    let mut keys: BTreeMap<&str, Key> = BTreeMap::new();
    for (i, c) in history.pairs() {
        let inv = &history.ops[i];
        let done = c.map(|c| &history.ops[c]);
        let outcome = done.map_or(OpType::Info, |d| d.kind);
        match inv.f {
            OpF::Append => {
                match outcome {
                    OpType::Ok => res.appends_ok += 1,
                    OpType::Fail => res.appends_fail += 1,
                    _ => res.appends_info += 1,
                }
                let a = Append {
                    invoke: inv.index,
                    done: done.map(|d| d.index),
                    outcome,
                    invoke_ns: inv.time_ns,
                    ok_ns: done.map_or(u64::MAX, |d| d.time_ns),
                };
                let slot = keys.entry(&inv.key).or_default().appends.entry(id_of(&inv.value));
                // Ids are unique; should one be appended twice, its most definite outcome counts.
                let rank = |t: OpType| [OpType::Ok, OpType::Info, OpType::Fail].iter().position(|x| *x == t);
                match slot {
                    Entry::Occupied(mut o) if rank(a.outcome) < rank(o.get().outcome) => {
                        o.insert(a);
                    }
                    Entry::Occupied(_) => {}
                    Entry::Vacant(v) => {
                        v.insert(a);
                    }
                }
            }
            OpF::Read => {
                let k = keys.entry(&inv.key).or_default();
                let Some(d) = done.filter(|d| d.kind == OpType::Ok) else { continue };
                res.reads_ok += 1;
                match read_ids(&d.value) {
                    Some(ids) => k.reads.push(Read {
                        invoke: inv.index,
                        done: d.index,
                        invoke_ns: inv.time_ns,
                        done_ns: d.time_ns,
                        ids,
                    }),
                    None => add(
                        &mut res,
                        "malformed-read",
                        &inv.key,
                        vec![inv.index, d.index],
                        format!("read {} returned {}, not a list of ids", d.index, d.value),
                    ),
                }
            }
            _ => {}
        }
    }
    res.keys = keys.len();
    for (key, k) in &keys {
        res.unconfirmed += check_key(key, k, &mut res);
    }
    let found = res.anomalies.len() as u64 + res.anomalies_dropped;
    res.valid = if found > 0 {
        Validity::Invalid
    } else if res.unconfirmed > 0 {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    res
}

/// Checks one key, recording its anomalies in `res`; returns its unconfirmed acknowledged appends.
fn check_key(key: &str, k: &Key, res: &mut ListAppendResult) -> u64 {
    // Visibility of each id: phantom, failed-append-visible, future-read (one anomaly per id).
    let mut seen_in: BTreeMap<&str, Vec<&Read>> = BTreeMap::new();
    for r in &k.reads {
        let mut once = HashSet::new();
        let dups: Vec<&str> = r.ids.iter().filter(|id| !once.insert(id.as_str())).map(String::as_str).collect();
        if !dups.is_empty() {
            let text = format!("read {} holds {} more than once", r.done, named(&dups));
            add(res, "duplicate", key, vec![r.invoke, r.done], text);
        }
        for id in once {
            seen_in.entry(id).or_default().push(r);
        }
    }
    for (id, reads) in &seen_in {
        let first = reads[0];
        let n = reads.len();
        match k.appends.get(*id) {
            None => {
                let text =
                    format!("{id} was never appended to {key}, yet {n} read(s) hold it, first read {}", first.done);
                add(res, "phantom", key, vec![first.invoke, first.done], text);
            }
            Some(a) if a.outcome == OpType::Fail => {
                let text = format!("the append of {id} failed, yet {n} read(s) hold it, first read {}", first.done);
                add(res, "failed-append-visible", key, a.lines().chain([first.invoke, first.done]).collect(), text);
            }
            Some(a) => {
                if let Some(r) = reads.iter().find(|r| r.done_ns < a.invoke_ns) {
                    let text = format!("read {} holds {id}, but completed before its append was invoked", r.done);
                    add(res, "future-read", key, a.lines().chain([r.invoke, r.done]).collect(), text);
                }
            }
        }
    }

    // One total order: every read a prefix of the longest (the earliest to complete, on a tie).
    let Some(longest) = k.reads.iter().max_by_key(|r| (r.ids.len(), std::cmp::Reverse(r.done))) else {
        return k.appends.values().filter(|a| a.outcome == OpType::Ok).count() as u64;
    };
    for r in &k.reads {
        if !longest.ids.starts_with(&r.ids) {
            let at = r.ids.iter().zip(&longest.ids).position(|(a, b)| a != b).unwrap_or(r.ids.len());
            let text = format!(
                "read {} is not a prefix of the longest read {}: at position {at} it has {} where the longer has {}",
                r.done,
                longest.done,
                r.ids[at],
                longest.ids.get(at).map_or("nothing", String::as_str)
            );
            add(res, "order", key, vec![r.invoke, r.done, longest.invoke, longest.done], text);
        }
    }

    // Lost: acknowledged before the final read was invoked, yet missing from it.
    let last = k.reads.iter().max_by_key(|r| (r.done_ns, r.done)).unwrap_or(longest);
    let in_last: HashSet<&str> = last.ids.iter().map(String::as_str).collect();
    let mut acked: Vec<(&str, &Append)> =
        k.appends.iter().filter(|(_, a)| a.outcome == OpType::Ok).map(|(id, a)| (id.as_str(), a)).collect();
    acked.sort_by_key(|(_, a)| (a.ok_ns, a.invoke));
    let mut lost: HashSet<&str> = HashSet::new();
    let mut unconfirmed = 0;
    for (id, a) in &acked {
        if a.ok_ns >= last.invoke_ns {
            unconfirmed += u64::from(!seen_in.contains_key(id));
        } else if !in_last.contains(id) {
            lost.insert(id);
            let before = seen_in.get(id).map_or(0, Vec::len);
            let text = format!(
                "the append of {id} was acknowledged (index {}), but the final read {} misses it (seen by {before} \
                 earlier read(s))",
                a.done.unwrap_or(a.invoke),
                last.done
            );
            add(res, "lost", key, a.lines().chain([last.invoke, last.done]).collect(), text);
        }
    }

    // Real time: acknowledged appends must be visible to reads invoked later; reads never go back.
    for r in k.reads.iter().filter(|r| r.done != last.done) {
        let before = acked.partition_point(|(_, a)| a.ok_ns < r.invoke_ns);
        let holds: HashSet<&str> = r.ids.iter().map(String::as_str).collect();
        let missing: Vec<&(&str, &Append)> =
            acked[..before].iter().filter(|(id, _)| !holds.contains(id) && !lost.contains(id)).collect();
        if !missing.is_empty() {
            let ids: Vec<&str> = missing.iter().map(|(id, _)| *id).collect();
            let text = format!(
                "read {} was invoked after the appends of {} were acknowledged, but misses them",
                r.done,
                named(&ids)
            );
            let ops = [r.invoke, r.done].into_iter().chain(missing.iter().take(MAX_NAMED).flat_map(|(_, a)| a.lines()));
            add(res, "stale-read", key, ops.collect(), text);
        }
    }
    let mut by_done: Vec<&Read> = k.reads.iter().collect();
    by_done.sort_by_key(|r| (r.done_ns, r.done));
    let mut longest_so_far: Vec<&Read> = Vec::with_capacity(by_done.len());
    for r in &by_done {
        let best = longest_so_far.last().filter(|b| b.ids.len() >= r.ids.len()).copied().unwrap_or(r);
        longest_so_far.push(best);
    }
    for r2 in &k.reads {
        let before = by_done.partition_point(|r| r.done_ns < r2.invoke_ns);
        let Some(r1) = before.checked_sub(1).map(|i| longest_so_far[i]) else { continue };
        if r1.ids.len() > r2.ids.len() {
            let text = format!(
                "read {} holds {} ids, but was invoked after read {} completed holding {}",
                r2.done,
                r2.ids.len(),
                r1.done,
                r1.ids.len()
            );
            add(res, "non-monotonic-read", key, vec![r1.invoke, r1.done, r2.invoke, r2.done], text);
        }
    }
    unconfirmed
}

fn add(res: &mut ListAppendResult, kind: &str, key: &str, ops: Vec<u64>, explanation: String) {
    *res.anomaly_counts.entry(kind.to_string()).or_default() += 1;
    if res.anomalies.len() < MAX_ANOMALIES {
        res.anomalies.push(Anomaly { kind: kind.to_string(), key: key.to_string(), ops, explanation });
    } else {
        res.anomalies_dropped += 1;
    }
}

/// An append's id: the string value, or the JSON text of any other value.
fn id_of(v: &serde_json::Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// A read's ids; null reads as the empty list; `None` when the value is not a list.
fn read_ids(v: &serde_json::Value) -> Option<Vec<String>> {
    match v {
        serde_json::Value::Null => Some(Vec::new()),
        serde_json::Value::Array(a) => Some(a.iter().map(id_of).collect()),
        _ => None,
    }
}

/// `a, b, c` — at most [`MAX_NAMED`] of them, then how many more.
fn named(ids: &[&str]) -> String {
    let mut s = ids.iter().take(MAX_NAMED).copied().collect::<Vec<_>>().join(", ");
    if ids.len() > MAX_NAMED {
        s.push_str(&format!(" and {} more", ids.len() - MAX_NAMED));
    }
    s
}

#[cfg(test)]
#[path = "list_append_tests.rs"]
mod tests;
