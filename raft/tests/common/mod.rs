//! Three nodes' Raft groups in one process, on real RocksDB and real gRPC over loopback, with
//! injected network faults: the harness of the in-process fault tests.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use raft::net_faults::NetFaults;
use raft::{MultiRaft, NodeId, NodeInfo, RaftOptions};
use storage::{Engine, EngineOptions};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

/// The one shard group every node hosts.
pub const SHARD: u32 = 0;

pub struct Cluster {
    pub nodes: Vec<(NodeId, Arc<MultiRaft>, Arc<Engine>)>,
    _dirs: Vec<tempfile::TempDir>,
}

/// Nodes 1, 2 and 3 with `opts` (timings) and `faults` on every outgoing message; node 1
/// initializes the shard group with all three as voters.
pub async fn start(opts: RaftOptions, faults: Arc<NetFaults>) -> Cluster {
    let opts = RaftOptions { net_faults: Some(faults), ..opts };
    let mut nodes = Vec::new();
    let mut dirs = Vec::new();
    let mut members = BTreeMap::new();
    for id in 1..=3u64 {
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(Engine::open(dir.path(), &EngineOptions::default()).unwrap());
        let multi = MultiRaft::start(id, engine.clone(), &opts).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let service = raft::peer_service::PeerService::new(multi.clone()).into_server();
        tokio::spawn(
            tonic::transport::Server::builder().add_service(service).serve_with_incoming(TcpIncoming::from(listener)),
        );
        multi.ensure_shard(SHARD).await.unwrap();
        members.insert(id, NodeInfo { addr, ..Default::default() });
        nodes.push((id, multi, engine));
        dirs.push(dir);
    }
    nodes[0].1.group(SHARD).unwrap().raft.initialize(members).await.unwrap();
    Cluster { nodes, _dirs: dirs }
}

impl Cluster {
    /// The raft of a node that believes it leads, else node `pick`'s (which will redirect).
    pub fn leader_or(&self, pick: usize) -> raft::Raft {
        self.leader().map_or_else(|| self.raft(pick), |i| self.raft(i))
    }

    /// The index in `nodes` of a node that believes it leads.
    pub fn leader(&self) -> Option<usize> {
        self.nodes
            .iter()
            .position(|(id, multi, _)| multi.group(SHARD).unwrap().raft.metrics().borrow().current_leader == Some(*id))
    }

    /// Waits up to `within` for a leader; its index in `nodes`.
    pub async fn await_leader(&self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            if let Some(i) = self.leader() {
                return i;
            }
            assert!(Instant::now() < deadline, "no leader within {within:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn raft(&self, index: usize) -> raft::Raft {
        self.nodes[index % self.nodes.len()].1.group(SHARD).unwrap().raft
    }

    pub async fn shutdown(&self) {
        for (_, multi, _) in &self.nodes {
            multi.shutdown().await;
        }
    }
}
