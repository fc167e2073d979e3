//! The domain event: one user action.
//!
//! The JSON form of [`Event`] is the documented file format of `traceo ingest FILE.jsonl`: one JSON
//! object per line, for example
//!
//! ```json
//! {"event_id":"evt-1","user_id":"alice","time_ms":1767603600000,"kind":"login","outcome":"success","ip":"203.0.113.7","geo":{"lat":59.9139,"lon":10.7522,"country":"NO"},"asn":64500,"device_id":"laptop-1","user_agent":"Mozilla/5.0","attributes":{"method":"sso"}}
//! ```
//!
//! `event_id`, `user_id`, `time_ms` (event time, unix epoch milliseconds), `kind` and `outcome` are
//! required; every other field may be omitted. Unknown fields are rejected (a misspelt field must
//! not be dropped silently); free-form extras belong in `attributes`. Deserialization checks types,
//! enum values and IP syntax; `client::validate` checks the remaining limits.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What the user did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Login,
    Logout,
    ApiCall,
    DataAccess,
    DeviceEvent,
    PrivilegeChange,
    PasswordChange,
    MfaChallenge,
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: [EventKind; 8] = [
        EventKind::Login,
        EventKind::Logout,
        EventKind::ApiCall,
        EventKind::DataAccess,
        EventKind::DeviceEvent,
        EventKind::PrivilegeChange,
        EventKind::PasswordChange,
        EventKind::MfaChallenge,
    ];

    /// The snake_case name, identical to the JSON form.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Login => "login",
            EventKind::Logout => "logout",
            EventKind::ApiCall => "api_call",
            EventKind::DataAccess => "data_access",
            EventKind::DeviceEvent => "device_event",
            EventKind::PrivilegeChange => "privilege_change",
            EventKind::PasswordChange => "password_change",
            EventKind::MfaChallenge => "mfa_challenge",
        }
    }

    /// True for the kinds that authenticate the user (they drive failure streaks).
    pub fn is_authentication(self) -> bool {
        matches!(self, EventKind::Login | EventKind::MfaChallenge)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`EventKind`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown event kind {0:?}; expected one of login, logout, api_call, data_access, device_event, privilege_change, password_change, mfa_challenge")]
pub struct UnknownEventKind(pub String);

impl FromStr for EventKind {
    type Err = UnknownEventKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| UnknownEventKind(s.to_owned()))
    }
}

/// Whether the action succeeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// Where the action came from (typically from geo-IP).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Geo {
    /// Degrees, in [-90, 90].
    pub lat: f64,
    /// Degrees, in [-180, 180].
    pub lon: f64,
    /// ISO 3166-1 alpha-2, uppercase.
    pub country: String,
}

/// One user action. `event_id` is chosen by the client and makes ingestion idempotent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub event_id: String,
    pub user_id: String,
    /// Event time, unix epoch milliseconds.
    pub time_ms: i64,
    pub kind: EventKind,
    pub outcome: Outcome,
    #[serde(default)]
    pub ip: Option<IpAddr>,
    #[serde(default)]
    pub geo: Option<Geo>,
    #[serde(default)]
    pub asn: Option<u32>,
    #[serde(default)]
    pub device_id: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub bytes: Option<u64>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

impl Event {
    /// An event with the required fields set and every optional field empty.
    pub fn new(
        event_id: impl Into<String>,
        user_id: impl Into<String>,
        time_ms: i64,
        kind: EventKind,
        outcome: Outcome,
    ) -> Self {
        Event {
            event_id: event_id.into(),
            user_id: user_id.into(),
            time_ms,
            kind,
            outcome,
            ip: None,
            geo: None,
            asn: None,
            device_id: None,
            user_agent: None,
            resource: None,
            bytes: None,
            attributes: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip_and_match_serde() {
        for k in EventKind::ALL {
            assert_eq!(k.as_str().parse::<EventKind>().unwrap(), k);
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{}\"", k.as_str()));
        }
        let err = "logn".parse::<EventKind>().unwrap_err();
        assert!(err.to_string().contains("\"logn\""), "{err}");
    }

    #[test]
    fn minimal_json_line_parses_and_round_trips() {
        // Optional fields may be omitted when reading. When writing they appear as `null`: the
        // same serde form is the Raft log's postcard encoding, which cannot skip fields.
        let ev = Event::new("e1", "alice", 1_767_603_600_000, EventKind::Login, Outcome::Success);
        let minimal =
            r#"{"event_id":"e1","user_id":"alice","time_ms":1767603600000,"kind":"login","outcome":"success"}"#;
        assert_eq!(serde_json::from_str::<Event>(minimal).unwrap(), ev);
        let line = serde_json::to_string(&ev).unwrap();
        assert!(line.contains(r#""ip":null"#), "{line}");
        assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), ev);
    }

    #[test]
    fn full_json_line_round_trips() {
        let line = r#"{"event_id":"evt-1","user_id":"alice","time_ms":1767603600000,"kind":"api_call","outcome":"failure","ip":"2001:db8::1","geo":{"lat":59.9139,"lon":10.7522,"country":"NO"},"asn":64500,"device_id":"laptop-1","user_agent":"Mozilla/5.0","resource":"crm/accounts","bytes":1234,"attributes":{"method":"GET"}}"#;
        let ev: Event = serde_json::from_str(line).unwrap();
        assert_eq!(ev.kind, EventKind::ApiCall);
        assert_eq!(ev.ip, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(ev.geo.as_ref().unwrap().country, "NO");
        assert_eq!(serde_json::to_string(&ev).unwrap(), line);
    }

    #[test]
    fn bad_input_is_rejected_by_the_decoder() {
        let base = r#""event_id":"e","user_id":"u","time_ms":1767603600000"#;
        for (extra, needle) in [
            (r#","kind":"teleport","outcome":"success""#, "teleport"),
            (r#","kind":"login","outcome":"maybe""#, "maybe"),
            (r#","kind":"login","outcome":"success","ip":"300.1.1.1""#, "address"),
            (r#","kind":"login","outcome":"success","devce_id":"x""#, "devce_id"),
            (r#","outcome":"success""#, "kind"),
        ] {
            let line = format!("{{{base}{extra}}}");
            let err = serde_json::from_str::<Event>(&line).unwrap_err().to_string();
            assert!(err.contains(needle), "{line}: {err}");
        }
    }
}
