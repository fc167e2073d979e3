//! Black-box checking of Traceo: what clients were told, against what the cluster holds.
//!
//! This crate owns histories and checkers. A [`history`] records every operation a client invoked
//! and how it ended; the checkers judge one and return a serializable result whose
//! [`verdict::Validity`] is valid, invalid (with the offending operations) or unknown:
//!
//! - [`list_append`]: appends to and reads of per-key lists — duplicates, phantom ids, order,
//!   lost and failed-but-visible appends, stale reads in real time;
//! - [`linearizable`]: per-key registers (read, write, cas), by a Wing–Gong–Lowe search with a
//!   time limit;
//! - [`ledger`]: ingest outcomes and the lost / duplicated count check of the failover tests.
//!
//! Workloads and reports come with the Jepsen issue. The crate depends only on what a client
//! sees, never on the server's internals.

pub mod history;
pub mod ledger;
pub mod linearizable;
pub mod list_append;
pub mod verdict;

#[cfg(test)]
mod testgen;
