//! Traceo's operator and tooling commands: everything the `traceo` binary does besides running a
//! node (`traceo node` is the server's, `node::serve`).
//!
//! What it owns:
//! - operator commands against a running cluster, through the client: `ingest`, `profile`,
//!   `cluster status | decommission | rebalance`, `model`, `feedback`, `override`;
//! - local tooling: `demo` and `bench` (real node processes through `testkit`), the load driver
//!   ([`run_load`]), `generate`, `features` and `eval` on the behaviour simulation (`sim`), and
//!   the ROC/PR plots ([`roc_plot`]).
//!
//! What it must not do: depend on the server's crates (`node`, `raft`, `storage`). It reaches a
//! cluster only as a user would, so it builds without RocksDB, and the server carries none of
//! its dependencies (plotting, histograms, progress bars).

mod bench;
mod demo;
mod eval;
mod features_cmd;
mod feedback_cmd;
mod files;
mod generate;
mod ingest_file;
mod inspect;
mod load;
mod membership_cmd;
mod model_cmd;
mod override_cmd;
pub mod roc_plot;

use std::time::Duration;

use clap::Subcommand;

pub use load::{run_load, LoadOptions, LoadReport, PHASES};

/// The tool commands, flattened into the `traceo` binary's subcommands.
#[derive(Subcommand, Debug)]
pub enum Commands {
    /// Start a local 3-node cluster in a fresh directory, stream sample events, print a summary.
    Demo(demo::DemoArgs),
    /// Ingest a JSON-lines file of events (format: docs/EVENTS.md).
    Ingest(ingest_file::IngestArgs),
    /// Print a user's profile.
    Profile(inspect::ProfileArgs),
    /// Cluster commands.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommands,
    },
    /// Start a local cluster of real node processes, drive load through the client, print numbers.
    Bench(bench::BenchArgs),
    /// Write a labelled, reproducible behaviour data set: DIR/events.jsonl and DIR/labels.jsonl.
    Generate(generate::GenerateArgs),
    /// Write the model features of a labelled events file as CSV (the training data).
    Features(features_cmd::FeaturesArgs),
    /// Replay a labelled events file through the scorer; print ROC/PR metrics, write JSON and a plot.
    Eval(eval::EvalArgs),
    /// Deploy, promote, roll back or inspect the scoring models of a running cluster.
    Model {
        #[command(subcommand)]
        command: model_cmd::ModelCommands,
    },
    /// Record an analyst's feedback (mark an event, trust a device or country) for a user.
    Feedback(feedback_cmd::FeedbackArgs),
    /// Override a user's verdicts with a fixed action (allow, challenge, block), or clear it;
    /// --if-none / --if-note make it a compare-and-set.
    Override(override_cmd::OverrideArgs),
}

#[derive(Subcommand, Debug)]
pub enum ClusterCommands {
    /// Nodes, shards, leaders, terms and replication lag at a glance.
    Status(inspect::StatusArgs),
    /// Drain a live node (its replicas move to the others), then remove it; waits with progress.
    Decommission(membership_cmd::DecommissionArgs),
    /// Show the placement driver's plan: moves in flight and still to start.
    Rebalance(membership_cmd::RebalanceArgs),
}

/// Runs one tool command to its end.
pub async fn run(command: Commands) -> anyhow::Result<()> {
    match command {
        Commands::Demo(a) => demo::run(a).await,
        Commands::Ingest(a) => ingest_file::run(a).await,
        Commands::Profile(a) => inspect::profile(a).await,
        Commands::Cluster { command: ClusterCommands::Status(a) } => inspect::status(a).await,
        Commands::Cluster { command: ClusterCommands::Decommission(a) } => membership_cmd::decommission(a).await,
        Commands::Cluster { command: ClusterCommands::Rebalance(a) } => membership_cmd::rebalance(a).await,
        Commands::Bench(a) => bench::run(a).await,
        Commands::Generate(a) => generate::run(a),
        Commands::Features(a) => features_cmd::run(a),
        Commands::Eval(a) => eval::run(a),
        Commands::Model { command } => model_cmd::run(command).await,
        Commands::Feedback(a) => feedback_cmd::run(a).await,
        Commands::Override(a) => override_cmd::run(a).await,
    }
}

/// Parses durations such as `30s`, `500ms`, `2m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e} (examples: 30s, 500ms, 2m)"))
}

/// Seed addresses of a running cluster, shared by the client-side commands.
#[derive(clap::Args, Debug, Clone)]
pub struct SeedArgs {
    /// Addresses (host:port) of one or more nodes.
    #[arg(long, env = "TRACEO_SEEDS", value_delimiter = ',', default_value = "127.0.0.1:7400")]
    pub seeds: Vec<String>,
}
