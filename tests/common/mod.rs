//! Starting and stopping real `paddock` processes for the integration tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running `paddock` process, killed (by PID) when dropped.
pub struct Paddock {
    child: Child,
    /// `127.0.0.1:port` of its client listener.
    pub addr: String,
    /// `127.0.0.1:port` of its HTTP admin server, if it runs.
    pub admin: Option<String>,
    /// `127.0.0.1:port` of its TLS client port, if it has one.
    pub secure: Option<String>,
    /// Its data directory.
    pub data_dir: PathBuf,
}

impl Paddock {
    /// Starts a server on a free port with data in `data_dir`, waiting until it serves.
    pub fn start(data_dir: &Path) -> Paddock {
        Self::start_with(data_dir, &[])
    }

    /// As `start`, with extra command-line arguments.
    pub fn start_with(data_dir: &Path, extra: &[&str]) -> Paddock {
        let server = Self::spawn(data_dir, extra);
        server.wait_serving();
        server
    }

    /// Starts the process and learns its client address, without waiting
    /// for it to serve (an ensemble member serves only once a quorum is up).
    pub fn spawn(data_dir: &Path, extra: &[&str]) -> Paddock {
        Self::spawn_logging(data_dir, extra, None)
    }

    /// Runs paddock with `args` expecting it to refuse to start: waits (at
    /// most 30 s) for it to exit unsuccessfully and returns its stderr.
    pub fn refused(args: &[&str]) -> String {
        let mut child = Command::new(env!("CARGO_BIN_EXE_paddock"))
            .args(["--port", "0", "--admin-port", "0"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run paddock");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for paddock") {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("paddock started with {args:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        child.stderr.take().expect("piped stderr").read_to_string(&mut stderr).expect("read stderr");
        assert!(!status.success(), "paddock exited 0 with {args:?}: {stderr}");
        stderr
    }

    /// As `start`, with the server's stderr (its logs, and any panic) going to `log`.
    pub fn start_logging_to(data_dir: &Path, log: &Path) -> Paddock {
        Self::start_with_log(data_dir, &[], log)
    }

    /// As `start_with`, with the server's stderr going to `log`.
    pub fn start_with_log(data_dir: &Path, extra: &[&str], log: &Path) -> Paddock {
        let server = Self::spawn_logging(data_dir, extra, Some(log));
        server.wait_serving();
        server
    }

    /// As `start_with_log`, with the process's file-size limit
    /// (RLIMIT_FSIZE) set to `bytes`: a write past it fails as on a full
    /// disk (root cannot bypass it, as it can a read-only directory).
    pub fn start_with_file_size_limit(data_dir: &Path, bytes: u64, log: &Path) -> Paddock {
        Self::start_limited(data_dir, &[], libc::RLIMIT_FSIZE, bytes, log)
    }

    /// As `start_with_log` with `extra` arguments, with the process's
    /// open-files limit (RLIMIT_NOFILE, soft and hard, so it cannot raise
    /// it) set to `files`.
    pub fn start_with_open_files_limit(data_dir: &Path, extra: &[&str], files: u64, log: &Path) -> Paddock {
        Self::start_limited(data_dir, extra, libc::RLIMIT_NOFILE, files, log)
    }

    /// Starts the server with its `resource` limit, soft and hard, at `value`.
    fn start_limited(data_dir: &Path, extra: &[&str], resource: libc::__rlimit_resource_t, value: u64, log: &Path) -> Paddock {
        let server = Self::spawn_prepared(data_dir, extra, Some(log), |cmd| {
            use std::os::unix::process::CommandExt;
            // SAFETY: the hook makes only async-signal-safe calls (setrlimit,
            // signal), as required between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let limit = libc::rlimit { rlim_cur: value, rlim_max: value };
                    if libc::setrlimit(resource, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // A write past a file-size limit then fails (EFBIG)
                    // instead of killing the process.
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                    Ok(())
                });
            }
        });
        server.wait_serving();
        server
    }

    fn spawn_logging(data_dir: &Path, extra: &[&str], log: Option<&Path>) -> Paddock {
        Self::spawn_prepared(data_dir, extra, log, |_| {})
    }

    fn spawn_prepared(data_dir: &Path, extra: &[&str], log: Option<&Path>, prepare: impl FnOnce(&mut Command)) -> Paddock {
        let stderr = match log {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("create the stderr log")),
            None => Stdio::inherit(),
        };
        // Loopback only, whatever a test's zoo.cfg leaves out (without
        // clientPortAddress a zoo.cfg binds every interface); a test's own
        // --bind comes later and wins.
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_paddock"));
        cmd.args(["--bind", "127.0.0.1", "--port", "0", "--admin-port", "0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", std::env::var("PADDOCK_TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::piped())
            .stderr(stderr);
        prepare(&mut cmd);
        let mut child = cmd.spawn().expect("start paddock");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            // The secure port's and admin server's lines come before the client port's.
            let (mut admin, mut secure) = (None, None);
            while let Some(Ok(line)) = lines.next() {
                if let Some(addr) = line.strip_prefix("paddock admin server listening on ") {
                    admin = Some(addr.to_string());
                }
                if let Some(addr) = line.strip_prefix("paddock secure client port listening on ") {
                    secure = Some(addr.to_string());
                }
                if let Some(addr) = line.strip_prefix("paddock listening on ") {
                    let _ = tx.send((addr.to_string(), admin.take(), secure.take()));
                }
            }
        });
        let (addr, admin, secure) = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("paddock did not report its address within 60 s");
            }
        };
        Paddock { child, addr, admin, secure, data_dir: data_dir.to_path_buf() }
    }

    /// Sends a four-letter word and returns the answer.
    pub fn four_letter(&self, word: &str) -> String {
        let mut s = TcpStream::connect(&self.addr).expect("connect for 4lw");
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        s.write_all(word.as_bytes()).expect("send 4lw");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    /// Sends raw bytes to the admin server and returns its whole answer
    /// (status line, headers and body).
    pub fn admin_raw(&self, request: &[u8]) -> String {
        http_raw(self.admin.as_ref().expect("the admin server runs"), request)
    }

    /// `GET <path>` from the admin server: (status code, body).
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        http_get(self.admin.as_ref().expect("the admin server runs"), path)
    }

    /// A numeric `mntr` field, if present.
    pub fn mntr(&self, key: &str) -> Option<i64> {
        self.four_letter("mntr").lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('\t')?.trim().parse().ok())
    }

    /// Waits until the server serves clients (`srvr` shows a Mode).
    pub fn wait_serving(&self) {
        for _ in 0..300 {
            if self.four_letter("srvr").contains("Mode:") {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("paddock at {} never started serving", self.addr);
    }

    /// The PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// kill -9: no chance to flush anything.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) {
        unsafe_free_sigterm(self.child.id());
        if self.exited_within(Duration::from_secs(5)).is_some() {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits at most `limit` for the process to exit by itself; how it
    /// exited, if it did.
    pub fn exited_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

fn unsafe_free_sigterm(pid: u32) {
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
}

impl Drop for Paddock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tokio runtime for a test body.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// Connects as a ZooKeeper client does: a server that is between leaders
/// closes new connections, and the client tries again, here for up to 20 s.
pub async fn connect_retrying(addr: &str, timeout_ms: i32) -> paddock::client::Client {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match paddock::client::Client::connect(addr, timeout_ms).await {
            Ok(c) => return c,
            Err(e) if std::time::Instant::now() < deadline => {
                eprintln!("connect to {addr}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("could not connect to {addr} within 20 s: {e}"),
        }
    }
}

/// Sends raw bytes to an HTTP server and returns its whole answer (status
/// line, headers and body).
pub fn http_raw(addr: &str, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).expect("connect to the HTTP server");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.write_all(request).expect("send the HTTP request");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// `GET <path>` from an HTTP server: (status code, body).
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    let answer = http_raw(addr, format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes());
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP head in {answer:?}"));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, body.to_string())
}

/// A free TCP port on 127.0.0.1 (see `paddock::fault::procs::free_port`).
pub fn free_port() -> u16 {
    paddock::fault::procs::free_port().expect("a free port")
}

/// An ensemble of paddock processes on 127.0.0.1, from one zoo.cfg each.
pub struct Ensemble {
    /// Members by id; `None` once stopped.
    pub nodes: Vec<Option<Paddock>>,
    dir: PathBuf,
    cfg: String,
    /// The `server.N` lines go in a `dynamicConfigFile`, as ZooKeeper 3.5+
    /// writes the config of a reconfigurable ensemble.
    dynamic: bool,
}

impl Ensemble {
    /// Starts `n` members (ids 1..=n) and waits until all serve.
    pub fn start(dir: &Path, n: usize) -> Ensemble {
        Self::start_cfg(dir, n, "")
    }

    /// As `start`, with extra zoo.cfg lines.
    pub fn start_cfg(dir: &Path, n: usize, extra: &str) -> Ensemble {
        Self::start_roles(dir, &vec![""; n], extra)
    }

    /// Starts one member per role (ids from 1): "" or ":observer", the
    /// suffix of its `server.N` line's ports.
    pub fn start_roles(dir: &Path, roles: &[&str], extra: &str) -> Ensemble {
        Self::start_members(dir, roles, extra, false)
    }

    /// As `start`, with the members in a dynamic config file that each
    /// zoo.cfg names (`dynamicConfigFile`), not in zoo.cfg itself.
    pub fn start_dynamic(dir: &Path, n: usize) -> Ensemble {
        Self::start_members(dir, &vec![""; n], "reconfigEnabled=true\n", true)
    }

    /// Lists `listed` members in zoo.cfg but starts only the first
    /// `started` (the others are for the test to play, at `peer_addr`).
    pub fn start_listing(dir: &Path, listed: usize, started: usize) -> Ensemble {
        Self::start_some(dir, &vec![""; listed], started, "", false)
    }

    fn start_members(dir: &Path, roles: &[&str], extra: &str, dynamic: bool) -> Ensemble {
        Self::start_some(dir, roles, roles.len(), extra, dynamic)
    }

    fn start_some(dir: &Path, roles: &[&str], started: usize, extra: &str, dynamic: bool) -> Ensemble {
        let mut cfg = format!("tickTime=200\ninitLimit=10\nsyncLimit=5\n{extra}");
        for (i, role) in roles.iter().enumerate() {
            cfg.push_str(&format!("server.{}=127.0.0.1:{}:{}{role}\n", i + 1, free_port(), free_port()));
        }
        let mut e = Ensemble { nodes: Vec::new(), dir: dir.to_path_buf(), cfg, dynamic };
        for id in 1..=roles.len() {
            let node = (id <= started).then(|| e.spawn(id));
            e.nodes.push(node);
        }
        for node in e.nodes.iter().flatten() {
            node.wait_serving();
        }
        e
    }

    fn spawn(&self, id: usize) -> Paddock {
        let data = self.dir.join(format!("n{id}"));
        std::fs::create_dir_all(&data).expect("data dir");
        std::fs::write(data.join("myid"), format!("{id}\n")).expect("myid");
        let cfg_path = self.dir.join(format!("zoo{id}.cfg"));
        let mut cfg = format!("{}dataDir={}\n", self.cfg, data.display());
        if self.dynamic {
            let (members, rest): (Vec<&str>, Vec<&str>) = cfg.lines().partition(|l| l.starts_with("server."));
            let dynamic = self.dir.join(format!("zoo{id}.cfg.dynamic.100000000"));
            std::fs::write(&dynamic, members.join("\n") + "\n").expect("dynamic config file");
            cfg = format!("{}\ndynamicConfigFile={}\n", rest.join("\n"), dynamic.display());
        }
        std::fs::write(&cfg_path, cfg).expect("zoo.cfg");
        Paddock::spawn(&data, &["--config", cfg_path.to_str().expect("utf-8 path")])
    }

    /// Changes the zoo.cfg lines members get from their next (re)start on:
    /// a rolling configuration change, one restart at a time.
    pub fn edit_cfg(&mut self, edit: impl FnOnce(&mut String)) {
        edit(&mut self.cfg);
    }

    /// Deletes member `id`'s data (keeping its myid), as a replaced disk would.
    pub fn wipe(&self, id: usize) {
        let data = self.dir.join(format!("n{id}"));
        for db in ["rocksdb", "raftlog"] {
            let _ = std::fs::remove_dir_all(data.join(db));
        }
    }

    /// Restarts member `id` (1-based) on its existing data.
    pub fn restart(&mut self, id: usize) {
        let node = self.spawn(id);
        node.wait_serving();
        self.nodes[id - 1] = Some(node);
    }

    /// Restarts member `id` without waiting for it to serve (it may not
    /// be able to, e.g. without a quorum).
    pub fn restart_no_wait(&mut self, id: usize) {
        let node = self.spawn(id);
        self.nodes[id - 1] = Some(node);
    }

    /// The member that `srvr` reports as leader.
    pub fn leader(&self) -> Option<usize> {
        for _ in 0..100 {
            for (i, n) in self.nodes.iter().enumerate() {
                if let Some(n) = n {
                    if n.four_letter("srvr").contains("Mode: leader") {
                        return Some(i + 1);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// Client address of a member that is not the leader.
    pub fn follower_addr(&self) -> String {
        let leader = self.leader().expect("a leader");
        self.addr(if leader == 1 { 2 } else { 1 })
    }

    /// Peer (Raft) address of member `id`, from its `server.N` line.
    pub fn peer_addr(&self, id: usize) -> String {
        let line = self.cfg.lines().find_map(|l| l.strip_prefix(&format!("server.{id}="))).expect("a server line");
        let mut parts = line.split(':');
        format!("{}:{}", parts.next().expect("host"), parts.next().expect("peer port"))
    }

    /// Client address of member `id`.
    pub fn addr(&self, id: usize) -> String {
        self.nodes[id - 1].as_ref().expect("running member").addr.clone()
    }

    /// kill -9 member `id`.
    pub fn kill9(&mut self, id: usize) {
        if let Some(n) = self.nodes[id - 1].take() {
            n.kill9();
        }
    }
}

/// The ConnectRequest of a client opening a new session asking for `timeout_ms`.
pub fn new_session(timeout_ms: i32) -> jute::ConnectRequest {
    jute::ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout: timeout_ms,
        session_id: 0,
        passwd: vec![0; 16],
        read_only: Some(false),
    }
}

/// One length-prefixed frame from a blocking socket.
pub fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("frame length");
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).expect("frame body");
    body
}

/// Sends one length-prefixed frame made of `parts`, encoded in order.
pub fn write_frame(s: &mut TcpStream, parts: &[&dyn Fn(&mut bytes::BytesMut)]) {
    let mut body = bytes::BytesMut::new();
    for part in parts {
        part(&mut body);
    }
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    s.write_all(&frame).expect("send frame");
}
