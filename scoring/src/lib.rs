//! Traceo's scoring crate: the event and profile model.
//!
//! What it owns:
//! - [`event`]: the domain [`Event`], whose JSON form is the `traceo ingest FILE.jsonl` format;
//! - [`profile`]: the per-user behaviour [`Profile`] and its deterministic [`Profile::fold`], run by
//!   the Raft state machine on every replica (bit-identical results: integer calendar arithmetic,
//!   ordered collections, reproducible floating point from [`detmath`]);
//! - [`generator`]: a seeded, reproducible behaviour generator over simulated users
//!   ([`population`]) in real cities ([`geo`]);
//! - [`feedback`]: analysts' [`Feedback`], folded by [`Profile::apply_feedback`] and honoured by
//!   [`features`] (trusted devices and countries are never new) and [`detectors`] (a malicious mark).
//!
//! - [`analyst_override`]: an analyst's per-user [`Override`] of the verdict's action, a register
//!   written with compare-and-set and idempotent retries ([`Profile::write_override`]).
//!
//! Later it will also hold feature extraction, rule detectors and the ONNX models.
//!
//! Input validation of events is not here: it belongs to the public API (`client::validate`), run
//! by the client and by every node on the proto form of events. Feedback brings its own
//! ([`Feedback::validate`]).
//!
//! What it must not do: no I/O of any kind — no files, no network, no storage, no clocks (callers
//! pass `now_ms`), no global or unseeded randomness. It is a leaf crate that other crates call.

pub mod analyst_override;
pub mod attacks;
pub mod bounded;
pub mod calendar;
pub mod detectors;
pub mod detmath;
pub mod event;
pub mod features;
pub mod feedback;
pub mod generator;
pub mod geo;
pub mod labels;
pub mod metrics;
pub mod model;
mod network;
mod planner;
pub mod population;
pub mod profile;
pub mod replay;
pub mod scorer;
mod session;

pub use analyst_override::{Override, OverrideOutcome, OverrideWrite};
pub use bounded::{BoundedSet, SeenEntry};
pub use event::{Event, EventKind, Geo, Outcome, UnknownEventKind};
pub use feedback::Feedback;
pub use generator::{Generator, GeneratorConfig};
pub use labels::LabelRecord;
pub use profile::{Compromise, FloatStats, LastLogin, Profile, RateStats, RunningStats};
