//! `/.well-known/openpgpkey/…`: the Web Key Directory of this node's domains (keys and the
//! policy file), public and unauthenticated as the draft requires, answered by the daemon
//! ([`crate::Backend::well_known`]). Any origin may read it.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::App;

pub async fn openpgpkey(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.host())
        .unwrap_or_default();
    match app.backend().well_known(host, uri.path()) {
        Some(w) => {
            let mut r = (StatusCode::OK, w.body).into_response();
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(w.content_type),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
            r
        }
        None => (StatusCode::NOT_FOUND, "no such key or domain").into_response(),
    }
}
