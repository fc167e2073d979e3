//! The ledger of what clients were told about each event, and the check that the cluster's final
//! state agrees: every acknowledged event applied exactly once, nothing definitely failed applied.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// What a client last learned about one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Fate {
    Acknowledged,
    Failed,
    Indeterminate,
}

/// Per user, per event id: the fate reported to the client. Acknowledged is final: a later
/// retry answered "duplicate" is still acknowledged.
#[derive(Debug, Default)]
pub struct Ledger {
    users: BTreeMap<String, BTreeMap<String, Fate>>,
}

/// The verdict of [`Ledger::check_counts`].
#[derive(Debug, Default, PartialEq, Serialize)]
pub struct CountCheck {
    pub users_checked: usize,
    pub acknowledged: u64,
    /// Users whose applied count is below their acknowledged events: acknowledged data lost.
    pub lost: Vec<(String, u64, u64)>,
    /// Users whose applied count exceeds every event that may have been applied: duplicates.
    pub duplicated: Vec<(String, u64, u64)>,
    /// Events still indeterminate (the caller should have settled them before checking).
    pub unsettled: u64,
}

impl CountCheck {
    pub fn valid(&self) -> bool {
        self.lost.is_empty() && self.duplicated.is_empty()
    }
}

impl Ledger {
    pub fn record(&mut self, user: &str, event_id: &str, fate: Fate) {
        let slot = self.users.entry(user.to_string()).or_default().entry(event_id.to_string()).or_insert(fate);
        if *slot != Fate::Acknowledged {
            *slot = fate;
        }
    }

    pub fn fate(&self, user: &str, event_id: &str) -> Option<Fate> {
        self.users.get(user)?.get(event_id).copied()
    }

    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    /// `(user, event_id)` of every event whose fate is still indeterminate.
    pub fn indeterminate(&self) -> Vec<(String, String)> {
        self.users
            .iter()
            .flat_map(|(u, evs)| {
                evs.iter().filter(|(_, f)| **f == Fate::Indeterminate).map(move |(e, _)| (u.clone(), e.clone()))
            })
            .collect()
    }

    pub fn count(&self, fate: Fate) -> u64 {
        self.users.values().flat_map(|e| e.values()).filter(|f| **f == fate).count() as u64
    }

    /// Compares each user's applied-event count (as read from the cluster) with the ledger:
    /// acknowledged ≤ applied ≤ acknowledged + indeterminate. With nothing indeterminate, the
    /// applied count must equal the acknowledged count exactly.
    pub fn check_counts(&self, applied: &BTreeMap<String, u64>) -> CountCheck {
        let mut check = CountCheck { users_checked: self.users.len(), ..CountCheck::default() };
        for (user, events) in &self.users {
            let acked = events.values().filter(|f| **f == Fate::Acknowledged).count() as u64;
            let maybe = events.values().filter(|f| **f == Fate::Indeterminate).count() as u64;
            check.acknowledged += acked;
            check.unsettled += maybe;
            let got = applied.get(user).copied().unwrap_or(0);
            if got < acked {
                check.lost.push((user.clone(), acked, got));
            } else if got > acked + maybe {
                check.duplicated.push((user.clone(), acked + maybe, got));
            }
        }
        check
    }

    /// Event ids acknowledged for `user`.
    pub fn acknowledged(&self, user: &str) -> BTreeSet<&str> {
        self.users
            .get(user)
            .map(|e| e.iter().filter(|(_, f)| **f == Fate::Acknowledged).map(|(id, _)| id.as_str()).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger() -> Ledger {
        let mut l = Ledger::default();
        l.record("a", "1", Fate::Acknowledged);
        l.record("a", "2", Fate::Indeterminate);
        l.record("a", "2", Fate::Acknowledged);
        l.record("a", "2", Fate::Failed); // a late failure never downgrades an acknowledgement
        l.record("b", "1", Fate::Failed);
        l.record("b", "2", Fate::Indeterminate);
        l
    }

    #[test]
    fn exact_counts_are_valid() {
        let l = ledger();
        assert_eq!(l.fate("a", "2"), Some(Fate::Acknowledged));
        let applied = BTreeMap::from([("a".to_string(), 2), ("b".to_string(), 1)]);
        let c = l.check_counts(&applied);
        assert!(c.valid(), "{c:?}");
        assert_eq!((c.acknowledged, c.unsettled), (2, 1));
    }

    #[test]
    fn detects_lost_and_duplicated_events() {
        let l = ledger();
        let lost = l.check_counts(&BTreeMap::from([("a".to_string(), 1)]));
        assert_eq!(lost.lost, vec![("a".to_string(), 2, 1)]);
        let dup = l.check_counts(&BTreeMap::from([("a".to_string(), 3), ("b".to_string(), 2)]));
        assert_eq!(dup.duplicated, vec![("a".to_string(), 2, 3), ("b".to_string(), 1, 2)]);
        assert!(!dup.valid());
        assert_eq!(l.indeterminate(), vec![("b".to_string(), "2".to_string())]);
    }
}
