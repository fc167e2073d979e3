//! [`Node::start`]: everything a `traceo node` process runs, startable in-process by tests.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use client::proto::membership_server::MembershipServer;
use client::proto::traceo_server::TraceoServer;
use raft::{MultiRaft, NodeInfo, RaftOptions};
use storage::{Engine, EngineOptions};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;

use crate::api::Api;
use crate::bootstrap;
use crate::config::NodeConfig;
use crate::control;
use crate::metrics::Metrics;
use crate::scoring_service::ScoringService;
use crate::shared::Shared;

/// A running node. Dropping it does not stop it; call [`Node::shutdown`].
pub struct Node {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    engine: Arc<Engine>,
}

impl Node {
    /// Validates `config`, opens storage, finds or joins the cluster, and serves.
    pub async fn start(config: NodeConfig) -> anyhow::Result<Node> {
        config.validate()?;
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data_dir {}", config.data_dir.display()))?;
        let engine_opts = EngineOptions {
            cache_bytes: config.cache_mb << 20,
            memtable_bytes: config.memtable_mb << 20,
            ..EngineOptions::default()
        };
        let engine = Arc::new(
            Engine::open(&config.data_dir.join("db"), &engine_opts)
                .with_context(|| format!("opening the database in {}", config.data_dir.display()))?,
        );
        let grpc_listener = TcpListener::bind(&config.listen_addr)
            .await
            .with_context(|| format!("listen_addr {}: cannot listen", config.listen_addr))?;
        let admin_listener = TcpListener::bind(&config.admin_addr)
            .await
            .with_context(|| format!("admin_addr {}: cannot listen", config.admin_addr))?;
        let info = NodeInfo {
            addr: config.advertise().to_string(),
            admin_addr: config.admin_addr.clone(),
            zone: config.zone.clone(),
            region: config.region.clone(),
            capacity: config.capacity,
        };

        let stored = bootstrap::stored_node_id(&engine)?;
        let founding = stored.is_none() && config.join.is_empty();
        let node_id = match stored {
            Some(id) => id,
            None if founding => bootstrap::FOUNDER_ID,
            None => bootstrap::join(&config.join, &info, Duration::from_secs(60)).await?,
        };
        tracing::info!(node_id, addr = %info.addr, "starting node");

        let raft_opts = RaftOptions {
            heartbeat_ms: config.heartbeat_ms,
            election_timeout_min_ms: config.election_timeout_min_ms,
            election_timeout_max_ms: config.election_timeout_max_ms,
            snapshot_after_entries: config.snapshot_after_entries,
            keep_entries_after_snapshot: config.keep_entries_after_snapshot,
            profile_cache_entries: config.profile_cache_entries,
            dial_via: config.dial_via.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            ..RaftOptions::default()
        };
        let multi = MultiRaft::start(node_id, engine.clone(), &raft_opts).await?;
        if multi.meta().borrow().state(node_id) == raft::NodeState::Removed {
            multi.shutdown().await;
            anyhow::bail!(
                "node {node_id} was decommissioned and removed from its cluster; start it with an empty \
                 data_dir to join again as a new node"
            );
        }
        multi.pool().moves.set_rate(config.move_rate_mb << 20);
        let shared = Arc::new(Shared {
            multi: multi.clone(),
            limits: client::Limits { max_batch_events: config.max_batch_events, ..client::Limits::default() },
            inflight: Arc::new(Semaphore::new(config.max_inflight_proposals)),
            proposers: Default::default(),
            scoring: Arc::new(ScoringService::new(&config.scoring)?),
            plan: Default::default(),
            metrics: Metrics::new(),
            info: info.clone(),
            config: config.clone(),
        });

        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(serve_grpc(shared.clone(), grpc_listener, stop_rx.clone())));
        tasks.push(tokio::spawn(serve_admin(shared.clone(), admin_listener, stop_rx.clone())));

        if founding {
            bootstrap::found(&multi, &config, &info).await?;
        }
        if stored.is_none() {
            bootstrap::store_node_id(&engine, node_id)?;
        }
        tasks.extend(control::spawn_all(&shared, &stop_rx));
        Ok(Node { shared, stop, tasks, engine })
    }

    pub fn node_id(&self) -> raft::NodeId {
        self.shared.multi.node_id()
    }

    pub fn multi(&self) -> &Arc<MultiRaft> {
        &self.shared.multi
    }

    /// Resolves once the cluster has removed this node (decommissioned and drained).
    pub async fn removed(&self) {
        let me = self.node_id();
        let mut rx = self.shared.multi.meta();
        let _ = rx.wait_for(|m| m.state(me) == raft::NodeState::Removed).await;
    }

    /// Stops serving, stops every Raft group and makes every write durable.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        tracing::info!(node_id = self.node_id(), "shutting down");
        let _ = self.stop.send(true);
        // Servers drain in-flight requests; peers' idle keep-alive connections would hold a
        // graceful drain open forever, so each task gets a short grace period, then is aborted.
        for t in self.tasks {
            let abort = t.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), t).await.is_err() {
                abort.abort();
            }
        }
        self.shared.multi.shutdown().await;
        self.engine.sync_wal()?;
        Ok(())
    }
}

async fn serve_grpc(shared: Arc<Shared>, listener: TcpListener, mut stop: watch::Receiver<bool>) {
    let api = Api { shared: shared.clone() };
    let max = shared.config.max_request_mb << 20;
    let result = tonic::transport::Server::builder()
        .concurrency_limit_per_connection(256)
        .tcp_nodelay(true)
        .add_service(TraceoServer::new(api.clone()).max_decoding_message_size(max))
        .add_service(MembershipServer::new(api))
        .add_service(raft::peer_service::PeerService::new(shared.multi.clone()).into_server())
        // The server's own `tcp_nodelay` applies only to listeners it binds itself: set it on the
        // incoming stream, or Nagle + delayed ACKs add ~40 ms to every reply.
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), async move {
            let _ = stop.changed().await;
        })
        .await;
    if let Err(e) = result {
        tracing::error!("gRPC server: {e}");
    }
}

async fn serve_admin(shared: Arc<Shared>, listener: TcpListener, mut stop: watch::Receiver<bool>) {
    let app = crate::admin::router(shared);
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.changed().await;
        })
        .await;
    if let Err(e) = result {
        tracing::error!("admin server: {e}");
    }
}
