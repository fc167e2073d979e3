//! The short Jepsen suite CI runs: `traceo-jepsen run` on 5 real node processes, one run per
//! nemesis (kill, pause, partition, clock, member), with the list-append workload except pause,
//! which runs the register workload, plus a register run with partitions and latency through
//! the fault-injecting TCP proxies (no root needed); each must be judged valid by every checker.
//! Failing runs keep their directory (history, results, plots, node logs) and name it.

use std::path::Path;
use std::process::Command;

fn run(workload: &str, nemesis: &str, seed: u64, dir: &Path) {
    run_with(workload, nemesis, seed, dir, &[]);
}

fn run_with(workload: &str, nemesis: &str, seed: u64, dir: &Path, extra: &[&str]) {
    let out = dir.join(format!("{workload}-{}", nemesis.replace(',', "-")));
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

#[test]
fn kill_pause_partition_clock_member_and_proxy_runs_are_valid() {
    let dir = tempfile::Builder::new().prefix("traceo-jepsen-ci-").tempdir().unwrap();
    // A failed run's directory must outlive the test: keep it on panic.
    let path = dir.path().to_path_buf();
    let guard = scopeguard(dir);
    run("list-append", "kill", 1, &path);
    run("register", "pause", 2, &path);
    if chaos::netns::available() {
        run("list-append", "partition", 3, &path);
    } else {
        eprintln!("partition run skipped: needs root and iproute2 (network namespaces)");
    }
    if Path::new("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1").is_file() {
        run("list-append", "clock", 4, &path);
    } else {
        eprintln!("clock run skipped: needs libfaketime (apt-get install faketime)");
    }
    run("list-append", "member", 5, &path);
    run_with("register", "partition,latency", 6, &path, &["--net", "proxy"]);
    drop(guard);
}

/// Deletes the directory only when the test did not panic.
fn scopeguard(dir: tempfile::TempDir) -> impl Drop {
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
