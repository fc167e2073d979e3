//! The public gRPC services: `Traceo` (ingest, profiles, cluster status) and `Membership` (join).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use client::proto::membership_server::Membership;
use client::proto::traceo_server::Traceo;
use client::proto::{
    ClusterStatusRequest, ClusterStatusResponse, DecommissionRequest, DecommissionResponse, DeployModelRequest, Event,
    EventResult, EventStatus, FeedbackRequest, FeedbackResponse, GetProfileRequest, GetProfileResponse, IngestRequest,
    IngestResponse, JoinRequest, JoinResponse, ModelActionRequest, ModelsRequest, ModelsResponse, RebalanceRequest,
    RebalanceResponse, ScoreRequest, ScoreResponse, SetOverrideRequest, SetOverrideResponse,
};
use client::LEADER_ADDR_HEADER;
use openraft::error::{CheckIsLeaderError, RaftError};
use raft::{Command, CommandResult, MetaCommand, NodeInfo, NodeState};
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::api_models;
use crate::convert::{
    event_from_proto, feedback_from_proto, override_to_proto, override_write_from_proto, profile_to_proto,
};
use crate::proposer::Proposed;
use crate::shared::{now_ms, Shared};
use crate::status::cluster_status;
use scoring::OverrideOutcome;

#[derive(Clone)]
pub struct Api {
    pub shared: Arc<Shared>,
}

fn result(status: EventStatus, shard: u32, message: impl Into<String>) -> EventResult {
    EventResult { status: status as i32, shard, message: message.into(), ..Default::default() }
}

/// `NOT_LEADER` (definitely not applied), naming the leader's id and address when known.
fn redirect(shard: u32, message: &str, leader: Option<(u64, String)>) -> EventResult {
    let mut r = result(EventStatus::NotLeader, shard, message);
    if let Some((id, addr)) = leader {
        r.leader_id = id;
        r.leader_addr = addr;
    }
    r
}

/// A `FAILED_PRECONDITION` status pointing at the leader, when known.
pub(crate) fn not_leader(what: &str, leader: Option<(u64, NodeInfo)>) -> Status {
    let mut s = Status::failed_precondition(format!("not the leader of {what}"));
    if let Some((_, node)) = leader {
        if let Ok(v) = node.addr.parse() {
            s.metadata_mut().insert(LEADER_ADDR_HEADER, v);
        }
    }
    s
}

impl Api {
    /// The shard of `user_id` and its local replica, or FAILED_PRECONDITION pointing at a node
    /// that has one.
    fn check_user_id(&self, user_id: &str) -> Result<(), Status> {
        if user_id.is_empty() || user_id.len() > self.shared.limits.max_id_bytes {
            return Err(Status::invalid_argument(format!(
                "field `user_id`: must be 1-{} bytes",
                self.shared.limits.max_id_bytes
            )));
        }
        Ok(())
    }

    /// Proposes `cmd` to `user_id`'s shard on this node (its leader) and waits, bounded by the
    /// request timeout, for the applied result. Not the leader: FAILED_PRECONDITION with the
    /// leader's address; no answer in time: UNAVAILABLE (it may still be applied).
    async fn user_write(&self, user_id: &str, cmd: Command) -> Result<(u32, CommandResult), Status> {
        let (shard, group) = self.local_shard(user_id)?;
        let timeout = Duration::from_millis(self.shared.config.request_timeout_ms);
        let what = format!("shard {shard}");
        match tokio::time::timeout(timeout, api_models::raft_write(&group.raft, &what, cmd)).await {
            Ok(result) => result.map(|r| (shard, r)),
            Err(_) => Err(Status::unavailable(format!("{what}: not committed within {timeout:?}"))),
        }
    }

    fn local_shard(&self, user_id: &str) -> Result<(u32, raft::GroupHandle), Status> {
        let shards = self.shared.multi.meta().borrow().shards();
        if shards == 0 {
            return Err(Status::unavailable("the cluster has not placed its shards yet"));
        }
        let shard = ring::shard_for(user_id, shards);
        match self.shared.multi.group(shard) {
            Some(g) => Ok((shard, g)),
            None => {
                Err(not_leader(&format!("shard {shard} (not hosted here)"), self.shared.placement_leader_hint(shard)))
            }
        }
    }

    /// Like [`Self::local_shard`], and this replica is the leader with everything committed
    /// before now applied (read index): a read here is linearizable.
    async fn linearizable_shard(&self, user_id: &str) -> Result<(u32, raft::GroupHandle), Status> {
        let (shard, group) = self.local_shard(user_id)?;
        match group.raft.ensure_linearizable().await {
            Ok(_) => Ok((shard, group)),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                Err(not_leader(&format!("shard {shard}"), f.leader_id.zip(f.leader_node)))
            }
            Err(e) => Err(Status::unavailable(format!("shard {shard}: {e}"))),
        }
    }

    /// Proposes one shard's part of a batch and answers each of its events.
    async fn ingest_shard(&self, shard: u32, events: Vec<&Event>) -> Vec<EventResult> {
        let n = events.len();
        let all = |r: EventResult| vec![r; n];
        let Some(group) = self.shared.multi.group(shard) else {
            let hint = self.shared.placement_leader_hint(shard).map(|(id, info)| (id, info.addr));
            return all(redirect(shard, "shard not hosted on this node", hint));
        };
        // Refuse up front when another node leads: definitely not applied, and cheap.
        let leader = group.raft.current_leader().await;
        if leader != Some(self.shared.multi.node_id()) {
            return all(match leader.and_then(|id| self.shared.node_info(&group, id).map(|i| (id, i.addr))) {
                Some(hint) => redirect(shard, "not the shard leader", Some(hint)),
                None => result(EventStatus::Unavailable, shard, "shard has no leader right now"),
            });
        }
        let mut domain = Vec::with_capacity(n);
        for e in &events {
            match event_from_proto(e) {
                Ok(d) => domain.push(d),
                // Validation ran on the whole request first, so this is a bug, not bad input.
                Err(field) => {
                    return all(result(EventStatus::Unavailable, shard, format!("unconvertible field {field}")))
                }
            }
        }
        let Ok(_permit) = self.shared.inflight.clone().acquire_owned().await else {
            return all(result(EventStatus::Unavailable, shard, "node is shutting down"));
        };
        let timeout = Duration::from_millis(self.shared.config.request_timeout_ms);
        let proposer = self.shared.proposer(&group);
        match tokio::time::timeout(timeout, proposer.propose(domain)).await {
            Ok(Proposed::Applied(answers)) => answers
                .into_iter()
                .map(|a| match a.duplicate {
                    false => EventResult { verdict: a.verdict, ..result(EventStatus::Applied, shard, "") },
                    true => result(EventStatus::Duplicate, shard, ""),
                })
                .collect(),
            Ok(Proposed::NotLeader { leader }) => {
                let hint = leader.map(|(id, node)| (id, node.map(|n| n.addr).unwrap_or_default()));
                all(redirect(shard, "leadership changed", hint))
            }
            Ok(Proposed::Unknown(why)) => all(result(EventStatus::Indeterminate, shard, why)),
            Err(_) => all(result(EventStatus::Indeterminate, shard, format!("not committed within {timeout:?}"))),
        }
    }
}

#[tonic::async_trait]
impl Traceo for Api {
    #[instrument(skip_all, fields(events))]
    async fn ingest(&self, request: Request<IngestRequest>) -> Result<Response<IngestResponse>, Status> {
        let started = Instant::now();
        self.shared.metrics.ingest_requests.inc();
        let events = request.into_inner().events;
        tracing::Span::current().record("events", events.len());
        client::validate::validate_batch(&events, now_ms(), &self.shared.limits)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let meta = self.shared.multi.meta().borrow().clone();
        if meta.placement.is_empty() {
            return Err(Status::unavailable("the cluster has not placed its shards yet"));
        }
        let mut by_shard: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (i, e) in events.iter().enumerate() {
            by_shard.entry(ring::shard_for(&e.user_id, meta.shards())).or_default().push(i);
        }
        let parts = by_shard.iter().map(|(shard, idx)| {
            let evs: Vec<&Event> = idx.iter().map(|&i| &events[i]).collect();
            self.ingest_shard(*shard, evs)
        });
        let answers = futures::future::join_all(parts).await;
        let mut results = vec![EventResult::default(); events.len()];
        for ((_, idx), answer) in by_shard.iter().zip(answers) {
            for (&i, r) in idx.iter().zip(answer) {
                results[i] = r;
            }
        }
        for r in &results {
            let label = EventStatus::try_from(r.status).map_or("unknown", |s| s.as_str_name());
            self.shared.metrics.ingest_events.with_label_values(&[label]).inc();
        }
        self.shared.metrics.rpc_latency.with_label_values(&["ingest"]).observe(started.elapsed().as_secs_f64());
        Ok(Response::new(IngestResponse { results, epoch: meta.epoch }))
    }

    #[instrument(skip_all, fields(user = %request.get_ref().user_id))]
    async fn get_profile(&self, request: Request<GetProfileRequest>) -> Result<Response<GetProfileResponse>, Status> {
        let started = Instant::now();
        let req = request.into_inner();
        self.check_user_id(&req.user_id)?;
        // The planted bug (a test-only build feature, see docs/JEPSEN.md): every read is served
        // from the local replica without a read index, as if `stale_ok` were always set.
        let stale_ok = req.stale_ok || cfg!(feature = "planted-stale-read");
        let shard =
            if stale_ok { self.local_shard(&req.user_id)?.0 } else { self.linearizable_shard(&req.user_id).await?.0 };
        let profile = raft::state_machine::read_profile(self.shared.multi.engine(), shard, &req.user_id)
            .map_err(|e| Status::internal(format!("reading profile: {e}")))?;
        self.shared.metrics.rpc_latency.with_label_values(&["get_profile"]).observe(started.elapsed().as_secs_f64());
        Ok(Response::new(GetProfileResponse {
            found: profile.is_some(),
            profile: profile.as_ref().map(profile_to_proto),
            shard,
            served_by: self.shared.multi.node_id(),
        }))
    }

    async fn cluster_status(
        &self,
        _request: Request<ClusterStatusRequest>,
    ) -> Result<Response<ClusterStatusResponse>, Status> {
        Ok(Response::new(cluster_status(&self.shared).await))
    }

    #[instrument(skip_all)]
    async fn score(&self, request: Request<ScoreRequest>) -> Result<Response<ScoreResponse>, Status> {
        let started = Instant::now();
        let req = request.into_inner();
        let Some(event) = req.event else {
            return Err(Status::invalid_argument("field `event`: required"));
        };
        client::validate::validate_event(&event, 0, now_ms(), &self.shared.limits)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let ev = event_from_proto(&event).map_err(|f| Status::invalid_argument(format!("field `{f}`: invalid")))?;
        let shard =
            if req.stale_ok { self.local_shard(&ev.user_id)?.0 } else { self.linearizable_shard(&ev.user_id).await?.0 };
        let profile = raft::state_machine::read_profile(self.shared.multi.engine(), shard, &ev.user_id)
            .map_err(|e| Status::internal(format!("reading profile: {e}")))?
            .unwrap_or_else(|| scoring::Profile::new(&ev.user_id));
        let failed = self.shared.multi.sources().lock().expect("source window").failed_users(&ev);
        let observed = scoring::features::Observation::observe(&profile, &ev, failed);
        let verdict = self.shared.scoring.verdicts(vec![Some(observed)]).await.pop().flatten();
        self.shared.metrics.rpc_latency.with_label_values(&["score"]).observe(started.elapsed().as_secs_f64());
        Ok(Response::new(ScoreResponse { verdict, shard, served_by: self.shared.multi.node_id() }))
    }

    #[instrument(skip_all, fields(user = %request.get_ref().user_id))]
    async fn feedback(&self, request: Request<FeedbackRequest>) -> Result<Response<FeedbackResponse>, Status> {
        let req = request.into_inner();
        self.check_user_id(&req.user_id)?;
        let feedback = feedback_from_proto(req.kind, now_ms()).map_err(Status::invalid_argument)?;
        let cmd = Command::Feedback { user_id: req.user_id.clone(), feedback };
        match self.user_write(&req.user_id, cmd).await? {
            (shard, CommandResult::FeedbackApplied) => {
                tracing::info!(user = %req.user_id, shard, "feedback recorded");
                Ok(Response::new(FeedbackResponse { shard, served_by: self.shared.multi.node_id() }))
            }
            (_, other) => Err(Status::internal(format!("unexpected result {other:?}"))),
        }
    }

    #[instrument(skip_all, fields(user = %request.get_ref().user_id))]
    async fn set_override(
        &self,
        request: Request<SetOverrideRequest>,
    ) -> Result<Response<SetOverrideResponse>, Status> {
        let req = request.into_inner();
        self.check_user_id(&req.user_id)?;
        let user_id = req.user_id.clone();
        let write = override_write_from_proto(req).map_err(Status::invalid_argument)?;
        let served_by = self.shared.multi.node_id();
        match self.user_write(&user_id, Command::SetOverride { user_id: user_id.clone(), write }).await? {
            (shard, CommandResult::Override(OverrideOutcome::Applied)) => {
                Ok(Response::new(SetOverrideResponse { applied: true, current: None, shard, served_by }))
            }
            (shard, CommandResult::Override(OverrideOutcome::Mismatch { current })) => {
                let current = current.as_ref().map(override_to_proto);
                Ok(Response::new(SetOverrideResponse { applied: false, current, shard, served_by }))
            }
            (_, other) => Err(Status::internal(format!("unexpected result {other:?}"))),
        }
    }

    async fn deploy_model(&self, request: Request<DeployModelRequest>) -> Result<Response<ModelsResponse>, Status> {
        api_models::deploy(&self.shared, request.into_inner()).await.map(Response::new)
    }

    async fn model_action(&self, request: Request<ModelActionRequest>) -> Result<Response<ModelsResponse>, Status> {
        api_models::action(&self.shared, request.into_inner()).await.map(Response::new)
    }

    async fn models(&self, _request: Request<ModelsRequest>) -> Result<Response<ModelsResponse>, Status> {
        Ok(Response::new(api_models::models(&self.shared)))
    }

    #[instrument(skip_all, fields(node = request.get_ref().node_id))]
    async fn decommission(
        &self,
        request: Request<DecommissionRequest>,
    ) -> Result<Response<DecommissionResponse>, Status> {
        let id = request.into_inner().node_id;
        let meta = self.shared.multi.meta().borrow().clone();
        if !meta.nodes.contains_key(&id) {
            // INVALID_ARGUMENT: final, clients do not retry it.
            return Err(Status::invalid_argument(format!("field `node_id`: no node {id} in this cluster")));
        }
        let state = meta.state(id);
        if matches!(state, NodeState::Draining | NodeState::Removed) {
            return Ok(Response::new(DecommissionResponse { state: state.name().into() }));
        }
        let rf = meta.cluster.as_ref().map_or(0, |c| c.replication_factor as usize);
        let others = meta.active_nodes().filter(|(n, _)| **n != id).count();
        if others < rf {
            return Err(Status::invalid_argument(format!(
                "field `node_id`: node {id} cannot leave: {others} other active nodes would remain for a replication \
                 factor of {rf}"
            )));
        }
        match api_models::meta_write(&self.shared, MetaCommand::SetNodeState { id, state: NodeState::Draining }).await?
        {
            CommandResult::Recorded => Ok(Response::new(DecommissionResponse { state: "draining".into() })),
            CommandResult::Rejected(why) => Err(Status::invalid_argument(why)),
            other => Err(Status::internal(format!("unexpected result {other:?}"))),
        }
    }

    async fn rebalance(&self, _request: Request<RebalanceRequest>) -> Result<Response<RebalanceResponse>, Status> {
        let meta = self.shared.multi.meta().borrow().clone();
        Ok(Response::new(RebalanceResponse {
            epoch: meta.epoch,
            moving: crate::status::moving(&meta),
            planned: self.shared.planned(&meta).to_vec(),
        }))
    }
}

#[tonic::async_trait]
impl Membership for Api {
    #[instrument(skip_all, fields(addr = %request.get_ref().addr))]
    async fn join(&self, request: Request<JoinRequest>) -> Result<Response<JoinResponse>, Status> {
        let req = request.into_inner();
        if req.addr.is_empty() || !req.addr.contains(':') {
            return Err(Status::invalid_argument("field `addr`: must be host:port"));
        }
        let meta_raft = self.shared.multi.meta_raft();
        let info = NodeInfo {
            addr: req.addr,
            admin_addr: req.admin_addr,
            zone: req.zone,
            region: req.region,
            capacity: req.capacity,
        };
        let id =
            match api_models::meta_write(&self.shared, MetaCommand::AddNode { id: None, info: info.clone() }).await? {
                CommandResult::NodeAdded { id } => id,
                other => return Err(Status::internal(format!("unexpected result {other:?}"))),
            };
        // A learner of the meta group first; the placement driver promotes it to voter once it
        // has caught up. Not blocking: the new node starts serving only after this returns.
        let membership = meta_raft.metrics().borrow().membership_config.clone();
        if !membership.membership().nodes().any(|(nid, _)| *nid == id) {
            if let Err(e) = meta_raft.add_learner(id, info, false).await {
                return Err(Status::unavailable(format!("adding node {id} to the meta group: {e}")));
            }
        }
        let cluster_id =
            self.shared.multi.meta().borrow().cluster.as_ref().map(|c| c.cluster_id.clone()).unwrap_or_default();
        tracing::info!(node = id, "node joined");
        Ok(Response::new(JoinResponse { node_id: id, cluster_id }))
    }
}
