//! The `paddock` command: runs a server (by default one node on
//! 127.0.0.1:2181 with data in ./data).

mod allocator;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use paddock::config::Config;

/// A ZooKeeper wire-compatible coordination server.
#[derive(Parser, Debug)]
#[command(name = "paddock", version, about, args_override_self = true)]
struct Cli {
    /// What to do instead of serving (nothing: run the server).
    #[command(subcommand)]
    command: Option<Command>,
    /// A ZooKeeper zoo.cfg to read (clientPort, dataDir, tickTime, ...).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Client port (overrides the config; 0 picks a free port).
    #[arg(long)]
    port: Option<u16>,
    /// Address to bind the client port to.
    #[arg(long)]
    bind: Option<String>,
    /// Data directory (overrides the config).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// TLS client port (overrides secureClientPort; 0 picks a free port; needs the ssl.* keys).
    #[arg(long)]
    secure_port: Option<u16>,
    /// HTTP admin server port (overrides admin.serverPort and enables it; 0 picks a free port).
    #[arg(long)]
    admin_port: Option<u16>,
    /// Before serving, load this ZooKeeper data directory (its dataDir:
    /// snapshot and logs) into a paddock that has no data yet.
    #[arg(long, value_name = "DIR")]
    import_zookeeper: Option<PathBuf>,
    /// ZooKeeper's dataLogDir, if it kept its logs apart from its dataDir.
    #[arg(long, value_name = "DIR", requires = "import_zookeeper")]
    import_zookeeper_logs: Option<PathBuf>,
    /// Instead of serving, write this (stopped) server's data as a
    /// ZooKeeper snapshot into DIR/version-2, for ZooKeeper to start from.
    #[arg(long, value_name = "DIR", conflicts_with = "import_zookeeper")]
    export_zookeeper: Option<PathBuf>,
}

/// Subcommands besides serving.
#[derive(Subcommand, Debug)]
enum Command {
    /// Load-test any ZooKeeper-protocol server (paddock or ZooKeeper itself).
    Bench(paddock::bench::BenchArgs),
    /// Draws bench/compare.sh's results (throughput and p99 per workload) as an SVG.
    BenchPlot(paddock::bench::plot::PlotArgs),
    /// Runnable demonstrations that start their own ensemble.
    #[command(subcommand)]
    Demo(paddock::demo::Demo),
    /// The same random requests to two servers (ZooKeeper and paddock); reports where they answer differently.
    Differ(paddock::differ::DifferArgs),
    /// A fault-injection run against a fresh 3-node ensemble, with checkers.
    Faults(paddock::fault::run::FaultArgs),
    /// A lock client process (used by `demo fencing` and the fault harness).
    #[command(hide = true)]
    LockClient(paddock::fault::lock_client::LockClientArgs),
}

fn main() -> ExitCode {
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,openraft=warn".into());
    // The audit log is asked for in zoo.cfg (audit.enable): a quieter
    // RUST_LOG keeps it, unless it names the `audit` target itself.
    if !std::env::var("RUST_LOG").is_ok_and(|v| v.contains("audit")) {
        if let Ok(audit) = "audit=info".parse() {
            filter = filter.add_directive(audit);
        }
    }
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    allocator::fixed_mmap_threshold();
    match cli.command {
        Some(Command::Bench(args)) => return paddock::bench::main(args),
        Some(Command::BenchPlot(args)) => return paddock::bench::plot::main(args),
        Some(Command::Demo(demo)) => return paddock::demo::main(demo),
        Some(Command::Differ(args)) => return paddock::differ::main(args),
        Some(Command::Faults(args)) => return paddock::fault::run::main(args),
        Some(Command::LockClient(args)) => return paddock::fault::lock_client::main(args),
        None => {}
    }
    let mut config = match &cli.config {
        Some(path) => match Config::from_zoo_cfg(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("paddock: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    if let Some(port) = cli.port {
        config.client_port = port;
    }
    if let Some(bind) = cli.bind {
        config.client_address = bind;
    }
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    if let Some(port) = cli.secure_port {
        config.secure_client_port = Some(port);
    }
    if let Some(port) = cli.admin_port {
        config.admin_port = port;
        config.admin_enabled = true;
    }
    if let Some(dir) = &cli.export_zookeeper {
        return export(&config, dir);
    }
    // ZooKeeper's JVM reads java.security.krb5.conf; the Kerberos library
    // paddock loads reads KRB5_CONFIG (set here, while no other thread runs,
    // unless the environment already names one).
    if let (Some(krb5), None) = (&config.krb5_conf, std::env::var_os("KRB5_CONFIG")) {
        std::env::set_var("KRB5_CONFIG", krb5);
    }
    // Read before anything starts: a directory that cannot be imported
    // stops the start with why, with nothing bound and nothing written.
    let import = match &cli.import_zookeeper {
        Some(dir) => match paddock::import::read(dir, cli.import_zookeeper_logs.as_deref()) {
            Ok(imported) => {
                tracing::info!(
                    "import: {} znodes and {} sessions from {} plus {} logged transactions (last zxid {:#x})",
                    imported.nodes.len(),
                    imported.sessions.len(),
                    imported.snapshot.display(),
                    imported.replayed,
                    imported.last_zxid
                );
                Some(imported)
            }
            Err(e) => {
                eprintln!("paddock: cannot import {}: {e}", dir.display());
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    // Traces, if the OTEL_* environment names a collector.
    let telemetry = match paddock::telemetry::init(&format!("server.{}", config.server_id)) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("paddock: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let code = runtime.block_on(run(config, import));
    if let Some(telemetry) = telemetry {
        telemetry.shutdown();
    }
    code
}

/// The runtime serving (or exporting) runs on; says why if it cannot start.
fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| {
        eprintln!("paddock: cannot start the runtime: {e}");
        ExitCode::FAILURE
    })
}

/// `--export-zookeeper DIR`: writes the snapshot and says what ZooKeeper
/// needs to know to start from it.
fn export(config: &Config, dir: &std::path::Path) -> ExitCode {
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let done = match runtime.block_on(paddock::export::run(config, dir)) {
        Ok(done) => done,
        Err(e) => {
            eprintln!("paddock: cannot export: {e}");
            return ExitCode::from(2);
        }
    };
    let w = &done.written;
    println!(
        "exported {} znodes and {} sessions at zxid {:#x} (ZooKeeper digest {}) to {} ({} bytes)",
        w.nodes,
        w.sessions,
        w.zxid,
        w.digest,
        done.path.display(),
        w.bytes
    );
    if done.unsure > 0 {
        println!(
            "note: this server's log has {} entries after the last commit it knew of, not exported; \
             if it was not the leader when it stopped, export the member that was (the highest zxid)",
            done.unsure
        );
    }
    if w.ttl_nodes > 0 {
        println!(
            "note: {} TTL nodes: set extendedTypesEnabled=true in ZooKeeper's zoo.cfg, \
             or it takes them for ephemerals of a closed session and deletes them",
            w.ttl_nodes
        );
    }
    if w.sessions > 0 {
        println!(
            "note: a client whose session paddock opened gets a new one from ZooKeeper (ZooKeeper derives \
             a session's password from its id, paddock draws it at random); the old session's ephemerals \
             go when its timeout passes"
        );
    }
    ExitCode::SUCCESS
}

async fn run(config: Config, import: Option<paddock::import::Imported>) -> ExitCode {
    let running = match paddock::server::start_importing(config, import).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("paddock: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Tests and scripts read these lines to learn the ports; the secure
    // port's and the admin server's come first, so they are known once the
    // client port is.
    if let Some(addr) = running.secure_addr {
        println!("paddock secure client port listening on {addr}");
        tracing::info!(%addr, "secure client port (TLS) listening");
    }
    if let Some(addr) = running.admin_addr {
        println!("paddock admin server listening on {addr}");
        tracing::info!(%addr, "admin server listening");
    }
    if let Some(addr) = running.metrics_addr {
        println!("paddock metrics listening on {addr}");
        tracing::info!(%addr, "Prometheus metrics listening");
    }
    println!("paddock listening on {}", running.client_addr);
    let _ = std::io::stdout().flush();
    tracing::info!(addr = %running.client_addr, "listening");
    // As ZooKeeper, whose critical threads end the process: a server whose
    // Raft core stopped (its disk refused a write) would otherwise stay up
    // serving nothing, and a supervisor would not know to restart it.
    let code = tokio::select! {
        _ = wait_for_signal() => {
            tracing::info!("shutting down");
            ExitCode::SUCCESS
        }
        why = running.fatal() => {
            tracing::error!(error = %why, "cannot go on: exiting; what was acknowledged is on disk, restart once the cause is fixed");
            eprintln!("paddock: cannot go on: {why}");
            ExitCode::FAILURE
        }
    };
    paddock::audit::server_stop();
    running.shutdown().await;
    code
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
