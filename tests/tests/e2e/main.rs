//! End-to-end tests against real peers, one module per capability:
//! `cargo test -p postern-tests relay` runs the relay's.

mod cluster;
mod crypto;
mod federation;
mod hardware;
mod harness;
mod image;
mod relay;
mod vip;
mod webgui;
