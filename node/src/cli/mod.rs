//! The `traceo` command line.

mod bench;
mod bench_scale;
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
mod node_cmd;
mod override_cmd;
pub mod roc_plot;

use std::time::Duration;

use clap::{Parser, Subcommand};

pub use load::{run_load, LoadOptions, LoadReport};

/// Traceo: a clustered database of user behaviour profiles.
///
/// Start with `traceo demo` (a local 3-node cluster with sample events, no set-up).
#[derive(Parser, Debug)]
#[command(name = "traceo", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Commands,
}

#[derive(Subcommand, Debug)]
pub enum Commands {
    /// Run a node (founds a new cluster unless --join is given).
    Node(Box<node_cmd::NodeArgs>),
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

/// Logs go to stderr; `RUST_LOG` filters (default: info for `node`, warn otherwise).
pub fn init_tracing(cli: &Cli) {
    let default = if matches!(cli.command, Commands::Node(_)) { "info,openraft=warn" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Commands::Node(a) => node_cmd::run(*a).await,
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
