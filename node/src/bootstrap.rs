//! A node's identity: found a new cluster, join an existing one, or resume with the id stored in
//! the data directory.

use std::time::{Duration, Instant};

use client::proto::membership_client::MembershipClient;
use client::proto::JoinRequest;
use client::LEADER_ADDR_HEADER;
use raft::{Command, MetaCommand, MultiRaft, NodeId, NodeInfo};
use storage::{decode, encode, Batch, Cf, Engine};

use crate::config::NodeConfig;

const KEY_NODE_ID: &[u8] = b"\0\0\0\0node_id";

/// The id of the founding node of every cluster.
pub const FOUNDER_ID: NodeId = 1;

pub fn stored_node_id(engine: &Engine) -> anyhow::Result<Option<NodeId>> {
    Ok(match engine.get(Cf::Node, KEY_NODE_ID)? {
        Some(b) => Some(decode(&b)?),
        None => None,
    })
}

pub fn store_node_id(engine: &Engine, id: NodeId) -> anyhow::Result<()> {
    let mut b = Batch::new();
    b.put(Cf::Node, KEY_NODE_ID.to_vec(), encode(&id));
    engine.write(b, true)?;
    Ok(())
}

/// Asks the cluster at `seeds` to register this node; follows leader hints; retries for `patience`.
pub async fn join(seeds: &[String], info: &NodeInfo, patience: Duration) -> anyhow::Result<NodeId> {
    let deadline = Instant::now() + patience;
    let mut targets: Vec<String> = seeds.to_vec();
    let mut last_err = String::new();
    let mut round = 0u32;
    while Instant::now() < deadline {
        let addr = targets[round as usize % targets.len()].clone();
        round += 1;
        let req = JoinRequest {
            addr: info.addr.clone(),
            admin_addr: info.admin_addr.clone(),
            zone: info.zone.clone(),
            region: info.region.clone(),
            capacity: info.capacity,
        };
        let attempt = async {
            let mut c = MembershipClient::connect(format!("http://{addr}")).await?;
            Ok::<_, anyhow::Error>(c.join(req).await)
        };
        match tokio::time::timeout(Duration::from_secs(5), attempt).await {
            Ok(Ok(Ok(resp))) => {
                let r = resp.into_inner();
                tracing::info!(node_id = r.node_id, cluster = %r.cluster_id, via = %addr, "joined the cluster");
                return Ok(r.node_id);
            }
            Ok(Ok(Err(status))) => {
                if let Some(l) = status.metadata().get(LEADER_ADDR_HEADER).and_then(|v| v.to_str().ok()) {
                    if !targets.iter().any(|t| t == l) {
                        targets.push(l.to_string());
                    }
                    // Try the leader next.
                    round = targets.iter().position(|t| t == l).unwrap_or(0) as u32;
                    continue;
                }
                last_err = format!("{addr}: {}", status.message());
            }
            Ok(Err(e)) => last_err = format!("{addr}: {e}"),
            Err(_) => last_err = format!("{addr}: timed out"),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    anyhow::bail!("could not join via {seeds:?} within {patience:?}; last error: {last_err}")
}

/// Creates the meta group with this node as its only voter and records the cluster's shape.
/// Safe to repeat after a crash: each step is idempotent.
pub async fn found(multi: &MultiRaft, config: &NodeConfig, info: &NodeInfo) -> anyhow::Result<()> {
    let raft = multi.meta_raft();
    if !raft.is_initialized().await? {
        let members = std::collections::BTreeMap::from([(FOUNDER_ID, info.clone())]);
        raft.initialize(members).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while raft.current_leader().await != Some(FOUNDER_ID) {
        anyhow::ensure!(Instant::now() < deadline, "the founding node did not become meta leader within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cluster_id = format!("traceo-{:016x}", rand::random::<u64>());
    let init =
        MetaCommand::InitCluster { cluster_id, shards: config.shards, replication_factor: config.replication_factor };
    raft.client_write(Command::Meta(init)).await?;
    raft.client_write(Command::Meta(MetaCommand::AddNode { id: Some(FOUNDER_ID), info: info.clone() })).await?;
    tracing::info!(shards = config.shards, rf = config.replication_factor, "founded a new cluster");
    Ok(())
}
