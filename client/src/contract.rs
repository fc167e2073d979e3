//! The gRPC status contract the server and the client share: which status a node answers when it
//! refuses a request, how it names the leader, and what each status tells the caller about the one
//! question a retrying client must answer — *could this attempt have been applied?*
//!
//! The server (crate `node`, in `node::api::errors`) builds its refusals with [`not_leader`]; the client reads them with
//! [`leader_hint`], [`is_final`] and [`is_definitely_not_applied`]. Keeping both sides here means
//! a change to the contract is one change, seen by both.
//!
//! # Statuses of a whole call
//!
//! | code | applied? | the client |
//! |------|----------|------------|
//! | `INVALID_ARGUMENT` | no | gives up at once ([`is_final`]): the same request fails the same way |
//! | `FAILED_PRECONDITION` | no | retries at the [`LEADER_ADDR_HEADER`] hint if any, else re-routes |
//! | `NOT_FOUND`, `RESOURCE_EXHAUSTED`, `PERMISSION_DENIED` | no | retries elsewhere or later |
//! | any other (`UNAVAILABLE`, `DEADLINE_EXCEEDED`, `INTERNAL`, `UNKNOWN`, `CANCELLED`, ...) | maybe | retries with the same ids |
//!
//! "No" ([`is_definitely_not_applied`]) lets the client report [`crate::Outcome::Failed`] for an
//! event no attempt may have applied; one "maybe" makes it [`crate::Outcome::Indeterminate`].
//!
//! # Per-event statuses of `Ingest`
//!
//! `Ingest` answers `OK` with one [`EventResult`](crate::proto::EventResult) per event, in request
//! order; its [`EventStatus`](crate::proto::EventStatus) says:
//!
//! - `APPLIED`: committed by a majority of the shard's replicas and applied now; carries the
//!   event's verdict.
//! - `DUPLICATE`: this `event_id` was applied before (by an earlier attempt or call); nothing
//!   changed.
//! - `NOT_LEADER`: definitely not applied; the node does not lead the event's shard. `leader_id`
//!   and `leader_addr` name the leader when known (`0` / empty when not).
//! - `UNAVAILABLE`: definitely not applied; the shard has no leader right now (or the node could
//!   not propose).
//! - `INDETERMINATE`: the proposal was made and may or may not commit; retrying with the same
//!   `event_id` is safe (the retry answers `DUPLICATE` if it had been applied).
//!
//! An answer with fewer results than events leaves the rest unanswered: the client treats them as
//! maybe applied.

use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

/// gRPC metadata key carrying the leader's address on a `FAILED_PRECONDITION` "not leader" reply.
pub const LEADER_ADDR_HEADER: &str = "traceo-leader-addr";

/// The refusal of a node that does not lead `what` (e.g. `"shard 3"`): `FAILED_PRECONDITION`
/// "not the leader of {what}", definitely not applied. `leader_addr` (`host:port`) is put in
/// [`LEADER_ADDR_HEADER`] when given and valid as a metadata value; otherwise the status carries no
/// hint and the client refreshes its routing instead.
pub fn not_leader(what: &str, leader_addr: Option<&str>) -> Status {
    let mut s = Status::failed_precondition(format!("not the leader of {what}"));
    if let Some(Ok(v)) = leader_addr.map(str::parse::<MetadataValue<_>>) {
        s.metadata_mut().insert(LEADER_ADDR_HEADER, v);
    }
    s
}

/// The leader's address named by a refusal built with [`not_leader`], if any (and readable as
/// ASCII).
pub fn leader_hint(status: &Status) -> Option<&str> {
    status.metadata().get(LEADER_ADDR_HEADER).and_then(|v| v.to_str().ok())
}

/// Whether an attempt that ended in `status` was certainly not applied: the request was refused
/// before anything could be proposed.
///
/// - `FAILED_PRECONDITION`: the node is not the leader ([`not_leader`]), or the client never sent
///   the request (no replica known, an address that makes no channel).
/// - `NOT_FOUND`: what the request names is not there; the node did nothing.
/// - `RESOURCE_EXHAUSTED`: refused at admission, e.g. the server's load shedding ("too many active
///   requests") or an HTTP/2 `ENHANCE_YOUR_CALM` reset, before the handler ran. (tonic also uses it
///   when a *compressed* answer exceeds the decoding limit, after the work; this client does not
///   accept compressed answers, so that case cannot reach it.)
/// - `PERMISSION_DENIED`: refused before the handler ran (an HTTP/2 `INADEQUATE_SECURITY` reset,
///   a `403`).
///
/// Every other code may have been applied: `UNAVAILABLE` and `CANCELLED` (the connection or
/// stream broke, perhaps after the node proposed), `DEADLINE_EXCEEDED` (the attempt's timeout
/// passed while the proposal may still commit), `INTERNAL`, `UNKNOWN`, `OUT_OF_RANGE` (e.g. an
/// answer too large to decode, after the work was done) and anything else. `INVALID_ARGUMENT` is
/// not applied either but is [`is_final`]: the client stops rather than retrying it.
pub fn is_definitely_not_applied(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::NotFound | Code::FailedPrecondition | Code::ResourceExhausted | Code::PermissionDenied
    )
}

/// Whether `status` ends the call: `INVALID_ARGUMENT` (the request breaks a rule, so every node
/// would refuse it again). The client never retries it: a call reports it as
/// [`crate::ClientError::Rejected`], and `ingest` as the outcome of the refused part's events
/// (`Failed`, or `Indeterminate` where an earlier attempt may have applied one).
pub fn is_final(status: &Status) -> bool {
    status.code() == Code::InvalidArgument
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_leader_carries_the_leader_address_to_leader_hint() {
        let s = not_leader("shard 3", Some("10.0.0.7:7000"));
        assert_eq!(s.code(), Code::FailedPrecondition);
        assert_eq!(s.message(), "not the leader of shard 3");
        assert_eq!(leader_hint(&s), Some("10.0.0.7:7000"));
        assert_eq!(s.metadata().get(LEADER_ADDR_HEADER).and_then(|v| v.to_str().ok()), Some("10.0.0.7:7000"));
        assert!(is_definitely_not_applied(&s));
        assert!(!is_final(&s));
    }

    #[test]
    fn not_leader_without_a_usable_address_carries_no_hint() {
        let none = not_leader("the meta group", None);
        assert_eq!(none.code(), Code::FailedPrecondition);
        assert_eq!(none.message(), "not the leader of the meta group");
        assert_eq!(leader_hint(&none), None);
        // A newline cannot be a metadata value: the status goes out without the header.
        let bad = not_leader("shard 1", Some("host\n:1"));
        assert_eq!(bad.code(), Code::FailedPrecondition);
        assert_eq!(leader_hint(&bad), None);
    }

    #[test]
    fn leader_hint_reads_only_the_leader_header() {
        let mut s = Status::unavailable("down");
        s.metadata_mut().insert("traceo-other", "10.0.0.1:1".parse().expect("ascii"));
        assert_eq!(leader_hint(&s), None);
        s.metadata_mut().insert(LEADER_ADDR_HEADER, "10.0.0.2:2".parse().expect("ascii"));
        assert_eq!(leader_hint(&s), Some("10.0.0.2:2"));
    }

    #[test]
    fn definiteness_of_every_code() {
        let definite = [Code::NotFound, Code::FailedPrecondition, Code::ResourceExhausted, Code::PermissionDenied];
        let all = [
            Code::Ok,
            Code::Cancelled,
            Code::Unknown,
            Code::InvalidArgument,
            Code::DeadlineExceeded,
            Code::NotFound,
            Code::AlreadyExists,
            Code::PermissionDenied,
            Code::ResourceExhausted,
            Code::FailedPrecondition,
            Code::Aborted,
            Code::OutOfRange,
            Code::Unimplemented,
            Code::Internal,
            Code::Unavailable,
            Code::DataLoss,
            Code::Unauthenticated,
        ];
        for code in all {
            let s = Status::new(code, "x");
            assert_eq!(is_definitely_not_applied(&s), definite.contains(&code), "{code:?}");
            assert_eq!(is_final(&s), code == Code::InvalidArgument, "{code:?}");
        }
    }
}
