//! Conversions between the public protobuf types (`client::proto`) and the domain types of
//! `scoring`, both ways: the server decodes requests with them and encodes profiles and verdicts,
//! the tools encode generated events and model bundles to send.
//!
//! It owns no rules of its own: it must not validate (that is `client::validate`), store or score.
//! Proto events are validated (`client::validate`) before they are converted, so the conversion
//! of a validated event cannot fail; it still reports rather than panics if called on one that
//! was not.

use std::collections::BTreeMap;

use client::proto;
use scoring::scorer::Action;
use scoring::{Event, EventKind, Geo, Outcome, Profile};

pub fn kind_from_proto(k: i32) -> Option<EventKind> {
    Some(match proto::EventKind::try_from(k).ok()? {
        proto::EventKind::Unspecified => return None,
        proto::EventKind::Login => EventKind::Login,
        proto::EventKind::Logout => EventKind::Logout,
        proto::EventKind::ApiCall => EventKind::ApiCall,
        proto::EventKind::DataAccess => EventKind::DataAccess,
        proto::EventKind::DeviceEvent => EventKind::DeviceEvent,
        proto::EventKind::PrivilegeChange => EventKind::PrivilegeChange,
        proto::EventKind::PasswordChange => EventKind::PasswordChange,
        proto::EventKind::MfaChallenge => EventKind::MfaChallenge,
    })
}

pub fn kind_to_proto(k: &EventKind) -> proto::EventKind {
    match k {
        EventKind::Login => proto::EventKind::Login,
        EventKind::Logout => proto::EventKind::Logout,
        EventKind::ApiCall => proto::EventKind::ApiCall,
        EventKind::DataAccess => proto::EventKind::DataAccess,
        EventKind::DeviceEvent => proto::EventKind::DeviceEvent,
        EventKind::PrivilegeChange => proto::EventKind::PrivilegeChange,
        EventKind::PasswordChange => proto::EventKind::PasswordChange,
        EventKind::MfaChallenge => proto::EventKind::MfaChallenge,
    }
}

/// A validated proto event as a domain event. `Err` names the field that validation should have
/// caught.
pub fn event_from_proto(e: &proto::Event) -> Result<Event, &'static str> {
    let outcome = match proto::Outcome::try_from(e.outcome) {
        Ok(proto::Outcome::Success) => Outcome::Success,
        Ok(proto::Outcome::Failure) => Outcome::Failure,
        _ => return Err("outcome"),
    };
    let ip = match &e.ip {
        Some(s) => Some(s.parse().map_err(|_| "ip")?),
        None => None,
    };
    Ok(Event {
        event_id: e.event_id.clone(),
        user_id: e.user_id.clone(),
        time_ms: e.time_ms,
        kind: kind_from_proto(e.kind).ok_or("kind")?,
        outcome,
        ip,
        geo: e.geo.as_ref().map(|g| Geo { lat: g.lat, lon: g.lon, country: g.country.clone() }),
        asn: e.asn,
        device_id: e.device_id.clone(),
        user_agent: e.user_agent.clone(),
        resource: e.resource.clone(),
        bytes: e.bytes,
        attributes: e.attributes.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<BTreeMap<_, _>>(),
    })
}

pub fn event_to_proto(e: &Event) -> proto::Event {
    proto::Event {
        event_id: e.event_id.clone(),
        user_id: e.user_id.clone(),
        time_ms: e.time_ms,
        kind: kind_to_proto(&e.kind) as i32,
        outcome: match e.outcome {
            Outcome::Success => proto::Outcome::Success,
            Outcome::Failure => proto::Outcome::Failure,
        } as i32,
        ip: e.ip.map(|ip| ip.to_string()),
        geo: e.geo.as_ref().map(|g| proto::Geo { lat: g.lat, lon: g.lon, country: g.country.clone() }),
        asn: e.asn,
        device_id: e.device_id.clone(),
        user_agent: e.user_agent.clone(),
        resource: e.resource.clone(),
        bytes: e.bytes,
        attributes: e.attributes.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    }
}

fn seen(set: &scoring::BoundedSet) -> Vec<proto::SeenEntry> {
    set.entries
        .iter()
        .map(|s| proto::SeenEntry {
            key: s.key.clone(),
            count: s.count,
            first_seen_ms: s.first_seen_ms,
            last_seen_ms: s.last_seen_ms,
        })
        .collect()
}

pub fn profile_to_proto(p: &Profile) -> proto::Profile {
    proto::Profile {
        user_id: p.user_id.clone(),
        events_applied: p.events_applied,
        first_seen_ms: p.first_seen_ms,
        last_seen_ms: p.last_seen_ms,
        hour_of_week: p.hour_of_week.clone(),
        devices: seen(&p.devices),
        countries: seen(&p.countries),
        asns: seen(&p.asns),
        ip_prefixes: seen(&p.ip_prefixes),
        resources: seen(&p.resources),
        last_login: p.last_login.as_ref().map(|l| proto::LastLogin {
            time_ms: l.time_ms,
            lat: l.lat,
            lon: l.lon,
            country: l.country.clone(),
            ip: l.ip.map(|ip| ip.to_string()).unwrap_or_default(),
        }),
        bytes_count: p.bytes.count,
        bytes_mean: p.bytes.mean,
        bytes_stddev: p.bytes.std_dev(),
        bytes_max: p.bytes.max,
        events_per_hour: p.rate.mean_per_hour().unwrap_or(0.0),
        failure_streak: p.failure_streak,
        failures_total: p.failures_total,
        successes_total: p.successes_total,
        recent_event_ids: p.recent_event_ids.iter().cloned().collect(),
        trusted_devices: p.trusted_devices.entries.iter().map(|e| e.key.clone()).collect(),
        trusted_countries: p.trusted_countries.entries.iter().map(|e| e.key.clone()).collect(),
        compromised_event_id: p.compromised.as_ref().map(|c| c.event_id.clone()).unwrap_or_default(),
        compromised_marked_at_ms: p.compromised.as_ref().map_or(0, |c| c.marked_at_ms),
        marked_malicious: p.marked_malicious,
        marked_benign: p.marked_benign,
        analyst_override: p.analyst_override.as_ref().map(override_to_proto),
    }
}

pub fn action_to_proto(a: Action) -> proto::Action {
    match a {
        Action::Allow => proto::Action::Allow,
        Action::Challenge => proto::Action::Challenge,
        Action::Block => proto::Action::Block,
    }
}

pub fn override_to_proto(o: &scoring::Override) -> proto::AnalystOverride {
    proto::AnalystOverride { action: action_to_proto(o.action) as i32, note: o.note.clone() }
}

fn override_from_proto(o: proto::AnalystOverride, field: &str) -> Result<scoring::Override, String> {
    let action = match proto::Action::try_from(o.action) {
        Ok(proto::Action::Allow) => Action::Allow,
        Ok(proto::Action::Challenge) => Action::Challenge,
        Ok(proto::Action::Block) => Action::Block,
        _ => return Err(format!("{field}.action: {} is not ALLOW, CHALLENGE or BLOCK", o.action)),
    };
    Ok(scoring::Override { action, note: o.note })
}

/// An override write from its request form; the error names the field.
pub fn override_write_from_proto(r: proto::SetOverrideRequest) -> Result<scoring::OverrideWrite, String> {
    let value = r.value.map(|v| override_from_proto(v, "value")).transpose()?;
    let expected = match (r.compare, r.expected) {
        (false, Some(_)) => return Err("expected: given without compare".into()),
        (false, None) => None,
        (true, e) => Some(e.map(|e| override_from_proto(e, "expected")).transpose()?),
    };
    let write = scoring::OverrideWrite { write_id: r.write_id, value, expected };
    write.validate()?;
    Ok(write)
}

/// An analyst's feedback from its request form; `now_ms` stamps a mark. The error names the field.
pub fn feedback_from_proto(
    kind: Option<proto::feedback_request::Kind>,
    now_ms: i64,
) -> Result<scoring::Feedback, String> {
    use proto::feedback_request::Kind;
    let feedback = match kind {
        None => return Err("field `kind`: one of mark_event, trust_device, trust_country is required".into()),
        Some(Kind::MarkEvent(m)) => {
            scoring::Feedback::MarkEvent { event_id: m.event_id, malicious: m.malicious, at_ms: now_ms }
        }
        Some(Kind::TrustDevice(device_id)) => scoring::Feedback::TrustDevice { device_id },
        Some(Kind::TrustCountry(country)) => scoring::Feedback::TrustCountry { country },
    };
    feedback.validate()?;
    Ok(feedback)
}

/// A model bundle as sent to `DeployModel`.
pub fn bundle_to_proto(b: scoring::scorer::ModelBundle) -> proto::ModelFiles {
    proto::ModelFiles {
        manifest_json: b.manifest_json,
        iforest_onnx: b.iforest_onnx,
        autoencoder_onnx: b.autoencoder_onnx,
        gbt_onnx: b.gbt_onnx,
    }
}

pub fn bundle_from_proto(f: proto::ModelFiles) -> scoring::scorer::ModelBundle {
    scoring::scorer::ModelBundle {
        manifest_json: f.manifest_json,
        iforest_onnx: f.iforest_onnx,
        autoencoder_onnx: f.autoencoder_onnx,
        gbt_onnx: f.gbt_onnx,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::{Generator, GeneratorConfig};

    #[test]
    fn generated_events_pass_api_validation_and_round_trip() {
        let mut g = Generator::new(GeneratorConfig { seed: 5, users: 100, ..GeneratorConfig::default() });
        let limits = client::Limits::default();
        for i in 0..20_000 {
            let ev = g.next_event();
            let p = event_to_proto(&ev);
            client::validate::validate_event(&p, i, ev.time_ms, &limits).unwrap_or_else(|e| panic!("{e}: {ev:?}"));
            assert_eq!(event_from_proto(&p).unwrap(), ev);
        }
    }

    #[test]
    fn json_lines_form_parses_and_rejects_misspelt_fields() {
        let line = r#"{"event_id":"e1","user_id":"u","time_ms":1790000000000,"kind":"login","outcome":"success","ip":"192.0.2.1"}"#;
        let ev: Event = serde_json::from_str(line).unwrap();
        assert_eq!(event_to_proto(&ev).kind, proto::EventKind::Login as i32);
        let bad = r#"{"event_id":"e1","user_id":"u","time_ms":1,"kind":"login","outcome":"success","devce_id":"x"}"#;
        assert!(serde_json::from_str::<Event>(bad).unwrap_err().to_string().contains("devce_id"));
        let unknown_kind = r#"{"event_id":"e1","user_id":"u","time_ms":1,"kind":"teleport","outcome":"success"}"#;
        assert!(serde_json::from_str::<Event>(unknown_kind).unwrap_err().to_string().contains("teleport"));
    }
}
