//! The public gRPC services: `Traceo` (ingest, reads, analysts' writes, cluster and models) and
//! `Membership` (join). Each RPC is a thin call into the module that owns it; every gRPC status
//! the API returns is made in [`errors`].
//!
//! - [`ingest`]: batches split by shard, proposed through each shard's entry batcher;
//! - [`reads`]: profiles and scoring without recording (linearizable on the leader, or stale);
//! - [`analyst`]: feedback and the override register, written through the user's shard;
//! - [`cluster`]: cluster status, decommission, the rebalance plan and joins;
//! - [`models`]: deploy, promote, roll back, and the registry view;
//! - [`shards`]: which local replica serves a user, and proposals to a group.

pub mod analyst;
pub mod cluster;
pub mod errors;
pub mod ingest;
pub mod models;
pub mod reads;
pub mod shards;

use std::sync::Arc;

use client::proto::membership_server::Membership;
use client::proto::traceo_server::Traceo;
use client::proto::{
    ClusterStatusRequest, ClusterStatusResponse, DecommissionRequest, DecommissionResponse, DeployModelRequest,
    FeedbackRequest, FeedbackResponse, GetProfileRequest, GetProfileResponse, IngestRequest, IngestResponse,
    JoinRequest, JoinResponse, ModelActionRequest, ModelsRequest, ModelsResponse, RebalanceRequest, RebalanceResponse,
    ScoreRequest, ScoreResponse, SetOverrideRequest, SetOverrideResponse,
};
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::shared::Shared;

#[derive(Clone)]
pub struct Api {
    pub shared: Arc<Shared>,
}

#[tonic::async_trait]
impl Traceo for Api {
    #[instrument(skip_all, fields(events))]
    async fn ingest(&self, request: Request<IngestRequest>) -> Result<Response<IngestResponse>, Status> {
        ingest::ingest(&self.shared, request.into_inner()).await.map(Response::new)
    }

    #[instrument(skip_all, fields(user = %request.get_ref().user_id))]
    async fn get_profile(&self, request: Request<GetProfileRequest>) -> Result<Response<GetProfileResponse>, Status> {
        reads::get_profile(&self.shared, request.into_inner()).await.map(Response::new)
    }

    async fn cluster_status(
        &self,
        _request: Request<ClusterStatusRequest>,
    ) -> Result<Response<ClusterStatusResponse>, Status> {
        Ok(Response::new(cluster::cluster_status(&self.shared).await))
    }

    #[instrument(skip_all)]
    async fn score(&self, request: Request<ScoreRequest>) -> Result<Response<ScoreResponse>, Status> {
        reads::score(&self.shared, request.into_inner()).await.map(Response::new)
    }

    #[instrument(skip_all, fields(user = %request.get_ref().user_id))]
    async fn feedback(&self, request: Request<FeedbackRequest>) -> Result<Response<FeedbackResponse>, Status> {
        analyst::feedback(&self.shared, request.into_inner()).await.map(Response::new)
    }

    #[instrument(skip_all, fields(user = %request.get_ref().user_id))]
    async fn set_override(
        &self,
        request: Request<SetOverrideRequest>,
    ) -> Result<Response<SetOverrideResponse>, Status> {
        analyst::set_override(&self.shared, request.into_inner()).await.map(Response::new)
    }

    async fn deploy_model(&self, request: Request<DeployModelRequest>) -> Result<Response<ModelsResponse>, Status> {
        models::deploy(&self.shared, request.into_inner()).await.map(Response::new)
    }

    async fn model_action(&self, request: Request<ModelActionRequest>) -> Result<Response<ModelsResponse>, Status> {
        models::action(&self.shared, request.into_inner()).await.map(Response::new)
    }

    async fn models(&self, _request: Request<ModelsRequest>) -> Result<Response<ModelsResponse>, Status> {
        Ok(Response::new(models::models(&self.shared)))
    }

    #[instrument(skip_all, fields(node = request.get_ref().node_id))]
    async fn decommission(
        &self,
        request: Request<DecommissionRequest>,
    ) -> Result<Response<DecommissionResponse>, Status> {
        cluster::decommission(&self.shared, request.into_inner().node_id).await.map(Response::new)
    }

    async fn rebalance(&self, _request: Request<RebalanceRequest>) -> Result<Response<RebalanceResponse>, Status> {
        Ok(Response::new(cluster::rebalance(&self.shared)))
    }
}

#[tonic::async_trait]
impl Membership for Api {
    #[instrument(skip_all, fields(addr = %request.get_ref().addr))]
    async fn join(&self, request: Request<JoinRequest>) -> Result<Response<JoinResponse>, Status> {
        cluster::join(&self.shared, request.into_inner()).await.map(Response::new)
    }
}
