//! The one place the API turns what went wrong into a gRPC status. The codes follow the contract
//! the client decodes (`client::contract`): INVALID_ARGUMENT is final (bad input, a refused
//! command; nothing was written), FAILED_PRECONDITION "not the leader" is definitely not applied
//! and carries the leader's address when known, UNAVAILABLE may have been applied (a proposal
//! whose fate is unknown) or was refused before anything was proposed, INTERNAL is a bug.

use std::time::Duration;

use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use raft::{CommandResult, NodeId, NodeInfo};
use tonic::Status;

/// Bad input in `field`: final, nothing written.
pub fn invalid_field(field: &str, why: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("field `{field}`: {why}"))
}

/// Bad input whose message already names the field (`client::validate`'s errors do), or a
/// command the replicated state machine refused (the registry, the node states): final.
pub fn invalid(message: impl std::fmt::Display) -> Status {
    Status::invalid_argument(message.to_string())
}

/// Not the leader of `what` (definitely not applied), pointing at the leader when known.
pub fn not_leader(what: &str, leader: Option<(NodeId, NodeInfo)>) -> Status {
    client::contract::not_leader(what, leader.as_ref().map(|(_, node)| node.addr.as_str()))
}

/// The cluster cannot serve this yet (nothing proposed).
pub fn not_placed() -> Status {
    Status::unavailable("the cluster has not placed its shards yet")
}

/// A proposal of `what` not committed within `timeout`: it may still be applied.
pub fn not_committed(what: &str, timeout: Duration) -> Status {
    Status::unavailable(format!("{what}: not committed within {timeout:?}"))
}

/// The node cannot serve right now (shutting down, a membership step failed, ...).
pub fn unavailable(what: impl std::fmt::Display) -> Status {
    Status::unavailable(what.to_string())
}

/// A Raft write to `what` that failed: not the leader (definitely not applied), or a fatal Raft
/// error (UNAVAILABLE: the proposal's fate is unknown).
pub fn write_failed(what: &str, e: RaftError<NodeId, ClientWriteError<NodeId, NodeInfo>>) -> Status {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => not_leader(what, f.leader_id.zip(f.leader_node)),
        e => Status::unavailable(format!("{what}: {e}")),
    }
}

/// A read index on `what` that failed: not the leader, or Raft cannot answer.
pub fn read_index_failed(what: &str, e: RaftError<NodeId, CheckIsLeaderError<NodeId, NodeInfo>>) -> Status {
    match e {
        RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)) => not_leader(what, f.leader_id.zip(f.leader_node)),
        e => Status::unavailable(format!("{what}: {e}")),
    }
}

/// `what` failed inside this node (reading local storage, a blocking task that panicked): a bug
/// or a broken disk, not the caller's doing.
pub fn internal(what: &str, e: impl std::fmt::Display) -> Status {
    Status::internal(format!("{what}: {e}"))
}

/// The state machine answered a command with a result that command never produces: a bug.
pub fn unexpected(result: CommandResult) -> Status {
    Status::internal(format!("unexpected result {result:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_leader_points_at_the_leader_when_known() {
        let node = NodeInfo { addr: "127.0.0.1:7410".into(), ..Default::default() };
        let s = not_leader("shard 3", Some((2, node)));
        assert_eq!(s.code(), tonic::Code::FailedPrecondition);
        assert!(client::contract::is_definitely_not_applied(&s));
        assert_eq!(client::contract::leader_hint(&s), Some("127.0.0.1:7410"));
        assert_eq!(client::contract::leader_hint(&not_leader("shard 3", None)), None);
    }

    #[test]
    fn codes_follow_the_contract() {
        assert!(client::contract::is_final(&invalid_field("user_id", "must be 1-128 bytes")));
        assert!(client::contract::is_final(&invalid("no such version")));
        assert!(!client::contract::is_definitely_not_applied(&not_committed("shard 1", Duration::from_secs(1))));
        assert_eq!(invalid_field("user_id", "empty").message(), "field `user_id`: empty");
        assert_eq!(unexpected(CommandResult::Recorded).code(), tonic::Code::Internal);
    }
}
