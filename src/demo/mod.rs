//! `paddock demo ...`: runnable demonstrations that start their own servers.

pub mod fencing;

/// The demos.
#[derive(clap::Subcommand, Debug)]
pub enum Demo {
    /// DDIA Figure 8-4: a paused lock holder is stopped by its fencing token.
    Fencing(fencing::FencingArgs),
}

/// Runs a demo.
pub fn main(demo: Demo) -> std::process::ExitCode {
    match demo {
        Demo::Fencing(args) => fencing::main(args),
    }
}
