//! Reads: a user's profile, and an event scored against it without being recorded. Linearizable
//! on the shard leader (read index), or from any local replica with `stale_ok`.

use std::time::Instant;

use client::proto::{GetProfileRequest, GetProfileResponse, ScoreRequest, ScoreResponse};
use convert::{event_from_proto, profile_to_proto};
use tonic::Status;

use super::errors;
use super::shards::{check_user_id, linearizable_shard, local_shard};
use crate::shared::{now_ms, Shared};

pub async fn get_profile(shared: &Shared, req: GetProfileRequest) -> Result<GetProfileResponse, Status> {
    let started = Instant::now();
    check_user_id(shared, &req.user_id)?;
    // The planted bug (a test-only build feature, see docs/JEPSEN.md): every read is served
    // from the local replica without a read index, as if `stale_ok` were always set.
    let stale_ok = req.stale_ok || cfg!(feature = "planted-stale-read");
    let shard =
        if stale_ok { local_shard(shared, &req.user_id)?.0 } else { linearizable_shard(shared, &req.user_id).await?.0 };
    let profile = raft::state_machine::read_profile(shared.multi.engine(), shard, &req.user_id)
        .map_err(|e| errors::internal("reading profile", e))?;
    shared.metrics.rpc_latency.with_label_values(&["get_profile"]).observe(started.elapsed().as_secs_f64());
    Ok(GetProfileResponse {
        found: profile.is_some(),
        profile: profile.as_ref().map(profile_to_proto),
        shard,
        served_by: shared.multi.node_id(),
    })
}

pub async fn score(shared: &Shared, req: ScoreRequest) -> Result<ScoreResponse, Status> {
    let started = Instant::now();
    let Some(event) = req.event else {
        return Err(errors::invalid_field("event", "required"));
    };
    client::validate::validate_event(&event, 0, now_ms(), &shared.limits).map_err(errors::invalid)?;
    let ev = event_from_proto(&event).map_err(|f| errors::invalid_field(f, "invalid"))?;
    let shard = if req.stale_ok {
        local_shard(shared, &ev.user_id)?.0
    } else {
        linearizable_shard(shared, &ev.user_id).await?.0
    };
    let profile = raft::state_machine::read_profile(shared.multi.engine(), shard, &ev.user_id)
        .map_err(|e| errors::internal("reading profile", e))?
        .unwrap_or_else(|| scoring::Profile::new(&ev.user_id));
    let failed = shared.multi.sources().lock().expect("source window").failed_users(&ev);
    let observed = scoring::features::Observation::observe(&profile, &ev, failed);
    let verdict = shared.scoring.verdicts(vec![Some(observed)]).await.pop().flatten();
    shared.metrics.rpc_latency.with_label_values(&["score"]).observe(started.elapsed().as_secs_f64());
    Ok(ScoreResponse { verdict, shard, served_by: shared.multi.node_id() })
}
