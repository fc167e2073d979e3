//! Analysts' writes, through the user's shard: feedback (mark an event, trust a device or
//! country) and the override register (compare-and-set, idempotent by write id).

use client::proto::{FeedbackRequest, FeedbackResponse, SetOverrideRequest, SetOverrideResponse};
use convert::{feedback_from_proto, override_to_proto, override_write_from_proto};
use raft::{Command, CommandResult};
use scoring::OverrideOutcome;
use tonic::Status;

use super::errors;
use super::shards::{check_user_id, user_write};
use crate::shared::{now_ms, Shared};

pub async fn feedback(shared: &Shared, req: FeedbackRequest) -> Result<FeedbackResponse, Status> {
    check_user_id(shared, &req.user_id)?;
    let feedback = feedback_from_proto(req.kind, now_ms()).map_err(errors::invalid)?;
    let cmd = Command::Feedback { user_id: req.user_id.clone(), feedback };
    match user_write(shared, &req.user_id, cmd).await? {
        (shard, CommandResult::FeedbackApplied) => {
            tracing::info!(user = %req.user_id, shard, "feedback recorded");
            Ok(FeedbackResponse { shard, served_by: shared.multi.node_id() })
        }
        (_, other) => Err(errors::unexpected(other)),
    }
}

pub async fn set_override(shared: &Shared, req: SetOverrideRequest) -> Result<SetOverrideResponse, Status> {
    check_user_id(shared, &req.user_id)?;
    let user_id = req.user_id.clone();
    let write = override_write_from_proto(req).map_err(errors::invalid)?;
    let served_by = shared.multi.node_id();
    match user_write(shared, &user_id, Command::SetOverride { user_id: user_id.clone(), write }).await? {
        (shard, CommandResult::Override(OverrideOutcome::Applied)) => {
            Ok(SetOverrideResponse { applied: true, current: None, shard, served_by })
        }
        (shard, CommandResult::Override(OverrideOutcome::Mismatch { current })) => {
            let current = current.as_ref().map(override_to_proto);
            Ok(SetOverrideResponse { applied: false, current, shard, served_by })
        }
        (_, other) => Err(errors::unexpected(other)),
    }
}
