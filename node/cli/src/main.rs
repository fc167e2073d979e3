//! `traceo`: the one binary. It parses the command line and hands over: `traceo node` to the
//! server (`node::serve`), every other command to the tools (`tools`). Nothing else lives here.

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc malloc: the write path allocates heavily (decoding and encoding log
/// entries and profiles) and glibc's malloc was ~15% of a node's CPU under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Traceo: a clustered database of user behaviour profiles.
///
/// Start with `traceo demo` (a local 3-node cluster with sample events, no set-up).
#[derive(Parser, Debug)]
#[command(name = "traceo", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a node (founds a new cluster unless --join is given).
    Node(Box<node::serve::NodeArgs>),
    #[command(flatten)]
    Tool(tools::Commands),
}

/// Logs go to stderr; `RUST_LOG` filters (default: info for `node`, warn otherwise).
fn init_tracing(command: &Command) {
    let default = if matches!(command, Command::Node(_)) { "info,openraft=warn" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Node(_)) {
        // Client commands behave like other Unix tools when their output pipe closes
        // (`traceo cluster status | head`): end quietly instead of panicking on EPIPE. A node
        // keeps Rust's default (ignored) so a closed socket is an error, not a death.
        // SAFETY: called once at start, before any thread exists.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    init_tracing(&cli.command);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Node(args) => node::serve::run(*args).await,
            Command::Tool(command) => tools::run(command).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
