//! First-boot setup, administrators, API tokens, and the audit log.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use postern_api::command::requests as req;
use postern_api::views::SetupStatus;
use postern_api::{Actor, Role, Via};
use serde::Deserialize;

use super::{JsonBody, Limit, PasswordBody, body, exec, limit, path, reply};
use crate::App;
use crate::app::{ApiCaller, api_error};

type Name = Result<Path<String>, PathRejection>;

pub(super) async fn setup_status(State(app): State<App>) -> Response {
    let setup_done = app.backend().setup_done();
    Json(SetupStatus { setup_done }).into_response()
}

/// First-boot setup over the API: only while the cluster has no administrator.
pub(super) async fn setup(State(app): State<App>, b: JsonBody) -> Response {
    if app.backend().setup_done() {
        return api_error(StatusCode::CONFLICT, "this cluster has already been set up");
    }
    let setup = input!(body::<req::Setup>(b));
    let actor = Actor {
        name: setup.admin.clone(),
        role: Role::Admin,
        via: Via::Api,
    };
    reply(app.exec(&actor, setup.into()).await)
}

pub(super) async fn admin_list(State(app): State<App>, who: ApiCaller) -> Response {
    exec(&app, &who, req::AdminList {}).await
}

/// A new administrator: `admin` unless the role is given.
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

pub(super) async fn admin_add(State(app): State<App>, who: ApiCaller, b: JsonBody) -> Response {
    let AdminBody {
        name,
        password,
        role,
    } = input!(body(b));
    exec(
        &app,
        &who,
        req::AdminAdd {
            name,
            password,
            role,
        },
    )
    .await
}

pub(super) async fn admin_remove(State(app): State<App>, who: ApiCaller, p: Name) -> Response {
    let name = input!(path(p));
    exec(&app, &who, req::AdminRemove { name }).await
}

pub(super) async fn admin_password(
    State(app): State<App>,
    who: ApiCaller,
    p: Name,
    b: JsonBody,
) -> Response {
    let name = input!(path(p));
    let password = input!(body::<PasswordBody>(b)).password;
    exec(&app, &who, req::AdminPassword { name, password }).await
}

#[derive(Debug, Deserialize)]
struct RoleBody {
    role: String,
}

pub(super) async fn admin_role(
    State(app): State<App>,
    who: ApiCaller,
    p: Name,
    b: JsonBody,
) -> Response {
    let name = input!(path(p));
    let role = input!(body::<RoleBody>(b)).role;
    exec(&app, &who, req::AdminRole { name, role }).await
}

pub(super) async fn token_list(State(app): State<App>, who: ApiCaller) -> Response {
    exec(&app, &who, req::TokenList {}).await
}

/// A new API token: `admin` unless the role is given.
#[derive(Debug, Deserialize)]
struct TokenBody {
    name: String,
    #[serde(default = "default_role")]
    role: String,
}

pub(super) async fn token_create(State(app): State<App>, who: ApiCaller, b: JsonBody) -> Response {
    let TokenBody { name, role } = input!(body(b));
    exec(&app, &who, req::TokenCreate { name, role }).await
}

pub(super) async fn token_revoke(State(app): State<App>, who: ApiCaller, p: Name) -> Response {
    let name = input!(path(p));
    exec(&app, &who, req::TokenRevoke { name }).await
}

pub(super) async fn audit(
    State(app): State<App>,
    who: ApiCaller,
    q: Result<Query<Limit>, QueryRejection>,
) -> Response {
    let limit = input!(limit(q));
    exec(&app, &who, req::AuditList { limit }).await
}
