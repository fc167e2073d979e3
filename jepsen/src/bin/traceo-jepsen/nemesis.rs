//! The nemesis: on a fixed schedule it starts a fault, holds it, heals it, and records both in
//! the history. Faults act on the real processes of a [`LocalCluster`].
//!
//! - `kill`: SIGKILL a random minority of nodes, restart them at heal time (same data directory).
//! - `pause`: SIGSTOP a random minority, SIGCONT at heal time.
//!
//! A minority is 1..=(n−1)/2 nodes, so a majority of every shard's replicas (RF 3) can stay up
//! only when at most one of its replicas is hit: with 5 nodes and RF 3 some shards lose their
//! majority during a 2-node fault, which is the point (unavailability is allowed, lost
//! acknowledged data is not).

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use node::local_cluster::LocalCluster;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::Mutex;

use crate::recorder::Recorder;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Kill,
    Pause,
}

impl FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Fault, String> {
        match s {
            "kill" => Ok(Fault::Kill),
            "pause" => Ok(Fault::Pause),
            "partition" => Err("partition: not built yet (network namespaces come next); use kill, pause".into()),
            other => Err(format!("{other:?} is not a nemesis (kill, pause)")),
        }
    }
}

/// What is broken right now, to heal.
struct Active {
    fault: Fault,
    nodes: Vec<usize>,
}

pub struct Nemesis {
    pub cluster: Arc<Mutex<LocalCluster>>,
    pub recorder: Arc<Recorder>,
    pub faults: Vec<Fault>,
    pub rng: ChaCha8Rng,
    /// How long a fault lasts, then how long the cluster runs healed before the next.
    pub fault_for: Duration,
    pub heal_for: Duration,
}

impl Nemesis {
    /// Alternates heal and fault periods until `until`, then heals everything. Returns the number
    /// of faults started.
    pub async fn run(mut self, until: Instant) -> anyhow::Result<u64> {
        let mut started = 0;
        if self.faults.is_empty() {
            return Ok(0);
        }
        loop {
            if !sleep_until(Instant::now() + self.heal_for, until).await {
                break;
            }
            let active = self.start().await?;
            started += 1;
            let more = sleep_until(Instant::now() + self.fault_for, until).await;
            self.heal(active).await?;
            if !more {
                break;
            }
        }
        Ok(started)
    }

    async fn start(&mut self) -> anyhow::Result<Active> {
        let fault = *self.faults.choose(&mut self.rng).expect("faults");
        let mut cluster = self.cluster.lock().await;
        let n = cluster.nodes.len();
        let k = self.rng.gen_range(1..=((n - 1) / 2).max(1));
        let mut all: Vec<usize> = (0..n).collect();
        all.shuffle(&mut self.rng);
        let mut nodes: Vec<usize> = all.into_iter().take(k).collect();
        nodes.sort_unstable();
        let names: Vec<String> = nodes.iter().map(|i| format!("n{}", i + 1)).collect();
        match fault {
            Fault::Kill => {
                for &i in &nodes {
                    cluster.kill(i)?;
                }
                self.recorder.nemesis(&format!("start kill {}", names.join(",")));
            }
            Fault::Pause => {
                for &i in &nodes {
                    if let Some(pid) = cluster.pid(i) {
                        chaos::process::pause(pid)?;
                    }
                }
                self.recorder.nemesis(&format!("start pause {}", names.join(",")));
            }
        }
        Ok(Active { fault, nodes })
    }

    async fn heal(&mut self, active: Active) -> anyhow::Result<()> {
        let mut cluster = self.cluster.lock().await;
        let names: Vec<String> = active.nodes.iter().map(|i| format!("n{}", i + 1)).collect();
        match active.fault {
            Fault::Kill => {
                for &i in &active.nodes {
                    cluster.restart(i)?;
                }
                self.recorder.nemesis(&format!("stop kill {} (restarted)", names.join(",")));
            }
            Fault::Pause => {
                for &i in &active.nodes {
                    if let Some(pid) = cluster.pid(i) {
                        chaos::process::resume(pid)?;
                    }
                }
                self.recorder.nemesis(&format!("stop pause {} (resumed)", names.join(",")));
            }
        }
        Ok(())
    }
}

/// Sleeps until `t` or `until`, whichever is first; false when `until` came first.
async fn sleep_until(t: Instant, until: Instant) -> bool {
    let end = t.min(until);
    tokio::time::sleep(end.saturating_duration_since(Instant::now())).await;
    t <= until
}
