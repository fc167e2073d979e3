//! Fault injection against real `traceo` node processes.
//!
//! This crate owns the nemeses: the faults done to processes and to the network between them.
//! Process faults ([`process`]: kill -9, pause and resume by pid) and network faults between
//! processes in their own network namespaces ([`netns`]: partitions, latency, loss). Clock
//! skew is libfaketime in the node's environment (set up by `traceo-jepsen`); membership
//! nemeses are not built yet. It must never be a dependency of a production crate.

pub mod netns;
pub mod process;
