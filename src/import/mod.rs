//! Moving from ZooKeeper: loads a ZooKeeper data directory (its newest
//! snapshot and the transaction logs after it) into a new paddock, through
//! the Raft log, so every member gets it.
//!
//! Everything a client can see is kept: data, ACLs, every stat field
//! (czxid, mzxid, pzxid, times, versions), sequence counters, quotas,
//! containers and TTL nodes, and the sessions with their ephemerals. A
//! session keeps the password ZooKeeper derived from its id, and zxids go on
//! from ZooKeeper's last, so a client that was connected to ZooKeeper
//! reconnects to paddock with its session (within its timeout) as to a
//! restarted ZooKeeper. `/zookeeper/config` (ZooKeeper's own ensemble) is
//! not imported.
//!
//! The import runs once, into a paddock with no znodes of its own:
//! `paddock --import-zookeeper DIR` reads DIR before starting, proposes the
//! tree in parts, and opens the client port when it is in. Every member of
//! an ensemble may be started so: the first to propose imports, the others
//! wait for it, and none serves clients before the tree is there. After it
//! zxids go on in the epoch after ZooKeeper's last, as ZooKeeper's would
//! after an election (and [`IMPORTED_ZXID`] tells an imported tree).

pub(crate) mod files;
pub(crate) mod replay;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::server::Server;
use crate::tree::txn::{ImportChunk, Txn, TxnOutcome};
use crate::tree::{NodeKind, SessionInfo, StoredNode, BUILT_IN_NODES, IMPORTED_ZXID};
use replay::ZkTree;

/// Why a ZooKeeper data directory cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file or directory could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// There is no snapshot: not a ZooKeeper data directory.
    #[error("no ZooKeeper snapshot (snapshot.<zxid>) in {} or its version-2 directory", .0.display())]
    NoSnapshot(PathBuf),
    /// A file is not what ZooKeeper writes.
    #[error("{}: {what}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// A logged transaction's body could not be read.
    #[error("transaction {zxid:#x}: {what}")]
    Txn {
        /// Its zxid.
        zxid: i64,
        /// What is wrong.
        what: String,
    },
    /// A logged transaction of a type ZooKeeper 3.8 does not log.
    #[error("transaction {zxid:#x} has unknown type {kind}")]
    UnknownTxn {
        /// Its zxid.
        zxid: i64,
        /// Its type.
        kind: i32,
    },
    /// paddock already has other data: an import never mixes with it.
    #[error(
        "this paddock already holds znodes of its own (zxid {zxid:#x}), so it cannot import (an import stopped part-way leaves this too): start the import with an empty data directory"
    )]
    NotEmpty {
        /// paddock's last zxid.
        zxid: i64,
    },
    /// A part could not be committed.
    #[error("import not committed: {0}")]
    Write(String),
}

/// A ZooKeeper data directory, read and restored, ready to propose.
#[derive(Debug)]
pub struct Imported {
    /// The snapshot it started from.
    pub snapshot: PathBuf,
    /// Transactions replayed on the snapshot.
    pub replayed: usize,
    /// ZooKeeper's last zxid.
    pub last_zxid: i64,
    /// Nodes, parents first, ephemerals last.
    pub nodes: Vec<(String, StoredNode<'static>)>,
    /// Sessions, each with ZooKeeper's password for it.
    pub sessions: Vec<(i64, SessionInfo)>,
}

/// Reads ZooKeeper's data directory `dir` (its dataDir; `log_dir` if its
/// dataLogDir was set apart) and restores the tree it holds.
pub fn read(dir: &Path, log_dir: Option<&Path>) -> Result<Imported, ImportError> {
    let snap_dir = files::version_dir(dir);
    let log_dir = files::version_dir(log_dir.unwrap_or(dir));
    let snapshot = files::newest_snapshot(&snap_dir)?;
    let path = snapshot.path.clone();
    let snapshot_zxid = snapshot.zxid;
    let mut tree = ZkTree::from_snapshot(snapshot)?;
    files::transactions_after(&log_dir, snapshot_zxid, |t| tree.replay(t))?;
    tree.finish();
    let last_zxid = tree.last_zxid();
    let replayed = tree.replayed;
    let sessions = tree
        .sessions()
        .iter()
        .map(|(id, timeout)| (*id, SessionInfo { timeout_ms: *timeout, passwd: zookeeper_passwd(*id), ephemerals: Default::default() }))
        .collect();
    let (mut nodes, ephemerals): (Vec<_>, Vec<_>) =
        tree.into_nodes().into_iter().partition(|(_, n)| !matches!(n.kind, NodeKind::Ephemeral(_)));
    nodes.extend(ephemerals);
    Ok(Imported { snapshot: path, replayed, last_zxid, nodes, sessions })
}

/// The password ZooKeeper gives session `id`: 16 bytes from
/// `java.util.Random` seeded with the id and its fixed secret
/// (`ZooKeeperServer.generatePasswd`), so clients keep their sessions.
pub fn zookeeper_passwd(id: i64) -> Vec<u8> {
    const SECRET: i64 = 0xB341_5C00;
    const MULTIPLIER: u64 = 0x5_DEEC_E66D;
    const MASK: u64 = (1 << 48) - 1;
    let mut seed = ((id ^ SECRET) as u64 ^ MULTIPLIER) & MASK;
    let mut out = Vec::with_capacity(16);
    while out.len() < 16 {
        seed = (seed.wrapping_mul(MULTIPLIER).wrapping_add(0xB)) & MASK;
        let int = (seed >> 16) as u32;
        out.extend_from_slice(&int.to_le_bytes());
    }
    out
}

/// Bytes of nodes per proposed part: large enough to be few entries, small
/// enough that one entry never holds up the log for long.
const PART_BYTES: usize = 4 << 20;

/// How long a tree with znodes but no completed import may stand still
/// before it counts as other data rather than another member's import
/// under way (each part commits in well under a second).
const STALL: Duration = Duration::from_secs(15);

/// Proposes `imported` through the log once this server has a leader, and
/// returns when all of it is applied here, or when an import is already in
/// (made before a restart, or by another member started with the flag too:
/// this one then waits for it).
pub async fn run(server: &Server, imported: Imported) -> Result<(), ImportError> {
    let mut waited = 0u32;
    while !server.in_quorum() {
        if waited.is_multiple_of(100) {
            tracing::info!("import: waiting for a leader");
        }
        waited += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut parts = Some(parts(imported));
    loop {
        // Until the tree is ready for an import, or has one: another
        // member's import shows as znodes and a zxid that keeps moving.
        let mut last_move = (0, tokio::time::Instant::now());
        loop {
            let (zxid, nodes) = {
                let state = server.shared.read_async().await;
                (state.tree.last_zxid(), state.tree.node_count())
            };
            if zxid >= IMPORTED_ZXID {
                tracing::info!("import: this paddock holds an import (zxid {zxid:#x}): not importing again");
                return Ok(());
            }
            if nodes == BUILT_IN_NODES {
                break;
            }
            if zxid != last_move.0 {
                last_move = (zxid, tokio::time::Instant::now());
            }
            if server.config.peers.is_empty() || last_move.1.elapsed() >= STALL {
                return Err(ImportError::NotEmpty { zxid });
            }
            tracing::info!("import: {nodes} znodes here and no import complete: waiting for another member's");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let Some(todo) = parts.take() else {
            // Our first part was refused, and the tree is empty again: not
            // an import under way after all.
            let zxid = server.shared.read_async().await.tree.last_zxid();
            return Err(ImportError::NotEmpty { zxid });
        };
        let total: usize = todo.iter().map(|p| p.nodes.len()).sum();
        let mut done = 0;
        for part in todo {
            let (n, first) = (part.nodes.len(), part.first);
            let response = server.write(0, Txn::Import(part)).await.map_err(|e| ImportError::Write(e.to_string()))?;
            match response.outcome {
                // Another member's first part came before ours.
                TxnOutcome::Error(_) if first => break,
                TxnOutcome::Error(code) => return Err(ImportError::Write(format!("error {code}"))),
                _ => {}
            }
            done += n;
            tracing::info!("import: {done} of {total} znodes in");
        }
        if done == total {
            return Ok(());
        }
    }
}

/// Splits the nodes into parts of about [`PART_BYTES`]; the last part
/// brings the sessions, then their ephemerals, so that no session's clock
/// starts before the whole tree is in.
fn parts(imported: Imported) -> Vec<ImportChunk> {
    let Imported { nodes, sessions, last_zxid, .. } = imported;
    let first_ephemeral = nodes.iter().position(|(_, n)| matches!(n.kind, NodeKind::Ephemeral(_))).unwrap_or(nodes.len());
    let mut nodes = nodes.into_iter();
    let mut parts: Vec<ImportChunk> = Vec::new();
    let mut part = Vec::new();
    let mut bytes = 0;
    for (path, node) in nodes.by_ref().take(first_ephemeral) {
        bytes += path.len() + node.data.as_ref().map_or(0, |d| d.len()) + 64;
        part.push((path, node));
        if bytes >= PART_BYTES {
            parts.push(ImportChunk { first: parts.is_empty(), nodes: std::mem::take(&mut part), sessions: Vec::new(), last_zxid: None });
            bytes = 0;
        }
    }
    part.extend(nodes);
    parts.push(ImportChunk { first: parts.is_empty(), nodes: part, sessions, last_zxid: Some(last_zxid) });
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_passwords_are_zookeepers() {
        // From java.util.Random as ZooKeeperServer.generatePasswd uses it.
        let hex = |id: u64| zookeeper_passwd(id as i64).iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(hex(0), "f22acd4a97e69d6d20a49bb638eadb38");
        assert_eq!(hex(1), "054cc74a37327db215e702e20c73f005");
        assert_eq!(hex(0x1000_0d8f_0a4c_0000), "166b2645eb8d6e8ee45a383facd379a4");
        assert_eq!(hex(u64::MAX), "20f62cb5648dc2d771471c8a2486a9ee");
    }
}
