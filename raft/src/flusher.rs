//! Group commit for the Raft logs of every group on the node.
//!
//! `append` writes entries to RocksDB without fsync (so they are readable at once, as openraft
//! requires) and hands the flush callback here. One thread takes every callback waiting, makes
//! them all durable with a single WAL fsync, then completes them. Under load one fsync covers
//! many groups' appends, which is where a 2-core machine's throughput comes from.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use openraft::storage::LogFlushed;
use storage::Engine;
use tokio::sync::mpsc;

use crate::types::TypeConfig;

/// Pending flush callbacks beyond this make appenders wait (back pressure, bounded memory).
const MAX_PENDING: usize = 8192;

#[derive(Default, Debug)]
pub struct FlushStats {
    /// WAL fsyncs done.
    pub syncs: AtomicU64,
    /// Append callbacks completed (one per `append` call of any group).
    pub appends: AtomicU64,
}

#[derive(Clone)]
pub struct Flusher {
    tx: mpsc::Sender<LogFlushed<TypeConfig>>,
    stats: Arc<FlushStats>,
}

impl Flusher {
    /// Starts the sync thread. It ends when the last `Flusher` clone is dropped.
    ///
    /// The thread holds the engine weakly: the database closes on the thread that drops the last
    /// log store or state machine, not on this one racing the process's exit (RocksDB aborts with
    /// a double free if its static state is torn down while a database is still closing).
    pub fn start(engine: Arc<Engine>) -> Flusher {
        let engine: Weak<Engine> = Arc::downgrade(&engine);
        let (tx, mut rx) = mpsc::channel::<LogFlushed<TypeConfig>>(MAX_PENDING);
        let stats = Arc::new(FlushStats::default());
        let thread_stats = stats.clone();
        std::thread::Builder::new()
            .name("raft-log-sync".into())
            .spawn(move || {
                let mut pending = Vec::new();
                while let Some(first) = rx.blocking_recv() {
                    pending.push(first);
                    while let Ok(more) = rx.try_recv() {
                        pending.push(more);
                    }
                    let result = match engine.upgrade() {
                        Some(e) => e.sync_wal().map_err(|e| e.to_string()),
                        None => Err("the database is closed".to_string()),
                    };
                    thread_stats.syncs.fetch_add(1, Ordering::Relaxed);
                    thread_stats.appends.fetch_add(pending.len() as u64, Ordering::Relaxed);
                    for cb in pending.drain(..) {
                        let r = match &result {
                            Ok(()) => Ok(()),
                            Err(e) => Err(io::Error::other(e.clone())),
                        };
                        cb.log_io_completed(r);
                    }
                }
            })
            .expect("spawning the raft-log-sync thread");
        Flusher { tx, stats }
    }

    /// Completes `callback` once everything written so far is durable.
    pub async fn flush(&self, callback: LogFlushed<TypeConfig>) -> io::Result<()> {
        self.tx.send(callback).await.map_err(|_| io::Error::other("log sync thread stopped"))
    }

    pub fn stats(&self) -> &FlushStats {
        &self.stats
    }
}
