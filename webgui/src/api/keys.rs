//! Users, partners and their keys: enrolment, downloads, imports, trust anchors, the CA
//! certificate, the key rollover.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use postern_api::command::requests as req;
use serde::Deserialize;

use super::{JsonBody, PasswordBody, body, exec, path};
use crate::App;
use crate::app::ApiCaller;

type Address = Result<Path<String>, PathRejection>;

pub(super) async fn user_list(State(app): State<App>, who: ApiCaller) -> Response {
    exec(&app, &who, req::UserList {}).await
}

pub(super) async fn user_enrol(State(app): State<App>, who: ApiCaller, b: JsonBody) -> Response {
    let enrol = input!(body::<req::UserEnrol>(b));
    exec(&app, &who, enrol).await
}

pub(super) async fn user_remove(State(app): State<App>, who: ApiCaller, p: Address) -> Response {
    let address = input!(path(p));
    exec(&app, &who, req::UserRemove { address }).await
}

pub(super) async fn user_cert(State(app): State<App>, who: ApiCaller, p: Address) -> Response {
    let address = input!(path(p));
    exec(&app, &who, req::UserCert { address }).await
}

pub(super) async fn user_pgp(State(app): State<App>, who: ApiCaller, p: Address) -> Response {
    let address = input!(path(p));
    exec(&app, &who, req::UserPgp { address }).await
}

pub(super) async fn user_pkcs12(
    State(app): State<App>,
    who: ApiCaller,
    p: Address,
    b: JsonBody,
) -> Response {
    let address = input!(path(p));
    let password = input!(body::<PasswordBody>(b)).password;
    exec(&app, &who, req::UserPkcs12 { address, password }).await
}

/// A file's content (base64) and, for a PKCS#12 bundle, its password.
#[derive(Debug, Deserialize)]
struct DataBody {
    data: String,
    #[serde(default)]
    password: String,
}

pub(super) async fn import_pkcs12(State(app): State<App>, who: ApiCaller, b: JsonBody) -> Response {
    let DataBody { data, password } = input!(body(b));
    exec(&app, &who, req::ImportPkcs12 { data, password }).await
}

pub(super) async fn import_pgp_secret(
    State(app): State<App>,
    who: ApiCaller,
    b: JsonBody,
) -> Response {
    let data = input!(body::<DataBody>(b)).data;
    exec(&app, &who, req::ImportPgpSecret { data }).await
}

pub(super) async fn import_public(State(app): State<App>, who: ApiCaller, b: JsonBody) -> Response {
    let data = input!(body::<DataBody>(b)).data;
    exec(&app, &who, req::ImportPublic { data }).await
}

pub(super) async fn partner_list(State(app): State<App>, who: ApiCaller) -> Response {
    exec(&app, &who, req::PartnerList {}).await
}

pub(super) async fn trust_add(State(app): State<App>, who: ApiCaller, b: JsonBody) -> Response {
    let data = input!(body::<DataBody>(b)).data;
    exec(&app, &who, req::TrustAdd { data }).await
}

pub(super) async fn ca_cert(State(app): State<App>, who: ApiCaller) -> Response {
    exec(&app, &who, req::CaCert {}).await
}

pub(super) async fn rollover(State(app): State<App>, who: ApiCaller) -> Response {
    exec(&app, &who, req::Rollover {}).await
}
