//! Traceo's public API and its Rust client.
//!
//! This crate owns the `.proto` contract ([`proto`], compiled from `proto/traceo.proto` without a
//! system `protoc`), the validation rules every event must pass ([`validate`], run by the client
//! before it splits a batch and again by every node), and [`Client`]: it caches the routing table,
//! sends each shard's part of a batch to that shard's leader in parallel, follows `NOT_LEADER`
//! hints, retries with backoff under a deadline reusing the same `event_id`s, and reports every
//! event as [`Outcome::Ok`], [`Outcome::Failed`] (definitely not applied) or
//! [`Outcome::Indeterminate`] (may be applied; retrying with the same id is safe).
//!
//! [`contract`] is the gRPC status contract the server and the client share: the
//! [`LEADER_ADDR_HEADER`] a "not leader" refusal names the leader in, and what each status code
//! and per-event `EventStatus` means for "was it applied?". It is there for the server to build
//! its refusals with, and the client's retries decide with it.
//!
//! It must not depend on the server's crates (`raft`, `storage`, `node`): anything here is what a
//! user's program links.

mod channels;
mod client;
pub mod contract;
mod next_try;
mod outcome;
mod routing;
mod settle;
pub mod validate;

pub mod proto {
    tonic::include_proto!("traceo.v1");
}

pub use client::{Client, ClientError, ClientOptions};
pub use contract::LEADER_ADDR_HEADER;
pub use outcome::Outcome;
pub use validate::{InvalidField, Limits};
