//! A small set of recently seen keys with counts, bounded by evicting the least recently seen.

use serde::{Deserialize, Serialize};

/// One remembered key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenEntry {
    pub key: String,
    pub count: u64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
}

/// Keys seen with counts, at most `capacity` of them, `entries` kept sorted by key.
///
/// Inserting a new key into a full set evicts the entry with the smallest
/// `(last_seen_ms, count, key)`; the newcomer takes part in that comparison, so a key that arrives
/// late (event time older than everything remembered) is not remembered at all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundedSet {
    pub capacity: u16,
    pub entries: Vec<SeenEntry>,
}

impl Default for BoundedSet {
    fn default() -> Self {
        BoundedSet::with_capacity(Self::DEFAULT_CAPACITY)
    }
}

impl BoundedSet {
    pub const DEFAULT_CAPACITY: u16 = 32;

    pub fn with_capacity(capacity: u16) -> Self {
        BoundedSet { capacity, entries: Vec::new() }
    }

    pub fn get(&self, key: &str) -> Option<&SeenEntry> {
        self.position(key).ok().map(|i| &self.entries[i])
    }

    pub fn contains(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sum of the counts of the remembered keys.
    pub fn total_count(&self) -> u64 {
        self.entries.iter().map(|e| e.count).sum()
    }

    /// Records one sighting of `key` at event time `time_ms`.
    pub fn observe(&mut self, key: &str, time_ms: i64) {
        match self.position(key) {
            Ok(i) => {
                let e = &mut self.entries[i];
                e.count = e.count.saturating_add(1);
                e.first_seen_ms = e.first_seen_ms.min(time_ms);
                e.last_seen_ms = e.last_seen_ms.max(time_ms);
            }
            Err(mut at) => {
                let cap = usize::from(self.capacity);
                if cap == 0 {
                    return;
                }
                // A set deserialized with a smaller capacity than it holds shrinks here.
                while self.entries.len() >= cap {
                    let victim = self.eviction_victim();
                    let v = &self.entries[victim];
                    let newcomer_is_older = (time_ms, 1u64, key) < (v.last_seen_ms, v.count, v.key.as_str());
                    if self.entries.len() == cap && newcomer_is_older {
                        return;
                    }
                    self.entries.remove(victim);
                    if victim < at {
                        at -= 1;
                    }
                }
                self.entries.insert(
                    at,
                    SeenEntry { key: key.to_owned(), count: 1, first_seen_ms: time_ms, last_seen_ms: time_ms },
                );
            }
        }
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|e| e.key.as_str().cmp(key))
    }

    fn eviction_victim(&self) -> usize {
        let mut best = 0;
        for (i, e) in self.entries.iter().enumerate().skip(1) {
            let b = &self.entries[best];
            if (e.last_seen_ms, e.count, e.key.as_str()) < (b.last_seen_ms, b.count, b.key.as_str()) {
                best = i;
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_times() {
        let mut s = BoundedSet::default();
        s.observe("a", 10);
        s.observe("a", 5);
        s.observe("a", 20);
        let e = s.get("a").unwrap();
        assert_eq!((e.count, e.first_seen_ms, e.last_seen_ms), (3, 5, 20));
        assert!(s.contains("a") && !s.contains("b"));
        assert_eq!((s.len(), s.total_count()), (1, 3));
    }

    #[test]
    fn never_exceeds_capacity_and_evicts_least_recently_seen() {
        let mut s = BoundedSet::with_capacity(4);
        for (i, k) in ["d", "c", "b", "a"].iter().enumerate() {
            s.observe(k, i as i64 * 10); // d@0 c@10 b@20 a@30
        }
        s.observe("d", 40); // d is now the most recent; c is the oldest
        s.observe("e", 50);
        assert_eq!(s.len(), 4);
        assert!(!s.contains("c") && s.contains("d") && s.contains("e"));
        for i in 0..100 {
            s.observe(&format!("k{i}"), 100 + i);
            assert!(s.len() <= 4);
        }
        let keys: Vec<_> = s.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["k96", "k97", "k98", "k99"]);
    }

    #[test]
    fn ties_break_by_count_then_key() {
        let mut s = BoundedSet::with_capacity(3);
        s.observe("x", 5);
        s.observe("x", 5);
        s.observe("y", 5);
        s.observe("z", 5);
        s.observe("w", 6); // y and z tie on (5, 1); y is the smaller key
        let keys: Vec<_> = s.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["w", "x", "z"]);
    }

    #[test]
    fn late_newcomer_older_than_everything_is_not_remembered() {
        let mut s = BoundedSet::with_capacity(2);
        s.observe("a", 100);
        s.observe("b", 200);
        s.observe("old", 50);
        assert!(!s.contains("old") && s.len() == 2);
    }

    #[test]
    fn zero_capacity_and_shrunk_capacity() {
        let mut s = BoundedSet::with_capacity(0);
        s.observe("a", 1);
        assert!(s.is_empty());
        let mut s = BoundedSet::with_capacity(5);
        for i in 0..5 {
            s.observe(&format!("k{i}"), i);
        }
        s.capacity = 2;
        s.observe("new", 10);
        assert_eq!(s.len(), 2);
        assert!(s.contains("new") && s.contains("k4"));
    }
}
