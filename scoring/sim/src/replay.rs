//! Replays a stream of events through profiles built from the stream itself, as the cluster
//! would apply them: per-user profiles, exact de-duplication by (user, event id), one source
//! window across users. Used by `traceo eval` and `traceo features`; the state machine runs the
//! same [`Observation::observe`] and [`Profile::fold`] on apply.

use std::collections::{HashMap, HashSet};

use scoring::calendar::MS_PER_HOUR;
use scoring::event::Event;
use scoring::features::{Observation, SourceWindow};
use scoring::profile::Profile;

/// Addresses remembered by a replay's source window.
const REPLAY_SOURCES: usize = 1 << 20;

pub struct Replay {
    profiles: HashMap<String, Profile>,
    seen: HashSet<(String, String)>,
    window: SourceWindow,
}

impl Default for Replay {
    fn default() -> Self {
        Replay {
            profiles: HashMap::new(),
            seen: HashSet::new(),
            window: SourceWindow::new(MS_PER_HOUR, REPLAY_SOURCES),
        }
    }
}

impl Replay {
    pub fn new() -> Self {
        Replay::default()
    }

    /// Observes `ev` against its user's profile, then folds it in. `None` for a duplicate.
    pub fn step(&mut self, ev: &Event) -> Option<Observation> {
        if !self.seen.insert((ev.user_id.clone(), ev.event_id.clone())) {
            return None;
        }
        let profile = self.profiles.entry(ev.user_id.clone()).or_insert_with(|| Profile::new(ev.user_id.clone()));
        let o = Observation::observe(profile, ev, self.window.failed_users(ev));
        profile.fold(ev);
        self.window.record(ev);
        Some(o)
    }

    pub fn profile(&self, user: &str) -> Option<&Profile> {
        self.profiles.get(user)
    }

    pub fn users(&self) -> usize {
        self.profiles.len()
    }
}
