//! paddock: a ZooKeeper wire-compatible coordination server on openraft and RocksDB.
//!
//! A request's path through the code: `network` (the socket, framing, the
//! session's ordered replies) → `ops` (decode; writes become `tree::txn::Txn`s,
//! reads run against the applied tree) → `server::Server::propose` → `raft`
//! (the log in RocksDB, replicated by openraft) → `raft::state_machine`
//! (applies to `tree`, persists to `storage`, fires `watch`es) → back to the
//! connection, which answers in order.

#![deny(missing_docs)]

pub mod admin;
pub mod audit;
pub mod bench;
pub mod check;
pub mod client;
pub mod config;
pub mod demo;
pub mod differ;
pub mod digest;
pub mod error;
pub mod export;
pub mod fault;
pub mod import;
pub mod metrics;
pub mod network;
pub mod open_files;
pub mod ops;
pub mod raft;
pub mod reaper;
pub mod sasl;
pub mod server;
pub mod serving;
pub mod session;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod tree;
pub mod watch;
