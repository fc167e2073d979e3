//! The short Jepsen suite CI runs: `traceo-jepsen run` on 5 real node processes, one test per
//! run, so a failure names its nemesis: kill, pause, partition, clock and member, with the
//! list-append workload except pause, which runs the register workload, plus a register run with
//! partitions and latency through the fault-injecting TCP proxies (no root needed). Each must be
//! judged valid by every checker. Every run has its own directory; a failing run keeps it
//! (history, results, plots, node logs) and names it.
//!
//! One cluster at a time: under nextest every test of this package is in the test group
//! `clusters` (`max-threads = 1`, see `.config/nextest.toml`), and under plain `cargo test`,
//! whose tests are threads of one process, each run holds [`ONE_CLUSTER`].
//!
//! Prerequisites: the partition run needs network namespaces (root and iproute2), the clock run
//! libfaketime. A missing one fails under CI and is reported as skipped elsewhere
//! (`chaos::prerequisite`).

use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, PoisonError};

use chaos::prerequisite::require;

/// Held by a run for its whole length, so that plain `cargo test` also runs one cluster at a time.
static ONE_CLUSTER: Mutex<()> = Mutex::new(());

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

#[test]
fn kill_list_append() {
    run("list-append", "kill", 1, &[]);
}

/// Also checks that appends to the paused node went unanswered.
#[test]
fn pause_register() {
    run("register", "pause", 2, &[]);
}

#[test]
fn partition_list_append() {
    if require("root and iproute2 (network namespaces)", chaos::netns::available()) {
        run("list-append", "partition", 3, &[]);
    }
}

#[test]
fn clock_list_append() {
    if require(&format!("libfaketime at {LIBFAKETIME} (apt-get install faketime)"), Path::new(LIBFAKETIME).is_file()) {
        run("list-append", "clock", 4, &[]);
    }
}

#[test]
fn member_list_append() {
    run("list-append", "member", 5, &[]);
}

#[test]
fn proxy_partition_latency_register() {
    run("register", "partition,latency", 6, &["--net", "proxy"]);
}

/// One `traceo-jepsen run` in a fresh directory, checked by every checker.
fn run(workload: &str, nemesis: &str, seed: u64, extra: &[&str]) {
    // A run that panicked poisons the lock; the next one still runs.
    let _one_cluster = ONE_CLUSTER.lock().unwrap_or_else(PoisonError::into_inner);
    let dir = tempfile::Builder::new().prefix("traceo-jepsen-ci-").tempdir().unwrap();
    let out = dir.path().join(format!("{workload}-{}", nemesis.replace(',', "-")));
    // A failed run's directory must outlive the test: keep it on panic.
    let _keep = keep_on_panic(dir);
    let status = Command::new(env!("CARGO_BIN_EXE_traceo-jepsen"))
        .args(["run", "--nodes", "5", "--duration", "25s", "--rate", "100", "--nemesis", nemesis])
        .args(["--workload", workload, "--seed", &seed.to_string()])
        .args(extra)
        .arg("--out")
        .arg(&out)
        .status()
        .expect("traceo-jepsen runs");
    if !status.success() {
        let results = std::fs::read_to_string(out.join("results.json")).unwrap_or_default();
        panic!("{nemesis} run (seed {seed}) not valid ({status}); report in {}:\n{results}", out.display());
    }
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["valid"], true, "{results}");
    assert!(results["faults"].as_u64().unwrap() >= 1, "the nemesis acted: {results}");
    if workload == "register" {
        assert_eq!(results["linearizable"]["valid"], "valid", "{results}");
        assert!(results["stats"]["completions"]["cas ok"].as_u64().unwrap() > 20, "{results}");
        assert!(results["stats"]["completions"]["write ok"].as_u64().unwrap() > 100, "{results}");
    } else {
        assert!(results["list_append"]["appends_ok"].as_u64().unwrap() > 100, "{results}");
    }
    for file in ["history.jsonl", "latency.png", "throughput.png", "run.json"] {
        assert!(out.join(file).is_file(), "{file} written");
    }
    // Every node's Raft links, read at the end; a paused node left appends unanswered.
    let links: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("links.json")).unwrap()).unwrap();
    let nodes = links.as_object().expect("links by node");
    assert!(nodes.len() >= 5, "every node's links: {links}");
    let unanswered: u64 = nodes
        .values()
        .flat_map(|peers| peers.as_object().expect("links by peer").values())
        .map(|l| l["timeouts"].as_u64().expect("timeouts"))
        .sum();
    if nemesis == "pause" {
        assert!(unanswered > 0, "appends to the paused node went unanswered: {links}");
    }
}

/// Deletes the directory only when the test did not panic.
fn keep_on_panic(dir: tempfile::TempDir) -> impl Drop {
    struct Keep(Option<tempfile::TempDir>);
    impl Drop for Keep {
        fn drop(&mut self) {
            if std::thread::panicking() {
                if let Some(d) = self.0.take() {
                    let _ = d.keep();
                }
            }
        }
    }
    Keep(Some(dir))
}
