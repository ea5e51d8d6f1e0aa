//! Child processes started by the harness and the demo: spawned so that they
//! die with the process that started them, signalled by PID, and killed when
//! dropped.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Why a process could not be started or signalled.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// spawn or wait failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// A process did not come up in time.
    #[error("{0}")]
    NotReady(String),
}

/// A started child process, killed (SIGKILL, by PID) when dropped.
pub struct Proc {
    child: Child,
    /// A name for messages.
    pub name: String,
    stopped: bool,
}

/// Microseconds since the Unix epoch: the one clock every process of a run
/// shares (they all run on one machine), used to time history events.
pub fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

impl Proc {
    /// Spawns `cmd`. The child gets SIGKILL if the spawning *thread* ends
    /// (PR_SET_PDEATHSIG), so spawn only from a thread that lives as long as
    /// the run (the harness and the demo spawn from their main thread).
    pub fn spawn(name: &str, mut cmd: Command) -> Result<Proc, ProcError> {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|source| ProcError::Io { what: format!("start {name}"), source })?;
        Ok(Proc { child, name: name.to_string(), stopped: false })
    }

    /// The PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its stdout, if piped and not yet taken.
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    fn signal(&self, sig: i32) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) on our own child's PID; it is not reaped until
            // `wait`, so the PID cannot have been reused.
            unsafe {
                libc::kill(pid, sig);
            }
        }
    }

    /// SIGSTOP: the process freezes, sockets stay open, as in a long GC pause.
    pub fn pause(&mut self) {
        self.signal(libc::SIGSTOP);
        self.stopped = true;
    }

    /// SIGCONT.
    pub fn resume(&mut self) {
        self.signal(libc::SIGCONT);
        self.stopped = false;
    }

    /// True while SIGSTOPped by us.
    pub fn paused(&self) -> bool {
        self.stopped
    }

    /// kill -9 and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub fn terminate(&mut self, grace: Duration) {
        if self.stopped {
            self.resume();
        }
        self.signal(libc::SIGTERM);
        let until = Instant::now() + grace;
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill9();
    }

    /// The exit code once it has exited (`None` while it runs or if killed by a signal).
    pub fn try_exit_code(&mut self) -> Option<Option<i32>> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.code()),
            _ => None,
        }
    }

    /// Waits up to `limit` for it to exit; its exit code (`None`: killed or timed out).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if let Some(code) = self.try_exit_code() {
                return code;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A free TCP port on 127.0.0.1 for a server about to start (bound and
/// released), never the same one twice in this process. Taken below the
/// kernel's ephemeral range when it can be: a port from inside it (what
/// binding port 0 gives) may be handed, between its release and the
/// server's bind, to the local end of any outgoing connection (another
/// test's clients, the link proxies), and the server then cannot start.
pub fn free_port() -> Result<u16, ProcError> {
    use rand::Rng;
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> = std::sync::Mutex::new(std::collections::BTreeSet::new());
    let io = |source| ProcError::Io { what: "find a free port".into(), source };
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let low = ephemeral_start().unwrap_or(32768);
    let from = low.saturating_sub(10_000).max(1024);
    let tries = if from < low { 200 } else { 0 };
    for _ in 0..tries {
        let port = rand::thread_rng().gen_range(from..low);
        if !given.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.insert(port);
            return Ok(port);
        }
    }
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(io)?;
    let port = l.local_addr().map_err(io)?.port();
    given.insert(port);
    Ok(port)
}

/// The first port of the kernel's ephemeral range (where outgoing
/// connections take their local ports), if it can be read.
fn ephemeral_start() -> Option<u16> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    range.split_whitespace().next()?.parse().ok()
}

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir {
    /// Its path.
    pub path: std::path::PathBuf,
    /// Keep it on drop (to look at the logs after a failure).
    pub keep: bool,
}

impl TempDir {
    /// Creates `$TMPDIR/paddock-<prefix>-<pid>-<nanos>`.
    pub fn new(prefix: &str) -> Result<TempDir, ProcError> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let path = std::env::temp_dir().join(format!("paddock-{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|source| ProcError::Io { what: format!("create {}", path.display()), source })?;
        Ok(TempDir { path, keep: false })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_outside_the_ephemeral_range_and_never_repeat() {
        let ports: Vec<u16> = (0..200).map(|_| free_port().unwrap()).collect();
        let distinct: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len(), "a port was handed out twice");
        if let Some(low) = ephemeral_start() {
            if low > 1024 + 1000 {
                assert!(ports.iter().all(|p| *p < low), "a port inside the ephemeral range (from {low}): {ports:?}");
            }
        }
    }
}
