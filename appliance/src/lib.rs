//! Postern: a queue-less secure-mail gateway.
//!
//! This crate is the gateway itself. The protocol code (`smtp`) and the policy (`policy`) do
//! no I/O: bytes and structs in, bytes and decisions out. `relay` is the tokio side that
//! owns sockets, `tls` the server certificate, `config` the typed configuration, and `daemon`
//! wires them together for the `posternd` binary; `control` and `admin` execute the shared
//! command layer for the control socket (`posternctl`) and the web GUI/API (`postern-webgui`).
//!
//! The queue-less contract (DESIGN.md §3): Postern answers the upstream's end-of-DATA only
//! after the downstream answered the same transaction, and never stores a message.

pub mod admin;
pub mod cluster;
pub mod config;
pub mod control;
pub mod daemon;
pub mod hardware;
pub mod keystore;
pub mod mirror;
pub mod network;
pub mod policy;
pub mod relay;
pub mod settings;
pub mod smtp;
pub mod tls;
pub mod update;
