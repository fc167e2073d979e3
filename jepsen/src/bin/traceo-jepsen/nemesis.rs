//! The nemesis: on a fixed schedule it starts a fault, holds it, heals it, and records both in
//! the history. Faults act on the real processes of a [`LocalCluster`].
//!
//! - `kill`: SIGKILL a random minority of nodes, restart them at heal time (same data directory).
//! - `pause`: SIGSTOP a random minority, SIGCONT at heal time.
//! - `partition` (nodes in network namespaces, [`chaos::netns`]): one of isolating a node,
//!   a random majority/minority split, or a bridge (two halves that only one node sees both of);
//!   healed by removing every cut.
//! - `clock` (nodes under libfaketime): a random minority's clocks (wall and monotonic) jump by
//!   ±1–60 s; reset to true time at heal. Raft's safety must not depend on clocks.
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
    Partition,
    Clock,
}

impl FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Fault, String> {
        match s {
            "kill" => Ok(Fault::Kill),
            "pause" => Ok(Fault::Pause),
            "partition" => Ok(Fault::Partition),
            "clock" => Ok(Fault::Clock),
            other => Err(format!("{other:?} is not a nemesis (kill, pause, partition, clock)")),
        }
    }
}

/// What is broken right now, to heal.
struct Active {
    fault: Fault,
    nodes: Vec<usize>,
    /// What the start line said after "start ": the stop line repeats it.
    label: String,
}

pub struct Nemesis {
    pub cluster: Arc<Mutex<LocalCluster>>,
    pub recorder: Arc<Recorder>,
    pub faults: Vec<Fault>,
    pub rng: ChaCha8Rng,
    /// How long a fault lasts, then how long the cluster runs healed before the next.
    pub fault_for: Duration,
    pub heal_for: Duration,
    /// The nodes' network namespaces (needed by `partition`).
    pub net: Option<Arc<std::sync::Mutex<chaos::netns::NetLab>>>,
    /// Per node, the file its libfaketime reads the clock offset from (needed by `clock`).
    pub clock_files: Option<Vec<std::path::PathBuf>>,
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
            Fault::Clock => {
                let files = self.clock_files.as_ref().ok_or_else(|| anyhow::anyhow!("clock needs libfaketime"))?;
                let mut shown = Vec::new();
                for &i in &nodes {
                    let secs: i64 = self.rng.gen_range(1..=60) * if self.rng.gen_bool(0.5) { 1 } else { -1 };
                    std::fs::write(&files[i], format!("{secs:+}\n"))?;
                    shown.push(format!("n{}{secs:+}s", i + 1));
                }
                let label = format!("clock {}", shown.join(","));
                self.recorder.nemesis(&format!("start {label}"));
                return Ok(Active { fault, nodes, label });
            }
            Fault::Partition => {
                let groups = partition_groups(&mut self.rng, n);
                let net = self.net.as_ref().ok_or_else(|| anyhow::anyhow!("partition needs network namespaces"))?;
                net.lock().expect("netlab").partition(&groups)?;
                let shown: Vec<String> = groups
                    .iter()
                    .map(|g| g.iter().map(|i| format!("n{}", i + 1)).collect::<Vec<_>>().join(","))
                    .collect();
                let bridge: Vec<String> = (0..n)
                    .filter(|i| !groups.iter().flatten().any(|g| g == i))
                    .map(|i| format!("n{}", i + 1))
                    .collect();
                let mut label = format!("partition {}", shown.join(" | "));
                if !bridge.is_empty() {
                    label += &format!(" bridged by {}", bridge.join(","));
                }
                self.recorder.nemesis(&format!("start {label}"));
                return Ok(Active { fault, nodes: Vec::new(), label });
            }
        }
        let label = format!("{} {}", if fault == Fault::Kill { "kill" } else { "pause" }, names.join(","));
        Ok(Active { fault, nodes, label })
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
            Fault::Clock => {
                if let Some(files) = &self.clock_files {
                    for &i in &active.nodes {
                        std::fs::write(&files[i], "+0\n")?;
                    }
                }
                self.recorder.nemesis(&format!("stop {} (reset)", active.label));
            }
            Fault::Partition => {
                if let Some(net) = &self.net {
                    net.lock().expect("netlab").heal()?;
                }
                self.recorder.nemesis(&format!("stop {} (healed)", active.label));
            }
        }
        Ok(())
    }
}

/// Groups of node indices with every link between groups cut. A bridge is expressed as
/// cuts between the two halves only: the bridging node is in neither group's cut list.
fn partition_groups(rng: &mut ChaCha8Rng, n: usize) -> Vec<Vec<usize>> {
    let mut all: Vec<usize> = (0..n).collect();
    all.shuffle(rng);
    match rng.gen_range(0..3) {
        // Isolate one node.
        0 => vec![vec![all[0]], all[1..].to_vec()],
        // Majority / minority.
        1 => {
            let minority = (n - 1) / 2;
            vec![all[..minority.max(1)].to_vec(), all[minority.max(1)..].to_vec()]
        }
        // Bridge: all[0] talks to both halves, the halves not to each other.
        _ => {
            let rest = &all[1..];
            let half = rest.len() / 2;
            vec![rest[..half].to_vec(), rest[half..].to_vec()]
        }
    }
}

/// Sleeps until `t` or `until`, whichever is first; false when `until` came first.
async fn sleep_until(t: Instant, until: Instant) -> bool {
    let end = t.min(until);
    tokio::time::sleep(end.saturating_duration_since(Instant::now())).await;
    t <= until
}
