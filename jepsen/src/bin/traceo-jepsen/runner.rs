//! One run: a fresh local cluster of real `traceo` processes, the workload's workers and the
//! nemesis for the run's duration, then healing, a final read of every key, and the history.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use client::ClientOptions;
use jepsen::history::History;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use testkit::{LocalCluster, LocalClusterOptions, NodeHost};

use crate::nemesis::{Fault, Nemesis};
use crate::net::{Net, NetKind};
use crate::recorder::Recorder;
use crate::workload::{read_op, recent_ids, Keys, Worker, APPENDS_PER_KEY};

/// Everything that defines a run (written to `run.json`, read back by `--reproduce`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunOptions {
    pub nodes: usize,
    pub shards: u32,
    pub workload: String,
    pub nemesis: Vec<String>,
    pub duration_s: f64,
    /// Operations per second over all workers.
    pub rate: f64,
    pub concurrency: usize,
    pub hot_keys: usize,
    pub read_fraction: f64,
    pub fault_s: f64,
    pub heal_s: f64,
    pub seed: u64,
    /// How partition and latency break the network: auto, netns or proxy ([`crate::net`]).
    #[serde(default = "auto")]
    pub net: String,
}

fn auto() -> String {
    "auto".into()
}

/// libfaketime from Debian's `faketime` package.
const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// A process's wall-clock offset read from `file` (re-read at most once a second). The
/// monotonic clock is left alone, as when an operator or NTP steps a machine's clock.
fn faketime_env(file: &Path) -> Vec<(String, String)> {
    vec![
        ("LD_PRELOAD".into(), FAKETIME_LIB.into()),
        ("FAKETIME_TIMESTAMP_FILE".into(), file.display().to_string()),
        ("FAKETIME_CACHE_DURATION".into(), "1".into()),
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
    ]
}

pub struct RunOutput {
    pub history: History,
    pub faults: u64,
    /// Keys whose final read never succeeded after healing (the cluster did not recover).
    pub unread: Vec<String>,
    /// Node logs and data, kept for a failed run.
    pub cluster_dir: PathBuf,
    /// Every node's Raft links at the end (node address -> peer id -> counters).
    pub links: crate::links::Links,
}

pub async fn run(opts: &RunOptions, traceo: PathBuf, out: &std::path::Path) -> anyhow::Result<RunOutput> {
    let faults: Vec<Fault> =
        opts.nemesis.iter().map(|n| n.parse().map_err(anyhow::Error::msg)).collect::<Result<_, _>>()?;
    anyhow::ensure!(
        !faults.contains(&Fault::Member)
            || !faults.iter().any(|f| matches!(f, Fault::Partition | Fault::Latency | Fault::Clock)),
        "--nemesis member adds plain nodes: it cannot be combined with partition, latency or clock"
    );
    let cluster_dir = out.join("cluster");
    std::fs::create_dir_all(&cluster_dir).with_context(|| format!("creating {}", cluster_dir.display()))?;
    // Partitions and latency need a network to break: namespaces, or proxies (set up below,
    // once the nodes' addresses are known).
    let latency = faults.contains(&Fault::Latency);
    let net_kind =
        (faults.contains(&Fault::Partition) || latency).then(|| NetKind::choose(&opts.net, latency)).transpose()?;
    let lab = if net_kind == Some(NetKind::Netns) {
        anyhow::ensure!(chaos::netns::available(), "--net netns needs root and iproute2 (network namespaces)");
        let mut lab = chaos::netns::NetLab::new(opts.nodes)?;
        if latency {
            // Fail now, not mid-run, where the kernel has no netem.
            lab.shape(0, 1, 0.0).and_then(|_| lab.heal()).map_err(|e| {
                anyhow::anyhow!("--nemesis latency: this kernel cannot shape traffic (netem): {e}; try --net proxy")
            })?;
        }
        Some(lab)
    } else {
        None
    };
    let mut copts = LocalClusterOptions::new(opts.nodes, &cluster_dir, traceo);
    // A skewed clock per node (libfaketime, offsets read from a file the nemesis rewrites).
    let clock_files: Option<Vec<PathBuf>> = faults
        .contains(&Fault::Clock)
        .then(|| (0..opts.nodes).map(|i| cluster_dir.join(format!("clock-n{}", i + 1))).collect());
    if let Some(files) = &clock_files {
        anyhow::ensure!(
            Path::new(FAKETIME_LIB).is_file(),
            "--nemesis clock needs libfaketime ({FAKETIME_LIB}; apt-get install faketime)"
        );
        for f in files {
            std::fs::write(f, "+0\n")?;
        }
    }
    if lab.is_some() || clock_files.is_some() {
        copts.hosts = Some(
            (0..opts.nodes)
                .map(|i| NodeHost {
                    ip: lab.as_ref().map(|lab| lab.ip(i)),
                    wrapper: lab.as_ref().map(|lab| lab.wrapper(i)).unwrap_or_default(),
                    env: clock_files.as_ref().map(|files| faketime_env(&files[i])).unwrap_or_default(),
                })
                .collect(),
        );
    }
    copts.shards = opts.shards;
    copts.replication_factor = 3.min(opts.nodes as u32);
    copts.log_filter = "info,openraft=warn".into();
    // Fast elections. openraft 0.9 gives every append (heartbeats too) the heartbeat interval as
    // its timeout, so the heartbeat must exceed the slowest round trip between replicas: with
    // `latency` (round trips up to ~650 ms with a lost chunk) it is slower.
    let (heartbeat, election_min, election_max) = if latency { (700, 2800, 4200) } else { (100, 500, 1000) };
    copts.extra_args = vec![
        "--heartbeat-ms".into(),
        heartbeat.to_string(),
        "--election-timeout-min-ms".into(),
        election_min.to_string(),
        "--election-timeout-max-ms".into(),
        election_max.to_string(),
    ];
    let mut cluster = LocalCluster::create(copts)?;
    let net = match (lab, net_kind) {
        (Some(lab), _) => Some(Net::Netns(lab)),
        (None, Some(NetKind::Proxy)) => Some(Net::proxies(&mut cluster, opts.seed).await?),
        _ => None,
    };
    if let Some(kind) = net_kind {
        tracing::info!("network faults through {kind:?}");
    }
    cluster.spawn_all()?;
    cluster.wait_ready(Duration::from_secs(90)).await?;
    let client_opts = ClientOptions {
        deadline: Duration::from_secs(5),
        rpc_timeout: Duration::from_secs(1),
        ..ClientOptions::default()
    };
    let client = client::Client::connect(cluster.seeds(), client_opts).await?;
    let cluster = Arc::new(tokio::sync::Mutex::new(cluster));

    let recorder = Arc::new(Recorder::new());
    let run_tag = format!("r{}", opts.seed);
    let register = opts.workload == "register";
    let limit = if register { crate::register::WRITES_PER_KEY } else { APPENDS_PER_KEY };
    let keys = Arc::new(Mutex::new(Keys::new(opts.hot_keys, &run_tag, limit)));
    let processes = Arc::new(AtomicI64::new(0));
    let until = Instant::now() + Duration::from_secs_f64(opts.duration_s);
    let interval = Duration::from_secs_f64(opts.concurrency as f64 / opts.rate.max(0.1));
    let mut workers = Vec::new();
    for id in 0..opts.concurrency {
        let seeds = cluster.lock().await.seeds();
        let w = Worker {
            id,
            home: seeds[id % seeds.len()].clone(),
            client: client.clone(),
            keys: keys.clone(),
            recorder: recorder.clone(),
            processes: processes.clone(),
            rng: ChaCha8Rng::seed_from_u64(opts.seed.wrapping_mul(1_000_003).wrapping_add(id as u64)),
            run: run_tag.clone(),
            interval,
            read_fraction: opts.read_fraction,
            register,
            seen: Default::default(),
        };
        workers.push(tokio::spawn(w.run(until)));
    }
    let nemesis = Nemesis {
        cluster: cluster.clone(),
        recorder: recorder.clone(),
        faults,
        rng: ChaCha8Rng::seed_from_u64(opts.seed ^ 0x006e_656d_6573_6973),
        fault_for: Duration::from_secs_f64(opts.fault_s),
        heal_for: Duration::from_secs_f64(opts.heal_s),
        net: net.map(|lab| Arc::new(std::sync::Mutex::new(lab))),
        clock_files,
        client: client.clone(),
        gone: Vec::new(),
    };
    let net = nemesis.net.clone();
    let nemesis = tokio::spawn(nemesis.run(until));
    for w in workers {
        w.await.context("a worker panicked")?;
    }
    let faults = nemesis.await.context("the nemesis panicked")??;

    // Healed: every node runs again. Wait until the cluster serves, then read every key.
    recorder.nemesis("healed; final reads");
    if let Err(e) = cluster.lock().await.wait_ready(Duration::from_secs(90)).await {
        tracing::error!("the cluster did not recover after healing: {e:#}");
    }
    let all_keys = keys.lock().expect("keys").all.clone();
    let mut process = processes.load(std::sync::atomic::Ordering::Relaxed) + 1;
    let mut unread = Vec::new();
    for key in &all_keys {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let view = if register { crate::register::view } else { recent_ids };
            if read_op(&client, &recorder, process, key, view).await.is_some() {
                break;
            }
            process += 1;
            if Instant::now() >= deadline {
                tracing::error!("final read of {key} did not succeed within 30 s");
                unread.push(key.clone());
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        process += 1;
    }
    let mut cluster = Arc::try_unwrap(cluster).map_err(|_| anyhow::anyhow!("cluster still shared"))?.into_inner();
    let links = crate::links::collect(&client).await;
    cluster.terminate_all(Duration::from_secs(10));
    // The namespaces go only after their processes.
    drop(net);
    Ok(RunOutput { history: recorder.take(), faults, unread, cluster_dir, links })
}
