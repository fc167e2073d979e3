//! User id to shard mapping.

use crate::ShardId;
use xxhash_rust::xxh3::xxh3_64;

/// Stable shard of a user: XXH3-64 (seed 0) of the user id's UTF-8 bytes, modulo `shards`.
///
/// Used by both client and server to route; the mapping must never change.
///
/// # Panics
///
/// Panics if `shards` is zero (a configuration error; [`crate::place`] rejects it too).
pub fn shard_for(user_id: &str, shards: u32) -> ShardId {
    assert!(shards > 0, "shard_for: shard count must be at least 1");
    // The remainder is < shards <= u32::MAX, so the cast is lossless.
    (xxh3_64(user_id.as_bytes()) % u64::from(shards)) as ShardId
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_values() {
        // These values are part of the wire contract between clients and servers.
        assert_eq!(xxh3_64(b""), 0x2d06_8005_38d3_94c2);
        assert_eq!(shard_for("", 64), 2);
        assert_eq!(shard_for("alice", 64), 48);
        assert_eq!(shard_for("bob", 64), 37);
        assert_eq!(shard_for("user-42", 256), 205);
        assert_eq!(shard_for("ünïcödé", 1024), 881);
        assert_eq!(shard_for("anything", 1), 0);
    }

    #[test]
    fn in_range() {
        for shards in [1u32, 2, 3, 7, 64, 1000, u32::MAX] {
            for i in 0..1000 {
                assert!(shard_for(&format!("u{i}"), shards) < shards);
            }
        }
    }

    #[test]
    fn distributes_evenly() {
        const N: usize = 100_000;
        const SHARDS: u32 = 64;
        let mut counts = [0usize; SHARDS as usize];
        for i in 0..N {
            counts[shard_for(&format!("user-{i}"), SHARDS) as usize] += 1;
        }
        let mean = N as f64 / f64::from(SHARDS);
        for (shard, &c) in counts.iter().enumerate() {
            let dev = (c as f64 - mean).abs() / mean;
            assert!(dev <= 0.15, "shard {shard} has {c} ids, mean {mean}");
        }
    }

    #[test]
    #[should_panic(expected = "shard count must be at least 1")]
    fn zero_shards_panics() {
        shard_for("x", 0);
    }
}
