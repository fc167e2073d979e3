//! The Raft log of one group, on the node's RocksDB (`raft_log` and `raft_state` families).

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, LogState, OptionalSend, RaftLogReader, StorageIOError, Vote};
use storage::keys::{group_key, group_range, log_key, GroupId};
use storage::{decode, encode, Batch, Cf, Engine};

use crate::flusher::Flusher;
use crate::types::{Entry, LogId, NodeId, StorageError, TypeConfig};

const TAG_VOTE: u8 = 1;
const TAG_COMMITTED: u8 = 2;
const TAG_PURGED: u8 = 3;

/// Log and vote storage of one group. Cheap to clone; clones share the engine.
#[derive(Clone)]
pub struct LogStore {
    engine: Arc<Engine>,
    group: GroupId,
    flusher: Flusher,
}

fn read_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::read_logs(AnyError::new(&e)).into()
}
fn write_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_logs(AnyError::new(&e)).into()
}

impl LogStore {
    pub fn new(engine: Arc<Engine>, group: GroupId, flusher: Flusher) -> LogStore {
        LogStore { engine, group, flusher }
    }

    fn state_key(&self, tag: u8) -> Vec<u8> {
        group_key(self.group, &[tag])
    }

    fn read_state<T: serde::de::DeserializeOwned>(&self, tag: u8) -> Result<Option<T>, StorageError> {
        match self.engine.get(Cf::RaftState, &self.state_key(tag)).map_err(read_err)? {
            None => Ok(None),
            Some(bytes) => Ok(Some(decode(&bytes).map_err(read_err)?)),
        }
    }

    /// The `[start, end)` key range of log indexes in `range`.
    fn key_range(&self, range: impl RangeBounds<u64>) -> (Vec<u8>, Vec<u8>) {
        let start = match range.start_bound() {
            Bound::Included(i) => log_key(self.group, *i),
            Bound::Excluded(i) => match i.checked_add(1) {
                Some(n) => log_key(self.group, n),
                None => group_range(self.group).1,
            },
            Bound::Unbounded => log_key(self.group, 0),
        };
        let end = match range.end_bound() {
            Bound::Included(i) => match i.checked_add(1) {
                Some(n) => log_key(self.group, n),
                None => group_range(self.group).1,
            },
            Bound::Excluded(i) => log_key(self.group, *i),
            Bound::Unbounded => group_range(self.group).1,
        };
        (start, end)
    }

    /// Deletes every log entry and the Raft state of this group (the replica is being dropped).
    pub fn destroy(&self) -> Result<(), storage::StorageError> {
        let (s, e) = group_range(self.group);
        let mut b = Batch::new();
        b.delete_range(Cf::RaftLog, s.clone(), e.clone());
        b.delete_range(Cf::RaftState, s, e);
        self.engine.write(b, true)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let (start, end) = self.key_range(range);
        if start >= end {
            return Ok(Vec::new());
        }
        let rows = self.engine.scan(Cf::RaftLog, &start, &end, usize::MAX).map_err(read_err)?;
        rows.iter().map(|(_, v)| decode::<Entry>(v).map_err(read_err)).collect()
    }

    async fn limited_get_log_entries(&mut self, start: u64, end: u64) -> Result<Vec<Entry>, StorageError> {
        // Bounds the memory of one replication round: at most this many entries per read.
        const MAX_ENTRIES: usize = 256;
        let (s, e) = self.key_range(start..end);
        let rows = self.engine.scan(Cf::RaftLog, &s, &e, MAX_ENTRIES).map_err(read_err)?;
        rows.iter().map(|(_, v)| decode::<Entry>(v).map_err(read_err)).collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = self.read_state(TAG_PURGED)?;
        let (s, e) = group_range(self.group);
        let last = match self.engine.last(Cf::RaftLog, &s, &e).map_err(read_err)? {
            Some((_, v)) => Some(decode::<Entry>(&v).map_err(read_err)?.log_id),
            None => last_purged_log_id,
        };
        Ok(LogState { last_purged_log_id, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let mut b = Batch::new();
        b.put(Cf::RaftState, self.state_key(TAG_VOTE), encode(vote));
        self.engine.write(b, true).map_err(|e| StorageError::from(StorageIOError::write_vote(AnyError::new(&e))))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.read_state(TAG_VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not synced: it is a hint that lets a restarted node apply sooner; it becomes durable
        // with the next log sync, and losing it only delays applying.
        let mut b = Batch::new();
        b.put(Cf::RaftState, self.state_key(TAG_COMMITTED), encode(&committed));
        self.engine.write(b, false).map_err(write_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.read_state::<Option<LogId>>(TAG_COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut b = Batch::new();
        for entry in entries {
            b.put(Cf::RaftLog, log_key(self.group, entry.log_id.index), encode(&entry));
        }
        self.engine.write(b, false).map_err(write_err)?;
        self.flusher.flush(callback).await.map_err(write_err)
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let (start, end) = self.key_range(log_id.index..);
        let mut b = Batch::new();
        b.delete_range(Cf::RaftLog, start, end);
        self.engine.write(b, false).map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // Record the purge point first in the same batch, so no crash leaves a hole unexplained.
        let (start, end) = self.key_range(..=log_id.index);
        let mut b = Batch::new();
        b.put(Cf::RaftState, self.state_key(TAG_PURGED), encode(&log_id));
        b.delete_range(Cf::RaftLog, start, end);
        self.engine.write(b, false).map_err(write_err)
    }
}
