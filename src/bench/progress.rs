//! The progress line on stderr while a run goes on.

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::stats::{Live, Window};

/// A running progress line; dropping it stops it.
pub struct Progress {
    task: tokio::task::JoinHandle<()>,
    tty: bool,
}

impl Progress {
    /// Prints, once a second on a terminal (every five seconds otherwise),
    /// the phase, the elapsed time and the recent rate of completions.
    pub fn start(label: String, window: Window, live: Arc<Live>) -> Progress {
        let tty = std::io::stderr().is_terminal();
        let task = tokio::spawn(async move {
            let every = Duration::from_secs(if tty { 1 } else { 5 });
            let (mut last_done, mut last_at) = (0u64, Instant::now());
            loop {
                tokio::time::sleep(every).await;
                let now = Instant::now();
                let done = live.done.load(Ordering::Relaxed);
                let failed = live.failed.load(Ordering::Relaxed);
                let rate = (done - last_done.min(done)) as f64 / now.duration_since(last_at).as_secs_f64().max(1e-3);
                (last_done, last_at) = (done, now);
                let phase = if now < window.measure_from {
                    "warm-up"
                } else if now < window.end {
                    "measure"
                } else {
                    "drain"
                };
                let elapsed = now.duration_since(window.start).as_secs_f64();
                let total = window.end.duration_since(window.start).as_secs_f64();
                let line = format!("{label}: {phase} {elapsed:>5.1}/{total:.0} s  {rate:>9.0} ops/s  errors {failed}");
                let mut err = std::io::stderr().lock();
                let _ = if tty { write!(err, "\r{line}\x1b[K") } else { writeln!(err, "{line}") };
                let _ = err.flush();
            }
        });
        Progress { task, tty }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.task.abort();
        if self.tty {
            eprintln!();
        }
    }
}
