//! The cluster: status, join credentials, joining, removing a member, virtual IPs, and
//! the replicated settings.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use postern_api::command::requests as req;
use serde::Deserialize;

use super::{JsonBody, body, exec, path};
use crate::App;
use crate::app::ApiCaller;

type Key = Result<Path<String>, PathRejection>;

pub(super) async fn status(State(app): State<App>, who: ApiCaller) -> Response {
    exec(&app, &who, req::ClusterStatus {}).await
}

/// `{"ttl_secs": …}`, an hour when left out.
#[derive(Debug, Deserialize)]
struct TtlBody {
    #[serde(default = "default_ttl")]
    ttl_secs: u64,
}

fn default_ttl() -> u64 {
    3600
}

pub(super) async fn credentials(State(app): State<App>, who: ApiCaller, b: JsonBody) -> Response {
    let ttl_secs = input!(body::<TtlBody>(b)).ttl_secs;
    exec(&app, &who, req::ClusterExportCredentials { ttl_secs }).await
}

pub(super) async fn join(State(app): State<App>, who: ApiCaller, b: JsonBody) -> Response {
    let join = input!(body::<req::ClusterJoin>(b));
    exec(&app, &who, join).await
}

pub(super) async fn remove(
    State(app): State<App>,
    who: ApiCaller,
    p: Result<Path<u64>, PathRejection>,
) -> Response {
    let id = input!(path(p));
    exec(&app, &who, req::ClusterRemove { id }).await
}

pub(super) async fn vip_list(State(app): State<App>, who: ApiCaller) -> Response {
    exec(&app, &who, req::VipList {}).await
}

pub(super) async fn vip_add(State(app): State<App>, who: ApiCaller, b: JsonBody) -> Response {
    let add = input!(body::<req::VipAdd>(b));
    exec(&app, &who, add).await
}

pub(super) async fn vip_move(State(app): State<App>, who: ApiCaller, b: JsonBody) -> Response {
    let mv = input!(body::<req::VipMove>(b));
    exec(&app, &who, mv).await
}

pub(super) async fn vip_remove(State(app): State<App>, who: ApiCaller, b: JsonBody) -> Response {
    let rm = input!(body::<req::VipRemove>(b));
    exec(&app, &who, rm).await
}

pub(super) async fn setting_list(State(app): State<App>, who: ApiCaller) -> Response {
    exec(&app, &who, req::SettingList {}).await
}

pub(super) async fn setting_get(State(app): State<App>, who: ApiCaller, p: Key) -> Response {
    let key = input!(path(p));
    exec(&app, &who, req::SettingGet { key }).await
}

/// `{"value": …}`.
#[derive(Debug, Deserialize)]
struct ValueBody {
    value: String,
}

pub(super) async fn setting_set(
    State(app): State<App>,
    who: ApiCaller,
    p: Key,
    b: JsonBody,
) -> Response {
    let key = input!(path(p));
    let value = input!(body::<ValueBody>(b)).value;
    exec(&app, &who, req::SettingSet { key, value }).await
}

pub(super) async fn setting_unset(State(app): State<App>, who: ApiCaller, p: Key) -> Response {
    let key = input!(path(p));
    exec(&app, &who, req::SettingUnset { key }).await
}
