//! `traceo`: thin entry point; the commands live in `node::cli`.

use clap::Parser;

/// mimalloc instead of glibc malloc: the write path allocates heavily (decoding and encoding log
/// entries and profiles) and glibc's malloc was ~15% of a node's CPU under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = node::cli::Cli::parse();
    if !matches!(cli.command, node::cli::Commands::Node(_)) {
        // Client commands behave like other Unix tools when their output pipe closes
        // (`traceo cluster status | head`): end quietly instead of panicking on EPIPE. A node
        // keeps Rust's default (ignored) so a closed socket is an error, not a death.
        // SAFETY: called once at start, before any thread exists.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    node::cli::init_tracing(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(node::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
