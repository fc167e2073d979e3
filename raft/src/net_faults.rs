//! Injected network faults for fast, seeded tests of several [`MultiRaft`](crate::MultiRaft)s in
//! one process: per ordered pair of nodes a link can be cut or slowed; any message can be dropped before
//! it is sent (the peer never sees it) or after it was handled (the reply is lost: the sender
//! cannot tell the two apart, as on a real network), or delayed. One [`NetFaults`] is shared by
//! every node of a test; decisions come from one seeded random stream.
//!
//! Production never sets it (`RaftOptions::net_faults` is `None`): the check is one branch.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::types::NodeId;

/// What happens to one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Sent after `delay`.
    Deliver { delay: Duration },
    /// Never sent.
    DropRequest,
    /// Sent and handled; the reply is lost.
    DropReply,
}

struct State {
    cut: HashSet<(NodeId, NodeId)>,
    /// A fixed delay added to every message of a link (a slow link).
    slow: HashMap<(NodeId, NodeId), Duration>,
    drop_request: f64,
    drop_reply: f64,
    max_delay: Duration,
    rng: ChaCha8Rng,
    decided: u64,
}

pub struct NetFaults {
    state: Mutex<State>,
}

impl std::fmt::Debug for NetFaults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.lock().expect("net faults");
        f.debug_struct("NetFaults").field("cut", &s.cut).field("decided", &s.decided).finish()
    }
}

impl NetFaults {
    /// No faults yet; decisions drawn from `seed`.
    pub fn new(seed: u64) -> NetFaults {
        NetFaults {
            state: Mutex::new(State {
                cut: HashSet::new(),
                slow: HashMap::new(),
                drop_request: 0.0,
                drop_reply: 0.0,
                max_delay: Duration::ZERO,
                rng: ChaCha8Rng::seed_from_u64(seed),
                decided: 0,
            }),
        }
    }

    /// Cuts both directions between `a` and `b`.
    pub fn cut(&self, a: NodeId, b: NodeId) {
        let mut s = self.state.lock().expect("net faults");
        s.cut.insert((a, b));
        s.cut.insert((b, a));
    }

    /// Cuts `node` from every other node in `all`.
    pub fn isolate(&self, node: NodeId, all: &[NodeId]) {
        for &other in all.iter().filter(|&&o| o != node) {
            self.cut(node, other);
        }
    }

    /// Drop probabilities per message (before sending, and of the reply) and the largest delay.
    pub fn set_lossy(&self, drop_request: f64, drop_reply: f64, max_delay: Duration) {
        let mut s = self.state.lock().expect("net faults");
        (s.drop_request, s.drop_reply, s.max_delay) = (drop_request, drop_reply, max_delay);
    }

    /// Delays every message from `from` to `to` by `delay` (on top of any random delay): a slow
    /// link, whose round trip is about `delay` since replies are not delayed.
    pub fn slow(&self, from: NodeId, to: NodeId, delay: Duration) {
        self.state.lock().expect("net faults").slow.insert((from, to), delay);
    }

    /// Removes every fault.
    pub fn heal(&self) {
        let mut s = self.state.lock().expect("net faults");
        s.cut.clear();
        s.slow.clear();
        (s.drop_request, s.drop_reply, s.max_delay) = (0.0, 0.0, Duration::ZERO);
    }

    /// Messages decided so far.
    pub fn decided(&self) -> u64 {
        self.state.lock().expect("net faults").decided
    }

    /// The fate of one message from `from` to `to`.
    pub fn decide(&self, from: NodeId, to: NodeId) -> Fate {
        let mut s = self.state.lock().expect("net faults");
        s.decided += 1;
        if s.cut.contains(&(from, to)) {
            return Fate::DropRequest;
        }
        let (dq, dr) = (s.drop_request, s.drop_reply);
        if dq > 0.0 && s.rng.gen_bool(dq) {
            return Fate::DropRequest;
        }
        if dr > 0.0 && s.rng.gen_bool(dr) {
            return Fate::DropReply;
        }
        let max = s.max_delay.as_micros() as u64;
        let delay = if max == 0 { Duration::ZERO } else { Duration::from_micros(s.rng.gen_range(0..=max)) };
        Fate::Deliver { delay: delay + s.slow.get(&(from, to)).copied().unwrap_or_default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_are_symmetric_and_decisions_follow_the_seed() {
        let f = NetFaults::new(1);
        assert_eq!(f.decide(1, 2), Fate::Deliver { delay: Duration::ZERO });
        f.cut(1, 2);
        assert_eq!(f.decide(2, 1), Fate::DropRequest);
        assert_eq!(f.decide(1, 3), Fate::Deliver { delay: Duration::ZERO });
        f.slow(1, 3, Duration::from_millis(7));
        assert_eq!(f.decide(1, 3), Fate::Deliver { delay: Duration::from_millis(7) });
        assert_eq!(f.decide(3, 1), Fate::Deliver { delay: Duration::ZERO }, "one way");
        f.heal();
        assert_eq!(f.decide(1, 3), Fate::Deliver { delay: Duration::ZERO });
        f.set_lossy(0.3, 0.3, Duration::from_millis(5));
        let run = |seed| {
            let f = NetFaults::new(seed);
            f.set_lossy(0.3, 0.3, Duration::from_millis(5));
            (0..200).map(|_| f.decide(1, 2)).collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7), "same seed, same fates");
        assert!(a.contains(&Fate::DropRequest) && a.contains(&Fate::DropReply));
        assert!(a.iter().any(|x| matches!(x, Fate::Deliver { delay } if !delay.is_zero())));
    }
}
