//! This node: mail counters, hardware, the system image and its updates, network
//! settings, the message trace, and the cluster's web certificate.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use postern_api::command::requests as req;
use postern_api::views::NetworkSettings;
use postern_api::{Command, MAX_UPDATE_BUNDLE};
use serde::Deserialize;

use super::{JsonBody, Limit, body, exec, limit, query};
use crate::App;
use crate::app::{ApiCaller, api_error};

pub(super) async fn stats(State(app): State<App>, who: ApiCaller) -> Response {
    exec(&app, &who, req::Stats {}).await
}

pub(super) async fn hardware(State(app): State<App>, who: ApiCaller) -> Response {
    exec(&app, &who, req::Hardware {}).await
}

pub(super) async fn system(State(app): State<App>, who: ApiCaller) -> Response {
    exec(&app, &who, req::System {}).await
}

pub(super) async fn network_get(State(app): State<App>, who: ApiCaller) -> Response {
    exec(&app, &who, req::NetworkGet {}).await
}

pub(super) async fn network_set(State(app): State<App>, who: ApiCaller, b: JsonBody) -> Response {
    let settings = input!(body::<NetworkSettings>(b));
    exec(&app, &who, req::NetworkSet { settings }).await
}

/// `?reboot=true`: reboot into the new slot once it is installed.
#[derive(Debug, Deserialize)]
pub(super) struct UpdateQuery {
    #[serde(default)]
    reboot: bool,
}

/// An update bundle as the request body (application/octet-stream), streamed into the spool
/// folder, then verified and handed to the installer. The role is checked before the body is
/// read: a readonly caller does not get to upload hundreds of MiB.
pub(super) async fn update(
    State(app): State<App>,
    who: ApiCaller,
    q: Result<Query<UpdateQuery>, QueryRejection>,
    body: axum::body::Body,
) -> Response {
    let q = input!(query(q));
    let cmd = Command::UpdateStage(req::UpdateStage { reboot: q.reboot });
    if who.0.role < cmd.role() {
        let msg = format!(
            "update needs the admin role; {} is {}",
            who.0.name,
            who.0.role.as_str()
        );
        return api_error(StatusCode::FORBIDDEN, &msg);
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

/// Writes a request body to `path` (mode 0600), at most [`MAX_UPDATE_BUNDLE`] bytes; the
/// file is removed again when that fails.
async fn receive(body: axum::body::Body, path: &std::path::Path) -> Result<u64, String> {
    let f = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let result = write_all(body, f, path).await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(path).await;
    }
    result
}

async fn write_all(
    body: axum::body::Body,
    mut f: tokio::fs::File,
    path: &std::path::Path,
) -> Result<u64, String> {
    use futures_util::StreamExt as _;
    use tokio::io::AsyncWriteExt as _;
    let mut stream = body.into_data_stream();
    let mut total = 0u64;
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
        return Err("the request has no body (send the bundle as application/octet-stream)".into());
    }
    Ok(total)
}

pub(super) async fn trace(
    State(app): State<App>,
    who: ApiCaller,
    q: Result<Query<Limit>, QueryRejection>,
) -> Response {
    let limit = input!(limit(q));
    exec(&app, &who, req::TraceList { limit }).await
}

pub(super) async fn web_certificate(
    State(app): State<App>,
    who: ApiCaller,
    b: JsonBody,
) -> Response {
    let set = input!(body::<req::WebTlsSet>(b));
    exec(&app, &who, set).await
}
