//! Traceo's behaviour simulation: labelled data to train and evaluate the scorer on.
//!
//! What it owns:
//! - [`generator`]: a seeded, reproducible behaviour generator over simulated users
//!   ([`population`]) in real cities (`scoring::geo`), with their sessions, networks and travel
//!   plans, and injected attacks ([`attacks`]: impossible travel, credential stuffing, password
//!   spray, exfiltration, ...);
//! - [`labels`]: each event's ground truth ([`LabelRecord`]) and the scenario names;
//! - [`replay`]: a labelled file replayed through the serving scorer exactly as a node folds it;
//! - [`roc`]: ROC AUC, PR AUC and TPR at a fixed FPR of a detector's scores.
//!
//! It is a tool (`traceo generate`, `traceo eval`, `traceo features`, the benchmark's load) and
//! a dev-dependency of tests that need events. The serving crates (`scoring`, `raft`, `node`)
//! must not depend on it. Like `scoring`, it does no I/O: callers read and write files.

pub mod attacks;
pub mod generator;
pub mod labels;
mod network;
mod planner;
pub mod population;
pub mod replay;
pub mod roc;
mod session;

pub use generator::{Generator, GeneratorConfig};
pub use labels::LabelRecord;
