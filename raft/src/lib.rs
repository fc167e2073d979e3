//! Multi-Raft for Traceo: many openraft groups per node (one per local shard replica, plus the
//! meta group), all on the node's single RocksDB and one tonic peer service.
//!
//! This crate owns the cluster's members ([`member`]), the commands ([`command`]) and the openraft
//! type configuration ([`TypeConfig`]), the Raft log ([`LogStore`], with cross-group group commit
//! in [`flusher`]), the state machines (shards fold events into profiles; the meta group keeps
//! node states, target placement and reported voters), snapshots, the peer RPC transport
//! ([`network`] sends, [`peer_service`] receives) and its per-peer append health
//! ([`link_stats`]), leadership hand-over and the move rate limit ([`transfer`]), meta proposals
//! forwarded to the meta leader ([`meta_propose`]), and deleting a removed replica's data
//! ([`MultiRaft::remove_shard`]). Start at [`MultiRaft`].
//!
//! It must not serve clients or decide placement: the `node` crate does that, calling
//! [`MultiRaft`] for proposals and reads.

// openraft's `StorageError` (the error type its storage traits require) is over 200 bytes; the
// helpers that build it return it as is rather than boxing and unboxing at every trait boundary.
#![allow(clippy::result_large_err)]

pub mod command;
pub mod flusher;
pub mod link_stats;
pub mod log_store;
pub mod member;
pub mod meta;
pub mod meta_propose;
pub mod model_registry;
pub mod multi;
pub mod net_faults;
pub mod network;
pub mod peer_service;
mod sm_tags;
mod snapshot;
pub mod state_machine;
pub mod transfer;
pub mod types;

pub mod proto {
    tonic::include_proto!("traceo.peer.v1");
}

pub use command::{Applied, Command, CommandResult, MetaCommand};
pub use log_store::LogStore;
pub use meta::{ClusterConfig, MetaState, NodeState, ShardMembers};
pub use model_registry::{ModelCommand, ModelRegistry, ModelSlot};
pub use multi::{GroupHandle, MultiRaft, RaftOptions};
pub use state_machine::StateMachine;
pub use storage::keys::{GroupId, META_GROUP};
pub use types::{NodeId, NodeInfo, Raft, TypeConfig};
