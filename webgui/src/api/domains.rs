//! Federation: our domains (keys, rollover, revocation, DNS records) and the partner
//! domains pinned (list, import by hand, look up now, forget).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use postern_api::command::requests as req;
use serde::Deserialize;

use super::{JsonBody, body, exec, path};
use crate::App;
use crate::app::ApiCaller;

type Domain = Result<Path<String>, PathRejection>;

pub(super) async fn list(State(app): State<App>, who: ApiCaller) -> Response {
    exec(&app, &who, req::DomainList {}).await
}

pub(super) async fn dns_records(State(app): State<App>, who: ApiCaller, p: Domain) -> Response {
    let domain = input!(path(p));
    exec(&app, &who, req::DomainDnsRecords { domain }).await
}

pub(super) async fn rollover(State(app): State<App>, who: ApiCaller, p: Domain) -> Response {
    let domain = input!(path(p));
    exec(&app, &who, req::DomainRollover { domain }).await
}

#[derive(Debug, Deserialize)]
struct FingerprintBody {
    fingerprint: String,
}

pub(super) async fn revoke(
    State(app): State<App>,
    who: ApiCaller,
    p: Domain,
    b: JsonBody,
) -> Response {
    let domain = input!(path(p));
    let fingerprint = input!(body::<FingerprintBody>(b)).fingerprint;
    exec(
        &app,
        &who,
        req::DomainRevoke {
            domain,
            fingerprint,
        },
    )
    .await
}

pub(super) async fn partners(State(app): State<App>, who: ApiCaller) -> Response {
    exec(&app, &who, req::PartnerDomainList {}).await
}

#[derive(Debug, Deserialize)]
struct DataBody {
    data: String,
}

pub(super) async fn import(
    State(app): State<App>,
    who: ApiCaller,
    p: Domain,
    b: JsonBody,
) -> Response {
    let domain = input!(path(p));
    let data = input!(body::<DataBody>(b)).data;
    exec(&app, &who, req::PartnerDomainImport { domain, data }).await
}

pub(super) async fn refresh(State(app): State<App>, who: ApiCaller, p: Domain) -> Response {
    let domain = input!(path(p));
    exec(&app, &who, req::PartnerDomainRefresh { domain }).await
}

pub(super) async fn forget(State(app): State<App>, who: ApiCaller, p: Domain) -> Response {
    let domain = input!(path(p));
    exec(&app, &who, req::PartnerDomainForget { domain }).await
}
