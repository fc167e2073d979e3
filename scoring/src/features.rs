//! Features of one event against the user's profile as it was just before the event.
//!
//! [`Observation::observe`] reads `(profile before the event, event, source context)` and keeps the
//! raw quantities (kilometres, minutes, counts) that detectors quote as evidence;
//! [`Observation::features`] turns them into the model input vector, in the order of
//! [`FEATURE_NAMES`]. The same code runs in the Raft state machine on apply, in `traceo eval` and
//! in `traceo features` (the training data), so training and serving cannot drift apart.
//!
//! The profile part is a pure function of the profile and the event, so every replica computes
//! the same features for the same log entry. The source part ([`SourceWindow`]: failed logins per
//! source address across users) is context the node keeps for the shards it holds; see its docs.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::calendar::{hour_of_day, hour_of_week, MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE};
use crate::detmath::log2;
use crate::event::{Event, EventKind, Outcome};
use crate::geo::{haversine_km, mix64};
use crate::profile::{ip_prefix, Profile, HOUR_BINS};

/// Model input names, in input order. Units and definitions: docs/SCORING.md.
pub const FEATURE_NAMES: [&str; 22] = [
    "speed_log2_kmh",
    "distance_log2_km",
    "new_country",
    "new_asn",
    "new_ip_prefix",
    "new_device",
    "new_resource",
    "country_rarity",
    "hour_of_week_surprise",
    "hour_of_day_surprise",
    "dormant_log2_days",
    "bytes_z",
    "rate_log2_ratio",
    "failure_streak_log2",
    "auth_failure",
    "success_after_failures_log2",
    "privilege_recency",
    "history_log2_events",
    "source_failed_users_log2",
    "kind_auth",
    "kind_data",
    "kind_account_change",
];

/// Number of model inputs.
pub const N_FEATURES: usize = FEATURE_NAMES.len();

/// The raw quantities behind the features of one event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub kind: EventKind,
    pub outcome: Outcome,
    /// Events folded into the profile before this one.
    pub history_events: u64,
    /// Days between the profile's first event and this one.
    pub history_days: f64,
    /// Distance from the last successful geolocated login, km (None: no geo or no such login).
    pub distance_km: Option<f64>,
    /// Minutes since that login (≥ 0; an earlier event gets None).
    pub minutes_since_login: Option<f64>,
    /// Implied speed, km/h, over at least one minute.
    pub speed_kmh: Option<f64>,
    pub from_country: Option<String>,
    pub country: Option<String>,
    pub new_country: bool,
    pub new_asn: bool,
    pub new_ip_prefix: bool,
    pub new_device: bool,
    pub new_resource: bool,
    /// 1 − this country's share of the remembered country sightings (1 when unseen or no geo).
    pub country_rarity: f64,
    /// −log2 of the smoothed probability of this hour-of-week, minus log2(168): 0 = as likely as
    /// a uniform user, +4 = 16× rarer.
    pub hour_of_week_surprise: f64,
    /// The same over the 24 hours of the day, minus log2(24).
    pub hour_of_day_surprise: f64,
    /// UTC hour of the event.
    pub hour_utc: u8,
    /// Days since the previous event (0 for the first).
    pub dormant_days: f64,
    pub bytes: Option<u64>,
    /// (log2 bytes − mean) / max(std, 0.5) over the user's history, 0 without enough history.
    pub bytes_z: f64,
    /// 2^mean of log2 bytes: the user's typical volume.
    pub typical_bytes: f64,
    /// Events in this event's hour, this one included.
    pub hour_count: u64,
    /// The user's mean events per hour (empty hours included).
    pub mean_per_hour: f64,
    /// Consecutive failed authentications before this event.
    pub failure_streak: u32,
    /// Minutes since the latest successful privilege change (this one: 0).
    pub minutes_since_privilege: Option<f64>,
    /// Other users with failed authentications from this address within the source window.
    pub source_failed_users: u32,
    /// The analyst's malicious mark in force for this event (not a model input).
    pub compromised: Option<CompromiseMark>,
    /// The analyst's override in force (not a model input; applied to the verdict).
    pub analyst_override: Option<crate::Override>,
}

/// How long after an analyst's malicious mark the user's events count as compromised. Events
/// before the mark count too (the compromise was found after the fact).
pub const COMPROMISE_WINDOW_MS: i64 = 7 * MS_PER_DAY;

/// An analyst's malicious mark, as seen from one event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompromiseMark {
    /// The event marked malicious.
    pub event_id: String,
    pub marked_at_ms: i64,
    /// From the mark to this event, minutes (negative: the event is older than the mark).
    pub minutes_after_mark: f64,
}

/// Events a profile needs before novelty counts (the learning period).
pub const LEARNING_EVENTS: u64 = 10;

impl Observation {
    /// Reads the event against the profile before it. `source_failed_users` comes from
    /// [`SourceWindow::failed_users`] (0 where no window is kept).
    pub fn observe(p: &Profile, ev: &Event, source_failed_users: u32) -> Observation {
        let t = ev.time_ms;
        let fresh = p.events_applied == 0;
        let country = ev.geo.as_ref().map(|g| g.country.clone());
        let (mut distance_km, mut minutes_since_login, mut speed_kmh, mut from_country) = (None, None, None, None);
        if let (Some(g), Some(last)) = (&ev.geo, &p.last_login) {
            if t >= last.time_ms {
                let km = haversine_km(last.lat, last.lon, g.lat, g.lon);
                let minutes = (t - last.time_ms) as f64 / MS_PER_MINUTE as f64;
                distance_km = Some(km);
                minutes_since_login = Some(minutes);
                speed_kmh = Some(km / (minutes.max(1.0) / 60.0));
                from_country = Some(last.country.clone());
            }
        }
        let country_rarity = match &ev.geo {
            Some(g) => {
                let total = p.countries.total_count();
                let seen = p.countries.get(&g.country).map_or(0, |e| e.count);
                if total == 0 {
                    1.0
                } else {
                    1.0 - seen as f64 / total as f64
                }
            }
            None => 0.0,
        };
        let (week, day) = hour_surprise(p, t);
        let typical = p.log_bytes.mean;
        let bytes_z = match ev.bytes {
            Some(b) if b >= 1 && p.log_bytes.count >= 5 => {
                ((log2(b as f64) - typical) / p.log_bytes.std_dev().max(0.5)).clamp(-10.0, 20.0)
            }
            _ => 0.0,
        };
        let hour = t.div_euclid(MS_PER_HOUR);
        let hour_count =
            if p.rate.bucket_count > 0 && p.rate.bucket_hour == hour { p.rate.bucket_count + 1 } else { 1 };
        // Known: seen in the user's events, or vouched for by an analyst.
        let novel = |known: &[&crate::BoundedSet], key: Option<&str>| -> bool {
            match key.filter(|k| !k.is_empty()) {
                Some(k) => !known.iter().any(|set| set.contains(k)),
                None => false,
            }
        };
        let compromised =
            p.compromised.as_ref().filter(|c| t <= c.marked_at_ms.saturating_add(COMPROMISE_WINDOW_MS)).map(|c| {
                CompromiseMark {
                    event_id: c.event_id.clone(),
                    marked_at_ms: c.marked_at_ms,
                    minutes_after_mark: t.saturating_sub(c.marked_at_ms) as f64 / MS_PER_MINUTE as f64,
                }
            });
        Observation {
            kind: ev.kind,
            outcome: ev.outcome,
            history_events: p.events_applied,
            history_days: if fresh { 0.0 } else { (t - p.first_seen_ms).max(0) as f64 / MS_PER_DAY as f64 },
            distance_km,
            minutes_since_login,
            speed_kmh,
            from_country,
            new_country: novel(&[&p.countries, &p.trusted_countries], country.as_deref()),
            new_asn: ev.asn.is_some_and(|a| !p.asns.contains(&a.to_string())),
            new_ip_prefix: ev.ip.is_some_and(|ip| !p.ip_prefixes.contains(&ip_prefix(&ip))),
            new_device: novel(&[&p.devices, &p.trusted_devices], ev.device_id.as_deref()),
            new_resource: novel(&[&p.resources], ev.resource.as_deref()),
            country,
            country_rarity,
            hour_of_week_surprise: week,
            hour_of_day_surprise: day,
            hour_utc: hour_of_day(t),
            dormant_days: if fresh { 0.0 } else { (t - p.last_seen_ms).max(0) as f64 / MS_PER_DAY as f64 },
            bytes: ev.bytes,
            bytes_z,
            typical_bytes: if p.log_bytes.count > 0 { typical.exp2() } else { 0.0 },
            hour_count,
            mean_per_hour: p.rate.mean_per_hour().unwrap_or(0.0),
            failure_streak: p.failure_streak,
            minutes_since_privilege: match (ev.kind, ev.outcome) {
                (EventKind::PrivilegeChange, Outcome::Success) => Some(0.0),
                _ => p.last_privilege_change_ms.filter(|&pt| t >= pt).map(|pt| (t - pt) as f64 / MS_PER_MINUTE as f64),
            },
            source_failed_users,
            compromised,
            analyst_override: p.analyst_override.clone(),
        }
    }

    /// True once the profile has enough history for novelty to mean something.
    pub fn learned(&self) -> bool {
        self.history_events >= LEARNING_EVENTS
    }

    pub fn is_auth_success(&self) -> bool {
        self.kind.is_authentication() && self.outcome == Outcome::Success
    }

    pub fn is_auth_failure(&self) -> bool {
        self.kind.is_authentication() && self.outcome == Outcome::Failure
    }

    /// The model input vector, in the order of [`FEATURE_NAMES`].
    pub fn features(&self) -> [f32; N_FEATURES] {
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        let l1p = |x: f64| log2(1.0 + x.max(0.0));
        let learned = self.learned();
        let f = [
            self.speed_kmh.map_or(0.0, l1p),
            self.distance_km.map_or(0.0, l1p),
            flag(learned && self.new_country),
            flag(learned && self.new_asn),
            flag(learned && self.new_ip_prefix),
            flag(learned && self.new_device),
            flag(learned && self.new_resource),
            if learned { self.country_rarity } else { 0.0 },
            if learned { self.hour_of_week_surprise } else { 0.0 },
            if learned { self.hour_of_day_surprise } else { 0.0 },
            l1p(self.dormant_days),
            self.bytes_z,
            log2((self.hour_count as f64 + 1.0) / (self.mean_per_hour + 1.0)),
            l1p(f64::from(self.failure_streak)),
            flag(self.is_auth_failure()),
            if self.is_auth_success() { l1p(f64::from(self.failure_streak)) } else { 0.0 },
            self.minutes_since_privilege.map_or(0.0, |m| 1.0 / (1.0 + m / 10.0)),
            l1p(self.history_events as f64),
            l1p(f64::from(self.source_failed_users)),
            flag(self.kind.is_authentication()),
            flag(matches!(self.kind, EventKind::DataAccess | EventKind::ApiCall)),
            flag(matches!(self.kind, EventKind::PrivilegeChange | EventKind::PasswordChange)),
        ];
        f.map(|x| x as f32)
    }
}

/// Surprise of the event's hour-of-week and hour-of-day against the profile's decayed histogram
/// (decayed to the event's time; neighbours count half; add-0.1 smoothing).
fn hour_surprise(p: &Profile, t: i64) -> (f64, f64) {
    if p.hour_of_week.len() != HOUR_BINS || p.events_applied == 0 {
        return (0.0, 0.0);
    }
    let h = &p.hour_of_week;
    let total: f64 = h.iter().map(|&x| f64::from(x)).sum();
    let b = hour_of_week(t);
    let at = |i: usize| f64::from(h[i % HOUR_BINS]);
    let week = (at(b) + 0.5 * (at(b + HOUR_BINS - 1) + at(b + 1)) + 0.1) / (2.0 * total + 0.1 * HOUR_BINS as f64);
    let mut day = [0.0f64; 24];
    for (i, &x) in h.iter().enumerate() {
        day[i % 24] += f64::from(x);
    }
    let d = b % 24;
    let hd = (day[d] + 0.5 * (day[(d + 23) % 24] + day[(d + 1) % 24]) + 0.1) / (2.0 * total + 2.4);
    (-log2(week) - log2(HOUR_BINS as f64), -log2(hd) - log2(24.0))
}

/// Failed authentications per source address over a sliding window of event time, across users:
/// the cross-user signal of password spray and credential stuffing.
///
/// It is scoring context, not replicated state: each node keeps one for the events of the shards
/// it applies, so its counts cover those users only (a spray over many users is seen on every
/// node, scaled by the node's share of users). Bounded: at most `max_sources` addresses and
/// `MAX_PER_SOURCE` failures per address; the least recently failing address is dropped first.
#[derive(Debug)]
pub struct SourceWindow {
    window_ms: i64,
    max_sources: usize,
    /// address → (time, user hash) of recent failures, oldest first.
    sources: BTreeMap<IpAddr, VecDeque<(i64, u64)>>,
    /// (last failure time, address), to find the stalest address.
    by_time: BTreeMap<(i64, IpAddr), ()>,
}

const MAX_PER_SOURCE: usize = 256;

impl Default for SourceWindow {
    /// One hour, 100,000 addresses.
    fn default() -> Self {
        SourceWindow::new(3_600_000, 100_000)
    }
}

impl SourceWindow {
    pub fn new(window_ms: i64, max_sources: usize) -> Self {
        SourceWindow { window_ms, max_sources: max_sources.max(1), sources: BTreeMap::new(), by_time: BTreeMap::new() }
    }

    /// Distinct users other than `ev`'s with failed authentications from `ev`'s address in the
    /// window before `ev`.
    pub fn failed_users(&self, ev: &Event) -> u32 {
        let (Some(ip), me) = (ev.ip, user_hash(&ev.user_id)) else { return 0 };
        let Some(q) = self.sources.get(&ip) else { return 0 };
        let from = ev.time_ms - self.window_ms;
        let mut users: Vec<u64> =
            q.iter().filter(|(t, u)| *t >= from && *t <= ev.time_ms && *u != me).map(|(_, u)| *u).collect();
        users.sort_unstable();
        users.dedup();
        users.len() as u32
    }

    /// Records `ev` if it is a failed authentication with an address.
    pub fn record(&mut self, ev: &Event) {
        let Some(ip) = ev.ip else { return };
        if !(ev.kind.is_authentication() && ev.outcome == Outcome::Failure) {
            return;
        }
        let t = ev.time_ms;
        let q = self.sources.entry(ip).or_default();
        if let Some(&(last, _)) = q.back() {
            self.by_time.remove(&(last, ip));
        }
        let pos = q.partition_point(|(x, _)| *x <= t);
        q.insert(pos, (t, user_hash(&ev.user_id)));
        let newest = q.back().map_or(t, |(x, _)| *x);
        while q.len() > MAX_PER_SOURCE || q.front().is_some_and(|(x, _)| *x < newest - self.window_ms) {
            q.pop_front();
        }
        self.by_time.insert((newest, ip), ());
        while self.sources.len() > self.max_sources {
            let Some((&(_, stale), _)) = self.by_time.iter().next() else { break };
            self.by_time.remove(&(self.sources[&stale].back().map_or(0, |(x, _)| *x), stale));
            self.sources.remove(&stale);
        }
    }

    pub fn len(&self) -> usize {
        self.sources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }
}

fn user_hash(user: &str) -> u64 {
    user.bytes().fold(0x51_7cc1_b727_220a, |h, b| mix64(h ^ u64::from(b)))
}

#[cfg(test)]
#[path = "features_tests.rs"]
mod tests;
