//! Postern's replicated state (DESIGN.md §6): a Raft node on tikv `raft` with its log, hard
//! state and applied state machine in RocksDB. Depends on no other Postern crate.
//!
//! - [`state`]: the typed state and its pure `apply(command) -> outcome`;
//! - [`storage`]: Raft storage and the persisted state machine on RocksDB.

pub mod node;
pub mod state;
pub mod storage;
#[cfg(test)]
pub mod testkit;
