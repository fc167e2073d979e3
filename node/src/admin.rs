//! The admin HTTP port: `/metrics` (Prometheus text), `/healthz` (the process serves),
//! `/readyz` (placement done, meta leader known, every local shard has a leader).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

use crate::api::cluster::cluster_status;
use crate::control::sampler;
use crate::shared::Shared;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(shared)
}

async fn metrics(State(shared): State<Arc<Shared>>) -> String {
    sampler::sample(&shared);
    shared.metrics.render()
}

async fn ready(State(shared): State<Arc<Shared>>) -> (StatusCode, &'static str) {
    if cluster_status(&shared).await.ready {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}
