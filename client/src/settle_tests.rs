//! Unit tests of [`Settlement`]: every per-event status, routing updates, short answers, failed
//! attempts and what the deadline makes of the events still pending.

use tonic::Status;

use super::*;
use crate::proto::{Action, EventResult, Verdict};

const EPOCH: u64 = 7;

/// Two shards led by nodes 1 and 2 (term 5), every node a replica of both.
fn routing() -> Routing {
    Routing {
        epoch: EPOCH,
        shards: 2,
        addrs: [(1, "n1:7000"), (2, "n2:7000"), (3, "n3:7000")].map(|(id, a)| (id, a.to_string())).into(),
        replicas: vec![vec![1, 2, 3], vec![1, 2, 3]],
        leaders: vec![Some((1, 5)), Some((2, 5))],
    }
}

fn result(status: EventStatus, shard: u32, message: &str) -> EventResult {
    EventResult { status: status as i32, shard, message: message.into(), ..Default::default() }
}

fn answer(results: Vec<EventResult>) -> IngestResponse {
    IngestResponse { results, epoch: EPOCH }
}

fn verdict(score: u32) -> Verdict {
    Verdict { score, action: Action::Challenge as i32, model_version: "rules-only".into(), ..Default::default() }
}

/// `n` events whose users live on `shard` under [`routing`].
fn events_on(shard: u32, n: usize) -> Vec<Event> {
    let r = routing();
    (0..)
        .map(|k| format!("user-{k}"))
        .filter(|u| r.shard_of(u) == shard)
        .take(n)
        .enumerate()
        .map(|(i, user_id)| Event { event_id: format!("e{i}"), user_id, ..Default::default() })
        .collect()
}

#[test]
fn every_event_status_maps_to_its_outcome_or_a_retry() {
    let (mut s, mut r, mut round) = (Settlement::new(6), routing(), Round::default());
    let applied = EventResult { verdict: Some(verdict(42)), ..result(EventStatus::Applied, 0, "") };
    let unknown = EventResult { status: 99, ..result(EventStatus::Unspecified, 1, "from the future") };
    let results = vec![
        applied,
        result(EventStatus::Duplicate, 0, ""),
        result(EventStatus::Unavailable, 1, "shard has no leader right now"),
        result(EventStatus::Indeterminate, 1, "not committed within 2s"),
        result(EventStatus::Unspecified, 0, "unset"),
        unknown,
    ];
    s.apply_response(&[0, 1, 2, 3, 4, 5], &answer(results), &mut r, &mut round);

    assert_eq!(s.state(0).outcome, Some(Outcome::Ok { duplicate: false, verdict: Some(verdict(42)) }));
    assert_eq!(s.state(1).outcome, Some(Outcome::Ok { duplicate: true, verdict: None }));
    // Everything else is retried; only INDETERMINATE may have been applied.
    assert_eq!(round, Round { retry: vec![2, 3, 4, 5], stale: false });
    let expect = |outcome_free: bool, maybe: bool, reason: &str| (outcome_free, maybe, reason.to_string());
    let got = |i: usize| (s.state(i).outcome.is_none(), s.state(i).maybe_applied, s.state(i).reason.clone());
    assert_eq!(got(2), expect(true, false, "shard 1: shard has no leader right now"));
    assert_eq!(got(3), expect(true, true, "shard 1: not committed within 2s"));
    assert_eq!(got(4), expect(true, false, "shard 0: unset"));
    assert_eq!(got(5), expect(true, false, "shard 1: from the future"));
    // Nothing in the answer touched the routing table.
    assert_eq!(r.leaders, routing().leaders);
}

#[test]
fn applied_carries_its_verdict_to_the_outcome() {
    let (mut s, mut r, mut round) = (Settlement::new(2), routing(), Round::default());
    let results = vec![
        EventResult { verdict: Some(verdict(91)), ..result(EventStatus::Applied, 0, "") },
        EventResult { verdict: None, ..result(EventStatus::Applied, 1, "") },
    ];
    s.apply_response(&[1, 0], &answer(results), &mut r, &mut round);
    assert!(round.retry.is_empty());
    // Results are matched to the indexes they were sent for, not to their position in the call.
    assert_eq!(
        s.into_outcomes(),
        vec![
            Outcome::Ok { duplicate: false, verdict: None },
            Outcome::Ok { duplicate: false, verdict: Some(verdict(91)) },
        ]
    );
}

#[test]
fn not_leader_with_a_hint_records_the_leader() {
    let (mut s, mut r, mut round) = (Settlement::new(1), routing(), Round::default());
    let hint = EventResult { leader_id: 4, leader_addr: "n4:7000".into(), ..result(EventStatus::NotLeader, 1, "x") };
    s.apply_response(&[0], &answer(vec![hint]), &mut r, &mut round);

    assert_eq!(r.leaders[1], Some((4, 5)), "the hinted leader, at the term already known");
    assert_eq!(r.addrs.get(&4).map(String::as_str), Some("n4:7000"));
    assert_eq!(r.target(1, 0).as_deref(), Some("n4:7000"));
    assert_eq!(r.leaders[0], Some((1, 5)), "the other shard is untouched");
    assert_eq!(round, Round { retry: vec![0], stale: false });
    assert_eq!(s.state(0), &EventState { outcome: None, maybe_applied: false, reason: "shard 1: not leader".into() });
}

#[test]
fn not_leader_without_a_hint_forgets_the_leader_and_marks_routing_stale() {
    let (mut s, mut r, mut round) = (Settlement::new(1), routing(), Round::default());
    s.apply_response(&[0], &answer(vec![result(EventStatus::NotLeader, 0, "x")]), &mut r, &mut round);

    assert_eq!(r.leaders[0], None);
    assert_eq!(r.leaders[1], Some((2, 5)));
    assert_eq!(round, Round { retry: vec![0], stale: true });
    assert!(!s.state(0).maybe_applied);
}

#[test]
fn an_answer_from_a_newer_epoch_marks_routing_stale() {
    let (mut s, mut r, mut round) = (Settlement::new(1), routing(), Round::default());
    let ok = vec![result(EventStatus::Duplicate, 0, "")];
    s.apply_response(&[0], &IngestResponse { results: ok.clone(), epoch: EPOCH }, &mut r, &mut round);
    assert!(!round.stale, "same epoch");
    s.apply_response(&[0], &IngestResponse { results: ok, epoch: EPOCH + 1 }, &mut r, &mut round);
    assert!(round.stale, "newer epoch");
    assert_eq!(r.epoch, EPOCH, "the table itself waits for a refresh");
}

#[test]
fn a_short_reply_leaves_the_tail_maybe_applied_and_pending() {
    let (mut s, mut r, mut round) = (Settlement::new(3), routing(), Round::default());
    s.apply_response(&[2, 0, 1], &answer(vec![result(EventStatus::Applied, 0, "")]), &mut r, &mut round);

    assert!(s.state(2).outcome.is_some());
    assert_eq!(round.retry, vec![0, 1]);
    assert!(s.state(0).maybe_applied && s.state(1).maybe_applied);
    assert!(!s.state(2).maybe_applied);
    s.settle_at_deadline(&round.retry);
    assert!(matches!(s.state(0).outcome, Some(Outcome::Indeterminate { .. })));
    assert!(matches!(s.state(1).outcome, Some(Outcome::Indeterminate { .. })));
}

#[test]
fn a_definite_error_then_the_deadline_fails_the_events() {
    let events = events_on(0, 2);
    let (mut s, mut r, mut round) = (Settlement::new(2), routing(), Round::default());
    let refused = Status::failed_precondition("no known replica of the shard");
    s.apply_error(&[0, 1], &refused, &events, &mut r, &mut round);

    assert_eq!(round, Round { retry: vec![0, 1], stale: true });
    assert_eq!(r.leaders[0], None, "the failed shard's leader is forgotten");
    assert_eq!(r.leaders[1], Some((2, 5)));
    s.settle_at_deadline(&round.retry);
    let reason = "shard 0: FailedPrecondition: no known replica of the shard".to_string();
    assert_eq!(s.into_outcomes(), vec![Outcome::Failed { reason: reason.clone() }, Outcome::Failed { reason }]);
}

#[test]
fn an_unavailable_error_then_the_deadline_is_indeterminate() {
    let events = events_on(1, 1);
    let (mut s, mut r, mut round) = (Settlement::new(1), routing(), Round::default());
    s.apply_error(&[0], &Status::unavailable("connection reset"), &events, &mut r, &mut round);

    assert_eq!(r.leaders[1], None);
    assert!(s.state(0).maybe_applied);
    s.settle_at_deadline(&round.retry);
    assert_eq!(
        s.into_outcomes(),
        vec![Outcome::Indeterminate { reason: "shard 1: Unavailable: connection reset".into() }]
    );
}

#[test]
fn every_error_code_is_maybe_applied_unless_the_contract_says_definite() {
    let events = events_on(0, 1);
    for (code, maybe) in [
        (tonic::Code::NotFound, false),
        (tonic::Code::FailedPrecondition, false),
        (tonic::Code::ResourceExhausted, false),
        (tonic::Code::PermissionDenied, false),
        (tonic::Code::Unavailable, true),
        (tonic::Code::DeadlineExceeded, true),
        (tonic::Code::Internal, true),
        (tonic::Code::Unknown, true),
        (tonic::Code::Cancelled, true),
    ] {
        let (mut s, mut r, mut round) = (Settlement::new(1), routing(), Round::default());
        s.apply_error(&[0], &Status::new(code, "x"), &events, &mut r, &mut round);
        assert_eq!(s.state(0).maybe_applied, maybe, "{code:?}");
    }
}

#[test]
fn once_maybe_applied_an_event_stays_indeterminate_whatever_follows() {
    let events = events_on(1, 2);
    let (mut s, mut r) = (Settlement::new(2), routing());
    // Round 1: event 0 may have been applied; event 1's node timed out.
    let mut round = Round::default();
    s.apply_response(&[0], &answer(vec![result(EventStatus::Indeterminate, 1, "timed out")]), &mut r, &mut round);
    s.apply_error(&[1], &Status::deadline_exceeded("rpc timeout"), &events, &mut r, &mut round);
    // Round 2: both are refused definitely.
    let mut round = Round::default();
    s.apply_response(&[0], &answer(vec![result(EventStatus::NotLeader, 1, "x")]), &mut r, &mut round);
    s.apply_error(&[1], &Status::failed_precondition("not the leader of shard 1"), &events, &mut r, &mut round);

    assert_eq!(round.retry, vec![0, 1]);
    s.settle_at_deadline(&round.retry);
    assert_eq!(
        s.into_outcomes(),
        vec![
            Outcome::Indeterminate { reason: "shard 1: not leader".into() },
            Outcome::Indeterminate { reason: "shard 1: FailedPrecondition: not the leader of shard 1".into() },
        ]
    );
}

#[test]
fn the_deadline_settles_only_the_pending_events() {
    let (mut s, mut r, mut round) = (Settlement::new(2), routing(), Round::default());
    let results = vec![result(EventStatus::Duplicate, 0, ""), result(EventStatus::Unavailable, 0, "no leader")];
    s.apply_response(&[0, 1], &answer(results), &mut r, &mut round);
    s.settle_at_deadline(&round.retry);
    assert_eq!(
        s.into_outcomes(),
        vec![Outcome::Ok { duplicate: true, verdict: None }, Outcome::Failed { reason: "shard 0: no leader".into() }]
    );
}

#[test]
fn a_later_answer_settles_an_event_an_earlier_attempt_left_indeterminate() {
    let (mut s, mut r, mut round) = (Settlement::new(1), routing(), Round::default());
    s.apply_response(&[0], &answer(vec![result(EventStatus::Indeterminate, 0, "timed out")]), &mut r, &mut round);
    let mut round = Round::default();
    s.apply_response(&[0], &answer(vec![result(EventStatus::Duplicate, 0, "")]), &mut r, &mut round);
    assert!(round.retry.is_empty());
    assert_eq!(s.into_outcomes(), vec![Outcome::Ok { duplicate: true, verdict: None }]);
}

#[test]
fn a_refused_part_fails_alone_and_the_other_parts_keep_their_outcomes() {
    let (mut s, mut r, mut round) = (Settlement::new(3), routing(), Round::default());
    // Events 0 and 1 went to one node and were applied; event 2's node refused its request.
    let applied = vec![result(EventStatus::Applied, 0, ""), result(EventStatus::Duplicate, 0, "")];
    s.apply_response(&[0, 1], &answer(applied), &mut r, &mut round);
    s.apply_rejection(&[2], &Status::invalid_argument("event 0 (event_id \"e2\"): field `time_ms`: in the future"));
    assert!(round.retry.is_empty(), "nothing refused is sent again: {round:?}");
    let out = s.into_outcomes();
    assert!(matches!(out[0], Outcome::Ok { duplicate: false, .. }), "{out:?}");
    assert!(matches!(out[1], Outcome::Ok { duplicate: true, .. }), "{out:?}");
    match &out[2] {
        Outcome::Failed { reason } => assert!(reason.contains("field `time_ms`"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_refusal_after_an_attempt_that_may_have_applied_the_event_is_indeterminate() {
    let (mut s, mut r, mut round) = (Settlement::new(1), routing(), Round::default());
    s.apply_response(
        &[0],
        &answer(vec![result(EventStatus::Indeterminate, 0, "not committed within 5s")]),
        &mut r,
        &mut round,
    );
    s.apply_rejection(&[0], &Status::invalid_argument("field `time_ms`: in the future"));
    assert!(matches!(s.into_outcomes()[0], Outcome::Indeterminate { .. }), "an earlier attempt may have applied it");
}
