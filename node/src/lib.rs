//! The Traceo server: one node's services, control loops and admin port, and `traceo node`.
//!
//! This crate owns a node's life ([`Node::start`] / [`Node::shutdown`]) and its configuration
//! ([`config`], [`serve`]: the `traceo node` command's flags), the public gRPC services ([`api`],
//! with every gRPC status made in [`api::errors`]), the entry batcher on shard leaders
//! ([`proposer`]), scoring of applied events ([`scoring_service`]), the background control loops
//! that place shards, watch liveness, move replicas and start or delete local replicas
//! ([`control`]), and the admin HTTP port ([`admin`], [`metrics`]).
//!
//! What it must not do: implement consensus or storage itself (that is `raft` and `storage`),
//! carry the operator and tooling commands (`traceo-tools`), or know the command line beyond
//! `traceo node` (the `traceo` binary crate dispatches). Everything here can run in-process.
//!
//! Dependencies run one way: [`api`] and [`control`] use [`shared`] (the state every service and
//! loop reads), which uses [`proposer`], [`scoring_service`], [`metrics`] and [`config`]; nothing
//! below uses what is above it.

pub mod admin;
pub mod api;
pub mod bootstrap;
pub mod config;
pub mod control;
pub mod metrics;
mod node;
pub mod proposer;
pub mod scoring_service;
pub mod serve;
pub mod shared;

pub use config::{ConfigError, NodeConfig};
pub use node::Node;
