//! openraft's storage conformance suite against Traceo's RocksDB log store and state machine.

use std::sync::Arc;

use openraft::testing::{StoreBuilder, Suite};
use raft::flusher::Flusher;
use raft::types::StorageError;
use raft::{LogStore, StateMachine, TypeConfig};
use storage::{Engine, EngineOptions};
use tempfile::TempDir;

struct RocksBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for RocksBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let opts = EngineOptions { cache_bytes: 16 << 20, memtable_bytes: 8 << 20, ..EngineOptions::default() };
        let engine = Arc::new(Engine::open(dir.path(), &opts).expect("open engine"));
        let flusher = Flusher::start(engine.clone());
        // A shard group other than 0, so key-range mistakes at group boundaries show up.
        let group = 7;
        Ok((
            dir,
            LogStore::new(engine.clone(), group, flusher),
            StateMachine::shard(engine, group, 1000, Default::default()),
        ))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(RocksBuilder).expect("openraft storage suite");
}
