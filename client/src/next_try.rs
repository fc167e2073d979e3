//! What a leader-routed call (one request for a shard's or the meta group's leader) does after an
//! attempt failed: stop, go where the refusal points, or re-route from a fresh routing table.

use tonic::Status;

use crate::contract;

/// The decision after one failed attempt.
#[derive(Debug, PartialEq)]
pub(crate) enum NextTry<'a> {
    /// [`contract::is_final`]: report the status as `ClientError::Rejected`, no retry.
    GiveUp,
    /// The refusal named the leader ([`contract::leader_hint`]): remember it and ask it next,
    /// without backing off.
    Leader(&'a str),
    /// No hint: refresh the routing table (at most every 200 ms) and try the next target after a
    /// backoff.
    Refresh,
}

/// Decides what follows an attempt that ended in `status`.
pub(crate) fn next_try(status: &Status) -> NextTry<'_> {
    if contract::is_final(status) {
        NextTry::GiveUp
    } else if let Some(leader) = contract::leader_hint(status) {
        NextTry::Leader(leader)
    } else {
        NextTry::Refresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{not_leader, LEADER_ADDR_HEADER};

    #[test]
    fn invalid_argument_gives_up_even_with_a_hint() {
        assert_eq!(next_try(&Status::invalid_argument("field `user_id`")), NextTry::GiveUp);
        let mut s = Status::invalid_argument("x");
        s.metadata_mut().insert(LEADER_ADDR_HEADER, "n2:7000".parse().expect("ascii"));
        assert_eq!(next_try(&s), NextTry::GiveUp);
    }

    #[test]
    fn a_named_leader_is_followed() {
        assert_eq!(next_try(&not_leader("shard 2", Some("n2:7000"))), NextTry::Leader("n2:7000"));
        // Whatever the code: the hint is what counts.
        let mut s = Status::unavailable("moving");
        s.metadata_mut().insert(LEADER_ADDR_HEADER, "n3:7000".parse().expect("ascii"));
        assert_eq!(next_try(&s), NextTry::Leader("n3:7000"));
    }

    #[test]
    fn anything_else_refreshes() {
        assert_eq!(next_try(&not_leader("shard 2", None)), NextTry::Refresh);
        assert_eq!(next_try(&Status::unavailable("connection refused")), NextTry::Refresh);
        assert_eq!(next_try(&Status::deadline_exceeded("timeout")), NextTry::Refresh);
    }
}
