//! Explainable rule detectors: each fires on an [`Observation`] with a reason, points and the
//! evidence an analyst can check ("9,400 km in 40 min = 14,100 km/h from NO to AU").
//!
//! Thresholds live in [`RuleConfig`] (serde, so a node's TOML can override them); points say how
//! much a reason weighs. Novelty rules stay quiet during the learning period
//! ([`Observation::learned`]).

use serde::{Deserialize, Serialize};

use crate::event::EventKind;
use crate::features::Observation;

/// Thresholds and weights of the rule detectors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleConfig {
    /// Implied speed between two logins above which travel is impossible, km/h.
    pub impossible_travel_kmh: f64,
    /// Shorter hops are ignored (geo-IP noise, neighbouring cities), km.
    pub impossible_travel_min_km: f64,
    /// Hour surprise (log2 of how much rarer than a uniform user) that counts as unusual.
    pub unusual_hour_surprise: f64,
    /// Events of history before the unusual-hour rule speaks.
    pub unusual_hour_min_history: u64,
    /// z-score of log2(bytes) against the user's own history.
    pub volume_spike_z: f64,
    /// Failures in a row before a success that make it brute force.
    pub brute_force_failures: u32,
    /// Other users failing from the same address within the window (spray / stuffing).
    pub spray_users: u32,
    /// Days without any event before a successful login counts as a dormant account waking.
    pub dormant_days: f64,
    /// Minutes after a privilege change within which mass access counts.
    pub privilege_window_min: f64,
    /// Events in the hour, after a privilege change, that count as mass access.
    pub mass_access_events: u64,
    /// Points of an event within the window of an analyst's malicious mark
    /// ([`crate::features::COMPROMISE_WINDOW_MS`]).
    pub compromise_points: f64,
}

impl Default for RuleConfig {
    fn default() -> Self {
        RuleConfig {
            impossible_travel_kmh: 1_000.0,
            impossible_travel_min_km: 500.0,
            unusual_hour_surprise: 4.0,
            unusual_hour_min_history: 50,
            volume_spike_z: 3.0,
            brute_force_failures: 5,
            spray_users: 4,
            dormant_days: 14.0,
            privilege_window_min: 60.0,
            mass_access_events: 12,
            compromise_points: 60.0,
        }
    }
}

impl RuleConfig {
    /// Every threshold must be positive (and finite); the error names the first that is not.
    pub fn validate(&self) -> Result<(), String> {
        let floats = [
            ("impossible_travel_kmh", self.impossible_travel_kmh),
            ("impossible_travel_min_km", self.impossible_travel_min_km),
            ("unusual_hour_surprise", self.unusual_hour_surprise),
            ("volume_spike_z", self.volume_spike_z),
            ("dormant_days", self.dormant_days),
            ("privilege_window_min", self.privilege_window_min),
            ("compromise_points", self.compromise_points),
        ];
        let ints = [
            ("unusual_hour_min_history", self.unusual_hour_min_history),
            ("brute_force_failures", u64::from(self.brute_force_failures)),
            ("spray_users", u64::from(self.spray_users)),
            ("mass_access_events", self.mass_access_events),
        ];
        if let Some((name, v)) = floats.iter().find(|(_, v)| !v.is_finite() || *v <= 0.0) {
            return Err(format!("{name}: must be a positive number, got {v}"));
        }
        if let Some((name, _)) = ints.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name}: must be positive"));
        }
        Ok(())
    }
}

/// Why an event looks suspicious.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// Stable machine name, e.g. `impossible_travel`.
    pub code: String,
    /// Contribution to the score (rules: points; models: the combiner's term).
    pub points: f64,
    /// Human-readable evidence.
    pub evidence: String,
}

impl Reason {
    fn new(code: &str, points: f64, evidence: String) -> Reason {
        Reason { code: code.to_owned(), points, evidence }
    }
}

/// Runs every rule on `o`; reasons come in descending points.
pub fn detect(o: &Observation, cfg: &RuleConfig) -> Vec<Reason> {
    let mut out = Vec::new();
    let learned = o.learned();
    if let (Some(km), Some(min), Some(kmh)) = (o.distance_km, o.minutes_since_login, o.speed_kmh) {
        if o.is_auth_success() && km >= cfg.impossible_travel_min_km && kmh > cfg.impossible_travel_kmh {
            let from = o.from_country.as_deref().unwrap_or("?");
            let to = o.country.as_deref().unwrap_or("?");
            let points = 30.0 + 10.0 * (kmh / cfg.impossible_travel_kmh).log2().min(3.0);
            out.push(Reason::new(
                "impossible_travel",
                points,
                format!("{} km in {} = {} km/h from {from} to {to}", thousands(km), duration(min), thousands(kmh)),
            ));
        }
    }
    if learned {
        let c = o.country.as_deref().unwrap_or("?");
        if o.new_country {
            out.push(Reason::new("new_country", 15.0, format!("first event from {c}")));
        }
        if o.new_device {
            out.push(Reason::new("new_device", 8.0, "device never seen for this user".to_owned()));
        }
        if o.new_asn {
            out.push(Reason::new("new_asn", 5.0, "network (ASN) never seen for this user".to_owned()));
        }
        if o.new_ip_prefix && !o.new_asn {
            out.push(Reason::new("new_ip_prefix", 2.0, "address range never seen for this user".to_owned()));
        }
    }
    if o.history_events >= cfg.unusual_hour_min_history
        && o.hour_of_day_surprise >= cfg.unusual_hour_surprise
        && o.hour_of_week_surprise >= cfg.unusual_hour_surprise
    {
        out.push(Reason::new(
            "unusual_hour",
            8.0 + 2.0 * (o.hour_of_day_surprise - cfg.unusual_hour_surprise).min(6.0),
            format!(
                "{:02}:00 UTC is about {}× rarer for this user than an even spread",
                o.hour_utc,
                thousands(o.hour_of_day_surprise.exp2())
            ),
        ));
    }
    if let Some(b) = o.bytes {
        if o.bytes_z >= cfg.volume_spike_z {
            out.push(Reason::new(
                "volume_spike",
                12.0 + 3.0 * (o.bytes_z - cfg.volume_spike_z).min(6.0),
                format!(
                    "{} bytes, {}× the user's typical {} (z = {:.1})",
                    thousands(b as f64),
                    thousands(b as f64 / o.typical_bytes.max(1.0)),
                    thousands(o.typical_bytes),
                    o.bytes_z
                ),
            ));
        }
    }
    if o.is_auth_success() && o.failure_streak >= cfg.brute_force_failures {
        out.push(Reason::new(
            "brute_force",
            35.0,
            format!("success after {} failed attempts in a row", o.failure_streak),
        ));
    } else if o.is_auth_failure() && o.failure_streak + 1 >= 2 * cfg.brute_force_failures {
        out.push(Reason::new("failure_streak", 15.0, format!("{} failed attempts in a row", o.failure_streak + 1)));
    }
    if o.kind.is_authentication() && o.source_failed_users >= cfg.spray_users {
        let what = if o.is_auth_success() { "success" } else { "attempt" };
        out.push(Reason::new(
            "spray_or_stuffing",
            if o.is_auth_success() { 35.0 } else { 20.0 },
            format!("{what} from an address that failed for {} other users in the last hour", o.source_failed_users),
        ));
    }
    if o.is_auth_success() && o.history_events > 0 && o.dormant_days >= cfg.dormant_days {
        out.push(Reason::new(
            "dormant_account",
            20.0,
            format!("first login after {:.0} days without activity", o.dormant_days),
        ));
    }
    if let Some(m) = o.minutes_since_privilege {
        let mass = o.hour_count >= cfg.mass_access_events && matches!(o.kind, EventKind::DataAccess);
        if m <= cfg.privilege_window_min && mass {
            out.push(Reason::new(
                "privilege_then_mass_access",
                25.0,
                format!("{} events this hour, {:.0} min after a privilege grant", o.hour_count, m),
            ));
        }
    }
    if let Some(c) = &o.compromised {
        let m = c.minutes_after_mark;
        let when = if m >= 0.0 { format!("{} ago", duration(m)) } else { format!("{} after this event", duration(-m)) };
        out.push(Reason::new(
            "analyst_confirmed_compromise",
            cfg.compromise_points,
            format!("event {} of this user was marked malicious by an analyst {when}", c.event_id),
        ));
    }
    out.sort_by(|a, b| b.points.total_cmp(&a.points));
    out
}

/// Sum of the reasons' points.
pub fn points(reasons: &[Reason]) -> f64 {
    reasons.iter().map(|r| r.points).sum()
}

/// `12345.6` → `12,346`.
fn thousands(x: f64) -> String {
    let n = x.round() as i64;
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Minutes as `40 min` or `3 h 5 min` or `12 days`.
fn duration(min: f64) -> String {
    if min < 60.0 {
        format!("{min:.0} min")
    } else if min < 48.0 * 60.0 {
        format!("{} h {} min", (min / 60.0).floor(), (min % 60.0).round())
    } else {
        format!("{:.0} days", min / 1440.0)
    }
}

#[cfg(test)]
#[path = "detectors_tests.rs"]
mod tests;
