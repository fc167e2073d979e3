//! Fault injection against real `traceo` node processes.
//!
//! This crate owns the nemeses: the faults done to processes and to the network between them.
//! Process faults ([`process`]: kill -9, pause and resume by pid) and network faults between
//! processes in their own network namespaces ([`netns`]: partitions, latency, loss), or, without
//! root, through a mesh of fault-injecting TCP proxies between them ([`proxy`], same faults). Clock
//! skew is libfaketime in the node's environment, and membership changes go through the public
//! API (both set up by `traceo-jepsen`). [`prerequisite`] makes a test that needs what a machine
//! may lack fail under CI instead of passing silently. It must never be a dependency of a
//! production crate.

pub mod netns;
pub mod prerequisite;
pub mod process;
pub mod proxy;
