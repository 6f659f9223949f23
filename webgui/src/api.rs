//! The REST API under `/api/v1`: every route turns its request into one [`Command`] of the
//! shared command layer. Bodies and replies are JSON; errors are `{"error", "kind"}` with
//! the matching status. Described by [`crate::openapi`] at `/api/v1/openapi.json`.

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
use crate::command::{Actor, Command, ErrorKind, MAX_UPDATE_BUNDLE, Role, Via};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/setup", get(setup_status).post(setup))
        .route("/status", get(cluster_status))
        .route("/stats", get(stats))
        .route("/hardware", get(hardware))
        .route("/system", get(system))
        .route("/system/update", post(system_update))
        .route("/network", get(network_get).put(network_set))
        .route("/users", get(user_list).post(user_enrol))
        .route("/users/{address}", delete(user_remove))
        .route("/users/{address}/certificate", get(user_cert))
        .route("/users/{address}/openpgp", get(user_pgp))
        .route("/users/{address}/pkcs12", post(user_pkcs12))
        .route("/import/pkcs12", post(import_pkcs12))
        .route("/import/openpgp-secret", post(import_pgp_secret))
        .route("/import/public", post(import_public))
        .route("/partners", get(partner_list))
        .route("/trust", post(trust_add))
        .route("/ca", get(ca_cert))
        .route("/rollover", post(rollover))
        .route("/settings", get(setting_list))
        .route(
            "/settings/{key}",
            get(setting_get).put(setting_set).delete(setting_unset),
        )
        .route("/cluster/credentials", post(cluster_credentials))
        .route("/cluster/join", post(cluster_join))
        .route("/cluster/members/{id}", delete(cluster_remove))
        .route("/vips", get(vip_list).post(vip_add))
        .route("/vips/move", post(vip_move))
        .route("/vips/remove", post(vip_remove))
        .route("/admins", get(admin_list).post(admin_add))
        .route("/admins/{name}", delete(admin_remove))
        .route("/admins/{name}/password", put(admin_password))
        .route("/tokens", get(token_list).post(token_create))
        .route("/tokens/{name}", delete(token_revoke))
        .route("/audit", get(audit))
        .route("/trace", get(trace))
        .route("/web-certificate", put(web_certificate))
        .fallback(|| async { api_error(StatusCode::NOT_FOUND, "no such API route") })
}

/// Runs a command and answers with its data, or its error and status.
async fn exec(app: &App, who: &ApiCaller, cmd: Command) -> Response {
    reply(app.run(&who.0, cmd).await)
}

fn reply(r: crate::command::Response) -> Response {
    if r.ok {
        return Json(r.data).into_response();
    }
    let kind = r.kind.unwrap_or(ErrorKind::Invalid);
    let status = StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    api_error(status, r.error.as_deref().unwrap_or("failed"))
}

/// A JSON request body: an object (serde would also take an array for a struct), then the
/// operation's fields.
fn body<T: DeserializeOwned>(b: Result<Json<Value>, JsonRejection>) -> Result<T, Response> {
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

/// Unwraps a parsed input or answers with its error.
macro_rules! input {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
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

async fn setup_status(State(app): State<App>) -> Response {
    Json(serde_json::json!({ "setup_done": app.backend().setup_done() })).into_response()
}

#[derive(Debug, Deserialize)]
struct SetupBody {
    admin: String,
    password: String,
    #[serde(default)]
    domains: Vec<String>,
    #[serde(default)]
    downstream: String,
}

/// First-boot setup over the API: only while the cluster has no administrator.
async fn setup(State(app): State<App>, b: Result<Json<Value>, JsonRejection>) -> Response {
    if app.backend().setup_done() {
        return api_error(StatusCode::CONFLICT, "this cluster has already been set up");
    }
    let b = input!(body::<SetupBody>(b));
    let actor = Actor {
        name: b.admin.clone(),
        role: Role::Admin,
        via: Via::Api,
    };
    reply(
        app.run(
            &actor,
            Command::Setup {
                admin: b.admin,
                password: b.password,
                domains: b.domains,
                downstream: b.downstream,
            },
        )
        .await,
    )
}

async fn cluster_status(State(app): State<App>, who: ApiCaller) -> Response {
    exec(&app, &who, Command::ClusterStatus).await
}

async fn stats(State(app): State<App>, who: ApiCaller) -> Response {
    exec(&app, &who, Command::Stats).await
}

async fn hardware(State(app): State<App>, who: ApiCaller) -> Response {
    exec(&app, &who, Command::Hardware).await
}

async fn system(State(app): State<App>, who: ApiCaller) -> Response {
    exec(&app, &who, Command::System).await
}

async fn network_get(State(app): State<App>, who: ApiCaller) -> Response {
    exec(&app, &who, Command::NetworkGet).await
}

async fn network_set(
    State(app): State<App>,
    who: ApiCaller,
    b: Result<Json<Value>, JsonRejection>,
) -> Response {
    let settings = input!(body::<crate::command::NetworkSettings>(b));
    exec(&app, &who, Command::NetworkSet { settings }).await
}

#[derive(Debug, Deserialize)]
struct UpdateQuery {
    #[serde(default)]
    reboot: bool,
}

/// An update bundle as the request body (application/octet-stream), streamed into the spool
/// folder, then verified and handed to the installer. The role is checked before the body is
/// read: a readonly caller does not get to upload hundreds of MiB.
async fn system_update(
    State(app): State<App>,
    who: ApiCaller,
    q: Result<Query<UpdateQuery>, QueryRejection>,
    body: axum::body::Body,
) -> Response {
    let q = input!(query(q));
    let cmd = Command::UpdateStage { reboot: q.reboot };
    if who.0.role < cmd.role() {
        return api_error(
            StatusCode::FORBIDDEN,
            &format!(
                "update needs the admin role; {} is {}",
                who.0.name,
                who.0.role.as_str()
            ),
        );
    }
    let Some(dir) = app.backend().update_spool() else {
        return api_error(
            StatusCode::CONFLICT,
            "this node takes no update bundles: [update] public_key is not set (the appliance image sets it)",
        );
    };
    if let Err(e) = receive(body, &dir.join("incoming")).await {
        return api_error(
            StatusCode::BAD_REQUEST,
            &format!("receiving the bundle: {e}"),
        );
    }
    exec(&app, &who, cmd).await
}

/// Writes a request body to `path` (mode 0600), at most [`MAX_UPDATE_BUNDLE`] bytes.
async fn receive(body: axum::body::Body, path: &std::path::Path) -> Result<u64, String> {
    use futures_util::StreamExt as _;
    use tokio::io::AsyncWriteExt as _;
    let mut f = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut stream = body.into_data_stream();
    let mut total = 0u64;
    let result = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            total += chunk.len() as u64;
            if total > MAX_UPDATE_BUNDLE {
                return Err(format!("larger than {} GiB", MAX_UPDATE_BUNDLE >> 30));
            }
            f.write_all(&chunk)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        f.sync_all()
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if total == 0 {
            return Err(
                "the request has no body (send the bundle as application/octet-stream)".into(),
            );
        }
        Ok(total)
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(path).await;
    }
    result
}

async fn user_list(State(app): State<App>, who: ApiCaller) -> Response {
    exec(&app, &who, Command::UserList).await
}

#[derive(Debug, Deserialize)]
struct AddressBody {
    address: String,
}

async fn user_enrol(
    State(app): State<App>,
    who: ApiCaller,
    b: Result<Json<Value>, JsonRejection>,
) -> Response {
    let b = input!(body::<AddressBody>(b));
    exec(&app, &who, Command::UserEnrol { address: b.address }).await
}

async fn user_remove(
    State(app): State<App>,
    who: ApiCaller,
    p: Result<Path<String>, PathRejection>,
) -> Response {
    let address = input!(path(p));
    exec(&app, &who, Command::UserRemove { address }).await
}

async fn user_cert(
    State(app): State<App>,
    who: ApiCaller,
    p: Result<Path<String>, PathRejection>,
) -> Response {
    let address = input!(path(p));
    exec(&app, &who, Command::UserCert { address }).await
}

async fn user_pgp(
    State(app): State<App>,
    who: ApiCaller,
    p: Result<Path<String>, PathRejection>,
) -> Response {
    let address = input!(path(p));
    exec(&app, &who, Command::UserPgp { address }).await
}

#[derive(Debug, Deserialize)]
struct PasswordBody {
    password: String,
}

async fn user_pkcs12(
    State(app): State<App>,
    who: ApiCaller,
    p: Result<Path<String>, PathRejection>,
    b: Result<Json<Value>, JsonRejection>,
) -> Response {
    let address = input!(path(p));
    let b = input!(body::<PasswordBody>(b));
    exec(
        &app,
        &who,
        Command::UserPkcs12 {
            address,
            password: b.password,
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
struct DataBody {
    data: String,
    #[serde(default)]
    password: String,
}

async fn import_pkcs12(
    State(app): State<App>,
    who: ApiCaller,
    b: Result<Json<Value>, JsonRejection>,
) -> Response {
    let b = input!(body::<DataBody>(b));
    exec(
        &app,
        &who,
        Command::ImportPkcs12 {
            data: b.data,
            password: b.password,
        },
    )
    .await
}

async fn import_pgp_secret(
    State(app): State<App>,
    who: ApiCaller,
    b: Result<Json<Value>, JsonRejection>,
) -> Response {
    let b = input!(body::<DataBody>(b));
    exec(&app, &who, Command::ImportPgpSecret { data: b.data }).await
}

async fn import_public(
    State(app): State<App>,
    who: ApiCaller,
    b: Result<Json<Value>, JsonRejection>,
) -> Response {
    let b = input!(body::<DataBody>(b));
    exec(&app, &who, Command::ImportPublic { data: b.data }).await
}

async fn partner_list(State(app): State<App>, who: ApiCaller) -> Response {
    exec(&app, &who, Command::PartnerList).await
}

async fn trust_add(
    State(app): State<App>,
    who: ApiCaller,
    b: Result<Json<Value>, JsonRejection>,
) -> Response {
    let b = input!(body::<DataBody>(b));
    exec(&app, &who, Command::TrustAdd { data: b.data }).await
}

async fn ca_cert(State(app): State<App>, who: ApiCaller) -> Response {
    exec(&app, &who, Command::CaCert).await
}

async fn rollover(State(app): State<App>, who: ApiCaller) -> Response {
    exec(&app, &who, Command::Rollover).await
}

async fn setting_list(State(app): State<App>, who: ApiCaller) -> Response {
    exec(&app, &who, Command::SettingList).await
}

async fn setting_get(
    State(app): State<App>,
    who: ApiCaller,
    p: Result<Path<String>, PathRejection>,
) -> Response {
    let key = input!(path(p));
    exec(&app, &who, Command::SettingGet { key }).await
}

#[derive(Debug, Deserialize)]
struct ValueBody {
    value: String,
}

async fn setting_set(
    State(app): State<App>,
    who: ApiCaller,
    p: Result<Path<String>, PathRejection>,
    b: Result<Json<Value>, JsonRejection>,
) -> Response {
    let key = input!(path(p));
    let b = input!(body::<ValueBody>(b));
    exec(
        &app,
        &who,
        Command::SettingSet {
            key,
            value: b.value,
        },
    )
    .await
}

async fn setting_unset(
    State(app): State<App>,
    who: ApiCaller,
    p: Result<Path<String>, PathRejection>,
) -> Response {
    let key = input!(path(p));
    exec(&app, &who, Command::SettingUnset { key }).await
}

#[derive(Debug, Deserialize)]
struct TtlBody {
    #[serde(default = "default_ttl")]
    ttl_secs: u64,
}

fn default_ttl() -> u64 {
    3600
}

async fn cluster_credentials(
    State(app): State<App>,
    who: ApiCaller,
    b: Result<Json<Value>, JsonRejection>,
) -> Response {
    let b = input!(body::<TtlBody>(b));
    exec(
        &app,
        &who,
        Command::ClusterExportCredentials {
            ttl_secs: b.ttl_secs,
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
struct JoinBody {
    credentials: String,
    peer: String,
}

async fn cluster_join(
    State(app): State<App>,
    who: ApiCaller,
    b: Result<Json<Value>, JsonRejection>,
) -> Response {
    let b = input!(body::<JoinBody>(b));
    exec(
        &app,
        &who,
        Command::ClusterJoin {
            credentials: b.credentials,
            peer: b.peer,
        },
    )
    .await
}

async fn cluster_remove(
    State(app): State<App>,
    who: ApiCaller,
    p: Result<Path<u64>, PathRejection>,
) -> Response {
    let id = input!(path(p));
    exec(&app, &who, Command::ClusterRemove { id }).await
}

async fn vip_list(State(app): State<App>, who: ApiCaller) -> Response {
    exec(&app, &who, Command::VipList).await
}

#[derive(Debug, Deserialize)]
struct VipBody {
    address: String,
    interface: String,
    #[serde(default)]
    preferred: Vec<u64>,
}

async fn vip_add(
    State(app): State<App>,
    who: ApiCaller,
    b: Result<Json<Value>, JsonRejection>,
) -> Response {
    let b = input!(body::<VipBody>(b));
    exec(
        &app,
        &who,
        Command::VipAdd {
            address: b.address,
            interface: b.interface,
            preferred: b.preferred,
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
struct VipMoveBody {
    address: String,
    to: u64,
}

async fn vip_move(
    State(app): State<App>,
    who: ApiCaller,
    b: Result<Json<Value>, JsonRejection>,
) -> Response {
    let b = input!(body::<VipMoveBody>(b));
    exec(
        &app,
        &who,
        Command::VipMove {
            address: b.address,
            to: b.to,
        },
    )
    .await
}

async fn vip_remove(
    State(app): State<App>,
    who: ApiCaller,
    b: Result<Json<Value>, JsonRejection>,
) -> Response {
    let b = input!(body::<AddressBody>(b));
    exec(&app, &who, Command::VipRemove { address: b.address }).await
}

async fn admin_list(State(app): State<App>, who: ApiCaller) -> Response {
    exec(&app, &who, Command::AdminList).await
}

#[derive(Debug, Deserialize)]
struct AdminBody {
    name: String,
    password: String,
    #[serde(default = "default_role")]
    role: String,
}

fn default_role() -> String {
    "admin".into()
}

async fn admin_add(
    State(app): State<App>,
    who: ApiCaller,
    b: Result<Json<Value>, JsonRejection>,
) -> Response {
    let b = input!(body::<AdminBody>(b));
    exec(
        &app,
        &who,
        Command::AdminAdd {
            name: b.name,
            password: b.password,
            role: b.role,
        },
    )
    .await
}

async fn admin_remove(
    State(app): State<App>,
    who: ApiCaller,
    p: Result<Path<String>, PathRejection>,
) -> Response {
    let name = input!(path(p));
    exec(&app, &who, Command::AdminRemove { name }).await
}

async fn admin_password(
    State(app): State<App>,
    who: ApiCaller,
    p: Result<Path<String>, PathRejection>,
    b: Result<Json<Value>, JsonRejection>,
) -> Response {
    let name = input!(path(p));
    let b = input!(body::<PasswordBody>(b));
    exec(
        &app,
        &who,
        Command::AdminPassword {
            name,
            password: b.password,
        },
    )
    .await
}

async fn token_list(State(app): State<App>, who: ApiCaller) -> Response {
    exec(&app, &who, Command::TokenList).await
}

#[derive(Debug, Deserialize)]
struct TokenBody {
    name: String,
    #[serde(default = "default_role")]
    role: String,
}

async fn token_create(
    State(app): State<App>,
    who: ApiCaller,
    b: Result<Json<Value>, JsonRejection>,
) -> Response {
    let b = input!(body::<TokenBody>(b));
    exec(
        &app,
        &who,
        Command::TokenCreate {
            name: b.name,
            role: b.role,
        },
    )
    .await
}

async fn token_revoke(
    State(app): State<App>,
    who: ApiCaller,
    p: Result<Path<String>, PathRejection>,
) -> Response {
    let name = input!(path(p));
    exec(&app, &who, Command::TokenRevoke { name }).await
}

#[derive(Debug, Deserialize)]
struct Limit {
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    100
}

/// The most entries a list returns (the trace and the audit log keep 1,000).
pub const MAX_LIMIT: usize = 1000;

fn limit(q: Limit) -> Result<usize, Response> {
    if q.limit > MAX_LIMIT {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            &format!("limit: at most {MAX_LIMIT}"),
        ));
    }
    Ok(q.limit)
}

async fn audit(
    State(app): State<App>,
    who: ApiCaller,
    q: Result<Query<Limit>, QueryRejection>,
) -> Response {
    let limit = input!(query(q).and_then(limit));
    exec(&app, &who, Command::AuditList { limit }).await
}

async fn trace(
    State(app): State<App>,
    who: ApiCaller,
    q: Result<Query<Limit>, QueryRejection>,
) -> Response {
    let limit = input!(query(q).and_then(limit));
    exec(&app, &who, Command::TraceList { limit }).await
}

#[derive(Debug, Deserialize)]
struct CertBody {
    cert: String,
    key: String,
}

async fn web_certificate(
    State(app): State<App>,
    who: ApiCaller,
    b: Result<Json<Value>, JsonRejection>,
) -> Response {
    let b = input!(body::<CertBody>(b));
    exec(
        &app,
        &who,
        Command::WebTlsSet {
            cert: b.cert,
            key: b.key,
        },
    )
    .await
}
