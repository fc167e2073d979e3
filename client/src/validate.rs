//! The rules every event must pass. The client checks a whole batch before splitting it by shard,
//! and every node checks each request again before proposing anything, so an invalid event
//! rejects its whole batch and nothing of it is written.

use std::collections::HashSet;
use std::net::IpAddr;

use crate::proto::{Event, EventKind, Outcome};

/// Bounds on what one event and one batch may carry.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_batch_events: usize,
    pub max_id_bytes: usize,
    pub max_string_bytes: usize,
    pub max_attributes: usize,
    pub max_attribute_key_bytes: usize,
    pub max_attribute_value_bytes: usize,
    /// How far past the server's clock an event time may lie.
    pub max_future_skew_ms: i64,
    /// Earliest accepted event time (2000-01-01T00:00:00Z).
    pub min_time_ms: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_batch_events: 1000,
            max_id_bytes: 128,
            max_string_bytes: 512,
            max_attributes: 16,
            max_attribute_key_bytes: 64,
            max_attribute_value_bytes: 256,
            max_future_skew_ms: 5 * 60 * 1000,
            min_time_ms: 946_684_800_000,
        }
    }
}

/// Why a batch was rejected: which event (none for the batch as a whole), which field, what is
/// wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidField {
    /// Position of the event in the batch; `None` when the batch as a whole is refused.
    pub index: Option<usize>,
    pub event_id: String,
    pub field: String,
    pub reason: String,
}

impl std::fmt::Display for InvalidField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.index {
            Some(i) => write!(f, "event {i} (event_id {:?}): field `{}`: {}", self.event_id, self.field, self.reason),
            None => write!(f, "batch: field `{}`: {}", self.field, self.reason),
        }
    }
}

impl std::error::Error for InvalidField {}

/// Checks a batch: its size, every event, and that no `(user_id, event_id)` repeats in it.
pub fn validate_batch(events: &[Event], now_ms: i64, limits: &Limits) -> Result<(), InvalidField> {
    if events.len() > limits.max_batch_events {
        return Err(InvalidField {
            index: None,
            event_id: String::new(),
            field: "events".into(),
            reason: format!("batch of {} events exceeds the limit of {}", events.len(), limits.max_batch_events),
        });
    }
    let mut seen = HashSet::with_capacity(events.len());
    for (i, ev) in events.iter().enumerate() {
        validate_event(ev, i, now_ms, limits)?;
        if !seen.insert((ev.user_id.as_str(), ev.event_id.as_str())) {
            return Err(err(i, ev, "event_id", "appears twice in this batch for the same user".into()));
        }
    }
    Ok(())
}

fn err(index: usize, ev: &Event, field: &str, reason: String) -> InvalidField {
    InvalidField { index: Some(index), event_id: ev.event_id.clone(), field: field.into(), reason }
}

/// Checks an id given on its own (a `user_id` of a read, feedback or override) by the rules an
/// event's ids follow; the error names `field`.
pub fn validate_id(field: &str, value: &str, limits: &Limits) -> Result<(), String> {
    check_id(value, limits.max_id_bytes).map_err(|r| format!("field `{field}`: {r}"))
}

fn check_id(value: &str, max: usize) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    check_text(value, max)
}

fn check_text(value: &str, max: usize) -> Result<(), String> {
    if value.len() > max {
        return Err(format!("{} bytes exceeds the limit of {max}", value.len()));
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

/// Checks one event (`index` is its position, for the error).
pub fn validate_event(ev: &Event, index: usize, now_ms: i64, limits: &Limits) -> Result<(), InvalidField> {
    let fail = |field: &str, reason: String| Err(err(index, ev, field, reason));
    if let Err(r) = check_id(&ev.event_id, limits.max_id_bytes) {
        return fail("event_id", r);
    }
    if let Err(r) = check_id(&ev.user_id, limits.max_id_bytes) {
        return fail("user_id", r);
    }
    if ev.time_ms < limits.min_time_ms {
        return fail("time_ms", format!("{} is before 2000-01-01", ev.time_ms));
    }
    if ev.time_ms > now_ms.saturating_add(limits.max_future_skew_ms) {
        let ahead = ev.time_ms - now_ms;
        return fail(
            "time_ms",
            format!("event time is {ahead} ms in the future (limit {} ms)", limits.max_future_skew_ms),
        );
    }
    match EventKind::try_from(ev.kind) {
        Ok(EventKind::Unspecified) => return fail("kind", "must be set".into()),
        Err(_) => return fail("kind", format!("unknown event kind {}", ev.kind)),
        Ok(_) => {}
    }
    match Outcome::try_from(ev.outcome) {
        Ok(Outcome::Unspecified) => return fail("outcome", "must be set".into()),
        Err(_) => return fail("outcome", format!("unknown outcome {}", ev.outcome)),
        Ok(_) => {}
    }
    if let Some(ip) = &ev.ip {
        if ip.parse::<IpAddr>().is_err() {
            return fail("ip", format!("{:?} is not an IPv4 or IPv6 address", truncate(ip)));
        }
    }
    if let Some(geo) = &ev.geo {
        if !geo.lat.is_finite() {
            return fail("geo.lat", "must be a finite number".into());
        }
        if !(-90.0..=90.0).contains(&geo.lat) {
            return fail("geo.lat", format!("{} is outside [-90, 90]", geo.lat));
        }
        if !geo.lon.is_finite() {
            return fail("geo.lon", "must be a finite number".into());
        }
        if !(-180.0..=180.0).contains(&geo.lon) {
            return fail("geo.lon", format!("{} is outside [-180, 180]", geo.lon));
        }
        if geo.country.len() != 2 || !geo.country.bytes().all(|b| b.is_ascii_uppercase()) {
            return fail("geo.country", format!("{:?} is not an ISO 3166-1 alpha-2 code", truncate(&geo.country)));
        }
    }
    for (field, value) in [("device_id", &ev.device_id), ("user_agent", &ev.user_agent), ("resource", &ev.resource)] {
        if let Some(v) = value {
            if let Err(r) = check_text(v, limits.max_string_bytes) {
                return fail(field, r);
            }
        }
    }
    if ev.attributes.len() > limits.max_attributes {
        return fail(
            "attributes",
            format!("{} attributes exceed the limit of {}", ev.attributes.len(), limits.max_attributes),
        );
    }
    for (k, v) in &ev.attributes {
        if let Err(r) = check_id(k, limits.max_attribute_key_bytes) {
            return fail("attributes", format!("key {:?}: {r}", truncate(k)));
        }
        if let Err(r) = check_text(v, limits.max_attribute_value_bytes) {
            return fail(&format!("attributes.{k}"), r);
        }
    }
    Ok(())
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Geo;

    const NOW: i64 = 1_790_000_000_000;

    fn good() -> Event {
        Event {
            event_id: "e1".into(),
            user_id: "alice".into(),
            time_ms: NOW - 1000,
            kind: EventKind::Login as i32,
            outcome: Outcome::Success as i32,
            ip: Some("192.0.2.7".into()),
            geo: Some(Geo { lat: 59.91, lon: 10.75, country: "NO".into() }),
            ..Default::default()
        }
    }

    fn field_of(ev: Event) -> String {
        validate_event(&ev, 3, NOW, &Limits::default()).unwrap_err().field
    }

    #[test]
    fn accepts_a_good_event() {
        validate_event(&good(), 0, NOW, &Limits::default()).unwrap();
    }

    #[test]
    fn names_the_bad_field() {
        assert_eq!(field_of(Event { event_id: String::new(), ..good() }), "event_id");
        assert_eq!(field_of(Event { user_id: "x".repeat(129), ..good() }), "user_id");
        assert_eq!(field_of(Event { user_id: "a\nb".into(), ..good() }), "user_id");
        assert_eq!(field_of(Event { time_ms: NOW + 3_600_000, ..good() }), "time_ms");
        assert_eq!(field_of(Event { time_ms: 5, ..good() }), "time_ms");
        assert_eq!(field_of(Event { kind: 99, ..good() }), "kind");
        assert_eq!(field_of(Event { kind: 0, ..good() }), "kind");
        assert_eq!(field_of(Event { outcome: 7, ..good() }), "outcome");
        assert_eq!(field_of(Event { ip: Some("300.1.1.1".into()), ..good() }), "ip");
        let geo = |lat: f64, lon: f64, c: &str| Some(Geo { lat, lon, country: c.into() });
        assert_eq!(field_of(Event { geo: geo(f64::NAN, 0.0, "NO"), ..good() }), "geo.lat");
        assert_eq!(field_of(Event { geo: geo(91.0, 0.0, "NO"), ..good() }), "geo.lat");
        assert_eq!(field_of(Event { geo: geo(0.0, f64::INFINITY, "NO"), ..good() }), "geo.lon");
        assert_eq!(field_of(Event { geo: geo(0.0, -180.5, "NO"), ..good() }), "geo.lon");
        assert_eq!(field_of(Event { geo: geo(0.0, 0.0, "nor"), ..good() }), "geo.country");
        assert_eq!(field_of(Event { resource: Some("r".repeat(600)), ..good() }), "resource");
        let mut many = good();
        for i in 0..17 {
            many.attributes.insert(format!("k{i}"), "v".into());
        }
        assert_eq!(field_of(many), "attributes");
        let mut long_value = good();
        long_value.attributes.insert("team".into(), "v".repeat(300));
        assert_eq!(field_of(long_value), "attributes.team");
    }

    #[test]
    fn error_message_names_event_and_field() {
        let e = validate_event(&Event { ip: Some("nope".into()), ..good() }, 3, NOW, &Limits::default()).unwrap_err();
        assert_eq!(e.to_string(), "event 3 (event_id \"e1\"): field `ip`: \"nope\" is not an IPv4 or IPv6 address");
    }

    #[test]
    fn batch_rules() {
        let limits = Limits { max_batch_events: 2, ..Limits::default() };
        let three = vec![good(), Event { event_id: "e2".into(), ..good() }, Event { event_id: "e3".into(), ..good() }];
        let too_many = validate_batch(&three, NOW, &limits).unwrap_err();
        assert_eq!((too_many.index, too_many.field.as_str()), (None, "events"));
        // A batch-level error names no event (it once said "event 18446744073709551615").
        assert_eq!(too_many.to_string(), "batch: field `events`: batch of 3 events exceeds the limit of 2");
        let dup = vec![good(), good()];
        let e = validate_batch(&dup, NOW, &Limits::default()).unwrap_err();
        assert_eq!((e.index, e.field.as_str()), (Some(1), "event_id"));
        let other_user = vec![good(), Event { user_id: "bob".into(), ..good() }];
        validate_batch(&other_user, NOW, &Limits::default()).unwrap();
        validate_batch(&[], NOW, &Limits::default()).unwrap();
    }

    #[test]
    fn an_id_alone_follows_the_rules_of_an_events_ids() {
        let limits = Limits::default();
        validate_id("user_id", "alice", &limits).unwrap();
        assert_eq!(validate_id("user_id", "", &limits).unwrap_err(), "field `user_id`: must not be empty");
        let control = validate_id("user_id", "al\nice", &limits).unwrap_err();
        assert_eq!(control, "field `user_id`: must not contain control characters");
        let long = "x".repeat(limits.max_id_bytes + 1);
        assert!(validate_id("user_id", &long, &limits).unwrap_err().contains("exceeds the limit"));
    }
}
