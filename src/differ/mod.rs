//! `paddock differ`: the same random requests to two servers, side by side.
//!
//! Sends one script of requests (steps.rs) to a reference server (the real
//! ZooKeeper) and a candidate (paddock), one step at a time on both, and
//! compares every reply and every watch event once ids and times are named
//! alike (canon.rs). Where the two answer differently, it prints the step,
//! both answers and the steps before it, and exits with status 1: a
//! difference a ZooKeeper client could see.
//!
//! A resumed session usually sets watches again (setWatches), naming as
//! the last zxid it saw each server's own zxid as of an earlier step, so
//! the two fire the same events for the changes it missed.
//!
//! Watch events are compared per session and per step: after each step
//! every session sends a read, and ZooKeeper's ordering guarantee (an event
//! reaches its session before any later reply) means both servers have
//! delivered that step's events by the time the read is answered.

pub mod canon;
pub mod steps;

use std::process::ExitCode;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use jute::{
    AuthPacket, Create2Response, CreateRequest, CreateResponse, ExistsRequest, MultiResponse, MultiResult, OpCode, Reader, Record,
    SetWatches, SetWatches2, SyncRequest,
};
use rand::SeedableRng;

use crate::client::Client;
use canon::Names;
use steps::{Rewatch, Script, Since, Step, SESSIONS, USERS};

/// Arguments of `paddock differ`.
#[derive(clap::Args, Debug)]
pub struct DifferArgs {
    /// The server taken as right, host:port (the real ZooKeeper).
    #[arg(long)]
    pub reference: String,
    /// The server checked against it, host:port (paddock); several
    /// comma-separated (an ensemble's members) take the sessions in turn.
    #[arg(long)]
    pub candidate: String,
    /// Steps per run.
    #[arg(long, default_value_t = 2000)]
    pub steps: usize,
    /// Runs, each under a fresh root znode with the next seed.
    #[arg(long, default_value_t = 1)]
    pub runs: u64,
    /// Seed of the first run (default: from the clock; printed, so a run can be repeated).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Steps shown before a difference.
    #[arg(long, default_value_t = 40)]
    pub history: usize,
}

/// An already encoded request body.
struct Raw(Bytes);

impl Record for Raw {
    fn read(r: &mut Reader<'_>) -> Result<Self, jute::DecodeError> {
        Ok(Raw(Bytes::copy_from_slice(r.rest())))
    }

    fn write(&self, buf: &mut BytesMut) {
        buf.extend_from_slice(&self.0);
    }
}

/// How long one reply may take before the step counts as unanswered.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// One server's side of the run: its sessions and what its ids mean.
struct Side {
    /// Where each session connects: the addresses given, in turn.
    addrs: Vec<String>,
    names: Names,
    sessions: Vec<Option<Client>>,
    generations: Vec<usize>,
    /// The highest zxid this server has answered with so far.
    high: i64,
    /// `high` as it was after each step, for a setWatches's relative zxid.
    high_after: Vec<i64>,
}

/// One session's answer to a request, or why there was none.
enum Answer {
    Reply { zxid: i64, err: i32, body: Bytes },
    Closed,
    Silent,
}

impl Side {
    async fn open(addrs: &str) -> Result<Side, String> {
        let addrs = addrs.split(',').map(str::to_string).collect();
        let mut side =
            Side { addrs, names: Names::default(), sessions: Vec::new(), generations: vec![0; SESSIONS], high: 0, high_after: Vec::new() };
        for slot in 0..SESSIONS {
            let client = side.connect(slot).await?;
            side.sessions.push(Some(client));
        }
        Ok(side)
    }

    /// A new session for `slot`, logged in as the slot's user.
    async fn connect(&mut self, slot: usize) -> Result<Client, String> {
        let addr = self.addr(slot);
        let client = Client::connect(addr, 30_000).await.map_err(|e| format!("{addr}: cannot connect: {e}"))?;
        self.log_in(slot, &client).await?;
        self.names.session_is(client.session_id, format!("s{slot}.{}", self.generations[slot]));
        Ok(client)
    }

    /// Logs `client` in as `slot`'s user (credentials belong to a connection).
    async fn log_in(&self, slot: usize, client: &Client) -> Result<(), String> {
        if slot > 0 {
            let (user, pw) = USERS[slot - 1];
            let auth = AuthPacket { auth_type: 0, scheme: "digest".into(), auth: Some(format!("{user}:{pw}").into_bytes()) };
            client.call(OpCode::Auth, Some(&auth)).await.map_err(|e| format!("{}: cannot log in as {user}: {e}", self.addr(slot)))?;
        }
        Ok(())
    }

    /// Drops `slot`'s connection and resumes its session on a new one,
    /// setting `rewatch`'s watches again if it is given and the session
    /// was resumed.
    async fn reconnect(&mut self, slot: usize, rewatch: Option<&Rewatch>) -> Result<String, String> {
        let Some(old) = self.sessions[slot].take() else { return Ok("no connection".to_string()) };
        let (id, passwd) = (old.session_id, old.passwd.clone());
        drop(old);
        // As a client does, it says the last zxid it saw (a server behind
        // that would refuse it).
        let client = match Client::resume(self.addr(slot), 30_000, id, passwd, self.high).await {
            Ok(c) => c,
            Err(e) => return Ok(format!("session not resumed: {e}")),
        };
        self.log_in(slot, &client).await?;
        let same = client.session_id == id;
        self.sessions[slot] = Some(client);
        if !same {
            return Ok("another session".to_string());
        }
        let Some(rewatch) = rewatch else { return Ok("session resumed".to_string()) };
        let relative_zxid = match rewatch.since {
            Since::Start => 0,
            Since::StepsAgo(k) => self.high_after.iter().rev().nth(k).copied().unwrap_or(0),
        };
        let watches = SetWatches2 { relative_zxid, ..rewatch.watches.clone() };
        let (op, body) = if rewatch.v2 {
            (OpCode::SetWatches2, watches.to_bytes())
        } else {
            let w = SetWatches {
                relative_zxid,
                data_watches: watches.data_watches,
                exist_watches: watches.exist_watches,
                child_watches: watches.child_watches,
            };
            (OpCode::SetWatches, w.to_bytes())
        };
        let answer = match self.ask(slot, op, &body).await {
            Answer::Reply { err, body, .. } => format!("err {err}, {} bytes", body.len()),
            Answer::Closed => "connection closed".to_string(),
            Answer::Silent => "no answer within 10 s".to_string(),
        };
        Ok(format!("session resumed; {}: {answer}", op.name()))
    }

    /// Notes the zxid a server answered with.
    fn saw(&mut self, zxid: i64) {
        self.high = self.high.max(zxid);
    }

    /// The server session `slot` talks to.
    fn addr(&self, slot: usize) -> &str {
        &self.addrs[slot % self.addrs.len()]
    }

    async fn ask(&self, slot: usize, op: OpCode, body: &Bytes) -> Answer {
        let Some(client) = &self.sessions[slot] else { return Answer::Closed };
        let rx = match client.send(op, Some(&Raw(body.clone()))).await {
            Ok(rx) => rx,
            Err(_) => return Answer::Closed,
        };
        match tokio::time::timeout(ANSWER_WITHIN, rx).await {
            Ok(Ok(Ok((header, body)))) => Answer::Reply { zxid: header.zxid, err: header.err, body },
            Ok(_) => Answer::Closed,
            Err(_) => Answer::Silent,
        }
    }

    /// Sends step `n`'s request and answers in canonical form; names the
    /// zxid of a write that succeeded after the step.
    async fn request(&mut self, n: usize, slot: usize, op: OpCode, body: &Bytes) -> (String, Option<Bytes>) {
        match self.ask(slot, op, body).await {
            Answer::Reply { zxid, err, body } => {
                self.saw(zxid);
                if err == 0 && is_write(op) {
                    self.names.zxid_is_step(zxid, n);
                }
                let text = self.names.reply(op, err, &body);
                (text, (err == 0 || op == OpCode::Multi).then_some(body))
            }
            Answer::Closed => {
                self.sessions[slot] = None;
                ("connection closed".to_string(), None)
            }
            Answer::Silent => ("no answer within 10 s".to_string(), None),
        }
    }

    /// Closes `slot`'s session (as step `n`) and opens its successor.
    async fn reopen(&mut self, n: usize, slot: usize) -> Result<String, String> {
        let text = match self.ask(slot, OpCode::CloseSession, &Bytes::new()).await {
            Answer::Reply { zxid, err, .. } => {
                self.saw(zxid);
                if err == 0 {
                    self.names.zxid_is_step(zxid, n);
                }
                format!("session closed, err {err}")
            }
            Answer::Closed => "connection closed".to_string(),
            Answer::Silent => "no answer within 10 s".to_string(),
        };
        self.sessions[slot] = None;
        self.generations[slot] += 1;
        let client = self.connect(slot).await?;
        self.sessions[slot] = Some(client);
        Ok(text)
    }

    /// Ends every session, so that their ephemerals go now and not when
    /// each server's own session timer runs out (which would make the next
    /// run's view of `/` differ).
    async fn close(&mut self) {
        for slot in 0..SESSIONS {
            let _ = self.ask(slot, OpCode::CloseSession, &Bytes::new()).await;
            self.sessions[slot] = None;
        }
    }

    /// The watch events each session has received by now, sorted, after a
    /// read on each that they must precede.
    async fn events(&mut self, root: &str) -> Vec<Vec<String>> {
        let barrier = ExistsRequest { path: root.to_string(), watch: false }.to_bytes();
        // With sessions on several servers, a server may not have applied
        // the step's write yet: a sync first brings it up to the leader.
        let sync = (self.addrs.len() > 1).then(|| SyncRequest { path: root.to_string() }.to_bytes());
        let mut all = Vec::new();
        for slot in 0..SESSIONS {
            if let Some(sync) = &sync {
                let _ = self.ask(slot, OpCode::Sync, sync).await;
            }
            let _ = self.ask(slot, OpCode::Exists, &barrier).await;
            let mut seen = Vec::new();
            if let Some(client) = &self.sessions[slot] {
                while let Some(e) = client.next_event(Duration::ZERO).await {
                    seen.push(self.names.event(&e));
                }
            }
            seen.sort();
            all.push(seen);
        }
        all
    }
}

/// The ops whose success makes a transaction (and so a zxid).
fn is_write(op: OpCode) -> bool {
    matches!(
        op,
        OpCode::Create
            | OpCode::Create2
            | OpCode::CreateContainer
            | OpCode::CreateTtl
            | OpCode::Delete
            | OpCode::SetData
            | OpCode::SetAcl
            | OpCode::Multi
    )
}

/// Paths a successful reply says were created (sequential names among them).
fn created(op: OpCode, body: &[u8]) -> Vec<String> {
    match op {
        OpCode::Create => CreateResponse::from_bytes(body).map(|r| vec![r.path]).unwrap_or_default(),
        OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
            Create2Response::from_bytes(body).map(|r| vec![r.path]).unwrap_or_default()
        }
        OpCode::Multi => MultiResponse::from_bytes(body)
            .map(|r| {
                r.results
                    .into_iter()
                    .filter_map(|res| match res {
                        MultiResult::Create(path) | MultiResult::Create2 { path, .. } => Some(path),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// A difference found: where, and what each server said.
struct Difference {
    step: usize,
    what: String,
    reference: String,
    candidate: String,
}

/// Runs one script of `steps` steps from `seed`; the first difference, if any.
async fn run_once(args: &DifferArgs, seed: u64) -> Result<Option<(Difference, Vec<String>)>, String> {
    let mut reference = Side::open(&args.reference).await?;
    let mut candidate = Side::open(&args.candidate).await?;
    let found = run_script(args, seed, &mut reference, &mut candidate).await;
    reference.close().await;
    candidate.close().await;
    found
}

async fn run_script(
    args: &DifferArgs,
    seed: u64,
    reference: &mut Side,
    candidate: &mut Side,
) -> Result<Option<(Difference, Vec<String>)>, String> {
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let root = format!("/differ-{seed}-{stamp}");
    let mut script = Script::new(rand::rngs::StdRng::seed_from_u64(seed), &root);
    let mut history: Vec<String> = Vec::new();
    let make_root = CreateRequest {
        path: root.clone(),
        data: None,
        acl: vec![jute::Acl::new(jute::perms::ALL, jute::Id::new("world", "anyone"))],
        flags: 0,
    };
    let first = Step::Request { slot: 0, op: OpCode::Create, body: make_root.to_bytes(), what: format!("{make_root:?}") };
    for n in 0..=args.steps {
        let step = if n == 0 { first.clone() } else { script.next_step() };
        let (what, mine, theirs) = match &step {
            Step::Request { slot, op, body, what } => {
                let (r, r_body) = reference.request(n, *slot, *op, body).await;
                let (c, _) = candidate.request(n, *slot, *op, body).await;
                if r == c {
                    for path in r_body.map(|b| created(*op, &b)).unwrap_or_default() {
                        script.learn(&path);
                    }
                }
                (format!("session {slot}: {what}"), r, c)
            }
            Step::Reopen { slot } => {
                let r = reference.reopen(n, *slot).await?;
                let c = candidate.reopen(n, *slot).await?;
                (format!("session {slot}: close and open a new one"), r, c)
            }
            Step::Reconnect { slot, rewatch } => {
                let r = reference.reconnect(*slot, rewatch.as_ref()).await?;
                let c = candidate.reconnect(*slot, rewatch.as_ref()).await?;
                let again = rewatch.as_ref().map(|w| format!(", then {}", w.describe())).unwrap_or_default();
                (format!("session {slot}: drop the connection and resume{again}"), r, c)
            }
        };
        history.push(format!("{n}: {what} -> {mine}"));
        for side in [&mut *reference, &mut *candidate] {
            side.high_after.push(side.high);
        }
        if mine != theirs {
            return Ok(Some((Difference { step: n, what, reference: mine, candidate: theirs }, history)));
        }
        // A session the servers closed is replaced on both, alike.
        for slot in 0..SESSIONS {
            if reference.sessions[slot].is_none() && candidate.sessions[slot].is_none() {
                reference.generations[slot] += 1;
                candidate.generations[slot] += 1;
                reference.sessions[slot] = Some(reference.connect(slot).await?);
                candidate.sessions[slot] = Some(candidate.connect(slot).await?);
            }
        }
        let (r_events, c_events) = (reference.events(&root).await, candidate.events(&root).await);
        for (slot, seen) in r_events.iter().enumerate().filter(|(_, seen)| !seen.is_empty()) {
            history.push(format!("{n}: session {slot} heard {}", seen.join(", ")));
        }
        if r_events != c_events {
            let show = |e: &Vec<Vec<String>>| format!("{e:?}");
            return Ok(Some((
                Difference { step: n, what: format!("watch events after: {what}"), reference: show(&r_events), candidate: show(&c_events) },
                history,
            )));
        }
    }
    Ok(None)
}

/// Entry point of `paddock differ`.
pub fn main(args: DifferArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("paddock differ: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let first_seed =
        args.seed.unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(1));
    for seed in first_seed..first_seed.saturating_add(args.runs) {
        match runtime.block_on(run_once(&args, seed)) {
            Ok(None) => println!("seed {seed}: {} steps, replies and watch events alike", args.steps),
            Ok(Some((d, history))) => {
                println!("seed {seed}: the servers differ at step {}", d.step);
                for line in history.iter().rev().take(args.history).rev() {
                    println!("  {line}");
                }
                println!("step {}: {}", d.step, d.what);
                println!("  reference ({}): {}", args.reference, d.reference);
                println!("  candidate ({}): {}", args.candidate, d.candidate);
                println!(
                    "repeat with: paddock differ --reference {} --candidate {} --seed {seed} --steps {}",
                    args.reference, args.candidate, args.steps
                );
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("paddock differ: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
