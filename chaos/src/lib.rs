//! Fault injection against real `traceo` node processes.
//!
//! This crate owns the nemeses: the faults done to processes and to the network between them.
//! Today it holds the process faults ([`process`]: kill -9, pause and resume by pid), used by the
//! failover tests; partitions, latency, clock skew and membership nemeses come with the chaos
//! issue. It must never be a dependency of a production crate.

pub mod process;
