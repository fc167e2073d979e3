//! The Traceo server: the `traceo` binary's library.
//!
//! This crate owns a node's life ([`Node::start`] / [`Node::shutdown`]), its configuration
//! ([`config`]), the public gRPC services ([`api`]), the control loops that place shards, watch
//! liveness and start or delete local replicas ([`driver`]), the replica moves each shard leader
//! carries out ([`mover`]), the admin HTTP port ([`admin`], [`metrics`]), and the commands of
//! the binary (`cli`): `node`, `demo`, `ingest`, `profile`, `cluster status | decommission |
//! rebalance`, `bench`.
//! [`local_cluster`] starts real node processes on loopback for the demo, the benchmark and tests.
//!
//! It must not implement consensus or storage itself (that is `raft` and `storage`), and
//! `main.rs` stays thin: everything here can run in-process.

pub mod admin;
pub mod api;
pub mod api_models;
pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod convert;
pub mod driver;
pub mod local_cluster;
pub mod metrics;
pub mod model_watch;
pub mod mover;
mod node;
pub mod proposer;
pub mod scoring_service;
pub mod shared;
pub mod status;

pub use config::{ConfigError, NodeConfig};
pub use node::Node;
