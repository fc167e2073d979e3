//! Big-endian key encoding. Every key starts with the 4-byte group id, so all data of one Raft
//! group (a shard, or the meta group) is one contiguous range in each column family: a snapshot is
//! a range scan and dropping a replica is a range delete.

/// Id of a Raft group on this node: shards are `0..shards`, the meta group is [`META_GROUP`].
pub type GroupId = u32;

/// The meta group (membership, node addresses, placement) sorts after every shard.
pub const META_GROUP: GroupId = u32::MAX;

/// `[start, end)` covering every key of `group` in any column family.
pub fn group_range(group: GroupId) -> (Vec<u8>, Vec<u8>) {
    let start = group.to_be_bytes().to_vec();
    let end = match group.checked_add(1) {
        Some(next) => next.to_be_bytes().to_vec(),
        // The last group: every key that starts with 0xffffffff sorts below this.
        None => vec![0xff; 5],
    };
    (start, end)
}

/// `group ++ suffix`.
pub fn group_key(group: GroupId, suffix: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + suffix.len());
    k.extend_from_slice(&group.to_be_bytes());
    k.extend_from_slice(suffix);
    k
}

/// Key of a Raft log entry: `group ++ index` (both big-endian), so entries sort by index.
pub fn log_key(group: GroupId, index: u64) -> Vec<u8> {
    group_key(group, &index.to_be_bytes())
}

/// Inverse of [`log_key`]; `None` for a key of another shape.
pub fn log_index(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(4..12)?.try_into().ok()?;
    (key.len() == 12).then(|| u64::from_be_bytes(tail))
}

/// The group id a key belongs to.
pub fn key_group(key: &[u8]) -> Option<GroupId> {
    Some(GroupId::from_be_bytes(key.get(0..4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keys_sort_by_group_then_index() {
        let mut keys = vec![log_key(2, 1), log_key(1, 300), log_key(1, 2), log_key(0, u64::MAX)];
        keys.sort();
        assert_eq!(keys, vec![log_key(0, u64::MAX), log_key(1, 2), log_key(1, 300), log_key(2, 1)]);
        assert_eq!(log_index(&log_key(7, 42)), Some(42));
        assert_eq!(key_group(&log_key(7, 42)), Some(7));
        assert_eq!(log_index(b"short"), None);
    }

    #[test]
    fn group_range_contains_exactly_the_group() {
        for g in [0, 5, META_GROUP] {
            let (s, e) = group_range(g);
            let inside = group_key(g, b"anything\xff\xff");
            assert!(s <= inside && inside < e);
            if g > 0 {
                assert!(group_key(g - 1, &[0xff; 16]) < s);
            }
            if let Some(n) = g.checked_add(1) {
                assert!(group_key(n, b"") >= e);
            }
        }
    }
}
