//! `paddock demo fencing` reproduces DDIA Figure 8-4 and exits 0 only if the
//! paused client's stale write was rejected.

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn the_paused_holders_stale_write_is_rejected() {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_paddock")).args(["demo", "fencing"]).output().expect("run the demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(out.status.success(), "demo failed ({:?}):\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("REJECTED (stale token)"), "{stdout}");
    assert!(started.elapsed() < Duration::from_secs(120));
}
