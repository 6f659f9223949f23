//! Postern's replicated state (DESIGN.md §6): a Raft node on tikv `raft` with its log, hard
//! state and applied state machine in RocksDB. Depends on no other Postern crate.
//!
//! - [`state`]: the typed state and its pure `apply(command) -> outcome`;
//! - [`storage`]: Raft storage and the persisted state machine on RocksDB;
//! - [`node`]: one member and its Ready loop;
//! - [`pki`]: the cluster CA and node certificates;
//! - [`transport`]: Raft messages over mutual TLS;
//! - [`vip`]: which node holds each virtual IP, under leases (pure decisions).

pub mod files;
pub mod join;
pub mod member;
pub mod node;
pub mod pki;
pub mod runner;
pub mod state;
pub mod storage;
#[cfg(test)]
pub mod testkit;
pub mod transport;
pub mod vip;
