//! Postern's HTTPS server (DESIGN.md §7): the admin web GUI, the REST API under `/api/v1`
//! with its OpenAPI document, and Prometheus metrics. Every page and route turns what the
//! operator asks into one `postern_api::Command` (the command language the GUI, the API and
//! `posternctl` share) and renders its typed reply. The daemon (crate `postern`) implements
//! [`Backend`]: this crate never touches the mail path.

// Request handlers answer errors with an axum `Response`, like axum's own extractors.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod tls;

mod api;
mod app;
mod openapi;
mod pages;
mod server;
mod wellknown;

use std::future::Future;
use std::pin::Pin;

pub use app::App;
pub use server::serve;

use postern_api::{Actor, Command, Error, Reply, Role};

/// A boxed future that can cross threads.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A login that passed: the account's role, the credential its session keeps, and the TOTP
/// step the code matched (the web server lets each code work once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginOk {
    pub role: Role,
    pub credential: String,
    pub step: u64,
}

/// An administrator as a session check needs it: the role now, and a fingerprint of the
/// password hash (a new password is a new credential: it ends the sessions opened with the
/// old one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub role: Role,
    pub credential: String,
}

/// What the server needs from the daemon.
pub trait Backend: Send + Sync + 'static {
    /// Executes a command for `actor`: role checks, the audit log and the command itself.
    fn execute(&self, cmd: Command, actor: Actor) -> BoxFuture<'_, Result<Reply, Error>>;
    /// Checks a login (password and TOTP code) against this node's copy of the state
    /// (logins keep working without quorum). The daemon holds the password hashes and the
    /// TOTP secrets; the web server only learns whether the login passed.
    fn verify_login<'a>(
        &'a self,
        name: &'a str,
        password: &'a str,
        code: &'a str,
    ) -> BoxFuture<'a, Option<LoginOk>>;
    /// An administrator's role and credential as this node's copy of the replicated state
    /// has them now: every request of a session is checked against it, so removing,
    /// demoting or re-passwording an account on any node reaches every session at once.
    fn account(&self, name: &str) -> Option<Account>;
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
    /// What the node publishes under `/.well-known/openpgpkey/` (the Web Key Directory of
    /// its domains) for a request to `host` for `path`; None: 404.
    fn well_known(&self, host: &str, path: &str) -> Option<WellKnown>;
}

/// An answer of the well-known service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WellKnown {
    pub content_type: &'static str,
    pub body: Vec<u8>,
}
