//! The relay: the tokio side of the mail path. `server` accepts upstream connections and
//! drives each [`Session`](crate::smtp::session::Session); `downstream` talks to the
//! downstream MTA; `limits` caps connections; `trace` keeps the message trace and counters;
//! `discovery` is the port partner-domain lookups come through.

pub mod discovery;
pub mod downstream;
pub mod limits;
pub mod ratelog;
pub mod server;
pub mod trace;
