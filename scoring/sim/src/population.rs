//! The simulated users of the behaviour generator: roles, habits, devices and networks.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use scoring::geo::{city_index, CITIES, VPN_EXITS};

/// A user's job, which shapes hours, resources, volumes, travel and on-call duty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Engineer,
    Sales,
    Finance,
    Admin,
    Support,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Engineer, Role::Sales, Role::Finance, Role::Admin, Role::Support];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Engineer => "engineer",
            Role::Sales => "sales",
            Role::Finance => "finance",
            Role::Admin => "admin",
            Role::Support => "support",
        }
    }

    /// Resources this role uses, most used first.
    pub fn resources(self) -> &'static [&'static str] {
        match self {
            Role::Engineer => &[
                "git/repos",
                "ci/pipelines",
                "wiki/engineering",
                "k8s/staging",
                "k8s/prod",
                "artifacts/registry",
                "logs/app",
            ],
            Role::Sales => &[
                "crm/accounts",
                "crm/opportunities",
                "docs/pricing",
                "crm/contacts",
                "docs/contracts",
                "reports/pipeline",
            ],
            Role::Finance => {
                &["erp/ledger", "reports/quarterly", "erp/invoices", "bank/payments", "erp/payroll", "docs/contracts"]
            }
            Role::Admin => {
                &["iam/users", "iam/roles", "k8s/prod", "logs/audit", "vault/secrets", "backup/console", "dns/zones"]
            }
            Role::Support => &["tickets/queue", "kb/articles", "crm/accounts", "tickets/escalations", "logs/app"],
        }
    }

    /// Median bytes of one data access.
    pub fn bytes_median(self) -> f64 {
        match self {
            Role::Engineer => 400_000.0,
            Role::Sales => 150_000.0,
            Role::Finance => 800_000.0,
            Role::Admin => 250_000.0,
            Role::Support => 60_000.0,
        }
    }

    /// Probability that a working day starts a business trip.
    pub fn trip_rate(self) -> f64 {
        match self {
            Role::Sales => 1.0 / 25.0,
            Role::Engineer | Role::Finance => 1.0 / 150.0,
            Role::Admin | Role::Support => 1.0 / 250.0,
        }
    }

    /// Whether the role takes on-call weeks (night activity).
    pub fn on_call(self) -> bool {
        matches!(self, Role::Admin | Role::Support)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    Laptop,
    Desktop,
    Phone,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    pub id: String,
    pub kind: DeviceKind,
    pub user_agent: &'static str,
    /// Phones on an IPv6 mobile network.
    pub ipv6: bool,
    /// Replaced (e.g. by a new phone) and no longer used.
    pub retired: bool,
}

const COMPUTER_UAS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
];

const PHONE_UAS: &[&str] = &[
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
];

/// Cities most users live in (company offices).
const HUBS: &[&str] = &["Oslo", "London", "Berlin", "New York", "San Francisco", "Singapore", "Bangalore", "Sydney"];

/// One simulated user. Fixed habits plus the devices, which change over time.
#[derive(Clone, Debug, PartialEq)]
pub struct SimUser {
    pub index: usize,
    pub user_id: String,
    pub role: Role,
    /// Index into [`CITIES`].
    pub home_city: usize,
    /// Local working hours `[work_start_hour, work_end_hour)` (end ≤ 24).
    pub work_start_hour: u8,
    pub work_end_hour: u8,
    /// Bit `i` set = works on weekday `i` (Monday = 0).
    pub workdays: u8,
    /// Week offset of the on-call rota (on call when `(week + phase) % 4 == 0`); on-call roles only.
    pub on_call_phase: Option<u8>,
    pub devices: Vec<Device>,
    /// This user's usual resources, most used first.
    pub resources: Vec<&'static str>,
    pub bytes_median: f64,
    /// Sigma of the log-normal data volume.
    pub bytes_sigma: f64,
    /// Index into [`VPN_EXITS`] of the VPN this user sometimes goes through.
    pub vpn_exit: usize,
    /// Share of sessions through the VPN.
    pub vpn_share: f64,
    /// Share of working-hours computer sessions from home instead of the office.
    pub remote_share: f64,
    pub(crate) seed: u64,
    device_seq: u32,
}

impl SimUser {
    pub(crate) fn generate(seed: u64, index: usize, rng: &mut ChaCha8Rng) -> SimUser {
        let role = Role::ALL[[0, 0, 0, 1, 1, 2, 3, 4, 4][rng.gen_range(0..9)]];
        let home_city = if rng.gen_bool(0.75) {
            city_index(HUBS[rng.gen_range(0..HUBS.len())]).expect("hub is in the city table")
        } else {
            rng.gen_range(0..CITIES.len())
        };
        let (mut start, mut len, mut workdays) = (rng.gen_range(8..=9u8), rng.gen_range(8..=9u8), 0b001_1111u8);
        if role == Role::Support {
            match rng.gen_range(0..3) {
                0 => start = 6,
                1 => start = 14,
                _ => {}
            }
            if rng.gen_bool(0.3) {
                workdays = 0b011_1110; // Tuesday to Saturday
            }
        } else if role == Role::Engineer {
            start = rng.gen_range(8..=10);
            len = 9;
        }
        let pool = role.resources();
        let mut resources: Vec<&'static str> = pool.iter().copied().filter(|_| rng.gen_bool(0.7)).collect();
        if resources.is_empty() {
            resources.push(pool[0]);
        }
        resources.extend(["mail/inbox", "wiki/home"]);
        let mut user = SimUser {
            index,
            user_id: format!("user-{seed}-{index:06}"),
            role,
            home_city,
            work_start_hour: start,
            work_end_hour: (start + len).min(24),
            workdays,
            on_call_phase: role.on_call().then(|| rng.gen_range(0..4)),
            devices: Vec::new(),
            resources,
            bytes_median: role.bytes_median() * rng.gen_range(0.5..2.0),
            bytes_sigma: rng.gen_range(0.6..1.2),
            vpn_exit: rng.gen_range(0..VPN_EXITS.len()),
            vpn_share: if rng.gen_bool(0.3) { rng.gen_range(0.05..0.25) } else { 0.0 },
            remote_share: rng.gen_range(0.1..0.6),
            seed,
            device_seq: 0,
        };
        let computer = if rng.gen_bool(0.8) { DeviceKind::Laptop } else { DeviceKind::Desktop };
        user.add_device(computer, rng);
        if rng.gen_bool(0.25) {
            user.add_device(DeviceKind::Laptop, rng);
        }
        if rng.gen_bool(0.65) {
            user.add_device(DeviceKind::Phone, rng);
        }
        user
    }

    pub fn is_workday(&self, weekday: u8) -> bool {
        self.workdays & (1 << weekday) != 0
    }

    pub fn in_working_hours(&self, hour: u8) -> bool {
        (self.work_start_hour..self.work_end_hour).contains(&hour)
    }

    /// Adds a device (a new phone retires the old ones) and returns its index.
    pub(crate) fn add_device(&mut self, kind: DeviceKind, rng: &mut ChaCha8Rng) -> usize {
        if kind == DeviceKind::Phone {
            for d in self.devices.iter_mut().filter(|d| d.kind == DeviceKind::Phone) {
                d.retired = true;
            }
        }
        let uas = if kind == DeviceKind::Phone { PHONE_UAS } else { COMPUTER_UAS };
        self.devices.push(Device {
            id: format!("dev-{:x}-{:06}-{}", self.seed, self.index, self.device_seq),
            kind,
            user_agent: uas[rng.gen_range(0..uas.len())],
            ipv6: kind == DeviceKind::Phone && rng.gen_bool(0.5),
            retired: false,
        });
        self.device_seq += 1;
        self.devices.len() - 1
    }

    pub(crate) fn active_devices(&self, kind: DeviceKind) -> impl Iterator<Item = usize> + '_ {
        self.devices
            .iter()
            .enumerate()
            .filter(move |(_, d)| {
                !d.retired && (d.kind == kind || (kind == DeviceKind::Laptop && d.kind == DeviceKind::Desktop))
            })
            .map(|(i, _)| i)
    }
}
