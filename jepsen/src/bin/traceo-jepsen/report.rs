//! Checks a history and writes the run's report: `results.json` (every checker's verdict and
//! the offending operations, plus operation counts and availability), and prints a summary.

use std::collections::BTreeMap;
use std::path::Path;

use jepsen::history::{History, OpF, OpType, NEMESIS};
use jepsen::verdict::Validity;
use serde_json::json;

/// Time the linearizability search may take over all keys before it answers unknown.
const SEARCH_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Completed operations by function and outcome, and the share that succeeded while a fault was
/// active and while none was.
fn stats(h: &History) -> serde_json::Value {
    let faults = crate::plots::nemesis_periods(h);
    let faulty = |t_ns: u64| {
        let t = t_ns as f64 / 1e9;
        faults.iter().any(|(start, end, _)| (*start..*end).contains(&t))
    };
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let (mut ok_fault, mut all_fault, mut ok_calm, mut all_calm) = (0u64, 0u64, 0u64, 0u64);
    for op in h.ops.iter().filter(|o| o.process != NEMESIS && o.kind != OpType::Invoke) {
        *counts.entry(format!("{:?} {:?}", op.f, op.kind).to_lowercase()).or_default() += 1;
        let ok = u64::from(op.kind == OpType::Ok);
        if faulty(op.time_ns) {
            (ok_fault, all_fault) = (ok_fault + ok, all_fault + 1);
        } else {
            (ok_calm, all_calm) = (ok_calm + ok, all_calm + 1);
        }
    }
    let share = |ok: u64, all: u64| {
        if all == 0 {
            serde_json::Value::Null
        } else {
            json!((ok as f64 / all as f64 * 1000.0).round() / 1000.0)
        }
    };
    let invoked = h.ops.iter().filter(|o| o.kind == OpType::Invoke).count();
    let nemesis = h.ops.iter().filter(|o| o.f == OpF::Nemesis).count();
    json!({
        "operations": invoked,
        "nemesis_events": nemesis,
        "completions": counts,
        "ok_share_during_faults": share(ok_fault, all_fault),
        "ok_share_without_faults": share(ok_calm, all_calm),
    })
}

/// Runs every checker on `h`, writes `results.json` into `dir` and prints the verdicts.
/// True when every checker says valid.
/// `unread`: keys the runner could not read after healing (recorded in `unread.json` for a
/// later `check`); any makes the run invalid: the cluster must serve again once faults stop.
pub fn check_and_write(h: &History, dir: &Path, faults: Option<u64>, unread: &[String]) -> anyhow::Result<bool> {
    // The workload shows in its operations: appends (list-append) or writes and cas (register).
    let has = |f: &[OpF]| h.ops.iter().any(|o| f.contains(&o.f));
    let list_append = has(&[OpF::Append]).then(|| jepsen::list_append::check(h));
    let register = has(&[OpF::Write, OpF::Cas]).then(|| jepsen::linearizable::check(h, SEARCH_LIMIT));
    anyhow::ensure!(list_append.is_some() || register.is_some(), "the history has no append, write or cas");
    let recovered = unread.is_empty();
    let verdicts = list_append.iter().map(|r| r.valid).chain(register.iter().map(|r| r.valid));
    let valid = Validity::all(verdicts) == Validity::Valid && recovered;
    let stats = stats(h);
    let results = json!({
        "valid": valid,
        "recovered_after_faults": recovered,
        "unread_after_healing": unread,
        "faults": faults,
        "stats": stats,
        "list_append": list_append,
        "linearizable": register,
    });
    std::fs::write(dir.join("results.json"), serde_json::to_string_pretty(&results)? + "\n")?;
    crate::plots::latency_png(h, &dir.join("latency.png"))?;
    crate::plots::throughput_png(h, &dir.join("throughput.png"))?;
    println!("operations {}  faults {}", stats["operations"], faults.map_or("?".to_owned(), |f| f.to_string()));
    println!("completions {}", stats["completions"]);
    println!(
        "ok share: {} during faults, {} without",
        stats["ok_share_during_faults"], stats["ok_share_without_faults"]
    );
    if !recovered {
        println!("  not recovered: {} keys could not be read within 30 s of healing", unread.len());
    }
    if let Some(r) = &list_append {
        println!("list-append: {:?}", r.valid);
        for a in r.anomalies.iter().take(10) {
            println!("  {} on {}: {} (ops {:?})", a.kind, a.key, a.explanation, a.ops);
        }
    }
    if let Some(r) = &register {
        let indeterminate: usize = r.keys.iter().map(|k| k.indeterminate).sum();
        println!("linearizable: {:?} ({} keys, {indeterminate} indeterminate writes)", r.valid, r.keys.len());
        for k in r.keys.iter().filter(|k| k.valid != Validity::Valid).take(10) {
            println!("  {} {:?}: {} (op {:?})", k.key, k.valid, k.explanation, k.failed_op);
        }
    }
    println!("{} -> {}", if valid { "VALID" } else { "INVALID" }, dir.join("results.json").display());
    Ok(valid)
}
