//! Labelled attack scenarios, planned up front for the whole horizon and merged into the benign
//! stream by the generator.
//!
//! Each incident picks its victims from the population and knows what is normal for them (home
//! city, devices, resources, hours), so attacks look like real ones: a takeover from another
//! continent on a new device, token replay shortly after the victim's own login, stuffing and
//! spray campaigns over many accounts from a few addresses, a brute-force streak, an insider
//! copying data at night to a USB stick, a dormant account waking up, a privilege grant followed
//! by mass access. Nothing is drawn from a user's own random stream, so adding attacks leaves the
//! benign behaviour unchanged.

use std::net::IpAddr;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::generator::GeneratorConfig;
use crate::labels::{
    ACCOUNT_TAKEOVER, BRUTE_FORCE, CREDENTIAL_STUFFING, DORMANT_ACCOUNT, IMPOSSIBLE_TRAVEL, INSIDER_EXFILTRATION,
    PASSWORD_SPRAY, PRIVILEGE_ESCALATION,
};
use crate::network::v4;
use crate::population::{Role, SimUser};
use scoring::calendar::{day_number, weekday, MS_PER_DAY, MS_PER_MINUTE};
use scoring::event::{Event, EventKind, Geo, Outcome};
use scoring::geo::{haversine_km, CITIES};

/// Hosting providers attackers rent from (invented ASNs, like the rest of the table).
const HOSTING_ASNS: [u32; 5] = [214_061, 216_276, 224_940, 263_949, 220_473];
/// User agents of attack tooling and of browsers attackers fake.
const ATTACK_UAS: [&str; 4] = [
    "python-requests/2.31.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 Safari/537.36",
    "curl/8.4.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
];
/// Days at the start of the horizon without incidents, so that profiles have some history.
pub const LEARNING_DAYS: i64 = 7;

/// What the generator needs from the attack planner.
pub(crate) struct AttackPlan {
    /// Labelled events, sorted by time.
    pub events: Vec<(Event, &'static str)>,
    /// (user index, first local day, end local day exclusive) of leaves; `i64::MAX` = dormant.
    pub leaves: Vec<(usize, i64, i64)>,
}

/// Where an attacker's traffic comes from.
#[derive(Clone)]
struct Origin {
    city: usize,
    asn: u32,
    ip: IpAddr,
    device: String,
    ua: &'static str,
}

struct Planner<'a> {
    cfg: &'a GeneratorConfig,
    users: &'a [SimUser],
    rng: ChaCha8Rng,
    events: Vec<(Event, &'static str)>,
    leaves: Vec<(usize, i64, i64)>,
    incident: u32,
}

/// Plans every incident of the horizon. `rng` is the generator's dedicated attack stream.
pub(crate) fn plan(cfg: &GeneratorConfig, users: &[SimUser], rng: ChaCha8Rng) -> AttackPlan {
    let mut p = Planner { cfg, users, rng, events: Vec::new(), leaves: Vec::new(), incident: 0 };
    let horizon = i64::from(cfg.horizon_days);
    if cfg.attacks_per_1000_user_days > 0.0 && horizon > LEARNING_DAYS + 1 {
        let user_days = users.len() as f64 * horizon as f64;
        let n = (cfg.attacks_per_1000_user_days * user_days / 1000.0).round().max(1.0) as u32;
        // Campaigns hit many accounts each, so there are fewer of them.
        let campaigns = (n / 6).max(1);
        for _ in 0..n {
            p.account_takeover();
            p.impossible_travel();
            p.brute_force();
            p.insider_exfiltration();
            p.privilege_escalation();
        }
        for _ in 0..campaigns {
            p.credential_stuffing();
            p.password_spray();
        }
        p.dormant_and_leaves(n);
    }
    let mut events = p.events;
    events.sort_by_key(|(e, _)| e.time_ms);
    AttackPlan { events, leaves: p.leaves }
}

impl Planner<'_> {
    fn victim(&mut self) -> usize {
        self.rng.gen_range(0..self.users.len())
    }

    /// A UTC time on a random day after the learning period, at local `minute` of the victim's
    /// home city (`minute` may exceed a day).
    fn local_time(&mut self, user: usize, minute: i64, workday: bool) -> i64 {
        let u = &self.users[user];
        let offset = i64::from(CITIES[u.home_city].utc_offset_min) * MS_PER_MINUTE;
        let first = day_number(self.cfg.start_ms + offset) + LEARNING_DAYS;
        let last = day_number(self.cfg.start_ms + offset) + i64::from(self.cfg.horizon_days) - 1;
        let mut day = self.rng.gen_range(first..last);
        if workday {
            for _ in 0..7 {
                if u.is_workday(weekday(day)) {
                    break;
                }
                day = if day + 1 < last { day + 1 } else { first };
            }
        }
        day * MS_PER_DAY + minute * MS_PER_MINUTE - offset + self.rng.gen_range(0..MS_PER_MINUTE)
    }

    /// An attacker somewhere at least `min_km` from the victim's home, on a hosting provider or
    /// a residential proxy, with a device nobody has used.
    fn origin(&mut self, victim: usize, min_km: f64) -> Origin {
        let home = &CITIES[self.users[victim].home_city];
        let city = loop {
            let c = self.rng.gen_range(0..CITIES.len());
            let x = &CITIES[c];
            if x.country != home.country && haversine_km(home.lat, home.lon, x.lat, x.lon) >= min_km {
                break c;
            }
        };
        let asn = if self.rng.gen_bool(0.6) {
            HOSTING_ASNS[self.rng.gen_range(0..HOSTING_ASNS.len())]
        } else {
            CITIES[city].asns[0]
        };
        self.incident += 1;
        Origin {
            city,
            asn,
            ip: v4(asn, self.rng.gen(), self.rng.gen_range(1..=254)),
            device: format!("dev-x{:x}-{:05}", self.cfg.seed, self.incident),
            ua: ATTACK_UAS[self.rng.gen_range(0..ATTACK_UAS.len())],
        }
    }

    /// The victim's own main device and home network (an insider, or a hijacked session).
    fn own(&mut self, victim: usize) -> Origin {
        let u = &self.users[victim];
        let (asn, ip) = u.home_ip(u.home_city);
        let d = &u.devices[0];
        Origin { city: u.home_city, asn, ip, device: d.id.clone(), ua: d.user_agent }
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        scenario: &'static str,
        victim: usize,
        o: &Origin,
        t: i64,
        kind: EventKind,
        outcome: Outcome,
        attrs: &[(&str, &str)],
    ) -> &mut Event {
        let city = &CITIES[o.city];
        let mut ev = Event::new(String::new(), self.users[victim].user_id.clone(), t, kind, outcome);
        ev.ip = Some(o.ip);
        ev.geo = Some(Geo { lat: city.lat, lon: city.lon, country: city.country.to_owned() });
        ev.asn = Some(o.asn);
        ev.device_id = Some(o.device.clone());
        ev.user_agent = Some(o.ua.to_owned());
        ev.attributes = attrs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        self.events.push((ev, scenario));
        &mut self.events.last_mut().expect("just pushed").0
    }

    /// `n` failed password logins from `o` starting at `t`, `gap` ms apart; the time after them.
    fn failed_logins(
        &mut self,
        scenario: &'static str,
        victim: usize,
        o: &Origin,
        mut t: i64,
        n: u32,
        gap: std::ops::Range<i64>,
    ) -> i64 {
        for _ in 0..n {
            self.push(scenario, victim, o, t, EventKind::Login, Outcome::Failure, &[("reason", "bad_password")]);
            t += self.rng.gen_range(gap.clone());
        }
        t
    }

    /// `n` data accesses from `o`, `gap_s` seconds apart on average, `factor`× the usual volume,
    /// a share `foreign` of them on resources outside the victim's role.
    #[allow(clippy::too_many_arguments)]
    fn accesses(
        &mut self,
        scenario: &'static str,
        victim: usize,
        o: &Origin,
        mut t: i64,
        n: u32,
        gap_s: i64,
        factor: f64,
        foreign: f64,
    ) -> i64 {
        for _ in 0..n {
            t += self.rng.gen_range(gap_s * 500..=gap_s * 1500).max(1_000);
            let u = &self.users[victim];
            let resource = if self.rng.gen_bool(foreign) {
                let other = Role::ALL[self.rng.gen_range(0..Role::ALL.len())].resources();
                other[self.rng.gen_range(0..other.len())]
            } else {
                u.resources[self.rng.gen_range(0..u.resources.len())]
            };
            let bytes = (u.bytes_median * factor * self.rng.gen_range(0.5..2.0)) as u64;
            let ev = self.push(scenario, victim, o, t, EventKind::DataAccess, Outcome::Success, &[("method", "GET")]);
            ev.resource = Some(resource.to_owned());
            ev.bytes = Some(bytes.max(1));
        }
        t
    }

    /// Stolen credentials used from far away: maybe a failure or two, the login, MFA fatigue,
    /// persistence (a new MFA factor or password), then data taken.
    fn account_takeover(&mut self) {
        let v = self.victim();
        let o = self.origin(v, 1_500.0);
        let minute = self.rng.gen_range(0..24 * 60);
        let t = self.local_time(v, minute, false);
        let n = self.rng.gen_range(0..=2);
        let mut t = self.failed_logins(ACCOUNT_TAKEOVER, v, &o, t, n, 5_000..60_000);
        self.push(ACCOUNT_TAKEOVER, v, &o, t, EventKind::Login, Outcome::Success, &[("method", "password")]);
        for _ in 0..self.rng.gen_range(0..=3) {
            t += self.rng.gen_range(5_000..30_000);
            self.push(ACCOUNT_TAKEOVER, v, &o, t, EventKind::MfaChallenge, Outcome::Failure, &[("factor", "push")]);
        }
        t += self.rng.gen_range(5_000..30_000);
        self.push(ACCOUNT_TAKEOVER, v, &o, t, EventKind::MfaChallenge, Outcome::Success, &[("factor", "push")]);
        if self.rng.gen_bool(0.4) {
            t += self.rng.gen_range(20_000..120_000);
            self.push(ACCOUNT_TAKEOVER, v, &o, t, EventKind::PasswordChange, Outcome::Success, &[]);
        }
        let n = self.rng.gen_range(3..=10);
        let factor = self.rng.gen_range(2.0..20.0);
        self.accesses(ACCOUNT_TAKEOVER, v, &o, t, n, 90, factor, 0.3);
    }

    /// A session token replayed from another continent while the victim works at home.
    fn impossible_travel(&mut self) {
        let v = self.victim();
        let mut o = self.origin(v, 4_000.0);
        let u = &self.users[v];
        o.device = u.devices[0].id.clone();
        o.ua = u.devices[0].user_agent;
        let minute = i64::from(u.work_start_hour) * 60 + self.rng.gen_range(60..240);
        let t = self.local_time(v, minute, true);
        self.push(IMPOSSIBLE_TRAVEL, v, &o, t, EventKind::Login, Outcome::Success, &[("method", "token")]);
        let n = self.rng.gen_range(1..=4);
        self.accesses(IMPOSSIBLE_TRAVEL, v, &o, t, n, 60, 1.5, 0.1);
    }

    /// A leaked list tried against many accounts from a few addresses of one provider; a few
    /// passwords still work.
    fn credential_stuffing(&mut self) {
        let first = self.victim();
        let base = self.origin(first, 0.0);
        let ips: Vec<IpAddr> =
            (0..self.rng.gen_range(3..=6)).map(|_| v4(base.asn, self.rng.gen(), self.rng.gen_range(1..=254))).collect();
        let minute = self.rng.gen_range(0..24 * 60);
        let start = self.local_time(first, minute, false);
        let window = self.rng.gen_range(30..=90) * MS_PER_MINUTE;
        for _ in 0..self.rng.gen_range(12..=40) {
            let v = self.victim();
            let mut o = base.clone();
            o.ip = ips[self.rng.gen_range(0..ips.len())];
            o.device = format!("{}-{}", base.device, v);
            let mut t = start + self.rng.gen_range(0..window);
            for _ in 0..self.rng.gen_range(1..=2) {
                let attrs = [("reason", "bad_password"), ("method", "password")];
                self.push(CREDENTIAL_STUFFING, v, &o, t, EventKind::Login, Outcome::Failure, &attrs);
                t += self.rng.gen_range(2_000..20_000);
            }
            if self.rng.gen_bool(0.1) {
                self.push(CREDENTIAL_STUFFING, v, &o, t, EventKind::Login, Outcome::Success, &[("method", "password")]);
                let n = self.rng.gen_range(1..=3);
                self.accesses(CREDENTIAL_STUFFING, v, &o, t, n, 30, 3.0, 0.2);
            }
        }
    }

    /// One password tried once on each of many accounts, slowly, from one residential proxy;
    /// at the end it works somewhere.
    fn password_spray(&mut self) {
        let first = self.victim();
        let mut o = self.origin(first, 0.0);
        let minute = self.rng.gen_range(0..24 * 60);
        let start = self.local_time(first, minute, false);
        let window = self.rng.gen_range(60..=180) * MS_PER_MINUTE;
        let n = self.rng.gen_range(20..=60);
        let device = o.device.clone();
        for i in 0..n {
            let v = self.victim();
            o.device = format!("{device}-{v}");
            let t = start + window * i64::from(i) / i64::from(n) + self.rng.gen_range(0..30_000);
            let success = i + 2 >= n && self.rng.gen_bool(0.5);
            let outcome = if success { Outcome::Success } else { Outcome::Failure };
            self.push(PASSWORD_SPRAY, v, &o, t, EventKind::Login, outcome, &[("method", "password")]);
            if success {
                let k = self.rng.gen_range(1..=2);
                self.accesses(PASSWORD_SPRAY, v, &o, t, k, 60, 2.0, 0.2);
            }
        }
    }

    /// A failure streak on one account from one address, then the password is found.
    fn brute_force(&mut self) {
        let v = self.victim();
        let o = self.origin(v, 0.0);
        let minute = self.rng.gen_range(0..24 * 60);
        let t = self.local_time(v, minute, false);
        let n = self.rng.gen_range(8..=30);
        let t = self.failed_logins(BRUTE_FORCE, v, &o, t, n, 2_000..15_000);
        self.push(BRUTE_FORCE, v, &o, t, EventKind::Login, Outcome::Success, &[("method", "password")]);
        let n = self.rng.gen_range(1..=5);
        self.accesses(BRUTE_FORCE, v, &o, t, n, 60, 2.0, 0.2);
    }

    /// After hours from home on the user's own laptop: a USB stick, unusual resources, big
    /// volumes, an upload to a file-sharing site (the CERT insider scenarios).
    fn insider_exfiltration(&mut self) {
        let v = self.victim();
        let o = self.own(v);
        let minute = self.rng.gen_range(21 * 60..26 * 60);
        let mut t = self.local_time(v, minute, true);
        self.push(INSIDER_EXFILTRATION, v, &o, t, EventKind::Login, Outcome::Success, &[("method", "sso")]);
        t += self.rng.gen_range(30_000..300_000);
        let attrs = [("action", "usb_mount"), ("device_class", "removable_storage")];
        self.push(INSIDER_EXFILTRATION, v, &o, t, EventKind::DeviceEvent, Outcome::Success, &attrs);
        let n = self.rng.gen_range(5..=20);
        let factor = self.rng.gen_range(10.0..100.0);
        t = self.accesses(INSIDER_EXFILTRATION, v, &o, t, n, 45, factor, 0.4);
        if self.rng.gen_bool(0.6) {
            t += self.rng.gen_range(30_000..300_000);
            let bytes = (self.users[v].bytes_median * 200.0) as u64;
            let ev =
                self.push(INSIDER_EXFILTRATION, v, &o, t, EventKind::ApiCall, Outcome::Success, &[("method", "POST")]);
            ev.resource = Some("web/upload".to_owned());
            ev.bytes = Some(bytes);
        }
    }

    /// Someone grants themselves a role and sweeps through everything it opens.
    fn privilege_escalation(&mut self) {
        let v = self.victim();
        let mut o = self.own(v);
        if self.rng.gen_bool(0.5) {
            // A hijacked account: a new device in the user's own country.
            let u = &self.users[v];
            let asn = u.home_ip(u.home_city).0;
            self.incident += 1;
            o = Origin {
                asn,
                ip: v4(asn, self.rng.gen(), self.rng.gen_range(1..=254)),
                device: format!("dev-x{:x}-{:05}", self.cfg.seed, self.incident),
                ..o
            };
        }
        let u = &self.users[v];
        let minute = i64::from(u.work_start_hour) * 60 + self.rng.gen_range(0..9 * 60);
        let mut t = self.local_time(v, minute, false);
        self.push(PRIVILEGE_ESCALATION, v, &o, t, EventKind::Login, Outcome::Success, &[("method", "password")]);
        t += self.rng.gen_range(30_000..600_000);
        let role = ["admin-console", "break-glass", "db-read"][self.rng.gen_range(0..3)];
        let attrs = [("action", "grant"), ("role", role)];
        self.push(PRIVILEGE_ESCALATION, v, &o, t, EventKind::PrivilegeChange, Outcome::Success, &attrs);
        let n = self.rng.gen_range(15..=40);
        self.accesses(PRIVILEGE_ESCALATION, v, &o, t, n, 15, 3.0, 0.7);
    }

    /// Users who leave: some come back after weeks (benign, tagged by the user planner), others
    /// never do and their account is later used by someone else.
    fn dormant_and_leaves(&mut self, n: u32) {
        let horizon = i64::from(self.cfg.horizon_days);
        if horizon < 24 || self.users.len() < 20 {
            return;
        }
        // At most a tenth of the population leaves.
        for i in 0..(2 * n).min(self.users.len() as u32 / 10) {
            let v = self.victim();
            if self.leaves.iter().any(|(u, _, _)| *u == v) {
                continue;
            }
            let u = &self.users[v];
            let offset = i64::from(CITIES[u.home_city].utc_offset_min) * MS_PER_MINUTE;
            let day0 = day_number(self.cfg.start_ms + offset);
            let from = day0 + self.rng.gen_range(2..=4);
            if i % 2 == 0 {
                let to = from + self.rng.gen_range(14..=(horizon - 6).max(15));
                self.leaves.push((v, from, to));
                continue;
            }
            self.leaves.push((v, from, i64::MAX));
            let min_km = if self.rng.gen_bool(0.5) { 0.0 } else { 1_500.0 };
            let o = self.origin(v, min_km);
            let day = from + self.rng.gen_range(14..horizon - 3);
            let t = day * MS_PER_DAY + self.rng.gen_range(8 * 60..22 * 60) * MS_PER_MINUTE - offset;
            self.push(DORMANT_ACCOUNT, v, &o, t, EventKind::Login, Outcome::Success, &[("method", "password")]);
            let k = self.rng.gen_range(2..=8);
            self.accesses(DORMANT_ACCOUNT, v, &o, t, k, 60, 2.0, 0.2);
        }
    }
}
