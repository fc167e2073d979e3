//! Traceo's storage engine: one RocksDB per node, shared by every Raft group the node hosts.
//!
//! This crate owns the on-disk layout: the column families ([`Cf`]), the big-endian key encoding
//! that keeps each group (shard) in one contiguous key range ([`keys`]), and the versioned binary
//! value encoding ([`codec`]). It exposes a deliberately small surface ([`Engine`], [`Batch`]) so
//! the Raft log and state machines above it never touch RocksDB types directly.
//!
//! It must not know about Raft, profiles or the network: it stores bytes under keys, atomically
//! (one [`Batch`] = one RocksDB `WriteBatch`) and durably when asked ([`Engine::sync_wal`]).
//! Every memory pool it creates (block cache, memtables) is bounded by [`EngineOptions`].
//!
//! Start reading at [`Engine::open`].

pub mod codec;
mod engine;
pub mod keys;

pub use codec::{decode, encode, CodecError, FORMAT_VERSION};
pub use engine::{Batch, Cf, Engine, EngineOptions, StorageError};
