//! The GUI's pages, rendered on the server: one file per page or area (`setup`, `login`,
//! `dashboard`, `users`, `partners`, `policies`, `network`, `cluster` with its `vips`,
//! `trace`, `audit`, `admins`), the page frame and shared pieces in [`layout`], and here
//! the router and the plumbing every page shares.
//!
//! - Markup comes from maud's `html!`, which escapes every spliced value: no page builds
//!   HTML from strings.
//! - Pages read the daemon's typed replies (`App::call` with a `postern_api` request
//!   struct), never loose JSON.
//! - Each page is a handler that fetches its data and a render function of that typed data
//!   and the [`Viewer`], so it can be tested without a server; a readonly viewer gets no
//!   write forms.
//! - Forms post back and redirect (post/redirect/get, [`act`], [`back`]) with the outcome
//!   as a notice in the query ([`Flash`]). Every form carries a CSRF token: the session's,
//!   or before login a double-submit cookie ([`form_token`]).

mod admins;
mod audit;
mod cluster;
mod dashboard;
mod domains;
mod layout;
mod login;
mod network;
mod partners;
mod policies;
mod setup;
mod trace;
mod users;
mod vips;

use std::collections::HashMap;

use axum::Router;
use axum::extract::{FromRequestParts as _, Multipart, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use postern_api::Request;
use serde::Deserialize;

use crate::App;
use crate::app::{Admin, FORM_COOKIE, cookie, set_cookie};
use crate::auth;
use layout::{Notice, Viewer, page, url};

const CSS: &str = include_str!("../../static/app.css");
const JS: &str = include_str!("../../static/app.js");

/// What the CSRF checks say when a form fails them.
const STALE_FORM: &str = "The form was stale or did not come from this site (CSRF check failed). Reload the page and try again.";

pub fn routes() -> Router<App> {
    Router::new()
        .route(
            "/static/app.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css")], CSS) }),
        )
        .route(
            "/static/app.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], JS) }),
        )
        .route("/setup", get(setup::page))
        .route("/setup/create", post(setup::create))
        .route("/setup/join", post(setup::join))
        .route("/login", get(login::page).post(login::login))
        .route("/logout", post(login::logout))
        .route("/", get(dashboard::page))
        .route("/users", get(users::page))
        .route("/users/enrol", post(users::enrol))
        .route("/users/remove", post(users::remove))
        .route("/users/import", post(users::import))
        .route("/users/{address}/certificate.pem", get(users::certificate))
        .route("/users/{address}/openpgp.asc", get(users::openpgp))
        .route("/partners", get(partners::page))
        .route("/partners/import", post(partners::import))
        .route("/domains/import", post(domains::import))
        .route("/domains/refresh", post(domains::refresh))
        .route("/domains/forget", post(domains::forget))
        .route("/domains/{*file}", get(domains::dns))
        .route("/trust/add", post(partners::trust_add))
        .route("/ca.pem", get(partners::ca_pem))
        .route("/policies", get(policies::page))
        .route("/policies/set", post(policies::set))
        .route("/policies/unset", post(policies::unset))
        .route("/network", get(network::page).post(network::set))
        .route("/cluster", get(cluster::page))
        .route("/cluster/credentials", post(cluster::credentials))
        .route("/cluster/remove", post(cluster::remove))
        .route("/vips/add", post(vips::add))
        .route("/vips/move", post(vips::move_to))
        .route("/vips/remove", post(vips::remove))
        .route("/trace", get(trace::page))
        .route("/audit", get(audit::page))
        .route("/admins", get(admins::page))
        .route("/admins/add", post(admins::add))
        .route("/admins/remove", post(admins::remove))
        .route("/admins/role", post(admins::role))
        .route("/tokens/create", post(admins::token_create))
        .route("/tokens/revoke", post(admins::token_revoke))
        .fallback(not_found)
}

/// A page that says no (CSRF failure, missing role).
/// A form whose CSRF field is not the session's token.
pub fn csrf_refused() -> Response {
    forbidden(
        "The form was stale or did not come from this site (CSRF check failed). Reload the page and try again.",
    )
}

pub fn forbidden(msg: &str) -> Response {
    let body = html! { p { a href="/" { "Back" } } };
    let markup = page("", "Not allowed", "", None, Some(Err(msg)), body);
    (StatusCode::FORBIDDEN, markup).into_response()
}

async fn not_found(State(app): State<App>, mut parts: Parts) -> Response {
    // Unauthenticated requests learn nothing, not even which paths exist.
    if let Err(r) = Admin::from_request_parts(&mut parts, &app).await {
        return r;
    }
    let body = html! { p { a href="/" { "Dashboard" } } };
    let notice = Some(Err("There is no such page."));
    (
        StatusCode::NOT_FOUND,
        page("", "Not found", "", None, notice, body),
    )
        .into_response()
}

/// The outcome of the last form, carried by the redirect's query.
#[derive(Debug, Default, Deserialize)]
pub struct Flash {
    ok: Option<String>,
    error: Option<String>,
}

impl Flash {
    pub fn ok(msg: String) -> Flash {
        Flash {
            ok: Some(msg),
            error: None,
        }
    }

    pub fn notice(&self) -> Notice<'_> {
        match (&self.ok, &self.error) {
            (_, Some(e)) => Some(Err(e.as_str())),
            (Some(o), None) => Some(Ok(o.as_str())),
            _ => None,
        }
    }
}

/// A signed-in page: the frame with the navigation around `body`.
fn render(
    app: &App,
    a: &Admin,
    title: &str,
    active: &str,
    flash: &Flash,
    body: Markup,
) -> Response {
    let (node, viewer) = (app.backend().node_name(), Viewer::of(a));
    page(&node, title, active, Some(&viewer), flash.notice(), body).into_response()
}

/// A page before login (setup, login): no navigation.
fn render_anonymous(app: &App, title: &str, notice: Notice<'_>, body: Markup) -> Markup {
    page(&app.backend().node_name(), title, "", None, notice, body)
}

/// The usual form: its CSRF token checked, one request, back to `to` with `done` or the
/// request's error.
async fn act<R: Request>(
    app: &App,
    a: &Admin,
    csrf: &str,
    req: R,
    to: &str,
    done: String,
) -> Response {
    if !a.csrf_ok(csrf) {
        return csrf_refused();
    }
    perform(app, a, req, to, done).await
}

/// One request of a form whose CSRF token was checked: back to `to` with `done` or the
/// request's error.
async fn perform<R: Request>(app: &App, a: &Admin, req: R, to: &str, done: String) -> Response {
    let r = app.call(&a.actor, req).await;
    back(to, r.map(|_| done).map_err(|e| e.message))
}

/// Post/redirect/get: back to `to` with the outcome as a notice.
fn back(to: &str, r: Result<String, String>) -> Response {
    let q = match r {
        Ok(m) => "ok=".to_owned() + &url(&m),
        Err(e) => "error=".to_owned() + &url(&e),
    };
    Redirect::to(&format!("{to}?{q}")).into_response()
}

/// A form with nothing but its CSRF token.
#[derive(Debug, Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

// Before a session exists, forms are protected by a double-submit cookie (a random value
// in a cookie and in the form; a foreign site can set neither).

/// The pre-session form token: the cookie's value, or a new one to set.
fn form_token(headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match cookie(headers, FORM_COOKIE) {
        Some(v) if v.len() == 64 => (v.to_owned(), None),
        _ => {
            let t = auth::random_token().unwrap_or_default();
            let c = set_cookie(FORM_COOKIE, &t, None);
            (t, Some(c))
        }
    }
}

fn check_form_token(headers: &HeaderMap, got: &str) -> Result<(), Response> {
    match cookie(headers, FORM_COOKIE) {
        Some(c) if !got.is_empty() && auth::same(c, got) => Ok(()),
        _ => Err(forbidden(STALE_FORM)),
    }
}

/// A page that sets the pre-session form cookie when it is new.
fn with_cookie(body: Markup, c: Option<HeaderValue>) -> Response {
    let mut r = body.into_response();
    if let Some(c) = c {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    r
}

/// A multipart form's text fields and files by field name (bounded by the body limit).
#[derive(Debug, Default)]
struct Upload(HashMap<String, Vec<u8>>);

impl Upload {
    async fn read(mut m: Multipart) -> Result<Upload, String> {
        let mut out = HashMap::new();
        while let Some(field) = m
            .next_field()
            .await
            .map_err(|e| format!("bad upload: {e}"))?
        {
            let name = field.name().unwrap_or_default().to_owned();
            let data = field
                .bytes()
                .await
                .map_err(|e| format!("bad upload: {e}"))?;
            out.insert(name, data.to_vec());
        }
        Ok(Upload(out))
    }

    /// A text field, trimmed.
    fn text(&self, name: &str) -> String {
        self.0
            .get(name)
            .map(|v| String::from_utf8_lossy(v).trim().to_owned())
            .unwrap_or_default()
    }

    /// A file's bytes.
    fn file(&self, name: &str) -> &[u8] {
        self.0.get(name).map(Vec::as_slice).unwrap_or_default()
    }

    /// A file as base64, as the import requests take it.
    fn base64(&self, name: &str) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(self.file(name))
    }
}

/// A file download (`Content-Disposition: attachment`).
fn download(name: &str, mime: &'static str, body: String) -> Response {
    let disposition = format!(
        "attachment; filename=\"{}\"",
        name.replace(['"', '\\', '\r', '\n'], "_")
    );
    let mut r = ([(header::CONTENT_TYPE, mime)], body).into_response();
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flash_prefers_the_error() {
        let f = Flash {
            ok: Some("fine".into()),
            error: Some("broken".into()),
        };
        assert_eq!(f.notice(), Some(Err("broken")));
        assert_eq!(Flash::ok("fine".into()).notice(), Some(Ok("fine")));
        assert_eq!(Flash::default().notice(), None);
    }

    #[test]
    fn back_redirects_with_the_notice_encoded() {
        let r = back("/users", Err("a & b <c>".into()));
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let to = r
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok());
        assert_eq!(to, Some("/users?error=a%20%26%20b%20%3Cc%3E"));
    }

    #[test]
    fn downloads_keep_the_name_harmless() {
        let r = download("a\"b\r\n.pem", "application/x-pem-file", "PEM".into());
        let d = r
            .headers()
            .get(header::CONTENT_DISPOSITION)
            .and_then(|v| v.to_str().ok());
        assert_eq!(d, Some("attachment; filename=\"a_b__.pem\""));
    }

    #[tokio::test]
    async fn forbidden_pages_escape_their_message() {
        let r = forbidden("<b>no</b>");
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let mime = r
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        assert_eq!(mime, Some("text/html; charset=utf-8"));
        let body = axum::body::to_bytes(r.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        let html = String::from_utf8_lossy(&body);
        assert!(
            html.contains("<p class=\"notice error\" id=\"notice\">&lt;b&gt;no&lt;/b&gt;</p>"),
            "{html}"
        );
        assert!(!html.contains("<nav"), "{html}");
    }
}
