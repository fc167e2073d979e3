//! Network faults between real node processes without root: a mesh of fault-injecting TCP
//! proxies, with the same fault vocabulary as [`crate::netns`] (cut, partition, shape, heal).
//!
//! For `n` nodes listening on `targets[i]`, the mesh binds one proxy listener on `127.0.0.1`
//! per ordered pair `(from, to)`, and node `from` is configured to dial node `to` at
//! [`ProxyMesh::via`]`(from, to)` instead of `targets[to]` ([`ProxyMesh::dial_map`] is the whole
//! map of one node). Each accepted connection gets its own connection to `targets[to]` and the
//! proxy pumps bytes both ways, so it carries all traffic of the link `{from, to}`; listeners
//! `(from, to)` and `(to, from)` share that link's fault state, and a change applies at once to
//! connections already open.
//!
//! - A **cut** stalls the link like the netns blackhole route: the pumps stop reading and hold
//!   what they have, and new connections are accepted but not connected upstream. Nothing is
//!   refused or reset; both ends see silence, and unless an application timeout closes the
//!   connection first, [`ProxyMesh::heal`] resumes it and delivers what was held, in order.
//! - **Shaping** delays each chunk read (at most 64 KiB) by `delay_ms` ± a quarter of it,
//!   without ever reordering a direction. TCP cannot lose bytes, so **loss** is emulated the way
//!   TCP experiences it: with probability `loss_pct`/100 a chunk is additionally held for a
//!   200 ms retransmission timeout (and what follows it waits behind it).
//!
//! Jitter and loss are drawn from a generator seeded by [`ProxyMesh::start`] (one stream per
//! pair, connection and direction), so the choices are reproducible; timing, and so chunk
//! boundaries, are not. Each direction holds at most 4 MiB read but not yet written, so a slow link
//! applies back-pressure. A half-close is proxied: when one side ends, the bytes it sent are
//! delivered, the other side's writing is shut, and the answer keeps flowing back until that
//! side ends too. Dropping the mesh aborts every listener and
//! pump, which closes their sockets.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Largest chunk a pump reads at once.
const CHUNK: usize = 64 * 1024;
/// Bytes in flight per direction (read but not yet written). Bounded in bytes, not chunks: a
/// delayed link carries as many small messages (heartbeats of many groups) as fit, like a real
/// link's bandwidth-delay product, while a bulk sender still meets back-pressure.
const IN_FLIGHT_BYTES: usize = 4 << 20;
/// How long a "lost" chunk is held, as TCP would wait to retransmit it.
const RTO_MS: u64 = 200;

/// Fault state of one link (unordered pair of nodes).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Fault {
    cut: bool,
    delay_ms: u32,
    loss_pct: f64,
}

impl Fault {
    /// Delay for the next chunk: `delay_ms` ± a quarter, plus the retransmission timeout if lost.
    fn delay(&self, rng: &mut ChaCha8Rng) -> Duration {
        let (delay, jitter) = (u64::from(self.delay_ms), u64::from(self.delay_ms / 4));
        let mut ms = if jitter > 0 { delay - jitter + rng.gen_range(0..=2 * jitter) } else { delay };
        if self.loss_pct > 0.0 && rng.gen_bool((self.loss_pct / 100.0).min(1.0)) {
            ms += RTO_MS;
        }
        Duration::from_millis(ms)
    }
}

/// Proxy listeners for every ordered pair of nodes, and the faults of their links.
pub struct ProxyMesh {
    targets: Vec<SocketAddr>,
    seed: u64,
    /// Proxy address per ordered pair `(from, to)`.
    via: HashMap<(usize, usize), SocketAddr>,
    /// Fault state per link `(a, b)`, `a < b`.
    links: HashMap<(usize, usize), watch::Sender<Fault>>,
    /// Bytes delivered from node `src` to node `dst`, per `(src, dst)`.
    bytes: HashMap<(usize, usize), Arc<AtomicU64>>,
    /// Cut links `(a, b)`, `a < b`.
    cut: BTreeSet<(usize, usize)>,
    /// `(delay_ms, loss_pct)` per node.
    shaped: Vec<(u32, f64)>,
    /// Listener tasks; each owns its connections' tasks, so aborting it ends them too.
    tasks: JoinSet<()>,
}

impl ProxyMesh {
    /// Binds the proxies for `targets` (node `i` listens on `targets[i]`); `seed` drives jitter
    /// and loss.
    pub async fn start(targets: &[SocketAddr], seed: u64) -> io::Result<ProxyMesh> {
        let mut mesh = ProxyMesh {
            targets: Vec::new(),
            seed,
            via: HashMap::new(),
            links: HashMap::new(),
            bytes: HashMap::new(),
            cut: BTreeSet::new(),
            shaped: Vec::new(),
            tasks: JoinSet::new(),
        };
        for &target in targets {
            mesh.add_node(target).await?;
        }
        Ok(mesh)
    }

    /// The proxy node `from` dials to reach node `to`. Panics if `from == to` or either is out
    /// of range.
    pub fn via(&self, from: usize, to: usize) -> SocketAddr {
        assert!(from != to && from < self.nodes() && to < self.nodes(), "no proxy from {from} to {to}");
        self.via[&(from, to)]
    }

    /// The dial map node `from` needs: (target address, proxy address) for every other node.
    pub fn dial_map(&self, from: usize) -> Vec<(SocketAddr, SocketAddr)> {
        (0..self.nodes()).filter(|&to| to != from).map(|to| (self.targets[to], self.via(from, to))).collect()
    }

    /// Adds a node listening on `target`, with proxies to and from every existing node (its links
    /// start healthy, except for the shaping of the nodes they touch); returns its index.
    pub async fn add_node(&mut self, target: SocketAddr) -> io::Result<usize> {
        let new = self.nodes();
        let mut listeners = Vec::new();
        for pair in (0..new).flat_map(|peer| [(peer, new), (new, peer)]) {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
            listeners.push((pair, listener.local_addr()?, listener));
        }
        self.targets.push(target);
        self.shaped.push((0, 0.0));
        for peer in 0..new {
            self.links.insert((peer, new), watch::channel(Fault::default()).0);
            self.bytes.insert((peer, new), Arc::default());
            self.bytes.insert((new, peer), Arc::default());
        }
        for ((from, to), addr, listener) in listeners {
            self.via.insert((from, to), addr);
            let proxy = Proxy {
                from,
                to,
                target: self.targets[to],
                seed: self.seed,
                fault: self.links[&(from.min(to), from.max(to))].subscribe(),
                up: self.bytes[&(from, to)].clone(),
                down: self.bytes[&(to, from)].clone(),
            };
            self.tasks.spawn(proxy.listen(listener));
        }
        self.refresh();
        Ok(new)
    }

    /// Stalls the link between `a` and `b` (both directions) until [`ProxyMesh::heal`].
    pub fn cut(&mut self, a: usize, b: usize) {
        assert!(a < self.nodes() && b < self.nodes(), "no link {a}-{b}");
        if a != b {
            self.cut.insert((a.min(b), a.max(b)));
            self.refresh();
        }
    }

    /// Cuts every link between a node of one group and a node of another.
    pub fn partition(&mut self, groups: &[Vec<usize>]) {
        for (gi, g) in groups.iter().enumerate() {
            for h in &groups[gi + 1..] {
                for &a in g {
                    for &b in h {
                        self.cut(a, b);
                    }
                }
            }
        }
    }

    /// Delays every link touching node `i` by `delay_ms` (± a quarter of it) per direction and
    /// emulates `loss_pct` loss; replaces `i`'s previous shaping. A link touching two shaped
    /// nodes takes the larger delay and the larger loss.
    pub fn shape(&mut self, i: usize, delay_ms: u32, loss_pct: f64) {
        let loss = if loss_pct.is_nan() { 0.0 } else { loss_pct.clamp(0.0, 100.0) };
        self.shaped[i] = (delay_ms, loss);
        self.refresh();
    }

    /// Removes every cut and every shaping.
    pub fn heal(&mut self) {
        self.cut.clear();
        self.shaped.fill((0, 0.0));
        self.refresh();
    }

    pub fn nodes(&self) -> usize {
        self.targets.len()
    }

    /// Bytes delivered so far from node `from` to node `to`, on connections of either proxy of
    /// their link (requests on `via(from, to)`, replies on `via(to, from)`).
    pub fn forwarded(&self, from: usize, to: usize) -> u64 {
        self.bytes.get(&(from, to)).map_or(0, |b| b.load(Ordering::Relaxed))
    }

    /// Publishes each link's fault state derived from the cuts and shapes.
    fn refresh(&self) {
        for (&(a, b), link) in &self.links {
            let ((da, la), (db, lb)) = (self.shaped[a], self.shaped[b]);
            let fault = Fault { cut: self.cut.contains(&(a, b)), delay_ms: da.max(db), loss_pct: la.max(lb) };
            link.send_if_modified(|f| std::mem::replace(f, fault) != fault);
        }
    }
}

impl Drop for ProxyMesh {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

/// One listener: connections node `from` opens to node `to`.
struct Proxy {
    from: usize,
    to: usize,
    target: SocketAddr,
    seed: u64,
    fault: watch::Receiver<Fault>,
    /// Bytes delivered from `from` to `to`, and back.
    up: Arc<AtomicU64>,
    down: Arc<AtomicU64>,
}

impl Proxy {
    async fn listen(self, listener: TcpListener) {
        let mut connections = JoinSet::new();
        let mut count = 0u64;
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((client, _)) => {
                        connections.spawn(self.connection(client, count));
                        count += 1;
                    }
                    // Out of file descriptors, say: back off rather than spin.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                },
                Some(_) = connections.join_next() => {}
            }
        }
    }

    /// Connection number `n` of this listener: waits out a cut, connects upstream and pumps.
    fn connection(&self, mut client: TcpStream, n: u64) -> impl Future<Output = ()> + Send + 'static {
        let (target, mut fault, up, down) = (self.target, self.fault.clone(), self.up.clone(), self.down.clone());
        let stream = ((self.from as u64) << 48) ^ ((self.to as u64) << 32) ^ (n << 1);
        let rng = |direction: u64| {
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
            rng.set_stream(stream ^ direction);
            rng
        };
        let (rng_up, rng_down) = (rng(0), rng(1));
        async move {
            if fault.wait_for(|f| !f.cut).await.is_err() {
                return;
            }
            let Ok(mut upstream) = TcpStream::connect(target).await else { return };
            let _ = (client.set_nodelay(true), upstream.set_nodelay(true));
            let ((client_r, client_w), (upstream_r, upstream_w)) = (client.split(), upstream.split());
            // Both directions to their end: a half-close (one side shut its writing) is
            // forwarded as a shutdown, and the other direction keeps flowing until it ends too.
            tokio::join!(
                pump(client_r, upstream_w, fault.clone(), rng_up, &up),
                pump(upstream_r, client_w, fault, rng_down, &down),
            );
        }
    }
}

/// Copies `from` to `to` under the link's faults, counting delivered bytes in `bytes`. Ends once
/// `to` fails, or once `from` ended and what was read from it has been delivered.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    fault: watch::Receiver<Fault>,
    mut rng: ChaCha8Rng,
    bytes: &AtomicU64,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Vec<u8>, Instant, OwnedSemaphorePermit)>();
    let budget = Arc::new(Semaphore::new(IN_FLIGHT_BYTES));
    let mut read_fault = fault.clone();
    let reader = async move {
        let mut buf = vec![0; CHUNK];
        while read_fault.wait_for(|f| !f.cut).await.is_ok() {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let due = Instant::now() + read_fault.borrow().delay(&mut rng);
            // Released once the chunk is written (CHUNK is far below the budget).
            let Ok(permit) = budget.clone().acquire_many_owned(n as u32).await else { return };
            if tx.send((buf[..n].to_vec(), due, permit)).is_err() {
                return;
            }
        }
    };
    let mut write_fault = fault;
    let writer = async move {
        while let Some((chunk, due, _permit)) = rx.recv().await {
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
            }
            if write_fault.wait_for(|f| !f.cut).await.is_err() || to.write_all(&chunk).await.is_err() {
                return;
            }
            bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        let _ = to.shutdown().await;
    };
    let mut writer = pin!(writer);
    tokio::select! {
        () = &mut writer => {}
        () = reader => writer.await,
    }
}

#[cfg(test)]
#[path = "proxy_tests.rs"]
mod tests;
