//! Emits one session of a simulated user: failed logins now and then, the login, MFA, activities
//! over the user's resources with log-normal volumes, and usually a logout.

use std::net::IpAddr;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::labels::{BENIGN_MONTH_END, BENIGN_NEW_DEVICE, BENIGN_ON_CALL, BENIGN_VPN, NORMAL};
use crate::planner::Planner;
use crate::population::Role;
use scoring::calendar::{MS_PER_DAY, MS_PER_MINUTE};
use scoring::event::{Event, EventKind, Geo, Outcome};
use scoring::geo::{CITIES, VPN_EXITS};

/// Where a session's traffic appears to come from.
pub(crate) struct Net {
    pub city: usize,
    pub asn: u32,
    pub ip: IpAddr,
}

/// One planned session; activities stop at `deadline` (e.g. a flight's departure).
pub(crate) struct Session {
    pub start: i64,
    pub device: usize,
    pub net: Net,
    pub activities: u32,
    pub deadline: i64,
    pub month_end: bool,
    pub night: bool,
}

impl Planner<'_> {
    /// Emits one session: occasional failed logins, the login, MFA, activities, maybe a logout.
    /// Sessions planned before the simulation start or past their deadline are dropped.
    pub(crate) fn session(&mut self, s: Session) {
        let second = self.st.rng.gen_range(0..60_000);
        let mut t = (s.start + second).max(self.st.last_ms + MS_PER_MINUTE);
        if s.start < self.cfg.start_ms || t > s.deadline {
            return;
        }
        if self.st.device_used.len() < self.user.devices.len() {
            self.st.device_used.resize(self.user.devices.len(), false);
        }
        let first_use = !std::mem::replace(&mut self.st.device_used[s.device], true);
        let tag = self.st.tag;
        self.st.tag = if first_use && s.start > self.cfg.start_ms + 3 * MS_PER_DAY {
            BENIGN_NEW_DEVICE
        } else if tag != NORMAL {
            tag
        } else if VPN_EXITS.iter().any(|v| v.asn == s.net.asn) {
            BENIGN_VPN
        } else if s.night {
            BENIGN_ON_CALL
        } else if s.month_end {
            BENIGN_MONTH_END
        } else {
            NORMAL
        };
        if self.st.rng.gen_bool(0.04) {
            for _ in 0..self.st.rng.gen_range(1..=2) {
                self.push(&s, t, EventKind::Login, Outcome::Failure, &[("reason", "bad_password")]);
                t += self.st.rng.gen_range(4_000..40_000);
            }
        }
        let method = if self.st.rng.gen_bool(0.7) { "sso" } else { "password" };
        self.push(&s, t, EventKind::Login, Outcome::Success, &[("method", method)]);
        if first_use || self.st.rng.gen_bool(0.2) {
            t += self.st.rng.gen_range(5_000..30_000);
            let factor = if self.st.rng.gen_bool(0.8) { "push" } else { "totp" };
            self.push(&s, t, EventKind::MfaChallenge, Outcome::Success, &[("factor", factor)]);
        }
        for _ in 0..s.activities {
            let gap = (-(1.0 - self.st.rng.gen::<f64>()).ln() * 100_000.0) as i64;
            if t + 1_000 + gap > s.deadline {
                break;
            }
            t += 1_000 + gap;
            self.activity(&s, t);
        }
        if self.st.rng.gen_bool(0.75) {
            t += self.st.rng.gen_range(5_000..120_000);
            self.push(&s, t, EventKind::Logout, Outcome::Success, &[]);
        }
        self.st.tag = tag;
    }

    fn activity(&mut self, s: &Session, t: i64) {
        let admin = self.user.role == Role::Admin;
        let priv_weight = match (admin, s.night) {
            (true, true) => 0.08,
            (true, false) => 0.02,
            _ => 0.001,
        };
        let data_weight = if s.month_end { 0.7 } else { 0.38 };
        let weights = [0.56, data_weight, 0.04, priv_weight, 0.002];
        let mut x = self.st.rng.gen_range(0.0..weights.iter().sum::<f64>());
        let choice = weights.iter().position(|w| {
            x -= w;
            x < 0.0
        });
        match choice.unwrap_or(0) {
            0 | 1 => {
                let data = choice == Some(1);
                let r = self.resource();
                let (median, sigma) = if data {
                    let peak = if s.month_end { self.st.rng.gen_range(4.0..10.0) } else { 1.0 };
                    (self.user.bytes_median * peak, self.user.bytes_sigma)
                } else {
                    (self.user.bytes_median / 50.0, 0.8)
                };
                let bytes = log_normal(&mut self.st.rng, median, sigma);
                let (kind, fail_p) = if data { (EventKind::DataAccess, 0.01) } else { (EventKind::ApiCall, 0.02) };
                let outcome = if self.st.rng.gen_bool(fail_p) { Outcome::Failure } else { Outcome::Success };
                let method = if data || self.st.rng.gen_bool(0.7) { "GET" } else { "POST" };
                let ev = self.push(s, t, kind, outcome, &[("method", method)]);
                ev.resource = Some(r.to_owned());
                ev.bytes = Some(bytes);
            }
            2 => {
                let action =
                    ["screen_lock", "screen_unlock", "os_update", "bluetooth_pair"][self.st.rng.gen_range(0..4)];
                self.push(s, t, EventKind::DeviceEvent, Outcome::Success, &[("action", action)]);
            }
            3 => {
                let role = ["prod-deploy", "db-read", "admin-console", "break-glass"][self.st.rng.gen_range(0..4)];
                self.push(s, t, EventKind::PrivilegeChange, Outcome::Success, &[("action", "grant"), ("role", role)]);
            }
            _ => {
                self.push(s, t, EventKind::PasswordChange, Outcome::Success, &[]);
            }
        }
    }

    /// A usual resource, the first ones more often (weights 1, 1/2, 1/3, …).
    fn resource(&mut self) -> &'static str {
        let rs = &self.user.resources;
        let total: f64 = (1..=rs.len()).map(|i| 1.0 / i as f64).sum();
        let mut x = self.st.rng.gen_range(0.0..total);
        for (i, r) in rs.iter().enumerate() {
            x -= 1.0 / (i + 1) as f64;
            if x < 0.0 {
                return r;
            }
        }
        rs[rs.len() - 1]
    }

    fn push(&mut self, s: &Session, t: i64, kind: EventKind, outcome: Outcome, attrs: &[(&str, &str)]) -> &mut Event {
        let city = &CITIES[s.net.city];
        let device = &self.user.devices[s.device];
        let mut ev = Event::new(String::new(), self.user.user_id.clone(), t, kind, outcome);
        ev.ip = Some(s.net.ip);
        ev.geo = Some(Geo { lat: city.lat, lon: city.lon, country: city.country.to_owned() });
        ev.asn = Some(s.net.asn);
        ev.device_id = Some(device.id.clone());
        ev.user_agent = Some(device.user_agent.to_owned());
        ev.attributes = attrs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        self.st.last_ms = self.st.last_ms.max(t);
        self.st.queue.push_back((ev, self.st.tag));
        &mut self.st.queue.back_mut().expect("just pushed").0
    }
}

/// A log-normal sample with the given median, at least 1.
fn log_normal(rng: &mut ChaCha8Rng, median: f64, sigma: f64) -> u64 {
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen();
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (median * (sigma * z).exp()).max(1.0) as u64
}
