//! A seeded, reproducible generator of benign user behaviour.
//!
//! Each simulated user ([`SimUser`]) plans one local day at a time (module `planner`) into its
//! own queue, driven by its own ChaCha8 stream (so a user's behaviour depends only on the seed and
//! its index, not on the population size). [`Generator`] merges the per-user queues by event time
//! with a heap keyed by `(time, source index)`, so the stream is non-decreasing in event time and
//! ties break deterministically, and assigns event ids in emission order.
//!
//! Attack scenarios slot in as further sources with their own queues in the same merge: an
//! injector plans labelled events for chosen victims and reads [`Generator::users`] for what is
//! normal for them.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::attacks;
use crate::labels::{is_attack, LabelRecord, NORMAL};
use crate::planner::{Planner, UserState};
use crate::population::SimUser;
use scoring::calendar::{day_number, MS_PER_MINUTE};
use scoring::event::Event;
use scoring::geo::CITIES;

/// Parameters of a generated population.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneratorConfig {
    pub seed: u64,
    pub users: usize,
    /// Simulated time starts here (unix epoch ms); no event is earlier.
    pub start_ms: i64,
    /// Average events per user per calendar day (weekends included).
    pub events_per_user_per_day: f64,
    /// Incidents of each attack scenario per 1,000 user-days (0 = benign only). Credential
    /// stuffing and password spray run one campaign over many accounts per 6 incidents.
    pub attacks_per_1000_user_days: f64,
    /// Days over which attacks (and leaves) are planned, starting at `start_ms`; incidents start
    /// after [`crate::attacks::LEARNING_DAYS`].
    pub horizon_days: u32,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            seed: 1,
            users: 100,
            start_ms: 1_767_571_200_000, // 2026-01-05T00:00:00Z, a Monday
            events_per_user_per_day: 20.0,
            attacks_per_1000_user_days: 1.0,
            horizon_days: 28,
        }
    }
}

/// An endless, reproducible stream of benign events.
pub struct Generator {
    cfg: GeneratorConfig,
    users: Vec<SimUser>,
    states: Vec<UserState>,
    /// The attack source (heap index `users.len()`), sorted by time.
    attacks: VecDeque<(Event, &'static str)>,
    heap: BinaryHeap<Reverse<(i64, usize)>>,
    emitted: u64,
}

impl Generator {
    /// Builds the population and plans every user's first day.
    ///
    /// # Panics
    /// If `users` is 0 or `events_per_user_per_day` is not a positive finite number.
    pub fn new(cfg: GeneratorConfig) -> Self {
        assert!(cfg.users > 0, "generator needs at least one user");
        assert!(
            cfg.events_per_user_per_day.is_finite() && cfg.events_per_user_per_day > 0.0,
            "events_per_user_per_day must be positive"
        );
        let mut rng = stream(cfg.seed, 0);
        let users: Vec<SimUser> = (0..cfg.users).map(|i| SimUser::generate(cfg.seed, i, &mut rng)).collect();
        let states = users
            .iter()
            .map(|u| {
                let offset = i64::from(CITIES[u.home_city].utc_offset_min) * MS_PER_MINUTE;
                UserState {
                    rng: stream(cfg.seed, u.index as u64 + 1),
                    queue: VecDeque::new(),
                    tag: NORMAL,
                    leave: None,
                    next_day: day_number(cfg.start_ms + offset),
                    last_ms: cfg.start_ms,
                    location: u.home_city,
                    trip: None,
                    device_used: Vec::new(),
                }
            })
            .collect::<Vec<_>>();
        let plan = attacks::plan(&cfg, &users, stream(cfg.seed, ATTACK_STREAM));
        let mut states = states;
        for (u, from, to) in plan.leaves {
            states[u].leave = Some((from, to));
        }
        let attacks = VecDeque::from(plan.events);
        let mut g = Generator { cfg, users, states, attacks, heap: BinaryHeap::new(), emitted: 0 };
        for u in 0..g.users.len() {
            g.refill(u);
        }
        if let Some((ev, _)) = g.attacks.front() {
            g.heap.push(Reverse((ev.time_ms, g.users.len())));
        }
        g
    }

    pub fn config(&self) -> &GeneratorConfig {
        &self.cfg
    }

    /// The simulated users (habits and current devices), indexed as their ids.
    pub fn users(&self) -> &[SimUser] {
        &self.users
    }

    pub fn user_ids(&self) -> impl Iterator<Item = &str> + '_ {
        self.users.iter().map(|u| u.user_id.as_str())
    }

    /// Number of events emitted so far.
    pub fn emitted(&self) -> u64 {
        self.emitted
    }

    /// The next event: event time never decreases; `event_id` is `{seed:x}-{counter:010}`.
    pub fn next_event(&mut self) -> Event {
        self.next_labelled().0
    }

    /// The next event with its ground truth (see [`crate::labels`]).
    pub fn next_labelled(&mut self) -> (Event, LabelRecord) {
        let Reverse((_, u)) = self.heap.pop().expect("users who have not left always have a planned event");
        let (mut ev, scenario) = if u == self.users.len() {
            let next = self.attacks.pop_front().expect("scheduled attack source has events");
            if let Some((e, _)) = self.attacks.front() {
                self.heap.push(Reverse((e.time_ms, u)));
            }
            next
        } else {
            let next = self.states[u].queue.pop_front().expect("queued user has events");
            if self.states[u].queue.is_empty() {
                self.refill(u);
            } else {
                self.heap.push(Reverse((self.states[u].queue[0].0.time_ms, u)));
            }
            next
        };
        ev.event_id = format!("{:x}-{:010}", self.cfg.seed, self.emitted);
        self.emitted += 1;
        let label = LabelRecord {
            event_id: ev.event_id.clone(),
            label: u8::from(is_attack(scenario)),
            scenario: scenario.to_owned(),
        };
        (ev, label)
    }

    /// Plans days for user `u` until something is queued, then schedules it.
    /// A user who has left for good (dormant) is not scheduled again.
    fn refill(&mut self, u: usize) {
        let (user, st) = (&mut self.users[u], &mut self.states[u]);
        while st.queue.is_empty() {
            if st.leave.is_some_and(|(from, to)| to == i64::MAX && st.next_day >= from) {
                return;
            }
            Planner { cfg: &self.cfg, user: &mut *user, st: &mut *st }.plan_day();
        }
        self.heap.push(Reverse((st.queue[0].0.time_ms, u)));
    }
}

impl Iterator for Generator {
    type Item = Event;

    /// Never returns `None`.
    fn next(&mut self) -> Option<Event> {
        Some(self.next_event())
    }
}

/// The attack planner's random stream (users use streams 1..=users).
const ATTACK_STREAM: u64 = 1 << 40;

fn stream(seed: u64, n: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(n);
    rng
}

#[cfg(test)]
#[path = "generator_tests.rs"]
mod tests;
