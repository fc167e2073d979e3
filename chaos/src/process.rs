//! Process faults by pid: SIGKILL (crash with no chance to flush), SIGSTOP / SIGCONT (a pause
//! that looks like a long GC or a stalled VM to the rest of the cluster).

#[derive(Debug, thiserror::Error)]
#[error("signal {signal} to pid {pid}: {source}")]
pub struct SignalError {
    pub pid: u32,
    pub signal: &'static str,
    pub source: std::io::Error,
}

fn send(pid: u32, sig: libc::c_int, name: &'static str) -> Result<(), SignalError> {
    // SAFETY: kill(2) has no memory-safety preconditions; a wrong pid is reported as an error.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    if rc == 0 {
        Ok(())
    } else {
        Err(SignalError { pid, signal: name, source: std::io::Error::last_os_error() })
    }
}

/// Crash the process: no shutdown code runs, unsynced writes are lost.
pub fn kill9(pid: u32) -> Result<(), SignalError> {
    send(pid, libc::SIGKILL, "SIGKILL")
}

/// Freeze the process: it keeps its sockets but answers nothing.
pub fn pause(pid: u32) -> Result<(), SignalError> {
    send(pid, libc::SIGSTOP, "SIGSTOP")
}

/// Thaw a paused process.
pub fn resume(pid: u32) -> Result<(), SignalError> {
    send(pid, libc::SIGCONT, "SIGCONT")
}

/// The process state letter from `/proc/<pid>/stat` (`R`, `S`, `T` for stopped, `Z`, …).
pub fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces; the state follows it.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::{Duration, Instant};

    fn wait_state(pid: u32, want: impl Fn(Option<char>) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if want(state(pid)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn pause_resume_and_kill_a_real_process() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        pause(pid).unwrap();
        assert!(wait_state(pid, |s| s == Some('T')), "paused process should be stopped");
        resume(pid).unwrap();
        assert!(wait_state(pid, |s| s != Some('T')), "resumed process should run");
        kill9(pid).unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert!(kill9(pid).is_err(), "a reaped pid can no longer be signalled");
    }
}
