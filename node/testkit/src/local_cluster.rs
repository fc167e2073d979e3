//! A cluster of real `traceo node` processes on loopback, in one directory: used by
//! `traceo demo`, `traceo bench` and the integration tests. Every process is killed when the
//! [`LocalCluster`] is dropped.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use client::{Client, ClientOptions};

#[derive(Clone, Debug)]
pub struct LocalClusterOptions {
    pub nodes: usize,
    pub shards: u32,
    pub replication_factor: u32,
    /// The `traceo` binary to run.
    pub binary: PathBuf,
    /// Parent of every node's data directory and log file.
    pub dir: PathBuf,
    /// Extra `traceo node` flags for every node.
    pub extra_args: Vec<String>,
    /// `RUST_LOG` of the node processes.
    pub log_filter: String,
    /// How each node runs: `None` = every node plainly on 127.0.0.1 with free ports.
    pub hosts: Option<Vec<NodeHost>>,
}

/// How one node runs (see [`LocalClusterOptions::hosts`]).
#[derive(Clone, Debug, Default)]
pub struct NodeHost {
    /// Listen on this address (ports 7400 / 7401), for a node in its own network namespace;
    /// `None`: 127.0.0.1 with free ports.
    pub ip: Option<String>,
    /// Command and arguments put before the `traceo` binary (e.g. `ip netns exec NS`).
    pub wrapper: Vec<String>,
    /// Extra environment (e.g. libfaketime's, for a skewed clock).
    pub env: Vec<(String, String)>,
}

impl LocalClusterOptions {
    pub fn new(nodes: usize, dir: &Path, binary: PathBuf) -> Self {
        LocalClusterOptions {
            nodes,
            shards: 16,
            replication_factor: 3,
            binary,
            dir: dir.to_path_buf(),
            extra_args: Vec::new(),
            log_filter: "info".into(),
            hosts: None,
        }
    }
}

pub struct LocalNode {
    pub addr: String,
    pub admin_addr: String,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

pub struct LocalCluster {
    opts: LocalClusterOptions,
    pub nodes: Vec<LocalNode>,
}

/// A port free on 127.0.0.1 now, picked at random *below* the kernel's ephemeral range.
///
/// Asking the kernel for port 0 would hand out an ephemeral port, which any outgoing connection
/// of any process may take in the moment between our check and the node's bind (or while a
/// killed node is down, before it restarts on the same port). Below the range only an explicit
/// bind can take it: another cluster picking at random, which also checks, and which this
/// process's own record of handed-out ports excludes.
fn free_port() -> anyhow::Result<u16> {
    use rand::Rng;
    use std::sync::Mutex;
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse::<u16>().ok()))
        .unwrap_or(32768);
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = rand::thread_rng();
    if ephemeral_low > 12_000 {
        for _ in 0..1000 {
            let port = rng.gen_range(10_000..ephemeral_low);
            if !handed_out.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
                handed_out.push(port);
                return Ok(port);
            }
        }
    }
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    handed_out.push(port);
    Ok(port)
}

impl LocalCluster {
    /// Starts every node: the first founds the cluster, the others join it.
    pub fn start(opts: LocalClusterOptions) -> anyhow::Result<LocalCluster> {
        let mut cluster = LocalCluster::create(opts)?;
        cluster.spawn_all()?;
        Ok(cluster)
    }

    /// Assigns every node its addresses and arguments without starting any (so a test can set
    /// up something that needs the addresses first, then [`LocalCluster::spawn_all`]).
    pub fn create(opts: LocalClusterOptions) -> anyhow::Result<LocalCluster> {
        anyhow::ensure!(opts.nodes >= 1, "a cluster needs at least one node");
        std::fs::create_dir_all(&opts.dir)?;
        let mut nodes = Vec::new();
        let mut founder = String::new();
        if let Some(hosts) = &opts.hosts {
            anyhow::ensure!(hosts.len() == opts.nodes, "{} hosts for {} nodes", hosts.len(), opts.nodes);
        }
        for i in 0..opts.nodes {
            let node = new_node(&opts, i, &founder)?;
            if i == 0 {
                founder = node.addr.clone();
            }
            nodes.push(node);
        }
        Ok(LocalCluster { opts, nodes })
    }

    /// Starts every node created by [`LocalCluster::create`].
    pub fn spawn_all(&mut self) -> anyhow::Result<()> {
        for i in 0..self.nodes.len() {
            self.spawn(i)?;
        }
        Ok(())
    }

    /// Adds `traceo node` arguments for node `i`, from its next start on.
    pub fn add_args(&mut self, i: usize, args: impl IntoIterator<Item = String>) {
        self.nodes[i].args.extend(args);
    }

    /// Starts one more node (plain, on 127.0.0.1) that joins the cluster; returns its index.
    pub fn add_node(&mut self) -> anyhow::Result<usize> {
        anyhow::ensure!(self.opts.hosts.is_none(), "adding nodes to a cluster in network namespaces is not supported");
        let i = self.nodes.len();
        let node = new_node(&self.opts, i, &self.nodes[0].addr)?;
        self.nodes.push(node);
        self.spawn(i)?;
        Ok(i)
    }

    /// True while node `i`'s process runs (false once it exited, e.g. after decommission).
    pub fn is_running(&mut self, i: usize) -> bool {
        self.reap(i);
        self.nodes[i].child.is_some()
    }

    /// If node `i`'s process has exited: forgets it and says how it ended.
    fn reap(&mut self, i: usize) -> Option<String> {
        let ended = match self.nodes[i].child.as_mut()?.try_wait() {
            Ok(None) => return None,
            Ok(Some(status)) => status.to_string(),
            Err(e) => format!("status unknown: {e}"),
        };
        self.nodes[i].child = None;
        Some(ended)
    }

    fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        let node = &mut self.nodes[i];
        let log = File::options().create(true).append(true).open(&node.log_path)?;
        let host = self.opts.hosts.as_ref().map(|h| h[i].clone()).unwrap_or_default();
        let wrapper = host.wrapper;
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&self.opts.binary);
                c
            }
            None => Command::new(&self.opts.binary),
        };
        let child = command
            .args(&node.args)
            .env("RUST_LOG", &self.opts.log_filter)
            .envs(host.env)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.opts.binary.display()))?;
        node.child = Some(child);
        Ok(())
    }

    pub fn seeds(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.addr.clone()).collect()
    }

    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].child.as_ref().map(|c| c.id())
    }

    pub fn index_of_addr(&self, addr: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.addr == addr)
    }

    /// Waits until every running node reports the cluster placed, all its shards led, and no
    /// replica move under way or planned. Fails at once, with its last log lines, if a node's
    /// process exits meanwhile (e.g. it could not listen).
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<Client> {
        let deadline = Instant::now() + timeout;
        let opts = ClientOptions { rpc_timeout: Duration::from_secs(1), ..ClientOptions::default() };
        loop {
            self.fail_if_exited()?;
            if let Ok(client) = Client::connect(self.seeds(), opts.clone()).await {
                let answers = client.cluster_status_all().await;
                let running: Vec<&String> = self.nodes.iter().filter(|n| n.child.is_some()).map(|n| &n.addr).collect();
                let ready = answers
                    .iter()
                    .filter(|(a, _)| running.contains(&a))
                    .all(|(_, r)| r.as_ref().is_ok_and(|s| s.ready));
                // Settled too: no replica moves under way or still planned.
                let settled = answers
                    .iter()
                    .filter_map(|(a, r)| r.as_ref().ok().filter(|_| running.contains(&a)))
                    .all(|s| s.moving.is_empty() && s.moves_planned == 0);
                if ready && settled && answers.iter().filter(|(a, _)| running.contains(&a)).count() == running.len() {
                    client.refresh_routing().await?;
                    return Ok(client);
                }
            }
            if Instant::now() >= deadline {
                let logs: Vec<String> = self.nodes.iter().map(|n| n.log_path.display().to_string()).collect();
                anyhow::bail!("cluster not ready within {timeout:?}; node logs: {}", logs.join(", "));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// An error naming the first started node whose process has exited, with its log's tail.
    fn fail_if_exited(&mut self) -> anyhow::Result<()> {
        for i in 0..self.nodes.len() {
            if let Some(ended) = self.reap(i) {
                let node = &self.nodes[i];
                let log = std::fs::read_to_string(&node.log_path).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                anyhow::bail!(
                    "node {i} ({}) exited ({ended}) before the cluster was ready; the end of {}:\n{}",
                    node.addr,
                    node.log_path.display(),
                    lines[lines.len().saturating_sub(5)..].join("\n")
                );
            }
        }
        Ok(())
    }

    /// SIGKILL: the process gets no chance to flush anything.
    pub fn kill(&mut self, i: usize) -> anyhow::Result<()> {
        if let Some(mut c) = self.nodes[i].child.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    /// Starts a stopped node again with its data directory (it resumes its stored identity).
    pub fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        anyhow::ensure!(self.nodes[i].child.is_none(), "node {i} is still running");
        self.spawn(i)
    }

    /// SIGTERM to every node, then waits (SIGKILL after `grace`).
    pub fn terminate_all(&mut self, grace: Duration) {
        for n in &mut self.nodes {
            if let Some(c) = &n.child {
                // SAFETY: plain kill(2) on a child pid we own and have not reaped yet.
                unsafe {
                    libc::kill(c.id() as i32, libc::SIGTERM);
                }
            }
        }
        let deadline = Instant::now() + grace;
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                loop {
                    match c.try_wait() {
                        Ok(Some(_)) => break,
                        Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                        _ => {
                            let _ = c.kill();
                            let _ = c.wait();
                            break;
                        }
                    }
                }
            }
        }
    }

    /// Bytes on disk under every node's data directory.
    pub fn disk_bytes(&self) -> u64 {
        self.nodes.iter().map(|n| dir_bytes(&n.data_dir)).sum()
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// Node `i` of `opts`: its addresses, data directory, log file and `traceo node` arguments
/// (joining `founder` unless it is node 0).
fn new_node(opts: &LocalClusterOptions, i: usize, founder: &str) -> anyhow::Result<LocalNode> {
    let ip = opts.hosts.as_ref().and_then(|h| h.get(i)).and_then(|h| h.ip.clone());
    let (addr, admin_addr) = match ip {
        None => (format!("127.0.0.1:{}", free_port()?), format!("127.0.0.1:{}", free_port()?)),
        Some(ip) => (format!("{ip}:7400"), format!("{ip}:7401")),
    };
    let data_dir = opts.dir.join(format!("node-{i}"));
    let mut args = vec![
        "node".to_string(),
        "--data-dir".into(),
        data_dir.display().to_string(),
        "--listen-addr".into(),
        addr.clone(),
        "--admin-addr".into(),
        admin_addr.clone(),
        "--zone".into(),
        format!("zone-{}", (b'a' + (i % 3) as u8) as char),
        "--shards".into(),
        opts.shards.to_string(),
        "--replication-factor".into(),
        opts.replication_factor.to_string(),
    ];
    if i > 0 {
        args.extend(["--join".to_string(), founder.to_string()]);
    }
    args.extend(opts.extra_args.iter().cloned());
    let log_path = opts.dir.join(format!("node-{i}.log"));
    Ok(LocalNode { addr, admin_addr, data_dir, log_path, args, child: None })
}

pub fn dir_bytes(path: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(path) else { return 0 };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
