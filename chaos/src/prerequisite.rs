//! Tests that need what a machine may lack (root, iproute2, libfaketime, python3) never pass
//! silently: with the environment variable `CI` set (non-empty; `.ci/run` installs every
//! prerequisite and runs as root), a missing one is a failure naming it; elsewhere the test prints
//! `SKIPPED: <test>: needs <what>` to stderr and returns (`cargo test` shows that line; nextest
//! shows it with `--success-output immediate` or `--no-capture`).

use std::io::Write;

/// Whether a test may go on: true when its prerequisite `what` is `available`. When it is not,
/// panics naming it under CI, and otherwise writes `SKIPPED: <test>: needs <what>` to stderr and
/// returns false (the caller returns).
pub fn require(what: &str, available: bool) -> bool {
    if available {
        return true;
    }
    // The test harness names the test's thread after the test.
    let test = std::thread::current().name().unwrap_or("<unnamed test>").to_owned();
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{test}: needs {what}, not available here (under CI a missing prerequisite is a failure, not a skip)");
    }
    // Straight to the stderr handle, not `eprintln!`: the harness captures the print macros and
    // would hide the line of a passing test.
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: needs {what} (set CI=1 to make this a failure)");
    false
}
