//! The services the dispatcher calls, one per area of the management plane. Each takes
//! typed arguments, answers with the command language's typed views
//! ([`postern_api::views`]) and fails with an error enum of its own; the dispatcher turns
//! those into error kinds in one place (`crate::dispatch::error`).
//!
//! | service | holds |
//! |---|---|
//! | [`keys`] | users, partners, trust anchors, the CA, rollover (the key store on the cluster) |
//! | [`domains`] | federation: our domain keys and DNS records, the partner domains pinned |
//! | [`accounts`] | administrators, API tokens, first-boot setup, logins, the web certificate |
//! | [`settings`] | the replicated settings |
//! | [`vips`] | virtual IP configuration |
//! | [`hardware`] | this node's sensors, their evaluation and the watchdog |
//! | [`metrics`] | the Prometheus exposition |
//! | [`publish`] | the Web Key Directory this gateway serves for its domains |
//!
//! Membership (join, remove, status) is the member's own ([`crate::member`]); the system
//! image ([`crate::update`]) and network settings ([`crate::network`]) are node-local files.

pub mod accounts;
pub mod domains;
pub mod hardware;
pub mod keys;
pub mod metrics;
pub mod publish;
pub mod settings;
pub mod vips;

pub use crate::clock::now_secs;
