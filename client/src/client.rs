//! [`Client`]: routing, per-shard parallel ingest, retries under a deadline, reads.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::future::join_all;
use rand::Rng;
use tonic::{Request, Status};

use crate::channels::Channels;
use crate::contract;
use crate::next_try::{next_try, NextTry};
use crate::outcome::Outcome;
use crate::proto::traceo_client::TraceoClient;
use crate::proto::{
    feedback_request, AnalystOverride, ClusterStatusRequest, ClusterStatusResponse, DecommissionRequest,
    DeployModelRequest, Event, FeedbackRequest, FeedbackResponse, GetProfileRequest, IngestRequest, ModelAction,
    ModelActionRequest, ModelFiles, ModelsRequest, ModelsResponse, Profile, RebalanceRequest, RebalanceResponse,
    ScoreRequest, ScoreResponse, SetOverrideRequest, SetOverrideResponse,
};
use crate::routing::Routing;
use crate::settle::{Round, Settlement};
use crate::validate::{validate_batch, InvalidField, Limits};

/// How hard the client tries.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Total time one call may take, retries included.
    pub deadline: Duration,
    /// Timeout of each RPC attempt.
    pub rpc_timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub limits: Limits,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            deadline: Duration::from_secs(10),
            rpc_timeout: Duration::from_secs(3),
            backoff_min: Duration::from_millis(20),
            backoff_max: Duration::from_millis(500),
            limits: Limits::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The batch breaks a rule; nothing of it was sent.
    #[error("invalid input: {0}")]
    InvalidArgument(#[from] InvalidField),
    /// A node rejected the request as invalid (its rules are stricter than this client's). Not
    /// for `ingest`, which reports the refused events' outcomes instead.
    #[error("rejected by the server: {0}")]
    Rejected(String),
    #[error("no node answered: {0}")]
    Unavailable(String),
    #[error("deadline exceeded: {0}")]
    DeadlineExceeded(String),
}

/// A handle on a cluster. Cheap to clone; clones share routing and connections.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    seeds: Vec<String>,
    opts: ClientOptions,
    routing: RwLock<Routing>,
    channels: Channels,
    last_refresh: tokio::sync::Mutex<Instant>,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Client {
    /// Connects to any of `seeds` (`host:port`) and loads the routing table.
    pub async fn connect(seeds: Vec<String>, opts: ClientOptions) -> Result<Client, ClientError> {
        if seeds.is_empty() {
            return Err(ClientError::Unavailable("no seed addresses given".into()));
        }
        let client = Client {
            inner: Arc::new(Inner {
                seeds,
                opts,
                routing: RwLock::new(Routing::default()),
                channels: Channels::default(),
                last_refresh: tokio::sync::Mutex::new(Instant::now() - Duration::from_secs(60)),
            }),
        };
        client.refresh_routing().await?;
        Ok(client)
    }

    pub fn options(&self) -> &ClientOptions {
        &self.inner.opts
    }

    fn grpc(&self, addr: &str) -> Result<TraceoClient<tonic::transport::Channel>, Status> {
        // An address that does not even make a channel: nothing can have been sent.
        let ch = self.inner.channels.get(addr).map_err(|e| Status::failed_precondition(e.to_string()))?;
        Ok(TraceoClient::new(ch).max_decoding_message_size(16 << 20))
    }

    fn request<T>(&self, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        r.set_timeout(self.inner.opts.rpc_timeout);
        r
    }

    /// Every address worth asking: seeds and every node in the routing table.
    fn known_addrs(&self) -> Vec<String> {
        let routing = self.inner.routing.read().expect("routing lock");
        let mut set: Vec<String> = self.inner.seeds.clone();
        for a in routing.addrs.values() {
            if !set.contains(a) {
                set.push(a.clone());
            }
        }
        set
    }

    /// Asks every known node for its status and rebuilds the routing table from the answers.
    pub async fn refresh_routing(&self) -> Result<(), ClientError> {
        let answers = self.cluster_status_all().await;
        let ok: Vec<ClusterStatusResponse> = answers.iter().filter_map(|(_, r)| r.as_ref().ok().cloned()).collect();
        *self.inner.last_refresh.lock().await = Instant::now();
        match Routing::merge(&ok) {
            Some(r) => {
                *self.inner.routing.write().expect("routing lock") = r;
                Ok(())
            }
            None => {
                let why: Vec<String> = answers
                    .iter()
                    .map(|(a, r)| match r {
                        Ok(_) => format!("{a}: cluster not placed yet"),
                        Err(e) => format!("{a}: {}", e.message()),
                    })
                    .collect();
                Err(ClientError::Unavailable(why.join("; ")))
            }
        }
    }

    /// Refreshes at most every 200 ms however many callers ask.
    async fn maybe_refresh(&self) {
        let due = self.inner.last_refresh.lock().await.elapsed() > Duration::from_millis(200);
        if due {
            let _ = self.refresh_routing().await;
        }
    }

    /// `ClusterStatus` from every known node, in parallel.
    pub async fn cluster_status_all(&self) -> Vec<(String, Result<ClusterStatusResponse, Status>)> {
        self.on_every_node(ClusterStatusRequest {}, |mut c, req| async move { c.cluster_status(req).await }).await
    }

    /// One request to every known node, in parallel; each node's answer by address.
    async fn on_every_node<Req, Resp, F, Fut>(&self, req: Req, call: F) -> Vec<(String, Result<Resp, Status>)>
    where
        Req: Clone,
        F: Fn(TraceoClient<tonic::transport::Channel>, tonic::Request<Req>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        let addrs = self.known_addrs();
        let calls = addrs.iter().map(|a| {
            let (req, call) = (req.clone(), &call);
            async move {
                let r = match self.grpc(a) {
                    Ok(c) => call(c, self.request(req)).await.map(|r| r.into_inner()),
                    Err(e) => Err(e),
                };
                (a.clone(), r)
            }
        });
        join_all(calls).await
    }

    /// Number of shards and the epoch of the cached routing table.
    pub fn routing_summary(&self) -> (u32, u64) {
        let r = self.inner.routing.read().expect("routing lock");
        (r.shards, r.epoch)
    }

    fn shard_of(&self, user_id: &str) -> u32 {
        self.inner.routing.read().expect("routing lock").shard_of(user_id)
    }

    async fn backoff(&self, attempt: usize, deadline: Instant) {
        let o = &self.inner.opts;
        let exp = o.backoff_min.saturating_mul(1u32 << attempt.min(10)).min(o.backoff_max);
        let jittered = exp.mul_f64(rand::thread_rng().gen_range(0.5..1.0));
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(jittered.min(left)).await;
    }

    /// Ingests `events`, retrying until each has a definite outcome or the deadline passes.
    /// An invalid batch is rejected whole before anything is sent. A node that refuses its part
    /// as invalid all the same (its rules or clock differ from this client's) settles that part
    /// alone: `Failed`, or `Indeterminate` where an earlier attempt may have applied an event;
    /// the other parts' outcomes are kept.
    pub async fn ingest(&self, events: &[Event]) -> Result<Vec<Outcome>, ClientError> {
        validate_batch(events, now_ms(), &self.inner.opts.limits)?;
        let deadline = Instant::now() + self.inner.opts.deadline;
        let mut settlement = Settlement::new(events.len());
        let mut pending: Vec<usize> = (0..events.len()).collect();
        let mut attempt = 0usize;
        while !pending.is_empty() {
            // One request per target node, carrying every shard that node leads (or is tried
            // for): the node splits it by shard and proposes each part to its Raft group.
            let mut by_target: BTreeMap<Option<String>, Vec<usize>> = BTreeMap::new();
            {
                let routing = self.inner.routing.read().expect("routing lock");
                for &i in &pending {
                    let shard = routing.shard_of(&events[i].user_id);
                    by_target.entry(routing.target(shard, attempt)).or_default().push(i);
                }
            }
            let sends = by_target.into_iter().map(|(target, idx)| {
                let batch: Vec<Event> = idx.iter().map(|&i| events[i].clone()).collect();
                async move {
                    let result = match target {
                        // Nothing is sent: a definite failure (FAILED_PRECONDITION), retried later.
                        None => Err(Status::failed_precondition("no known replica of the shard")),
                        Some(addr) => match self.grpc(&addr) {
                            Ok(mut c) => {
                                c.ingest(self.request(IngestRequest { events: batch })).await.map(|r| r.into_inner())
                            }
                            Err(e) => Err(e),
                        },
                    };
                    (idx, result)
                }
            });
            let mut round = Round::default();
            for (idx, result) in join_all(sends).await {
                match result {
                    Ok(resp) => {
                        let mut routing = self.inner.routing.write().expect("routing lock");
                        settlement.apply_response(&idx, &resp, &mut routing, &mut round);
                    }
                    Err(s) if contract::is_final(&s) => settlement.apply_rejection(&idx, &s),
                    Err(s) => {
                        let mut routing = self.inner.routing.write().expect("routing lock");
                        settlement.apply_error(&idx, &s, events, &mut routing, &mut round);
                    }
                }
            }
            pending = round.retry;
            if pending.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                settlement.settle_at_deadline(&pending);
                break;
            }
            if round.stale {
                self.maybe_refresh().await;
            }
            self.backoff(attempt, deadline).await;
            attempt += 1;
        }
        Ok(settlement.into_outcomes())
    }

    /// Reads a user's profile: linearizable on the shard leader, or from any replica with
    /// `stale_ok`. `None` if the user has no events.
    pub async fn get_profile(&self, user_id: &str, stale_ok: bool) -> Result<Option<Profile>, ClientError> {
        let req = GetProfileRequest { user_id: user_id.to_string(), stale_ok };
        let what = format!("reading profile of {user_id}");
        let r = self.on_shard(self.shard_of(user_id), &what, |mut c, req| async move { c.get_profile(req).await }, req);
        let r = r.await?;
        Ok(if r.found { r.profile } else { None })
    }

    /// Scores `event` against its user's current profile without recording it.
    pub async fn score(&self, event: &Event) -> Result<ScoreResponse, ClientError> {
        crate::validate::validate_event(event, 0, now_ms(), &self.inner.opts.limits)?;
        let req = ScoreRequest { event: Some(event.clone()), stale_ok: false };
        let what = format!("scoring event {}", event.event_id);
        self.on_shard(self.shard_of(&event.user_id), &what, |mut c, req| async move { c.score(req).await }, req).await
    }

    /// One request about `shard`, sent to its leader (following `traceo-leader-addr` hints) or,
    /// failing that, to its other replicas, with backoff until the deadline.
    async fn on_shard<Req, Resp, F, Fut>(&self, shard: u32, what: &str, call: F, req: Req) -> Result<Resp, ClientError>
    where
        Req: Clone,
        F: Fn(TraceoClient<tonic::transport::Channel>, tonic::Request<Req>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        let target = |attempt| self.inner.routing.read().expect("routing lock").target(shard, attempt);
        // Remember a hinted leader for every later call on this shard, not just the next try.
        let learn = |leader: &str| self.inner.routing.write().expect("routing lock").set_leader_addr(shard, leader);
        self.leader_routed(&format!("{what} (shard {shard})"), target, learn, call, req).await
    }

    /// One request for the meta group's leader: any known node first, then wherever it points.
    async fn on_meta<Req, Resp, F, Fut>(&self, what: &str, call: F, req: Req) -> Result<Resp, ClientError>
    where
        Req: Clone,
        F: Fn(TraceoClient<tonic::transport::Channel>, tonic::Request<Req>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        let addrs = self.known_addrs();
        let target = |attempt: usize| addrs.get(attempt % addrs.len().max(1)).cloned();
        self.leader_routed(what, target, |_| {}, call, req).await
    }

    /// Sends `req` to `target(attempt)` or to the leader the last answer named, with backoff,
    /// until an answer, an INVALID_ARGUMENT (final) or the deadline.
    async fn leader_routed<Req, Resp, F, Fut>(
        &self,
        what: &str,
        target: impl Fn(usize) -> Option<String>,
        learn_leader: impl Fn(&str),
        call: F,
        req: Req,
    ) -> Result<Resp, ClientError>
    where
        Req: Clone,
        F: Fn(TraceoClient<tonic::transport::Channel>, tonic::Request<Req>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        let deadline = Instant::now() + self.inner.opts.deadline;
        let mut hinted: Option<String> = None;
        let mut tried = HashSet::new();
        let mut last = String::new();
        for attempt in 0.. {
            let Some(addr) = hinted.take().or_else(|| target(attempt)) else {
                return Err(ClientError::Unavailable(format!("{what}: no known node to ask")));
            };
            tried.insert(addr.clone());
            let result = match self.grpc(&addr) {
                Ok(c) => call(c, self.request(req.clone())).await,
                Err(e) => Err(e),
            };
            let s = match result {
                Ok(r) => return Ok(r.into_inner()),
                Err(s) => s,
            };
            match next_try(&s) {
                NextTry::GiveUp => return Err(ClientError::Rejected(s.message().into())),
                NextTry::Leader(leader) => {
                    learn_leader(leader);
                    hinted = Some(leader.to_string());
                }
                NextTry::Refresh => self.maybe_refresh().await,
            }
            last = format!("{addr}: {:?}: {}", s.code(), s.message());
            if Instant::now() >= deadline {
                break;
            }
            if hinted.is_none() {
                self.backoff(attempt, deadline).await;
            }
        }
        Err(ClientError::DeadlineExceeded(format!("{what}: tried {tried:?}; last error {last}")))
    }

    /// Records an analyst's feedback about `user_id` in the user's profile (on the shard leader).
    pub async fn feedback(&self, user_id: &str, kind: feedback_request::Kind) -> Result<FeedbackResponse, ClientError> {
        let req = FeedbackRequest { user_id: user_id.to_string(), kind: Some(kind) };
        let what = format!("feedback for {user_id}");
        self.on_shard(self.shard_of(user_id), &what, |mut c, req| async move { c.feedback(req).await }, req).await
    }

    /// Writes `user_id`'s override register (`value: None` clears it). With `expected:
    /// Some(e)` it is a compare-and-set: written only if the register holds `e` (`Some(None)`:
    /// only if no override is set); otherwise `applied` is false and `current` says what it holds.
    ///
    /// Retried (on the shard leader) until `deadline` with one random write id, so the write
    /// takes effect at most once even when an attempt's answer is lost. An error after a timed-out
    /// attempt is indeterminate: the write may or may not have been applied.
    pub async fn set_override(
        &self,
        user_id: &str,
        value: Option<AnalystOverride>,
        expected: Option<Option<AnalystOverride>>,
    ) -> Result<SetOverrideResponse, ClientError> {
        let write_id = format!("{:032x}", rand::thread_rng().gen::<u128>());
        let req = SetOverrideRequest {
            user_id: user_id.to_string(),
            write_id,
            value,
            compare: expected.is_some(),
            expected: expected.flatten(),
        };
        let what = format!("override for {user_id}");
        self.on_shard(self.shard_of(user_id), &what, |mut c, req| async move { c.set_override(req).await }, req).await
    }

    /// Deploys a model bundle to the cluster (live, or as the shadow candidate). Answers once the
    /// meta group committed it and the answering node runs it; the others follow within moments.
    pub async fn deploy_model(&self, files: ModelFiles, shadow: bool) -> Result<ModelsResponse, ClientError> {
        let req = DeployModelRequest { files: Some(files), shadow };
        self.on_meta(
            "deploying a model",
            |c, req| async move { c.max_encoding_message_size(64 << 20).deploy_model(req).await },
            req,
        )
        .await
    }

    /// Promotes the shadow model, clears it, or rolls the live model back.
    pub async fn model_action(&self, action: ModelAction) -> Result<ModelsResponse, ClientError> {
        let req = ModelActionRequest { action: action as i32 };
        self.on_meta(action.as_str_name(), |mut c, req| async move { c.model_action(req).await }, req).await
    }

    /// Each known node's view of the model registry and what it runs.
    pub async fn models_all(&self) -> Vec<(String, Result<ModelsResponse, Status>)> {
        self.on_every_node(ModelsRequest {}, |mut c, req| async move { c.models(req).await }).await
    }

    /// Starts draining node `node_id` (answered by the meta leader): its replicas move away, then
    /// it leaves the cluster and its process exits. Returns the node's state (`draining`, or
    /// `removed` when it is already gone).
    pub async fn decommission(&self, node_id: u64) -> Result<String, ClientError> {
        let req = DecommissionRequest { node_id };
        let what = format!("decommissioning node {node_id}");
        self.on_meta(&what, |mut c, req| async move { c.decommission(req).await }, req).await.map(|r| r.state)
    }

    /// The placement driver's plan (moves in flight and still to start), as the newest node
    /// answering sees it.
    pub async fn rebalance_plan(&self) -> Result<RebalanceResponse, ClientError> {
        let answers = self.on_every_node(RebalanceRequest {}, |mut c, req| async move { c.rebalance(req).await }).await;
        let mut errors = Vec::new();
        let mut best: Option<RebalanceResponse> = None;
        for (addr, r) in answers {
            match r {
                Ok(r) if best.as_ref().is_none_or(|b| r.epoch > b.epoch) => best = Some(r),
                Ok(_) => {}
                Err(e) => errors.push(format!("{addr}: {}", e.message())),
            }
        }
        best.ok_or_else(|| ClientError::Unavailable(errors.join("; ")))
    }

    /// `ClusterStatus` from the first node that answers.
    pub async fn cluster_status(&self) -> Result<ClusterStatusResponse, ClientError> {
        let mut errors = Vec::new();
        for addr in self.known_addrs() {
            let r = match self.grpc(&addr) {
                Ok(mut c) => c.cluster_status(self.request(ClusterStatusRequest {})).await,
                Err(e) => Err(e),
            };
            match r {
                Ok(r) => return Ok(r.into_inner()),
                Err(e) => errors.push(format!("{addr}: {}", e.message())),
            }
        }
        Err(ClientError::Unavailable(errors.join("; ")))
    }
}
