//! Health of this node's outgoing appends, per peer: round trips of answered appends, and
//! appends cut off at openraft's timeout.
//!
//! openraft 0.9 gives every AppendEntries (heartbeats included) `heartbeat_interval` to be
//! answered. A peer whose round trip is longer never gets an answer through: replication to it
//! stalls, yet it still receives the late heartbeats and never calls an election, so a shard
//! whose quorum needs it commits nothing. [`LinkStats`] makes that visible (metrics, and a
//! warning naming the peer and the setting to raise) instead of leaving a silent stall. A peer
//! that is paused or behind a blackhole also leaves appends unanswered; a refused connection (a
//! dead process) fails at once and is not counted.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::types::NodeId;

/// At most one slow-link warning per peer in this interval.
pub const WARN_EVERY: Duration = Duration::from_secs(30);

/// Counters of one peer's link, as seen from this node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Link {
    /// Appends answered (successfully or with a Raft-level rejection).
    pub answered: u64,
    /// Appends given up at the timeout without an answer.
    pub timeouts: u64,
    /// Smoothed round trip of answered appends (exponential average, weight 1/8 per sample).
    pub round_trip: Duration,
    /// When the last timeout was recorded.
    pub last_timeout: Option<Instant>,
    /// Timeouts since the last warning (or since the start).
    unwarned: u64,
    last_warning: Option<Instant>,
}

/// Per-peer append statistics of one node, shared by every group's replication streams.
#[derive(Default)]
pub struct LinkStats {
    links: Mutex<HashMap<NodeId, Link>>,
}

impl LinkStats {
    /// Every peer appended to so far, by id.
    pub fn snapshot(&self) -> Vec<(NodeId, Link)> {
        let mut v: Vec<_> = self.links.lock().expect("link stats").iter().map(|(k, l)| (*k, l.clone())).collect();
        v.sort_by_key(|(k, _)| *k);
        v
    }

    /// One peer's counters (zero when never appended to).
    pub fn link(&self, peer: NodeId) -> Link {
        self.links.lock().expect("link stats").get(&peer).cloned().unwrap_or_default()
    }

    fn answered(&self, peer: NodeId, took: Duration) {
        let mut links = self.links.lock().expect("link stats");
        let l = links.entry(peer).or_default();
        l.round_trip = if l.answered == 0 { took } else { (l.round_trip * 7 + took) / 8 };
        l.answered += 1;
    }

    /// Records a timeout; returns the timeouts to report when a warning is due.
    fn timed_out(&self, peer: NodeId, now: Instant) -> Option<u64> {
        let mut links = self.links.lock().expect("link stats");
        let l = links.entry(peer).or_default();
        l.timeouts += 1;
        l.unwarned += 1;
        l.last_timeout = Some(now);
        if l.last_warning.is_some_and(|t| now.duration_since(t) < WARN_EVERY) {
            return None;
        }
        l.last_warning = Some(now);
        Some(std::mem::take(&mut l.unwarned))
    }

    /// Starts watching one append to `peer` (at `addr`) with `timeout`: drop the watch when the
    /// call ends. Borrows only, so the hot path allocates nothing.
    pub fn watch<'a>(&'a self, peer: NodeId, addr: &'a str, timeout: Duration) -> AppendWatch<'a> {
        AppendWatch { stats: self, peer, addr, timeout, started: Instant::now(), answered: false }
    }
}

/// One append in flight. Dropped after an answer, it records the round trip; dropped without
/// one after (nearly) the whole timeout — openraft cancelled the call, or the deadline error came
/// first — it records a timeout. A call dropped early (a leader stepping down) records nothing.
pub struct AppendWatch<'a> {
    stats: &'a LinkStats,
    peer: NodeId,
    addr: &'a str,
    timeout: Duration,
    started: Instant,
    answered: bool,
}

impl AppendWatch<'_> {
    /// The peer answered (whatever the answer).
    pub fn answered(mut self) {
        self.answered = true;
    }
}

impl Drop for AppendWatch<'_> {
    fn drop(&mut self) {
        let took = self.started.elapsed();
        if self.answered {
            self.stats.answered(self.peer, took);
        } else if took >= self.timeout * 9 / 10 {
            if let Some(n) = self.stats.timed_out(self.peer, Instant::now()) {
                tracing::warn!(
                    peer = self.peer,
                    addr = self.addr,
                    timeouts = n,
                    timeout_ms = self.timeout.as_millis() as u64,
                    "appends to node {} get no answer within heartbeat_ms: it is unreachable, or its round trip is \
                     longer, which stalls replication to it for as long as it lasts; if the node is up, raise \
                     heartbeat_ms (and the election timeouts) above the slowest round trip between replicas",
                    self.peer
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_timeouts_and_early_drops_are_told_apart() {
        let stats = LinkStats::default();
        stats.watch(2, "a", Duration::from_secs(10)).answered();
        drop(stats.watch(2, "a", Duration::from_secs(10))); // cancelled early: not a timeout
        drop(stats.watch(3, "b", Duration::ZERO)); // the whole (zero) timeout elapsed
        let l2 = stats.link(2);
        assert_eq!((l2.answered, l2.timeouts), (1, 0));
        assert!(l2.round_trip < Duration::from_secs(1));
        assert_eq!(stats.link(3).timeouts, 1);
        assert_eq!(stats.link(4), Link::default());
        assert_eq!(stats.snapshot().iter().map(|(k, _)| *k).collect::<Vec<_>>(), vec![2, 3]);
    }

    #[test]
    fn warnings_are_rate_limited_and_count_what_they_missed() {
        let stats = LinkStats::default();
        let t0 = Instant::now();
        assert_eq!(stats.timed_out(2, t0), Some(1));
        assert_eq!(stats.timed_out(2, t0 + Duration::from_secs(1)), None);
        assert_eq!(stats.timed_out(2, t0 + Duration::from_secs(2)), None);
        assert_eq!(stats.timed_out(3, t0 + Duration::from_secs(2)), Some(1), "per peer");
        assert_eq!(stats.timed_out(2, t0 + WARN_EVERY + Duration::from_secs(1)), Some(3));
        assert_eq!(stats.link(2).timeouts, 4);
        assert_eq!(stats.link(2).last_timeout, Some(t0 + WARN_EVERY + Duration::from_secs(1)));
    }

    #[test]
    fn the_round_trip_is_smoothed() {
        let stats = LinkStats::default();
        stats.answered(2, Duration::from_millis(80));
        stats.answered(2, Duration::from_millis(160));
        assert_eq!(stats.link(2).round_trip, Duration::from_millis(90));
    }
}
