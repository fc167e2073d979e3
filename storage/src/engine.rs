//! The RocksDB engine: opening with bounded memory, column families, atomic batches, range scans,
//! consistent snapshots and explicit WAL sync for group commit.

use std::path::Path;

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Direction, IteratorMode,
    Options, ReadOptions, WriteBufferManager, WriteOptions, DB,
};

/// Column families. Every key in each of them starts with a group id (see [`crate::keys`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cf {
    /// Raft log entries: `(group, index)`.
    RaftLog,
    /// Raft vote, committed and last-purged log ids: `(group, tag)`.
    RaftState,
    /// User profiles: `(shard, user_id)`.
    Profiles,
    /// Applied event ids, for exact deduplication: `(shard, event_id)`.
    Dedupe,
    /// State machine metadata (last applied log id, membership, meta state): `(group, tag)`.
    SmMeta,
    /// The latest Raft snapshot of each group: `(group)`.
    Snapshots,
    /// Facts about this node itself (its id, the cluster it belongs to): `(0, tag)`.
    Node,
}

impl Cf {
    pub const ALL: [Cf; 7] =
        [Cf::RaftLog, Cf::RaftState, Cf::Profiles, Cf::Dedupe, Cf::SmMeta, Cf::Snapshots, Cf::Node];

    pub fn name(self) -> &'static str {
        match self {
            Cf::RaftLog => "raft_log",
            Cf::RaftState => "raft_state",
            Cf::Profiles => "profiles",
            Cf::Dedupe => "dedupe",
            Cf::SmMeta => "sm_meta",
            Cf::Snapshots => "snapshots",
            Cf::Node => "node",
        }
    }

    /// Stable one-byte tag, used when a snapshot lists keys of several families.
    pub fn tag(self) -> u8 {
        Cf::ALL.iter().position(|c| *c == self).expect("listed") as u8
    }

    pub fn from_tag(tag: u8) -> Option<Cf> {
        Cf::ALL.get(tag as usize).copied()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("decoding a stored value: {0}")]
    Codec(#[from] crate::CodecError),
}

/// Memory and durability settings. Everything RocksDB keeps in memory is bounded by these.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// One LRU cache for data blocks, index/filter blocks and memtables together.
    pub cache_bytes: usize,
    /// Memtable budget across all column families, charged to the cache above.
    pub memtable_bytes: usize,
    /// Maximum open SST files (bounds table-reader memory and file descriptors).
    pub max_open_files: i32,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { cache_bytes: 256 << 20, memtable_bytes: 128 << 20, max_open_files: 512 }
    }
}

/// A node's RocksDB. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Engine {
    db: DB,
    _cache: Cache,
}

/// An atomic group of writes: applied all together or not at all.
#[derive(Default)]
pub struct Batch {
    ops: Vec<Op>,
}

enum Op {
    Put(Cf, Vec<u8>, Vec<u8>),
    Delete(Cf, Vec<u8>),
    DeleteRange(Cf, Vec<u8>, Vec<u8>),
}

impl Batch {
    pub fn new() -> Self {
        Batch::default()
    }
    pub fn put(&mut self, cf: Cf, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push(Op::Put(cf, key, value));
    }
    pub fn delete(&mut self, cf: Cf, key: Vec<u8>) {
        self.ops.push(Op::Delete(cf, key));
    }
    /// Deletes `[start, end)`.
    pub fn delete_range(&mut self, cf: Cf, start: Vec<u8>, end: Vec<u8>) {
        self.ops.push(Op::DeleteRange(cf, start, end));
    }
    pub fn len(&self) -> usize {
        self.ops.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// A consistent point-in-time view of the whole database.
pub struct Snapshot<'a> {
    engine: &'a Engine,
    snap: rocksdb::Snapshot<'a>,
}

type Kv = (Vec<u8>, Vec<u8>);

impl Engine {
    /// Opens (creating if missing) the database at `path` with every column family.
    pub fn open(path: &Path, opts: &EngineOptions) -> Result<Engine, StorageError> {
        let cache = Cache::new_lru_cache(opts.cache_bytes);
        let wbm = WriteBufferManager::new_write_buffer_manager_with_cache(opts.memtable_bytes, false, cache.clone());
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_write_buffer_manager(&wbm);
        db_opts.set_max_open_files(opts.max_open_files);
        db_opts.set_max_background_jobs(2);
        // Bounds the WAL: past this, the oldest memtables are flushed so old WAL files can go.
        db_opts.set_max_total_wal_size(256 << 20);
        let cfs = Cf::ALL.iter().map(|cf| {
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(&cache);
            table.set_cache_index_and_filter_blocks(true);
            table.set_bloom_filter(10.0, false);
            let mut o = Options::default();
            o.set_block_based_table_factory(&table);
            o.set_write_buffer_size(opts.memtable_bytes / 4);
            o.set_compression_type(DBCompressionType::Lz4);
            o.set_bottommost_compression_type(DBCompressionType::Zstd);
            ColumnFamilyDescriptor::new(cf.name(), o)
        });
        let db = DB::open_cf_descriptors(&db_opts, path, cfs)?;
        Ok(Engine { db, _cache: cache })
    }

    fn cf(&self, cf: Cf) -> &ColumnFamily {
        // Every family is created at open, so the handle always exists.
        self.db.cf_handle(cf.name()).expect("column family created at open")
    }

    pub fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db.get_cf(self.cf(cf), key)?)
    }

    /// Writes `batch` atomically. With `sync`, the WAL is fsynced before returning; without it,
    /// the write is in the WAL's OS buffer and becomes durable at the next [`Engine::sync_wal`].
    pub fn write(&self, batch: Batch, sync: bool) -> Result<(), StorageError> {
        let mut wb = rocksdb::WriteBatch::default();
        for op in batch.ops {
            match op {
                Op::Put(cf, k, v) => wb.put_cf(self.cf(cf), k, v),
                Op::Delete(cf, k) => wb.delete_cf(self.cf(cf), k),
                Op::DeleteRange(cf, s, e) => wb.delete_range_cf(self.cf(cf), s, e),
            }
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        self.db.write_opt(wb, &wo)?;
        Ok(())
    }

    /// Makes every write made so far durable (one fsync of the WAL). Many writers' batches share
    /// one call: this is the group commit of the Raft logs of all groups on the node.
    pub fn sync_wal(&self) -> Result<(), StorageError> {
        Ok(self.db.flush_wal(true)?)
    }

    /// Key/value pairs in `[start, end)`, ascending, at most `limit` of them.
    pub fn scan(&self, cf: Cf, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Kv>, StorageError> {
        scan_with(&self.db, self.cf(cf), None, start, end, limit, Direction::Forward)
    }

    /// The last key/value pair in `[start, end)`.
    pub fn last(&self, cf: Cf, start: &[u8], end: &[u8]) -> Result<Option<Kv>, StorageError> {
        Ok(scan_with(&self.db, self.cf(cf), None, start, end, 1, Direction::Reverse)?.pop())
    }

    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot { engine: self, snap: self.db.snapshot() }
    }

    /// RocksDB's estimate of live data bytes in `cf` (for metrics and the benchmark).
    pub fn estimated_live_bytes(&self, cf: Cf) -> u64 {
        self.db.property_int_value_cf(self.cf(cf), "rocksdb.estimate-live-data-size").ok().flatten().unwrap_or(0)
    }

    /// Bytes of memtables across all families (for metrics).
    pub fn memtable_bytes(&self) -> u64 {
        Cf::ALL
            .iter()
            .filter_map(|cf| {
                self.db.property_int_value_cf(self.cf(*cf), "rocksdb.cur-size-all-mem-tables").ok().flatten()
            })
            .sum()
    }
}

impl Snapshot<'_> {
    pub fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.snap.get_cf(self.engine.cf(cf), key)?)
    }

    /// Every key/value pair in `[start, end)` as of this snapshot.
    pub fn scan(&self, cf: Cf, start: &[u8], end: &[u8]) -> Result<Vec<Kv>, StorageError> {
        let mut ro = ReadOptions::default();
        ro.set_snapshot(&self.snap);
        scan_with(&self.engine.db, self.engine.cf(cf), Some(ro), start, end, usize::MAX, Direction::Forward)
    }
}

fn scan_with(
    db: &DB,
    cf: &ColumnFamily,
    ro: Option<ReadOptions>,
    start: &[u8],
    end: &[u8],
    limit: usize,
    dir: Direction,
) -> Result<Vec<Kv>, StorageError> {
    let mut ro = ro.unwrap_or_default();
    ro.set_iterate_lower_bound(start.to_vec());
    ro.set_iterate_upper_bound(end.to_vec());
    let mode = match dir {
        Direction::Forward => IteratorMode::Start,
        Direction::Reverse => IteratorMode::End,
    };
    let mut out = Vec::new();
    for item in db.iterator_cf_opt(cf, ro, mode).take(limit) {
        let (k, v) = item?;
        out.push((k.into_vec(), v.into_vec()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{group_range, log_key};

    fn open() -> (tempfile::TempDir, Engine) {
        let dir = tempfile::tempdir().unwrap();
        let e = Engine::open(dir.path(), &EngineOptions::default()).unwrap();
        (dir, e)
    }

    #[test]
    fn batch_is_atomic_and_scans_are_bounded_by_group() {
        let (_d, e) = open();
        let mut b = Batch::new();
        for g in 0..3u32 {
            for i in 1..=5u64 {
                b.put(Cf::RaftLog, log_key(g, i), vec![g as u8, i as u8]);
            }
        }
        e.write(b, true).unwrap();
        let (s, end) = group_range(1);
        let got = e.scan(Cf::RaftLog, &s, &end, usize::MAX).unwrap();
        assert_eq!(got.len(), 5);
        assert!(got.iter().all(|(_, v)| v[0] == 1));
        assert_eq!(e.last(Cf::RaftLog, &s, &end).unwrap().unwrap().1, vec![1, 5]);
        assert_eq!(e.scan(Cf::RaftLog, &s, &end, 2).unwrap().len(), 2);

        let mut del = Batch::new();
        del.delete_range(Cf::RaftLog, s.clone(), end.clone());
        e.write(del, false).unwrap();
        e.sync_wal().unwrap();
        assert!(e.scan(Cf::RaftLog, &s, &end, usize::MAX).unwrap().is_empty());
        let (s2, e2) = group_range(2);
        assert_eq!(e.scan(Cf::RaftLog, &s2, &e2, usize::MAX).unwrap().len(), 5);
    }

    #[test]
    fn snapshot_does_not_see_later_writes() {
        let (_d, e) = open();
        let mut b = Batch::new();
        b.put(Cf::Profiles, b"\0\0\0\x01a".to_vec(), b"1".to_vec());
        e.write(b, false).unwrap();
        let snap = e.snapshot();
        let mut b = Batch::new();
        b.put(Cf::Profiles, b"\0\0\0\x01b".to_vec(), b"2".to_vec());
        e.write(b, false).unwrap();
        let (s, end) = group_range(1);
        assert_eq!(snap.scan(Cf::Profiles, &s, &end).unwrap().len(), 1);
        assert_eq!(e.scan(Cf::Profiles, &s, &end, usize::MAX).unwrap().len(), 2);
        assert_eq!(snap.get(Cf::Profiles, b"\0\0\0\x01b").unwrap(), None);
    }

    #[test]
    fn data_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let e = Engine::open(dir.path(), &EngineOptions::default()).unwrap();
            let mut b = Batch::new();
            b.put(Cf::Node, b"k".to_vec(), b"v".to_vec());
            e.write(b, false).unwrap();
            e.sync_wal().unwrap();
        }
        let e = Engine::open(dir.path(), &EngineOptions::default()).unwrap();
        assert_eq!(e.get(Cf::Node, b"k").unwrap(), Some(b"v".to_vec()));
        for cf in Cf::ALL {
            assert_eq!(Cf::from_tag(cf.tag()), Some(cf));
        }
    }
}
