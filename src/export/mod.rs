//! Moving back to ZooKeeper: writes a stopped paddock's data as a ZooKeeper
//! 3.8 snapshot, from which a ZooKeeper server (standalone, or each member
//! of an ensemble, each given a copy) starts serving the same tree.
//!
//! `paddock --config zoo.cfg --export-zookeeper DIR` opens the data
//! directory as a restart would, applies the log entries this server knows
//! to be committed (openraft's own start-up step), and writes
//! `DIR/version-2/snapshot.<zxid>`. Everything the import keeps goes back:
//! data, ACLs, every stat field, sequence counters, quotas, containers, TTL
//! nodes, sessions with their timeouts and ephemerals. ZooKeeper checks the
//! file's checksums and its tree digest as it loads it.
//!
//! What cannot go back: a session's password. ZooKeeper derives it from the
//! session id; paddock draws it at random. Clients connected to paddock so
//! get new sessions from ZooKeeper, and the exported sessions' ephemerals
//! go when their timeouts pass, as after any expiry.

pub mod snapshot;

use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::RaftLogStorage;

use crate::config::Config;
use crate::raft::batcher::Settled;
use crate::raft::log_store::LogStore;
use crate::raft::state_machine::StateMachine;
use crate::state::Shared;
use crate::storage;

/// Why a data directory could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The data directory holds no paddock state.
    #[error("no paddock data in {} (dataDir, or --data-dir)", .0.display())]
    NoData(PathBuf),
    /// The databases did not open: most often, paddock is still running.
    #[error("cannot open paddock's data in {}: {source} (stop paddock first: the export reads its data directory alone)", dir.display())]
    Open {
        /// The data directory.
        dir: PathBuf,
        /// Why.
        source: storage::StorageError,
    },
    /// Replaying the committed log failed.
    #[error("cannot bring the state up to its last commit: {0}")]
    Replay(String),
    /// The target already has ZooKeeper files, which would be read with ours.
    #[error("{} already holds ZooKeeper files ({file}): export into an empty directory", dir.display())]
    NotEmpty {
        /// The target's version-2 directory.
        dir: PathBuf,
        /// One of the files.
        file: String,
    },
    /// Writing the snapshot failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// A finished export.
#[derive(Debug)]
pub struct Exported {
    /// The snapshot file written.
    pub path: PathBuf,
    /// What it holds.
    pub written: snapshot::Written,
    /// Log entries after the last commit this server knew of: written but
    /// perhaps never committed, so not exported. Only a member that was
    /// not the leader when it stopped can have them.
    pub unsure: u64,
}

/// Exports the data directory of `config` (paddock stopped) into
/// `to/version-2`, which must hold no ZooKeeper files yet.
pub async fn run(config: &Config, to: &Path) -> Result<Exported, ExportError> {
    if !config.data_dir.join("rocksdb").join("CURRENT").exists() {
        return Err(ExportError::NoData(config.data_dir.clone()));
    }
    let open = |source| ExportError::Open { dir: config.data_dir.clone(), source };
    let stores = storage::open_stores(&config.data_dir, config.log_dir()).map_err(open)?;
    let dir = to.join("version-2");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExportError::Io { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
        let name = entry.map_err(io(&dir))?.file_name().to_string_lossy().into_owned();
        if name.starts_with("snapshot.") || name.starts_with("log.") {
            return Err(ExportError::NotEmpty { dir, file: name });
        }
    }
    let shared = Arc::new(Shared::new(StateMachine::load(&stores.state).map_err(open)?));
    let mut log = LogStore::open(stores.log, &stores.log_dir, Settled::default(), Default::default()).map_err(open)?;
    let mut sm = StateMachine::new(stores.state, shared.clone(), config.snap_count);
    // What a restart does first: apply the entries known to be committed.
    openraft::StorageHelper::new(&mut log, &mut sm).get_initial_state().await.map_err(|e| ExportError::Replay(e.to_string()))?;
    let last_log = log.get_log_state().await.map_err(|e| ExportError::Replay(e.to_string()))?.last_log_id;
    let state = shared.read();
    let applied = state.last_applied.map_or(0, |l| l.index);
    let unsure = last_log.map_or(0, |l| l.index).saturating_sub(applied);

    let path = dir.join(format!("snapshot.{:x}", state.tree.last_zxid()));
    let partial = dir.join(format!("snapshot.{:x}.partial", state.tree.last_zxid()));
    let file = std::fs::File::create(&partial).map_err(io(&partial))?;
    let mut out = BufWriter::new(file);
    let written = snapshot::write(&state.tree, &mut out).map_err(io(&partial))?;
    out.flush().map_err(io(&partial))?;
    let file = out.into_inner().map_err(|e| io(&partial)(e.into_error()))?;
    file.sync_all().map_err(io(&partial))?;
    // ZooKeeper ignores the partial name (not a zxid); the rename makes the
    // whole file appear at once.
    std::fs::rename(&partial, &path).map_err(io(&path))?;
    std::fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(io(&dir))?;
    Ok(Exported { path, written, unsure })
}
