//! Black-box checking of Traceo: what clients were told, against what the cluster holds.
//!
//! This crate owns histories and checkers. Today: the [`ledger`] of ingest outcomes and its
//! lost / duplicated check, used by the failover tests. Linearizability and list-append checkers,
//! workloads and reports come with the Jepsen issue. It depends only on what a client sees, never
//! on the server's internals.

pub mod ledger;
