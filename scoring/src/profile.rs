//! The user's behaviour profile and its deterministic fold.
//!
//! [`Profile::fold`] runs inside the Raft state machine on every replica, so it must give
//! bit-identical results everywhere: integer calendar arithmetic, ordered collections only, and
//! floating point restricted to basic IEEE operations ([`crate::detmath`]). No clock, no randomness.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::analyst_override::{Override, OverrideOutcome, OverrideWrite, RECENT_WRITES};
use crate::bounded::BoundedSet;
use crate::calendar::{hour_of_week, MS_PER_DAY, MS_PER_HOUR};
use crate::detmath::{exp2_neg, log2, powi_u64};
use crate::event::{Event, EventKind, Outcome};
use crate::feedback::Feedback;

/// Half-life of the hour-of-week histogram, in event time.
pub const HOUR_HALF_LIFE_MS: i64 = 14 * MS_PER_DAY;
/// Number of hour-of-week bins.
pub const HOUR_BINS: usize = 168;
/// Smoothing factor of the hourly event-rate EWMA (weight of the newest closed hour).
pub const RATE_EWMA_ALPHA: f64 = 0.1;

/// The last successful login that carried a location.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastLogin {
    pub time_ms: i64,
    pub lat: f64,
    pub lon: f64,
    pub country: String,
    pub ip: Option<IpAddr>,
}

/// The analyst's malicious mark in force: the user's account is taken to be compromised around it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compromise {
    /// The event marked malicious.
    pub event_id: String,
    /// When the analyst marked it (the feedback's `at_ms`).
    pub marked_at_ms: i64,
}

/// Count, mean, variance (Welford) and maximum of a stream of values.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct RunningStats {
    pub count: u64,
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
    pub max: u64,
}

impl RunningStats {
    pub fn push(&mut self, x: u64) {
        self.count += 1;
        let xf = x as f64;
        let delta = xf - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (xf - self.mean);
        self.max = self.max.max(x);
    }

    /// Sample variance (0 with fewer than two values).
    pub fn variance(&self) -> f64 {
        if self.count < 2 {
            0.0
        } else {
            self.m2 / (self.count - 1) as f64
        }
    }

    pub fn std_dev(&self) -> f64 {
        self.variance().sqrt()
    }
}

/// Count, mean and variance (Welford) of a stream of floating-point values.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct FloatStats {
    pub count: u64,
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
}

impl FloatStats {
    pub fn push(&mut self, x: f64) {
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Sample standard deviation (0 with fewer than two values).
    pub fn std_dev(&self) -> f64 {
        if self.count < 2 {
            0.0
        } else {
            (self.m2 / (self.count - 1) as f64).sqrt()
        }
    }
}

/// Events per hour of event time: the open hour's count and an EWMA of closed hours' counts.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct RateStats {
    /// Hour number (event time / 1 h) of the open bucket; meaningless while `bucket_count == 0`.
    pub bucket_hour: i64,
    pub bucket_count: u64,
    /// EWMA of the counts of closed hours, empty hours included.
    pub ewma: f64,
    /// The EWMA's total weight, 1 − (1 − α)^hours_closed, for bias correction while young.
    pub ewma_weight: f64,
    pub hours_closed: u64,
}

impl RateStats {
    /// Counts one event. An event for an hour already closed adds exactly the weight it would
    /// have had in order; one for a later hour closes the open bucket and the empty hours between.
    pub fn observe(&mut self, time_ms: i64) {
        let hour = time_ms.div_euclid(MS_PER_HOUR);
        if self.bucket_count == 0 {
            self.bucket_hour = hour;
            self.bucket_count = 1;
            return;
        }
        let keep = 1.0 - RATE_EWMA_ALPHA;
        if hour == self.bucket_hour {
            self.bucket_count += 1;
        } else if hour > self.bucket_hour {
            self.ewma = self.ewma * keep + RATE_EWMA_ALPHA * self.bucket_count as f64;
            self.ewma_weight = self.ewma_weight * keep + RATE_EWMA_ALPHA;
            let empty = hour.abs_diff(self.bucket_hour) - 1;
            let decay = powi_u64(keep, empty);
            self.ewma *= decay;
            self.ewma_weight = 1.0 - (1.0 - self.ewma_weight) * decay;
            self.hours_closed = self.hours_closed.saturating_add(empty + 1);
            self.bucket_hour = hour;
            self.bucket_count = 1;
        } else {
            let age = self.bucket_hour.abs_diff(hour) - 1;
            self.ewma += RATE_EWMA_ALPHA * powi_u64(keep, age);
        }
    }

    /// Bias-corrected mean events per closed hour, `None` before the first hour closes.
    pub fn mean_per_hour(&self) -> Option<f64> {
        (self.ewma_weight > 0.0).then(|| self.ewma / self.ewma_weight)
    }
}

/// Everything the cluster keeps about one user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Profile {
    pub user_id: String,
    /// Number of events folded in (the caller folds each distinct event once).
    pub events_applied: u64,
    /// Smallest event time folded in.
    pub first_seen_ms: i64,
    /// Largest event time folded in.
    pub last_seen_ms: i64,
    /// 168 exponentially decayed counts, index = UTC weekday (Monday = 0) × 24 + hour.
    pub hour_of_week: Vec<f32>,
    /// Event time the histogram is decayed to (the largest event time folded in).
    pub hour_decay_ref_ms: i64,
    /// Device ids (an empty id counts as absent).
    pub devices: BoundedSet,
    pub countries: BoundedSet,
    /// ASNs as decimal text.
    pub asns: BoundedSet,
    /// IPv4 /24 and IPv6 /48 prefixes as text, see [`ip_prefix`].
    pub ip_prefixes: BoundedSet,
    /// Resources (an empty one counts as absent).
    pub resources: BoundedSet,
    pub last_login: Option<LastLogin>,
    /// Over the `bytes` of events that carry it.
    pub bytes: RunningStats,
    /// Over log2(bytes) of events that carry `bytes` ≥ 1 (volumes are roughly log-normal).
    pub log_bytes: FloatStats,
    /// Event time of the latest successful privilege change.
    pub last_privilege_change_ms: Option<i64>,
    pub rate: RateStats,
    /// Consecutive failed Login / MfaChallenge events (in apply order); reset by a successful one.
    pub failure_streak: u32,
    /// Outcomes of all events.
    pub failures_total: u64,
    pub successes_total: u64,
    /// Count per [`EventKind::as_str`].
    pub kinds: BTreeMap<String, u64>,
    /// The last [`Profile::RECENT_IDS`] applied event ids, oldest first.
    pub recent_event_ids: VecDeque<String>,
    /// Devices an analyst vouched for (never "new"). Entry times are the order of trust (a
    /// sequence number, not event time), so a full set forgets the device trusted longest ago.
    pub trusted_devices: BoundedSet,
    /// Countries an analyst allowed (never "new"); times as in `trusted_devices`.
    pub trusted_countries: BoundedSet,
    /// The latest malicious mark not withdrawn by a benign mark of the same event.
    pub compromised: Option<Compromise>,
    /// Feedback verdicts applied (each feedback entry is applied once by the caller).
    pub marked_malicious: u32,
    pub marked_benign: u32,
    /// The analyst's override of the verdicts' action ([`crate::analyst_override`]).
    pub analyst_override: Option<Override>,
    /// Ids of the last [`RECENT_WRITES`] override writes applied, oldest first (retries of
    /// them answer `Applied` without applying again).
    pub override_writes: VecDeque<String>,
}

/// Records `key` as trusted, newer than everything already in `set` (the order of trust is its
/// clock), so it is always remembered and a full set evicts the key trusted longest ago.
fn trust(set: &mut BoundedSet, key: &str) {
    let seq = set.entries.iter().map(|e| e.last_seen_ms).max().map_or(1, |m| m.saturating_add(1));
    set.observe(key, seq);
}

/// The prefix an address is remembered by: IPv4 /24 (`203.0.113.0/24`), IPv6 /48
/// (`2001:db8:1::/48`); IPv4-mapped IPv6 addresses count as IPv4.
pub fn ip_prefix(ip: &IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

impl Profile {
    pub const RECENT_IDS: usize = 64;

    pub fn new(user_id: impl Into<String>) -> Self {
        Profile { user_id: user_id.into(), hour_of_week: vec![0.0; HOUR_BINS], ..Profile::default() }
    }

    /// Folds one event into the profile. Deterministic; does not deduplicate (the caller skips
    /// event ids already applied). Events may come in any event-time order.
    pub fn fold(&mut self, ev: &Event) {
        let t = ev.time_ms;
        if self.user_id.is_empty() {
            self.user_id.clone_from(&ev.user_id);
        }
        if self.events_applied == 0 {
            self.first_seen_ms = t;
            self.last_seen_ms = t;
            self.hour_decay_ref_ms = t;
        } else {
            self.first_seen_ms = self.first_seen_ms.min(t);
            self.last_seen_ms = self.last_seen_ms.max(t);
        }
        self.events_applied += 1;
        self.fold_hour(t);

        if let Some(d) = ev.device_id.as_deref().filter(|d| !d.is_empty()) {
            self.devices.observe(d, t);
        }
        if let Some(geo) = &ev.geo {
            self.countries.observe(&geo.country, t);
        }
        if let Some(asn) = ev.asn {
            self.asns.observe(&asn.to_string(), t);
        }
        if let Some(ip) = &ev.ip {
            self.ip_prefixes.observe(&ip_prefix(ip), t);
        }
        if let Some(r) = ev.resource.as_deref().filter(|r| !r.is_empty()) {
            self.resources.observe(r, t);
        }
        if let (EventKind::Login, Outcome::Success, Some(geo)) = (ev.kind, ev.outcome, &ev.geo) {
            if self.last_login.as_ref().is_none_or(|l| t >= l.time_ms) {
                self.last_login =
                    Some(LastLogin { time_ms: t, lat: geo.lat, lon: geo.lon, country: geo.country.clone(), ip: ev.ip });
            }
        }
        if let Some(b) = ev.bytes {
            self.bytes.push(b);
            if b >= 1 {
                self.log_bytes.push(log2(b as f64));
            }
        }
        if (ev.kind, ev.outcome) == (EventKind::PrivilegeChange, Outcome::Success) {
            self.last_privilege_change_ms = Some(self.last_privilege_change_ms.map_or(t, |p| p.max(t)));
        }
        self.rate.observe(t);

        match ev.outcome {
            Outcome::Success => self.successes_total += 1,
            Outcome::Failure => self.failures_total += 1,
        }
        if ev.kind.is_authentication() {
            self.failure_streak = match ev.outcome {
                Outcome::Success => 0,
                Outcome::Failure => self.failure_streak.saturating_add(1),
            };
        }
        *self.kinds.entry(ev.kind.as_str().to_owned()).or_insert(0) += 1;

        if self.recent_event_ids.len() >= Self::RECENT_IDS {
            self.recent_event_ids.pop_front();
        }
        self.recent_event_ids.push_back(ev.event_id.clone());
    }

    /// Folds one analyst's feedback into the profile. Deterministic; touches only the feedback
    /// fields (not `events_applied`, `last_seen_ms`, …); does not deduplicate (the caller applies
    /// each feedback entry once).
    ///
    /// A malicious mark replaces the one in force unless that one is later (`at_ms`; a tie goes to
    /// the newer entry); a benign mark of the event in force withdraws it.
    pub fn apply_feedback(&mut self, f: &Feedback) {
        match f {
            Feedback::MarkEvent { event_id, malicious: true, at_ms } => {
                self.marked_malicious = self.marked_malicious.saturating_add(1);
                if self.compromised.as_ref().is_none_or(|c| *at_ms >= c.marked_at_ms) {
                    self.compromised = Some(Compromise { event_id: event_id.clone(), marked_at_ms: *at_ms });
                }
            }
            Feedback::MarkEvent { event_id, malicious: false, .. } => {
                self.marked_benign = self.marked_benign.saturating_add(1);
                if self.compromised.as_ref().is_some_and(|c| c.event_id == *event_id) {
                    self.compromised = None;
                }
            }
            Feedback::TrustDevice { device_id } => trust(&mut self.trusted_devices, device_id),
            Feedback::TrustCountry { country } => trust(&mut self.trusted_countries, country),
        }
    }

    /// Applies one write of the override register (see [`crate::analyst_override`]).
    /// Deterministic; touches only the override fields. A write id applied before answers
    /// `Applied` and changes nothing; a compare that fails changes nothing.
    pub fn write_override(&mut self, w: &OverrideWrite) -> OverrideOutcome {
        if self.override_writes.iter().any(|id| *id == w.write_id) {
            return OverrideOutcome::Applied;
        }
        if let Some(expected) = &w.expected {
            if *expected != self.analyst_override {
                return OverrideOutcome::Mismatch { current: self.analyst_override.clone() };
            }
        }
        self.analyst_override.clone_from(&w.value);
        if self.override_writes.len() >= RECENT_WRITES {
            self.override_writes.pop_front();
        }
        self.override_writes.push_back(w.write_id.clone());
        OverrideOutcome::Applied
    }

    /// Adds weight 1 at `t`'s bin. Decay only runs forwards: a later event decays the histogram
    /// to its time; an earlier one adds its weight already decayed to the reference time.
    fn fold_hour(&mut self, t: i64) {
        if self.hour_of_week.len() != HOUR_BINS {
            self.hour_of_week.resize(HOUR_BINS, 0.0);
        }
        let idx = hour_of_week(t);
        let half_lives = |dt: i64| dt as f64 / HOUR_HALF_LIFE_MS as f64;
        if t >= self.hour_decay_ref_ms {
            let f = exp2_neg(half_lives(t.saturating_sub(self.hour_decay_ref_ms)));
            if f != 1.0 {
                for b in &mut self.hour_of_week {
                    *b = (f64::from(*b) * f) as f32;
                }
            }
            self.hour_decay_ref_ms = t;
            self.hour_of_week[idx] += 1.0;
        } else {
            let w = exp2_neg(half_lives(self.hour_decay_ref_ms.saturating_sub(t)));
            self.hour_of_week[idx] = (f64::from(self.hour_of_week[idx]) + w) as f32;
        }
    }
}

#[cfg(test)]
#[path = "profile_tests.rs"]
mod tests;
