//! Plans one simulated user's day: sessions (login, activity, logout) at the user's hours and
//! places, business trips with plausible flight times, on-call nights, month-end peaks.

use std::collections::VecDeque;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::generator::GeneratorConfig;
use crate::labels::{BENIGN_RETURN_FROM_LEAVE, BENIGN_TRAVEL, NORMAL};
use crate::population::{DeviceKind, Role, SimUser};
use crate::session::{Net, Session};
use scoring::calendar::{civil_from_days, days_in_month, weekday, MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE};
use scoring::event::Event;
use scoring::geo::{haversine_km, CITIES};

/// Average cruise speed of a trip, km/h, and the fixed airport / transfer time on top.
const FLIGHT_KMH: f64 = 800.0;
const AIRPORT_MS: i64 = 150 * MS_PER_MINUTE;
/// Daily probability of getting a new phone.
const NEW_PHONE_RATE: f64 = 1.0 / 150.0;
/// Expected non-activity events per session (failed logins, login, MFA, logout).
const SESSION_OVERHEAD: f64 = 2.1;

/// Per-user generator state.
pub(crate) struct UserState {
    pub rng: ChaCha8Rng,
    /// Planned events with their scenario tag (see [`crate::labels`]).
    pub queue: VecDeque<(Event, &'static str)>,
    /// Scenario tag of the sessions being planned (set for trips and returns from leave).
    pub tag: &'static str,
    /// Local days `[from, to)` without any activity (leave; `to == i64::MAX`: gone for good).
    pub leave: Option<(i64, i64)>,
    /// Next local day number (in the current location's time zone) to plan.
    pub next_day: i64,
    /// No event may be planned before this (the last planned event, or a flight's arrival).
    pub last_ms: i64,
    /// City the user is in.
    pub location: usize,
    pub trip: Option<Trip>,
    /// Whether each device has been used yet (a first use asks for MFA).
    pub device_used: Vec<bool>,
}

#[derive(Clone, Copy)]
pub(crate) struct Trip {
    pub dest: usize,
    pub return_day: i64,
}

pub(crate) struct Planner<'a> {
    pub cfg: &'a GeneratorConfig,
    pub user: &'a mut SimUser,
    pub st: &'a mut UserState,
}

impl Planner<'_> {
    pub fn plan_day(&mut self) {
        let day = self.st.next_day;
        self.st.next_day += 1;
        self.st.tag = NORMAL;
        if let Some((from, to)) = self.st.leave {
            if (from..to).contains(&day) {
                // Nothing that day; make sure the merge still moves on in time.
                self.st.last_ms = self.st.last_ms.max(self.at(self.st.location, day, 0));
                return;
            }
            if day >= to && day < to + 3 {
                self.st.tag = BENIGN_RETURN_FROM_LEAVE;
            }
        }
        if self.st.trip.is_some() {
            self.st.tag = BENIGN_TRAVEL;
        }
        if self.st.rng.gen_bool(NEW_PHONE_RATE) {
            self.user.add_device(DeviceKind::Phone, &mut self.st.rng);
        }
        match self.st.trip {
            Some(trip) if day >= trip.return_day => self.return_day(day, trip.dest),
            None if self.user.is_workday(weekday(day)) && self.st.rng.gen_bool(self.user.role.trip_rate()) => {
                self.departure_day(day)
            }
            _ => self.ordinary_day(day),
        }
    }

    fn ordinary_day(&mut self, day: i64) {
        let loc = self.st.location;
        let on_call =
            self.user.on_call_phase.is_some_and(|p| ((day + 3).div_euclid(7) + i64::from(p)).rem_euclid(4) == 0);
        if on_call && self.st.rng.gen_bool(0.35) {
            let minute = self.st.rng.gen_range(30..270);
            let n = self.st.rng.gen_range(2..=8);
            self.casual_session(self.at(loc, day, minute), n, true);
        }
        if !self.user.is_workday(weekday(day)) {
            if (on_call && self.st.rng.gen_bool(0.5)) || self.st.rng.gen_bool(0.12) {
                let minute = self.st.rng.gen_range(600..1260);
                let n = self.st.rng.gen_range(2..=8);
                self.casual_session(self.at(loc, day, minute), n, false);
            }
            return;
        }
        let (y, m, d) = civil_from_days(day);
        let month_end = self.user.role == Role::Finance && d + 3 > days_in_month(y, m);
        let sessions = self.st.rng.gen_range(2..=3) + u32::from(month_end);
        let ws = i64::from(self.user.work_start_hour) * 60;
        let we = i64::from(self.user.work_end_hour) * 60;
        let mut starts: Vec<i64> = (0..sessions)
            .map(|i| match i {
                _ if self.st.rng.gen_bool(0.06) => (we + self.st.rng.gen_range(60..240)).min(23 * 60 + 50),
                0 => ws + self.st.rng.gen_range(-10..45),
                _ => self.st.rng.gen_range(ws + 60..we - 60),
            })
            .collect();
        starts.sort_unstable();
        let mean = (self.workday_events() / f64::from(sessions) - SESSION_OVERHEAD).max(1.0);
        for minute in starts {
            let office_hours = (ws..we).contains(&minute);
            let device = self.pick_device(0.15);
            let net = self.network(device, office_hours);
            let activities = self.activity_count(mean);
            let start = self.at(loc, day, minute);
            self.session(Session { start, device, net, activities, deadline: i64::MAX, month_end, night: false });
        }
    }

    /// First day of a business trip: maybe an early session at home, then a flight, then a
    /// session from the destination once arrived.
    fn departure_day(&mut self, day: i64) {
        let home = self.st.location;
        if self.st.rng.gen_bool(0.5) {
            let minute = self.st.rng.gen_range(390..450);
            let n = self.st.rng.gen_range(2..=6);
            let deadline = self.at(home, day, 8 * 60);
            let device = self.pick_device(0.3);
            let net = self.network(device, false);
            let start = self.at(home, day, minute);
            self.session(Session { start, device, net, activities: n, deadline, month_end: false, night: false });
        }
        let dest = loop {
            let c = self.st.rng.gen_range(0..CITIES.len());
            if c != home {
                break c;
            }
        };
        let dep_minute = self.st.rng.gen_range(480..720);
        self.fly(self.at(home, day, dep_minute), home, dest);
        self.st.tag = BENIGN_TRAVEL;
        let return_day = day + self.st.rng.gen_range(2..=5);
        self.st.trip = Some(Trip { dest, return_day });
        let start = self.st.last_ms + self.st.rng.gen_range(60..180) * MS_PER_MINUTE;
        let n = self.st.rng.gen_range(3..=12);
        self.casual_session(start, n, false);
    }

    /// Last day of a trip: a morning at the destination, the flight home, maybe a session after.
    fn return_day(&mut self, day: i64, dest: usize) {
        if self.st.rng.gen_bool(0.7) {
            let minute = i64::from(self.user.work_start_hour) * 60 + self.st.rng.gen_range(0..60);
            let deadline = self.at(dest, day, 14 * 60);
            let device = self.pick_device(0.2);
            let net = self.network(device, false);
            let activities = self.activity_count(self.workday_events() / 3.0);
            let start = self.at(dest, day, minute);
            self.session(Session { start, device, net, activities, deadline, month_end: false, night: false });
        }
        let dep_minute = self.st.rng.gen_range(900..1140);
        let home = self.user.home_city;
        self.fly(self.at(dest, day, dep_minute), dest, home);
        self.st.trip = None;
        self.st.tag = NORMAL;
        if self.st.rng.gen_bool(0.3) {
            let start = self.st.last_ms + self.st.rng.gen_range(60..150) * MS_PER_MINUTE;
            let n = self.st.rng.gen_range(2..=6);
            self.casual_session(start, n, false);
        }
    }

    /// Moves the user; departure is at least 45 minutes after their last event.
    fn fly(&mut self, planned_departure: i64, from: usize, to: usize) {
        let (a, b) = (&CITIES[from], &CITIES[to]);
        let hours = haversine_km(a.lat, a.lon, b.lat, b.lon) / FLIGHT_KMH;
        let departure = planned_departure.max(self.st.last_ms + 45 * MS_PER_MINUTE);
        let flight = (hours * MS_PER_HOUR as f64) as i64 + AIRPORT_MS + self.st.rng.gen_range(0..MS_PER_HOUR);
        self.st.last_ms = departure + flight;
        self.st.location = to;
    }

    /// A short session outside working hours (or right after a flight) from a private network.
    fn casual_session(&mut self, start: i64, activities: u32, night: bool) {
        let device = self.pick_device(0.4);
        let net = self.network(device, false);
        self.session(Session { start, device, net, activities, deadline: i64::MAX, month_end: false, night });
    }

    /// Expected events on a working day so that the weekly average matches the configuration.
    fn workday_events(&self) -> f64 {
        let workdays = f64::from(self.user.workdays.count_ones());
        self.cfg.events_per_user_per_day * 7.0 / workdays
    }

    fn activity_count(&mut self, mean: f64) -> u32 {
        let x = mean * self.st.rng.gen_range(0.5..1.5);
        let whole = x.floor();
        whole as u32 + u32::from(self.st.rng.gen_bool(x - whole))
    }

    /// UTC milliseconds of `minute` (may exceed a day) on local `day` in `city`.
    fn at(&self, city: usize, day: i64, minute: i64) -> i64 {
        day * MS_PER_DAY + minute * MS_PER_MINUTE - i64::from(CITIES[city].utc_offset_min) * MS_PER_MINUTE
    }

    fn pick_device(&mut self, phone_share: f64) -> usize {
        let phone = self.user.active_devices(DeviceKind::Phone).next();
        if let Some(p) = phone.filter(|_| self.st.rng.gen_bool(phone_share)) {
            return p;
        }
        let computers: Vec<usize> = self.user.active_devices(DeviceKind::Laptop).collect();
        match computers.len() {
            0 => phone.unwrap_or(0),
            1 => computers[0],
            // The first computer is the main one.
            n => computers[if self.st.rng.gen_bool(0.8) { 0 } else { self.st.rng.gen_range(1..n) }],
        }
    }

    fn network(&mut self, device: usize, office_hours: bool) -> Net {
        let loc = self.st.location;
        let u = &*self.user;
        let rng = &mut self.st.rng;
        if u.vpn_share > 0.0 && rng.gen_bool(u.vpn_share) {
            let (city, asn, ip) = u.vpn_ip();
            return Net { city, asn, ip };
        }
        let (asn, ip) = if u.devices[device].kind == DeviceKind::Phone {
            u.mobile_ip(loc, device, rng)
        } else if loc != u.home_city {
            SimUser::guest_ip(loc, rng)
        } else if office_hours && !rng.gen_bool(u.remote_share) {
            u.office_ip(loc)
        } else {
            u.home_ip(loc)
        };
        Net { city: loc, asn, ip }
    }
}
