//! The REST API under `/api/v1`: every route turns its request into one
//! [`Command`](postern_api::Command) of the shared command language. Bodies and replies are
//! JSON; errors are `{"error", "kind"}` with the matching status. Described by
//! [`crate::openapi`] at `/api/v1/openapi.json`.
//!
//! The handlers are grouped by area: [`keys`] (users, partners, imports, trust),
//! [`cluster`] (membership, virtual IPs, replicated settings), [`domains`] (federation),
//! [`accounts`] (first-boot
//! setup, administrators, tokens, the audit log) and [`system`] (this node: counters,
//! hardware, updates, network, the trace, the web certificate).

/// Unwraps a parsed input or answers with its error.
macro_rules! input {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
}

mod accounts;
mod cluster;
mod domains;
mod keys;
mod system;

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::App;
use crate::app::{ApiCaller, api_error};
use postern_api::{Command, Error, Reply};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/setup", get(accounts::setup_status).post(accounts::setup))
        .route("/status", get(cluster::status))
        .route("/stats", get(system::stats))
        .route("/hardware", get(system::hardware))
        .route("/system", get(system::system))
        .route("/system/update", post(system::update))
        .route(
            "/network",
            get(system::network_get).put(system::network_set),
        )
        .route("/users", get(keys::user_list).post(keys::user_enrol))
        .route("/users/{address}", delete(keys::user_remove))
        .route("/users/{address}/certificate", get(keys::user_cert))
        .route("/users/{address}/openpgp", get(keys::user_pgp))
        .route("/users/{address}/pkcs12", post(keys::user_pkcs12))
        .route("/import/pkcs12", post(keys::import_pkcs12))
        .route("/import/openpgp-secret", post(keys::import_pgp_secret))
        .route("/import/public", post(keys::import_public))
        .route("/partners", get(keys::partner_list))
        .route("/trust", post(keys::trust_add))
        .route("/ca", get(keys::ca_cert))
        .route("/rollover", post(keys::rollover))
        .route("/domains", get(domains::list))
        .route("/domains/{domain}/dns-records", get(domains::dns_records))
        .route("/domains/{domain}/rollover", post(domains::rollover))
        .route("/domains/{domain}/revoke", post(domains::revoke))
        .route("/partner-domains", get(domains::partners))
        .route("/partner-domains/{domain}", delete(domains::forget))
        .route("/partner-domains/{domain}/import", post(domains::import))
        .route("/partner-domains/{domain}/refresh", post(domains::refresh))
        .route("/settings", get(cluster::setting_list))
        .route(
            "/settings/{key}",
            get(cluster::setting_get)
                .put(cluster::setting_set)
                .delete(cluster::setting_unset),
        )
        .route("/cluster/credentials", post(cluster::credentials))
        .route("/cluster/join", post(cluster::join))
        .route("/cluster/members/{id}", delete(cluster::remove))
        .route("/vips", get(cluster::vip_list).post(cluster::vip_add))
        .route("/vips/move", post(cluster::vip_move))
        .route("/vips/remove", post(cluster::vip_remove))
        .route(
            "/admins",
            get(accounts::admin_list).post(accounts::admin_add),
        )
        .route("/admins/{name}", delete(accounts::admin_remove))
        .route("/admins/{name}/password", put(accounts::admin_password))
        .route("/admins/{name}/role", put(accounts::admin_role))
        .route(
            "/tokens",
            get(accounts::token_list).post(accounts::token_create),
        )
        .route("/tokens/{name}", delete(accounts::token_revoke))
        .route("/audit", get(accounts::audit))
        .route("/trace", get(system::trace))
        .route("/web-certificate", put(system::web_certificate))
        .fallback(|| async { api_error(StatusCode::NOT_FOUND, "no such API route") })
}

/// A JSON request body as the handlers take it (parsed by [`body`]).
type JsonBody = Result<Json<Value>, JsonRejection>;

/// Runs a command for the caller and answers with its data, or its error and status.
async fn exec(app: &App, who: &ApiCaller, cmd: impl Into<Command>) -> Response {
    reply(app.exec(&who.0, cmd.into()).await)
}

fn reply(r: Result<Reply, Error>) -> Response {
    match r {
        Ok(data) => Json(data).into_response(),
        Err(e) => crate::app::error_response(&e),
    }
}

/// A JSON request body: an object (serde would also take an array for a struct), then the
/// operation's fields.
fn body<T: DeserializeOwned>(b: JsonBody) -> Result<T, Response> {
    let Json(v) = b.map_err(|e| api_error(StatusCode::BAD_REQUEST, &e.body_text()))?;
    if !v.is_object() {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            "the request body must be a JSON object",
        ));
    }
    serde_json::from_value(v)
        .map_err(|e| api_error(StatusCode::BAD_REQUEST, &format!("request body: {e}")))
}

fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, Response> {
    p.map(|Path(t)| t)
        .map_err(|e| api_error(StatusCode::BAD_REQUEST, &e.body_text()))
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, Response> {
    q.map(|Query(t)| t)
        .map_err(|e| api_error(StatusCode::BAD_REQUEST, &e.body_text()))
}

/// `?limit=` of the list routes (the trace, the audit log).
#[derive(Debug, Deserialize)]
struct Limit {
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    100
}

use crate::openapi::MAX_LIMIT;

fn limit(q: Result<Query<Limit>, QueryRejection>) -> Result<usize, Response> {
    let q = query(q)?;
    if q.limit > MAX_LIMIT {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            &format!("limit: at most {MAX_LIMIT}"),
        ));
    }
    Ok(q.limit)
}

async fn openapi(_who: ApiCaller) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::document().to_string(),
    )
        .into_response()
}

/// `/metrics`: Prometheus text format, for any authenticated caller (a readonly token).
pub async fn metrics(State(app): State<App>, _who: ApiCaller) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.backend().metrics().await,
    )
        .into_response()
}

/// `{"password": …}`: a PKCS#12 export's, an administrator's new one.
#[derive(Debug, Deserialize)]
struct PasswordBody {
    password: String,
}
