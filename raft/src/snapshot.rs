//! Snapshots of a group: every key of the group in the state-machine families, read from one
//! RocksDB snapshot so data, applied log id and membership agree. The latest snapshot of each
//! group is kept in the `snapshots` family, as openraft requires.

use std::io::Cursor;

use openraft::{AnyError, Snapshot, StorageIOError};
use serde::{Deserialize, Serialize};
use storage::keys::{group_key, group_range, GroupId};
use storage::{decode, encode, Batch, Cf, Engine};

use crate::sm_tags::{TAG_APPLIED, TAG_MEMBERSHIP};
use crate::types::{LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig};

/// The families whose group range makes up a group's state.
const STATE_FAMILIES: [Cf; 3] = [Cf::Profiles, Cf::Dedupe, Cf::SmMeta];

#[derive(Serialize, Deserialize)]
struct Body {
    /// `(family tag, key, value)`.
    rows: Vec<(u8, Vec<u8>, Vec<u8>)>,
}

fn snap_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_snapshot(None, AnyError::new(&e)).into()
}

/// Builds a snapshot of `group` now and stores it as the group's current one.
pub(crate) fn build(engine: &Engine, group: GroupId) -> Result<Snapshot<TypeConfig>, StorageError> {
    let snap = engine.snapshot();
    let (start, end) = group_range(group);
    let mut rows = Vec::new();
    for cf in STATE_FAMILIES {
        for (k, v) in snap.scan(cf, &start, &end).map_err(snap_err)? {
            rows.push((cf.tag(), k, v));
        }
    }
    let applied: Option<LogId> = match snap.get(Cf::SmMeta, &group_key(group, &[TAG_APPLIED])).map_err(snap_err)? {
        Some(b) => decode(&b).map_err(snap_err)?,
        None => None,
    };
    let membership: StoredMembership =
        match snap.get(Cf::SmMeta, &group_key(group, &[TAG_MEMBERSHIP])).map_err(snap_err)? {
            Some(b) => decode(&b).map_err(snap_err)?,
            None => StoredMembership::default(),
        };
    drop(snap);
    let snapshot_id = match applied {
        Some(l) => format!("g{group}-t{}-i{}", l.leader_id.term, l.index),
        None => format!("g{group}-empty"),
    };
    let meta = SnapshotMeta { last_log_id: applied, last_membership: membership, snapshot_id };
    let data = encode(&Body { rows });
    store_current(engine, group, &meta, &data)?;
    Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
}

fn store_current(engine: &Engine, group: GroupId, meta: &SnapshotMeta, data: &[u8]) -> Result<(), StorageError> {
    let mut b = Batch::new();
    b.put(Cf::Snapshots, group_key(group, &[]), encode(&(meta, data)));
    engine.write(b, false).map_err(snap_err)
}

/// Replaces the group's state with the snapshot's, atomically and durably.
pub(crate) fn install(engine: &Engine, group: GroupId, meta: &SnapshotMeta, data: Vec<u8>) -> Result<(), StorageError> {
    let body: Body = decode(&data).map_err(snap_err)?;
    let (start, end) = group_range(group);
    let mut b = Batch::new();
    for cf in STATE_FAMILIES {
        b.delete_range(cf, start.clone(), end.clone());
    }
    for (tag, k, v) in body.rows {
        let cf =
            Cf::from_tag(tag).ok_or_else(|| snap_err(std::io::Error::other(format!("unknown family tag {tag}"))))?;
        if !(start <= k && k < end) {
            return Err(snap_err(std::io::Error::other("snapshot row outside the group's key range")));
        }
        b.put(cf, k, v);
    }
    // The snapshot's own record of applied id and membership wins over any row.
    b.put(Cf::SmMeta, group_key(group, &[TAG_APPLIED]), encode(&meta.last_log_id));
    b.put(Cf::SmMeta, group_key(group, &[TAG_MEMBERSHIP]), encode(&meta.last_membership));
    b.put(Cf::Snapshots, group_key(group, &[]), encode(&(meta, &data)));
    engine.write(b, true).map_err(snap_err)
}

/// The group's current snapshot, if one was built or installed.
pub(crate) fn current(engine: &Engine, group: GroupId) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
    let Some(bytes) = engine.get(Cf::Snapshots, &group_key(group, &[])).map_err(snap_err)? else {
        return Ok(None);
    };
    let (meta, data): (SnapshotMeta, Vec<u8>) = decode(&bytes).map_err(snap_err)?;
    Ok(Some(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) }))
}
