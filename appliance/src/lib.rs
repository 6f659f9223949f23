//! Postern: a queue-less secure-mail gateway.
//!
//! This crate is the gateway itself, in layers; a module imports only from its own layer or
//! below, and no two modules import each other (`tests/src/layers.rs` checks both):
//!
//! | layer | modules | what |
//! |---|---|---|
//! | 0 foundation | `config`, `smtp`, `tls`, `settings`, `network`, `update` | typed configuration; the sans-IO SMTP session with the policy port it calls; certificates; the policy overlay of the replicated settings; node-local files (network.conf, update bundles) |
//! | 1 policy | `policy` | which treatment a recipient gets, and the message after it (pure) |
//! | 2 mail path | `relay` | the tokio side: sockets, downstream, trace |
//! | 3 state | `keystore`, `views`, `federation` | the key store on the cluster state; the readers the Raft observer keeps current; partner-domain discovery (DNSSEC, WKD) into the key store |
//! | 4 membership | `member` | this node's Raft member: start, join, remove, propose, read |
//! | 5 services | `services` | keys, accounts, settings, VIPs, hardware, metrics |
//! | 6 dispatcher | `dispatch` | role check, audit, one exhaustive `match` over the commands |
//! | 7 surfaces | `control`, `web`, `tasks`, `daemon` | the control socket, the web server's backend, periodic work, the wiring of `posternd` |
//!
//! The queue-less contract (DESIGN.md §3): Postern answers the upstream's end-of-DATA only
//! after the downstream answered the same transaction, and never stores a message.

pub mod clock;
pub mod config;
pub mod network;
pub mod settings;
pub mod smtp;
pub mod tls;
pub mod update;

pub mod policy;

pub mod relay;

pub mod federation;
pub mod keystore;
pub mod views;

pub mod member;

pub mod services;

pub mod dispatch;

pub mod control;
pub mod daemon;
pub mod tasks;
pub mod web;
