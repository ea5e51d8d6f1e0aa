//! openraft's own storage conformance suite, run against paddock's RocksDB
//! log store and state machine.

use std::sync::Arc;

use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;

use super::log_store::LogStore;
use super::state_machine::StateMachine;
use super::TypeConfig;
use crate::state::Shared;
use crate::storage;

struct RocksBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for RocksBuilder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().map_err(|e| openraft::StorageIOError::write(&e))?;
        let db = storage::open(&dir.path().join("rocksdb")).map_err(|e| openraft::StorageIOError::write(&e))?;
        let state = StateMachine::load(&db).map_err(|e| openraft::StorageIOError::read(&e))?;
        let shared = Arc::new(Shared::new(state));
        let log = LogStore::open(db.clone(), dir.path(), Default::default(), Default::default())
            .map_err(|e| openraft::StorageIOError::read_logs(&e))?;
        Ok((dir, log, StateMachine::new(db, shared, u64::MAX)))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(RocksBuilder).expect("openraft storage conformance");
}
