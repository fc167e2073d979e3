//! Leadership hand-over between replicas of a group, for openraft 0.9 (which has no transfer
//! call), and the rate limit and counters of replica moves.
//!
//! A follower in openraft 0.9 refuses to vote while its leader lease (the maximum election
//! timeout since the last message from the leader) runs, so `trigger().elect()` on the chosen
//! node cannot win while the old leader is alive and talking. The leader's own lease, though,
//! is counted from its election. So the hand-over is: the old leader stops proposing and drains
//! its pipeline (the caller does that), waits until the candidate has every entry, turns off
//! its own elections and sends a [`CampaignOrder`] to the other voters.
//!
//! * **Three voters** (the usual case): the candidate campaigns at once; its own vote and the
//!   old leader's make a majority (the old leader has led longer than its lease, which the
//!   caller ensures). The hand-over takes a round trip and a few milliseconds.
//! * **More voters**: the old leader also stops its heartbeats, and the candidate campaigns
//!   once the others' leases have run out (a maximum election timeout), while they hold their
//!   own elections so that the candidate is the one elected.
//!
//! Every step is ordinary Raft: if anything goes wrong, some up-to-date voter wins an election
//! later, which is safe, and the caller tries again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use serde::{Deserialize, Serialize};

use crate::types::{NodeId, Raft};

/// Sent by a leader to the voters of its group during a hand-over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignOrder {
    /// The voter that should become leader.
    pub candidate: NodeId,
    /// The candidate campaigns after this long (the old leader's lease must have run out).
    pub campaign_after_ms: u64,
    /// Every other receiver does not start elections of its own for this long.
    pub hold_elections_ms: u64,
}

/// Carries out `order` on this node's replica `raft` (node `me`). Returns at once; the
/// campaign or the hold happens in the background.
pub fn obey(raft: &Raft, me: NodeId, order: &CampaignOrder) {
    let raft = raft.clone();
    if me == order.candidate {
        let after = Duration::from_millis(order.campaign_after_ms);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            if let Err(e) = raft.trigger().elect().await {
                tracing::warn!("campaign for leadership hand-over: {e}");
            }
        });
    } else {
        raft.runtime_config().elect(false);
        let hold = Duration::from_millis(order.hold_elections_ms);
        tokio::spawn(async move {
            tokio::time::sleep(hold).await;
            raft.runtime_config().elect(true);
        });
    }
}

/// Node-wide limit on the bytes per second sent as snapshots (replica moves and repairs), and
/// counters of what was sent.
#[derive(Debug, Default)]
pub struct MoveLimiter {
    /// Bytes per second; 0 = unlimited.
    rate: AtomicU64,
    /// When the bytes admitted so far will have drained at `rate`.
    next_free: Mutex<Option<Instant>>,
    bytes_sent: AtomicU64,
    chunks_sent: AtomicU64,
}

impl MoveLimiter {
    pub fn set_rate(&self, bytes_per_sec: u64) {
        self.rate.store(bytes_per_sec, Ordering::Relaxed);
    }

    /// Waits until `bytes` more may be sent, then counts them.
    pub async fn admit(&self, bytes: u64) {
        self.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
        self.chunks_sent.fetch_add(1, Ordering::Relaxed);
        let rate = self.rate.load(Ordering::Relaxed);
        if rate == 0 {
            return;
        }
        let wait_until = {
            let mut next = self.next_free.lock().expect("move limiter lock");
            let now = Instant::now();
            let start = next.filter(|t| *t > now).unwrap_or(now);
            let done = start + Duration::from_secs_f64(bytes as f64 / rate as f64);
            *next = Some(done);
            start
        };
        tokio::time::sleep_until(wait_until).await;
    }

    /// Snapshot bytes sent by this node since it started.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent.load(Ordering::Relaxed)
    }

    pub fn chunks_sent(&self) -> u64 {
        self.chunks_sent.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_limiter_spaces_sends_at_the_rate() {
        let l = MoveLimiter::default();
        l.set_rate(1000);
        let t0 = tokio::time::Instant::now();
        l.admit(500).await; // starts at once, drains by 0.5 s
        l.admit(500).await; // waits for the first to drain
        l.admit(1000).await; // starts at 1.0 s
        let waited = t0.elapsed();
        assert!(waited >= Duration::from_millis(999) && waited < Duration::from_millis(1100), "{waited:?}");
        assert_eq!(l.bytes_sent(), 2000);
        assert_eq!(l.chunks_sent(), 3);
        let unlimited = MoveLimiter::default();
        let t1 = tokio::time::Instant::now();
        unlimited.admit(1 << 30).await;
        assert!(t1.elapsed() < Duration::from_millis(1));
    }
}
