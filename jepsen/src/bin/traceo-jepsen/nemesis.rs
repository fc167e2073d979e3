//! The nemesis: on a fixed schedule it starts a fault, holds it, heals it, and records both in
//! the history. Faults act on the real processes of a [`LocalCluster`].
//!
//! - `kill`: SIGKILL a random minority of nodes, or a third of the time the leader of a random
//!   shard, and restart them at heal time (same data directory).
//! - `pause`: SIGSTOP a random minority, SIGCONT at heal time.
//! - `partition` (nodes in network namespaces, [`chaos::netns`], or behind the proxies of
//!   [`chaos::proxy`]; see [`crate::net`]): one of isolating a node,
//!   a random majority/minority split, a bridge (two halves that only one node sees both of), or
//!   random pairs; healed by removing every cut.
//! - `latency` (namespaces or proxies): a random minority's traffic gets 20–100 ms of delay
//!   (± a quarter) and 0–5% packet loss (`tc netem`; through proxies a lost packet is a chunk
//!   held for a 200 ms retransmission timeout).
//! - `clock` (nodes under libfaketime): a random minority's clocks (wall and monotonic) jump by
//!   ±1–60 s; reset to true time at heal. Raft's safety must not depend on clocks.
//! - `member`: a new node joins (replicas move onto it under load); at heal time it is
//!   decommissioned (its replicas move away again) and its process exits once drained.
//!
//! A minority is 1..=(n−1)/2 nodes, so a majority of every shard's replicas (RF 3) can stay up
//! only when at most one of its replicas is hit: with 5 nodes and RF 3 some shards lose their
//! majority during a 2-node fault, which is the point (unavailability is allowed, lost
//! acknowledged data is not).

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use testkit::LocalCluster;
use tokio::sync::Mutex;

use crate::recorder::Recorder;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Kill,
    Pause,
    Partition,
    Clock,
    Latency,
    Member,
}

impl FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Fault, String> {
        match s {
            "kill" => Ok(Fault::Kill),
            "pause" => Ok(Fault::Pause),
            "partition" => Ok(Fault::Partition),
            "clock" => Ok(Fault::Clock),
            "latency" => Ok(Fault::Latency),
            "member" => Ok(Fault::Member),
            other => Err(format!("{other:?} is not a nemesis (kill, pause, partition, clock, latency, member)")),
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
    /// The network between the nodes (needed by `partition` and `latency`).
    pub net: Option<Arc<std::sync::Mutex<crate::net::Net>>>,
    /// Per node, the file its libfaketime reads the clock offset from (needed by `clock`).
    pub clock_files: Option<Vec<std::path::PathBuf>>,
    /// To find shard leaders (the `kill` nemesis aims at one a third of the time) and to
    /// decommission nodes (`member`).
    pub client: client::Client,
    /// Nodes decommissioned by `member`: gone for good, never picked again.
    pub gone: Vec<usize>,
}

/// How long a decommissioned node may take to drain and exit before the run fails.
const DRAIN_PATIENCE: Duration = Duration::from_secs(120);

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
        let n = cluster.nodes.len() - self.gone.len();
        let k = self.rng.gen_range(1..=((n - 1) / 2).max(1));
        let mut all: Vec<usize> = (0..cluster.nodes.len()).filter(|i| !self.gone.contains(i)).collect();
        all.shuffle(&mut self.rng);
        let mut nodes: Vec<usize> = all.into_iter().take(k).collect();
        let mut aimed = false;
        if fault == Fault::Kill && self.rng.gen_bool(1.0 / 3.0) {
            let mut leaders: Vec<String> = Vec::new();
            for (_, status) in self.client.cluster_status_all().await {
                if let Ok(s) = status {
                    leaders.extend(s.shard_status.iter().map(|x| x.leader_addr.clone()).filter(|a| !a.is_empty()));
                }
            }
            leaders.sort();
            leaders.dedup();
            if let Some(i) = leaders.choose(&mut self.rng).and_then(|a| cluster.index_of_addr(a)) {
                nodes = vec![i];
                aimed = true;
            }
        }
        nodes.sort_unstable();
        let names: Vec<String> = nodes.iter().map(|i| format!("n{}", i + 1)).collect();
        match fault {
            Fault::Member => {
                let i = cluster.add_node()?;
                let label = format!("join n{}", i + 1);
                self.recorder.nemesis(&format!("start {label}"));
                return Ok(Active { fault, nodes: vec![i], label });
            }
            Fault::Kill => {
                for &i in &nodes {
                    cluster.kill(i)?;
                }
                let what = if aimed { "kill leader" } else { "kill" };
                let label = format!("{what} {}", names.join(","));
                self.recorder.nemesis(&format!("start {label}"));
                return Ok(Active { fault, nodes, label });
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
                let (cuts, label) = partition_plan(&mut self.rng, n);
                let net = self.net.as_ref().ok_or_else(|| anyhow::anyhow!("partition needs a breakable network"))?;
                let mut lab = net.lock().expect("netlab");
                for (a, b) in cuts {
                    lab.cut(a, b)?;
                }
                self.recorder.nemesis(&format!("start {label}"));
                return Ok(Active { fault, nodes: Vec::new(), label });
            }
            Fault::Latency => {
                let net = self.net.as_ref().ok_or_else(|| anyhow::anyhow!("latency needs a breakable network"))?;
                let mut lab = net.lock().expect("netlab");
                let mut shown = Vec::new();
                for &i in &nodes {
                    let (delay, loss) = (self.rng.gen_range(20..=100), self.rng.gen_range(0..=5) as f64);
                    lab.shape(i, delay, loss)?;
                    shown.push(format!("n{} {delay}ms {loss}%", i + 1));
                }
                let label = format!("latency {}", shown.join(", "));
                self.recorder.nemesis(&format!("start {label}"));
                return Ok(Active { fault, nodes, label });
            }
        }
        let label = format!("pause {}", names.join(","));
        Ok(Active { fault, nodes, label })
    }

    async fn heal(&mut self, active: Active) -> anyhow::Result<()> {
        let mut cluster = self.cluster.lock().await;
        match active.fault {
            Fault::Kill => {
                for &i in &active.nodes {
                    cluster.restart(i)?;
                }
                self.recorder.nemesis(&format!("stop {} (restarted)", active.label));
            }
            Fault::Pause => {
                for &i in &active.nodes {
                    if let Some(pid) = cluster.pid(i) {
                        chaos::process::resume(pid)?;
                    }
                }
                self.recorder.nemesis(&format!("stop {} (resumed)", active.label));
            }
            Fault::Clock => {
                if let Some(files) = &self.clock_files {
                    for &i in &active.nodes {
                        std::fs::write(&files[i], "+0\n")?;
                    }
                }
                self.recorder.nemesis(&format!("stop {} (reset)", active.label));
            }
            Fault::Partition | Fault::Latency => {
                if let Some(net) = &self.net {
                    net.lock().expect("netlab").heal()?;
                }
                self.recorder.nemesis(&format!("stop {} (healed)", active.label));
            }
            Fault::Member => {
                let i = active.nodes[0];
                drop(cluster);
                self.decommission(i).await?;
                self.recorder.nemesis(&format!("stop {} (decommissioned)", active.label));
            }
        }
        Ok(())
    }

    /// Decommissions node `i` (once it has an id) and waits until its process has exited.
    async fn decommission(&mut self, i: usize) -> anyhow::Result<()> {
        let addr = self.cluster.lock().await.nodes[i].addr.clone();
        let deadline = Instant::now() + DRAIN_PATIENCE;
        let id = loop {
            let status = self.client.cluster_status().await.ok();
            if let Some(n) = status.iter().flat_map(|s| s.nodes.iter()).find(|n| n.addr == addr) {
                break n.id;
            }
            anyhow::ensure!(Instant::now() < deadline, "node n{} never registered", i + 1);
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        loop {
            match self.client.decommission(id).await {
                Ok(_) => break,
                Err(e) if Instant::now() < deadline => tracing::warn!("decommission n{}: {e}", i + 1),
                Err(e) => anyhow::bail!("decommission n{} failed: {e}", i + 1),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        self.gone.push(i);
        while self.cluster.lock().await.is_running(i) {
            anyhow::ensure!(Instant::now() < deadline, "n{} did not drain and exit within {DRAIN_PATIENCE:?}", i + 1);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }
}

/// The links to cut, and the history's label: isolate a node, a majority / minority split, a
/// bridge (two halves that only one node sees both of), or random pairs.
fn partition_plan(rng: &mut ChaCha8Rng, n: usize) -> (Vec<(usize, usize)>, String) {
    let name = |i: &usize| format!("n{}", i + 1);
    let names = |g: &[usize]| g.iter().map(name).collect::<Vec<_>>().join(",");
    let across = |a: &[usize], b: &[usize]| a.iter().flat_map(|&x| b.iter().map(move |&y| (x, y))).collect::<Vec<_>>();
    let mut all: Vec<usize> = (0..n).collect();
    all.shuffle(rng);
    match rng.gen_range(0..4) {
        0 => (across(&all[..1], &all[1..]), format!("partition isolate {}", name(&all[0]))),
        1 => {
            let m = ((n - 1) / 2).max(1);
            (across(&all[..m], &all[m..]), format!("partition {} | {}", names(&all[..m]), names(&all[m..])))
        }
        2 => {
            let rest = &all[1..];
            let half = rest.len() / 2;
            let label =
                format!("partition {} | {} bridged by {}", names(&rest[..half]), names(&rest[half..]), name(&all[0]));
            (across(&rest[..half], &rest[half..]), label)
        }
        _ => {
            let mut pairs: Vec<(usize, usize)> = (0..n).flat_map(|a| (a + 1..n).map(move |b| (a, b))).collect();
            pairs.shuffle(rng);
            pairs.truncate(rng.gen_range(1..=n));
            pairs.sort_unstable();
            let shown: Vec<String> = pairs.iter().map(|(a, b)| format!("{}-{}", name(a), name(b))).collect();
            (pairs, format!("partition pairs {}", shown.join(",")))
        }
    }
}

/// Sleeps until `t` or `until`, whichever is first; false when `until` came first.
async fn sleep_until(t: Instant, until: Instant) -> bool {
    let end = t.min(until);
    tokio::time::sleep(end.saturating_duration_since(Instant::now())).await;
    t <= until
}
