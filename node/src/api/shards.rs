//! Which local replica serves a user's request, and proposals to a Raft group: the routing and
//! write plumbing the RPCs share.

use std::time::Duration;

use raft::{Command, CommandResult, GroupHandle};
use tonic::Status;

use super::errors;
use crate::shared::Shared;

/// `user_id` passes the rules every event's ids pass (`client::validate`: not empty, within
/// `max_id_bytes`, no control characters), or INVALID_ARGUMENT.
pub fn check_user_id(shared: &Shared, user_id: &str) -> Result<(), Status> {
    client::validate::validate_id("user_id", user_id, &shared.limits).map_err(errors::invalid)
}

/// The shard of `user_id` and its local replica, or FAILED_PRECONDITION pointing at a node
/// that has one.
pub fn local_shard(shared: &Shared, user_id: &str) -> Result<(u32, GroupHandle), Status> {
    let shards = shared.multi.meta().borrow().shards();
    if shards == 0 {
        return Err(errors::not_placed());
    }
    let shard = ring::shard_for(user_id, shards);
    match shared.multi.group(shard) {
        Some(g) => Ok((shard, g)),
        None => {
            Err(errors::not_leader(&format!("shard {shard} (not hosted here)"), shared.placement_leader_hint(shard)))
        }
    }
}

/// Like [`local_shard`], and this replica is the leader with everything committed before now
/// applied (read index): a read here is linearizable.
pub async fn linearizable_shard(shared: &Shared, user_id: &str) -> Result<(u32, GroupHandle), Status> {
    let (shard, group) = local_shard(shared, user_id)?;
    match group.raft.ensure_linearizable().await {
        Ok(_) => Ok((shard, group)),
        Err(e) => Err(errors::read_index_failed(&format!("shard {shard}"), e)),
    }
}

/// Proposes `cmd` to `raft` (group `what`) and returns the applied result; not the leader:
/// FAILED_PRECONDITION pointing at it.
pub async fn raft_write(raft: &raft::Raft, what: &str, cmd: Command) -> Result<CommandResult, Status> {
    raft.client_write(cmd).await.map(|r| r.data).map_err(|e| errors::write_failed(what, e))
}

/// Proposes `cmd` to the meta group on its leader and returns the applied result.
pub async fn meta_write(shared: &Shared, cmd: raft::MetaCommand) -> Result<CommandResult, Status> {
    raft_write(&shared.multi.meta_raft(), "the meta group", Command::Meta(cmd)).await
}

/// Proposes `cmd` to `user_id`'s shard on this node (its leader) and waits, bounded by the
/// request timeout, for the applied result. Not the leader: FAILED_PRECONDITION with the
/// leader's address; no answer in time: UNAVAILABLE (it may still be applied).
pub async fn user_write(shared: &Shared, user_id: &str, cmd: Command) -> Result<(u32, CommandResult), Status> {
    let (shard, group) = local_shard(shared, user_id)?;
    let timeout = Duration::from_millis(shared.config.request_timeout_ms);
    let what = format!("shard {shard}");
    match tokio::time::timeout(timeout, raft_write(&group.raft, &what, cmd)).await {
        Ok(result) => result.map(|r| (shard, r)),
        Err(_) => Err(errors::not_committed(&what, timeout)),
    }
}
