//! Postern's HTTPS server (DESIGN.md §7): the admin web GUI, the REST API under `/api/v1`
//! with its OpenAPI document, Prometheus metrics, and the [`command`] layer the GUI, the API
//! and `posternctl` share. The daemon (crate `postern`) implements [`Backend`]: this crate
//! never touches the mail path.

// Request handlers answer errors with an axum `Response`, like axum's own extractors.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod command;
pub mod tls;
pub mod totp;

mod api;
mod app;
mod html;
mod openapi;
mod pages;
mod server;

use std::future::Future;
use std::pin::Pin;

pub use app::App;
pub use server::serve;

use command::{Actor, Command, Response, Role};

/// A boxed future that can cross threads.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An administrator as a login needs it: the hash, the TOTP secret (unsealed) and the role.
#[derive(Clone)]
pub struct Login {
    pub password_hash: String,
    pub totp_secret: Vec<u8>,
    pub role: Role,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// What the server needs from the daemon.
pub trait Backend: Send + Sync + 'static {
    /// Executes a command for `actor`: role checks, the audit log and the command itself.
    fn execute(&self, cmd: Command, actor: Actor) -> BoxFuture<'_, Response>;
    /// An administrator, from this node's copy of the state (logins keep working without
    /// quorum).
    fn login(&self, name: &str) -> Option<Login>;
    /// The name and role of the API token whose SHA-256 (hex) is `hash`.
    fn api_token(&self, hash: &str) -> Option<(String, Role)>;
    /// Whether the cluster has been set up (it has an administrator).
    fn setup_done(&self) -> bool;
    /// Prometheus text exposition of the mail path and the cluster.
    fn metrics(&self) -> BoxFuture<'_, String>;
    /// The cluster's HTTPS certificate and key (PEM), when the admin set one.
    fn web_tls(&self) -> Option<(String, String)>;
    /// This node's name, for page titles and the TOTP issuer.
    fn node_name(&self) -> String;
    /// The folder an update bundle is received into (as `incoming`) before
    /// [`Command::UpdateStage`]; none when this node takes no updates.
    fn update_spool(&self) -> Option<std::path::PathBuf>;
}
