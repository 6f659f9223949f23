//! Postern's management command language, the contract between every surface (the web
//! GUI's forms, the REST API, `posternctl` over the control socket) and the daemon that
//! executes it. A [`Command`] names one action and carries its typed request; the daemon
//! answers with the matching [`Reply`] variant or an [`Error`] whose [`ErrorKind`] decides
//! the HTTP status. [`Request`] ties each request struct to its reply type, so a caller in
//! another crate gets typed data back, never loose JSON.
//!
//! The crate depends on no other Postern crate: it is the language, not its implementation.

pub mod command;
pub mod error;
pub mod role;
pub mod settings;
pub mod views;

pub use command::{Command, Reply, Request};
pub use error::{Error, ErrorKind};
pub use role::{Actor, Role, Via};
pub use settings::{Setting, SettingKey};

/// The shortest password an administrator may have.
pub const MIN_PASSWORD: usize = 10;

/// The largest update bundle the API receives and posternd accepts (a root slot is a few
/// hundred MiB).
pub const MAX_UPDATE_BUNDLE: u64 = 4 << 30;
