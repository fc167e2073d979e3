//! The short Jepsen suite CI runs: `traceo-jepsen run` on 5 real node processes, one run per
//! nemesis (kill, pause, partition, clock, member), each of which must be judged valid by every checker. Failing runs keep their
//! directory (history, results, plots, node logs) and name it.

use std::path::Path;
use std::process::Command;

fn run(nemesis: &str, seed: u64, dir: &Path) {
    let out = dir.join(nemesis.replace(',', "-"));
    let status = Command::new(env!("CARGO_BIN_EXE_traceo-jepsen"))
        .args(["run", "--nodes", "5", "--duration", "25s", "--rate", "100", "--nemesis", nemesis])
        .args(["--seed", &seed.to_string(), "--out"])
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
    assert!(results["list_append"]["appends_ok"].as_u64().unwrap() > 100, "{results}");
    for file in ["history.jsonl", "latency.png", "throughput.png", "run.json"] {
        assert!(out.join(file).is_file(), "{file} written");
    }
}

#[test]
fn kill_pause_partition_clock_and_member_runs_are_valid() {
    let dir = tempfile::Builder::new().prefix("traceo-jepsen-ci-").tempdir().unwrap();
    // A failed run's directory must outlive the test: keep it on panic.
    let path = dir.path().to_path_buf();
    let guard = scopeguard(dir);
    run("kill", 1, &path);
    run("pause", 2, &path);
    if chaos::netns::available() {
        run("partition", 3, &path);
    } else {
        eprintln!("partition run skipped: needs root and iproute2 (network namespaces)");
    }
    if Path::new("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1").is_file() {
        run("clock", 4, &path);
    } else {
        eprintln!("clock run skipped: needs libfaketime (apt-get install faketime)");
    }
    run("member", 5, &path);
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
