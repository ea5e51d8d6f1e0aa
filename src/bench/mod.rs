//! `paddock bench`: a load generator for any ZooKeeper-protocol server.

use std::process::ExitCode;

/// Command-line arguments of `paddock bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Server to load, host:port.
    #[arg(long, default_value = "127.0.0.1:2181")]
    pub server: String,
}

/// Runs the benchmark; the exit code says whether it completed.
pub fn main(args: BenchArgs) -> ExitCode {
    eprintln!("paddock bench: not yet implemented (server {})", args.server);
    ExitCode::FAILURE
}
