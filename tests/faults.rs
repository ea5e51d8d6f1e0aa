//! The fault harness's short mode: a 3-node ensemble under kill -9, SIGSTOP
//! of servers and lock clients, and partitions, with every checker run over
//! the histories. `PADDOCK_FAULT_SECS` sets the fault phase (default 45 s);
//! the long mode is `paddock faults --duration 1800` (see README).

use paddock::fault::run::{run, FaultArgs};

#[test]
fn short_fault_run_finds_no_anomaly() {
    let duration = std::env::var("PADDOCK_FAULT_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(45);
    let args = FaultArgs {
        duration,
        seed: None,
        register_clients: 4,
        lock_clients: 3,
        keep: false,
        exe: Some(env!("CARGO_BIN_EXE_paddock").into()),
    };
    let report = run(&args).expect("the run itself");
    eprintln!("{report}");
    assert!(report.anomalies.is_empty(), "{report}");
    assert!(report.register_ops > 500 && report.tenures > 5 && report.acked_creates > 100, "too little checked: {report}");
    assert!(report.faults.values().sum::<u64>() >= duration / 5, "too few faults: {report}");
}
