//! Login (name, password, authenticator code; throttled and locked out after repeated
//! failures) and logout.

use std::net::IpAddr;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::csrf_field;
use super::{
    CsrfOnly, Flash, back, check_form_token, csrf_refused, form_token, render_anonymous,
    with_cookie,
};
use crate::App;
use crate::app::{Admin, SESSION_COOKIE, client_ip, cookie, set_cookie};
use crate::auth::{self, Throttled};

pub async fn page(State(app): State<App>, headers: HeaderMap, Query(f): Query<Flash>) -> Response {
    if !app.backend().setup_done() {
        return Redirect::to("/setup").into_response();
    }
    let (token, cookie) = form_token(&headers);
    with_cookie(
        render_anonymous(&app, "Log in", f.notice(), form(&token)),
        cookie,
    )
}

fn form(csrf: &str) -> Markup {
    html! {
        section.login {
            form method="post" action="/login" #login {
                (csrf_field(csrf))
                label for="name" { "Name" }
                input type="text" #name name="name" required autocomplete="username" autofocus;
                label for="password" { "Password" }
                input type="password" #password name="password" required
                    autocomplete="current-password";
                label for="code" { "Authenticator code" }
                input type="text" #code name="code" required inputmode="numeric" pattern="[0-9]{6}"
                    autocomplete="one-time-code";
                button type="submit" #login-submit { "Log in" }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    name: String,
    password: String,
    code: String,
}

pub async fn login(State(app): State<App>, parts: Parts, Form(f): Form<LoginForm>) -> Response {
    if let Err(r) = check_form_token(&parts.headers, &f.csrf) {
        return r;
    }
    let ip = client_ip(&parts);
    if let Err(r) = admit(&app, &f.name, ip) {
        return r;
    }
    let guard = &app.0.guard;
    let checked = verify(&app, &f).await;
    let Some(credential) = checked
        .filter(|(_, step)| guard.succeeded(&f.name, *step))
        .map(|c| c.0)
    else {
        return failed(&app, &f.name, ip);
    };
    let Ok(session) = app.0.sessions.create(&f.name, &credential) else {
        return back("/login", Err("The system random generator failed.".into()));
    };
    tracing::info!(account = %f.name, %ip, "admin logged in");
    let mut r = Redirect::to("/").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &session, None),
    );
    r
}

/// The throttle: a locked account, or too many attempts from one address, is refused
/// before the password is looked at.
fn admit(app: &App, name: &str, ip: IpAddr) -> Result<(), Response> {
    match app.0.guard.admit(name, ip) {
        Ok(()) => Ok(()),
        Err(Throttled::Locked(left)) => {
            tracing::warn!(account = %name, %ip, "login refused: account locked");
            let minutes = left.as_secs().div_ceil(60);
            Err(back(
                "/login",
                Err(format!(
                    "This account is locked for {minutes} more minutes after repeated failed logins."
                )),
            ))
        }
        Err(Throttled::TooManyAttempts) => {
            tracing::warn!(%ip, "login refused: too many attempts from this address");
            let mut r = back(
                "/login",
                Err("Too many login attempts from your address; wait a few minutes.".into()),
            );
            *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            r.headers_mut().remove(header::LOCATION);
            Err(r)
        }
    }
}

/// The password and the code, checked by the daemon (which alone holds the TOTP secrets):
/// the credential fingerprint and the TOTP step they matched.
async fn verify(app: &App, f: &LoginForm) -> Option<(String, u64)> {
    let ok = app
        .backend()
        .verify_login(&f.name, &f.password, &f.code)
        .await?;
    Some((ok.credential, ok.step))
}

/// A failed login: counted towards the lockout, and said without telling which part was
/// wrong.
fn failed(app: &App, name: &str, ip: IpAddr) -> Response {
    let locked = app.0.guard.failed(name);
    tracing::warn!(account = %name, %ip, locked, "failed login");
    let msg = if locked {
        let minutes = auth::LOCK_FOR.as_secs() / 60;
        format!("Wrong name, password or code. The account is now locked for {minutes} minutes.")
    } else {
        "Wrong name, password or code.".to_owned()
    };
    back("/login", Err(msg))
}

pub async fn logout(
    State(app): State<App>,
    a: Admin,
    headers: HeaderMap,
    Form(f): Form<CsrfOnly>,
) -> Response {
    if !a.csrf_ok(&f.csrf) {
        return csrf_refused();
    }
    if let Some(c) = cookie(&headers, SESSION_COOKIE) {
        app.0.sessions.remove(c);
    }
    let mut r = back("/login", Ok("Logged out.".into()));
    r.headers_mut()
        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", Some(0)));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_form_keeps_its_fields() {
        let out = form("\"tok").into_string();
        for needle in [
            "action=\"/login\"",
            "id=\"login\"",
            "name=\"name\"",
            "name=\"password\"",
            "name=\"code\"",
            "pattern=\"[0-9]{6}\"",
            "id=\"login-submit\"",
            "Authenticator code",
            "value=\"&quot;tok\"",
        ] {
            assert!(out.contains(needle), "{needle}: {out}");
        }
    }
}
