//! A paddock ensemble of real processes on 127.0.0.1, for the fault harness
//! and the demos: per-member zoo.cfg and data dir, fixed client ports (a
//! restarted member comes back on the same address), optional proxies on
//! every peer link, and kill -9 / restart / SIGSTOP / SIGCONT by member id.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::procs::{free_port, Proc, ProcError};
use super::proxy::Mesh;

/// How to start an ensemble.
#[derive(Debug, Clone)]
pub struct EnsembleOptions {
    /// Number of members (ids 1..=size).
    pub size: usize,
    /// zoo.cfg tickTime, ms (session timeouts are 2..20 ticks).
    pub tick_ms: u64,
    /// Route every peer link through a proxy that can cut it.
    pub proxied: bool,
    /// Extra zoo.cfg lines.
    pub extra_cfg: String,
    /// RUST_LOG for the servers.
    pub log: String,
}

impl Default for EnsembleOptions {
    fn default() -> Self {
        EnsembleOptions { size: 3, tick_ms: 200, proxied: false, extra_cfg: String::new(), log: "warn".into() }
    }
}

struct Member {
    client_port: u16,
    peer: SocketAddr,
    election_port: u16,
    proc: Option<Proc>,
}

/// A running ensemble; every process is killed when it is dropped.
pub struct Ensemble {
    exe: PathBuf,
    dir: PathBuf,
    opts: EnsembleOptions,
    members: Vec<Member>,
    mesh: Option<Mesh>,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ProcError {
    let what = what.into();
    move |source| ProcError::Io { what, source }
}

impl Ensemble {
    /// Starts every member of a new ensemble with data under `dir` and waits
    /// (up to `limit`) until all serve. Proxies, if asked for, run on `rt`.
    pub fn start(
        exe: &Path,
        dir: &Path,
        opts: EnsembleOptions,
        rt: &tokio::runtime::Runtime,
        limit: Duration,
    ) -> Result<Ensemble, ProcError> {
        let mut members = Vec::new();
        for _ in 0..opts.size {
            let peer: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
            members.push(Member { client_port: free_port()?, peer, election_port: free_port()?, proc: None });
        }
        let mesh = if opts.proxied {
            let peers: Vec<SocketAddr> = members.iter().map(|m| m.peer).collect();
            Some(rt.block_on(Mesh::start(&peers)).map_err(io("start the link proxies"))?)
        } else {
            None
        };
        let mut e = Ensemble { exe: exe.to_path_buf(), dir: dir.to_path_buf(), opts, members, mesh };
        for id in 1..=e.opts.size {
            e.spawn(id)?;
        }
        let until = Instant::now() + limit;
        for id in 1..=e.opts.size {
            e.wait_serving(id, until.saturating_duration_since(Instant::now()))?;
        }
        Ok(e)
    }

    /// The zoo.cfg of member `id`: itself at its real peer port, the others
    /// at the proxies of its outgoing links (or their real ports).
    fn cfg(&self, id: usize) -> String {
        let mut cfg = format!(
            "tickTime={}\ninitLimit=10\nsyncLimit=5\nclientPort={}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\ndataDir={}\n{}\n",
            self.opts.tick_ms,
            self.members[id - 1].client_port,
            self.data_dir(id).display(),
            self.opts.extra_cfg
        );
        for (j, m) in self.members.iter().enumerate() {
            let j = j + 1;
            let peer = match self.mesh.as_ref().and_then(|mesh| mesh.link(id, j)) {
                Some(link) => link.listen,
                None => m.peer,
            };
            cfg.push_str(&format!("server.{j}=127.0.0.1:{}:{}\n", peer.port(), m.election_port));
        }
        cfg
    }

    fn data_dir(&self, id: usize) -> PathBuf {
        self.dir.join(format!("n{id}"))
    }

    /// Where member `id` writes its log (appended across restarts).
    pub fn log_path(&self, id: usize) -> PathBuf {
        self.dir.join(format!("n{id}.log"))
    }

    fn spawn(&mut self, id: usize) -> Result<(), ProcError> {
        let data = self.data_dir(id);
        std::fs::create_dir_all(&data).map_err(io(format!("create {}", data.display())))?;
        std::fs::write(data.join("myid"), format!("{id}\n")).map_err(io("write myid"))?;
        let cfg_path = self.dir.join(format!("zoo{id}.cfg"));
        std::fs::write(&cfg_path, self.cfg(id)).map_err(io("write zoo.cfg"))?;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path(id)).map_err(io("open the server log"))?;
        let mut cmd = Command::new(&self.exe);
        cmd.arg("--config").arg(&cfg_path).env("RUST_LOG", &self.opts.log).stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        let proc = Proc::spawn(&format!("server {id}"), cmd)?;
        self.members[id - 1].proc = Some(proc);
        Ok(())
    }

    /// Waits until member `id` answers `srvr` with a Mode line.
    pub fn wait_serving(&self, id: usize, limit: Duration) -> Result<(), ProcError> {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if self.four_letter(id, "srvr").is_some_and(|s| s.contains("Mode:")) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(ProcError::NotReady(format!("server {id} did not serve within {limit:?} (log: {})", self.log_path(id).display())))
    }

    /// Starts one more server, not yet a member: its zoo.cfg lists every
    /// server including itself, as an operator writes it before a
    /// `reconfig` adds it. Returns its id. Only without link proxies.
    pub fn add_server(&mut self) -> Result<usize, ProcError> {
        if self.mesh.is_some() {
            return Err(ProcError::NotReady("add_server works without link proxies only".into()));
        }
        let peer: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
        self.members.push(Member { client_port: free_port()?, peer, election_port: free_port()?, proc: None });
        let id = self.members.len();
        self.spawn(id)?;
        Ok(id)
    }

    /// Member `id`'s `server.N=` value (`host:peer:election;client`), for a reconfig.
    pub fn server_spec(&self, id: usize) -> String {
        let m = &self.members[id - 1];
        format!("127.0.0.1:{}:{};{}", m.peer.port(), m.election_port, m.client_port)
    }

    /// Number of members.
    pub fn size(&self) -> usize {
        self.members.len()
    }

    /// Client address of member `id`.
    pub fn client_addr(&self, id: usize) -> String {
        format!("127.0.0.1:{}", self.members[id - 1].client_port)
    }

    /// Every member's client address, in id order.
    pub fn client_addrs(&self) -> Vec<String> {
        (1..=self.size()).map(|id| self.client_addr(id)).collect()
    }

    /// The link proxies, if the ensemble was started with them.
    pub fn mesh(&self) -> Option<&Mesh> {
        self.mesh.as_ref()
    }

    /// Sends a four-letter word to member `id`; `None` if it does not answer
    /// within two seconds.
    pub fn four_letter(&self, id: usize, word: &str) -> Option<String> {
        let addr: SocketAddr = self.client_addr(id).parse().ok()?;
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.set_write_timeout(Some(Duration::from_secs(1))).ok()?;
        s.write_all(word.as_bytes()).ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    }

    /// The member that reports itself leader now, if exactly one does among
    /// those running and not paused.
    pub fn leader(&self) -> Option<usize> {
        let leaders: Vec<usize> = (1..=self.size())
            .filter(|id| self.is_up(*id))
            .filter(|id| self.four_letter(*id, "srvr").is_some_and(|s| s.contains("Mode: leader")))
            .collect();
        match leaders.as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }

    /// The leader, asking up to `tries` times, 100 ms apart, until exactly
    /// one member reports itself leader.
    pub fn wait_leader(&self, tries: usize) -> Option<usize> {
        (0..tries).find_map(|_| {
            self.leader().or_else(|| {
                std::thread::sleep(Duration::from_millis(100));
                None
            })
        })
    }

    /// True if member `id` runs and is not paused.
    pub fn is_up(&self, id: usize) -> bool {
        self.members[id - 1].proc.as_ref().is_some_and(|p| !p.paused())
    }

    /// True if member `id`'s process exists (running or paused).
    pub fn is_running(&self, id: usize) -> bool {
        self.members[id - 1].proc.is_some()
    }

    /// PID of member `id`, if running.
    pub fn pid(&self, id: usize) -> Option<u32> {
        self.members[id - 1].proc.as_ref().map(Proc::pid)
    }

    /// kill -9 member `id`.
    pub fn kill9(&mut self, id: usize) {
        if let Some(mut p) = self.members[id - 1].proc.take() {
            p.kill9();
        }
    }

    /// Starts member `id` again on its data (it must have been killed).
    pub fn restart(&mut self, id: usize) -> Result<(), ProcError> {
        self.kill9(id);
        self.spawn(id)
    }

    /// SIGSTOP member `id`.
    pub fn pause(&mut self, id: usize) {
        if let Some(p) = self.members[id - 1].proc.as_mut() {
            p.pause();
        }
    }

    /// SIGCONT member `id`.
    pub fn resume(&mut self, id: usize) {
        if let Some(p) = self.members[id - 1].proc.as_mut() {
            p.resume();
        }
    }

    /// `hash` of member `id`: (zxid, digest of the tree).
    pub fn digest(&self, id: usize) -> Option<(i64, String)> {
        let out = self.four_letter(id, "hash")?;
        let (zxid, digest) = out.trim().split_once(": ")?;
        Some((i64::from_str_radix(zxid, 16).ok()?, digest.to_string()))
    }

    /// Stops every member (SIGTERM, then SIGKILL after a second).
    pub fn shutdown(&mut self) {
        for m in &mut self.members {
            if let Some(mut p) = m.proc.take() {
                p.terminate(Duration::from_secs(1));
            }
        }
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(mut p) = m.proc.take() {
                p.kill9();
            }
        }
    }
}
