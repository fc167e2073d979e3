//! Traceo's serving-side scoring: what a node runs on every event.
//!
//! What it owns:
//! - [`event`]: the domain [`Event`], whose JSON form is the `traceo ingest FILE.jsonl` format;
//! - [`profile`]: the per-user behaviour [`Profile`] and its deterministic [`Profile::fold`], run by
//!   the Raft state machine on every replica (bit-identical results: integer calendar arithmetic,
//!   ordered collections, reproducible floating point from [`detmath`]);
//! - [`features`]: the observation of an event against its user's profile (impossible travel,
//!   unusual hour, new device or country, volume, spray and stuffing windows) and the model
//!   feature vector;
//! - [`detectors`]: the rule detectors and their reasons; [`model`]: the tree ensembles (our own
//!   evaluator) and the ONNX autoencoder (tract); [`scorer`]: rules and models combined into a
//!   calibrated score, reasons and an action;
//! - [`feedback`]: analysts' [`Feedback`], folded by [`Profile::apply_feedback`] and honoured by
//!   [`features`] (trusted devices and countries are never new) and [`detectors`] (a malicious mark);
//! - [`analyst_override`]: an analyst's per-user [`Override`] of the verdict's action, a register
//!   written with compare-and-set and idempotent retries ([`Profile::write_override`]);
//! - [`geo`]: great-circle distance and the table of real cities the features and the simulation
//!   share.
//!
//! The behaviour simulation (generator, attacks, labels, replay, ROC metrics) is the `traceo-sim`
//! crate (`scoring/sim`): a tool, and a dev-dependency where tests need events; nothing here
//! depends on it.
//!
//! Input validation of events is not here: it belongs to the public API (`client::validate`), run
//! by the client and by every node on the proto form of events. Feedback brings its own
//! ([`Feedback::validate`]).
//!
//! What it must not do: no I/O of any kind — no files, no network, no storage, no clocks (callers
//! pass `now_ms`), no global or unseeded randomness. It is a leaf crate that other crates call.

pub mod analyst_override;
pub mod bounded;
pub mod calendar;
pub mod detectors;
pub mod detmath;
pub mod event;
pub mod features;
pub mod feedback;
pub mod geo;
pub mod model;
pub mod profile;
pub mod scorer;

pub use analyst_override::{Override, OverrideOutcome, OverrideWrite};
pub use bounded::{BoundedSet, SeenEntry};
pub use event::{Event, EventKind, Geo, Outcome, UnknownEventKind};
pub use feedback::Feedback;
pub use profile::{Compromise, FloatStats, LastLogin, Profile, RateStats, RunningStats};
