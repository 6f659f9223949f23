//! The GUI's pages: first-boot setup, login, and the administration pages. Every page is
//! rendered on the server; forms post back and redirect (post/redirect/get) with a notice.
//! Every form carries a CSRF token: the session's, or before login a double-submit cookie.

use axum::Form;
use axum::Router;
use axum::extract::{FromRequestParts as _, Multipart, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;

use crate::App;
use crate::app::{Admin, FORM_COOKIE, SESSION_COOKIE, client_ip, cookie, set_cookie};
use crate::auth::{self, Throttled};
use crate::command::{Actor, Command, Role, Via};
use crate::html::{Viewer, button, esc, page, table, time, url};

const CSS: &str = include_str!("../static/app.css");
const JS: &str = include_str!("../static/app.js");

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
        .route("/setup", get(setup_page))
        .route("/setup/create", post(setup_create))
        .route("/setup/join", post(setup_join))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/", get(dashboard))
        .route("/users", get(users))
        .route("/users/enrol", post(user_enrol))
        .route("/users/remove", post(user_remove))
        .route("/users/import", post(user_import))
        .route("/users/{address}/certificate.pem", get(user_cert))
        .route("/users/{address}/openpgp.asc", get(user_pgp))
        .route("/partners", get(partners))
        .route("/partners/import", post(partner_import))
        .route("/trust/add", post(trust_add))
        .route("/ca.pem", get(ca_pem))
        .route("/policies", get(policies))
        .route("/policies/set", post(policy_set))
        .route("/policies/unset", post(policy_unset))
        .route("/network", get(network).post(network_set))
        .route("/cluster", get(cluster))
        .route("/cluster/credentials", post(credentials))
        .route("/cluster/remove", post(cluster_remove))
        .route("/vips/add", post(vip_add))
        .route("/vips/move", post(vip_move))
        .route("/vips/remove", post(vip_remove))
        .route("/trace", get(trace))
        .route("/audit", get(audit))
        .route("/admins", get(admins))
        .route("/admins/add", post(admin_add))
        .route("/admins/remove", post(admin_remove))
        .route("/tokens/create", post(token_create))
        .route("/tokens/revoke", post(token_revoke))
        .fallback(not_found)
}

/// A page that says no (CSRF failure, missing role).
pub fn forbidden(msg: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        Html(page(
            "",
            "Not allowed",
            "",
            None,
            Some(Err(msg)),
            "<p><a href=\"/\">Back</a></p>",
        )),
    )
        .into_response()
}

async fn not_found(State(app): State<App>, parts: Parts) -> Response {
    let mut parts = parts;
    // Unauthenticated requests learn nothing, not even which paths exist.
    if let Err(r) = Admin::from_request_parts(&mut parts, &app).await {
        return r;
    }
    (
        StatusCode::NOT_FOUND,
        Html(page(
            "",
            "Not found",
            "",
            None,
            Some(Err("There is no such page.")),
            "<p><a href=\"/\">Dashboard</a></p>",
        )),
    )
        .into_response()
}

#[derive(Debug, Default, Deserialize)]
struct Flash {
    ok: Option<String>,
    error: Option<String>,
}

impl Flash {
    fn notice(&self) -> Option<Result<&str, &str>> {
        match (&self.ok, &self.error) {
            (_, Some(e)) => Some(Err(e.as_str())),
            (Some(o), None) => Some(Ok(o.as_str())),
            _ => None,
        }
    }
}

fn viewer(a: &Admin) -> Viewer<'_> {
    Viewer {
        name: &a.actor.name,
        role: a.actor.role.as_str(),
        csrf: &a.csrf,
    }
}

fn render(app: &App, a: &Admin, title: &str, active: &str, flash: &Flash, body: &str) -> Response {
    Html(page(
        &app.backend().node_name(),
        title,
        active,
        Some(viewer(a)),
        flash.notice(),
        body,
    ))
    .into_response()
}

/// Runs a command for the signed-in admin; its data or its error message.
async fn run(app: &App, a: &Admin, cmd: Command) -> Result<Value, String> {
    let r = app.run(&a.actor, cmd).await;
    if r.ok {
        Ok(r.data)
    } else {
        Err(r.error.unwrap_or_else(|| "failed".into()))
    }
}

/// The usual form: its CSRF token checked, one command, back to `to` with `done` or the
/// command's error.
async fn act(app: &App, a: &Admin, csrf: &str, cmd: Command, to: &str, done: String) -> Response {
    if let Err(r) = a.check(csrf) {
        return r;
    }
    back(to, run(app, a, cmd).await.map(|_| done))
}

/// A form whose command hands out a secret (a new administrator's TOTP secret, a new API
/// token): shown once, above the administrators page.
async fn act_shown(
    app: &App,
    a: &Admin,
    csrf: &str,
    cmd: Command,
    secret: impl FnOnce(&Value) -> String,
    done: String,
) -> Response {
    if let Err(r) = a.check(csrf) {
        return r;
    }
    match run(app, a, cmd).await {
        Ok(d) => {
            let body = secret(&d) + &admins_body(app, a).await;
            let flash = Flash {
                ok: Some(done),
                error: None,
            };
            render(app, a, "Administrators", "/admins", &flash, &body)
        }
        Err(e) => back("/admins", Err(e)),
    }
}

/// Post/redirect/get: back to `to` with the outcome as a notice.
fn back(to: &str, r: Result<String, String>) -> Response {
    let q = match r {
        Ok(m) => format!("ok={}", url(&m)),
        Err(e) => format!("error={}", url(&e)),
    };
    Redirect::to(&format!("{to}?{q}")).into_response()
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn hidden_csrf(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(csrf)
    )
}

// ---------------------------------------------------------------------------------------
// First boot and login: before a session exists, forms are protected by a double-submit
// cookie (a random value in a cookie and in the form; a foreign site can set neither).

/// The pre-session form token: the cookie's value, or a new one to set.
fn form_token(headers: &HeaderMap) -> (String, Option<header::HeaderValue>) {
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
        _ => Err(forbidden(
            "The form was stale or did not come from this site (CSRF check failed). Reload the page and try again.",
        )),
    }
}

fn with_cookie(body: String, c: Option<header::HeaderValue>) -> Response {
    let mut r = Html(body).into_response();
    if let Some(c) = c {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    r
}

async fn setup_page(
    State(app): State<App>,
    headers: HeaderMap,
    Query(f): Query<Flash>,
) -> Response {
    if app.backend().setup_done() {
        return Redirect::to("/login").into_response();
    }
    let (t, c) = form_token(&headers);
    let body = format!(
        "<p>This node is not set up yet. Create a new cluster with it, or join an existing cluster.</p><div class=\"grid\">\
<section><h2>Create a new cluster</h2><form method=\"post\" action=\"/setup/create\" id=\"create\">{csrf}\
<label for=\"admin\">Administrator name</label><input type=\"text\" id=\"admin\" name=\"admin\" value=\"admin\" required autocomplete=\"username\">\
<label for=\"password\">Password (at least {min} characters)</label><input type=\"password\" id=\"password\" name=\"password\" required minlength=\"{min}\" autocomplete=\"new-password\">\
<label for=\"password2\">Password again</label><input type=\"password\" id=\"password2\" name=\"password2\" required autocomplete=\"new-password\">\
<label for=\"domains\">Internal mail domains (comma separated)</label><input type=\"text\" id=\"domains\" name=\"domains\" placeholder=\"example.com, example.org\">\
<label for=\"downstream\">Downstream MTA (host:port)</label><input type=\"text\" id=\"downstream\" name=\"downstream\" placeholder=\"mail.example.com:25\">\
<button type=\"submit\" id=\"create-submit\">Create cluster</button></form></section>\
<section><h2>Join an existing cluster</h2><form method=\"post\" action=\"/setup/join\" enctype=\"multipart/form-data\" id=\"join\">{csrf}\
<label for=\"credentials\">Credentials file (exported on a member: Cluster → Export credentials)</label><input type=\"file\" id=\"credentials\" name=\"credentials\" required>\
<label for=\"peer\">Address of a member's cluster port (host:port)</label><input type=\"text\" id=\"peer\" name=\"peer\" required placeholder=\"192.0.2.10:7946\">\
<button type=\"submit\" id=\"join-submit\">Join cluster</button></form></section></div>",
        csrf = hidden_csrf(&t),
        min = auth::MIN_PASSWORD,
    );
    with_cookie(
        page(
            &app.backend().node_name(),
            "Set up this node",
            "",
            None,
            f.notice(),
            &body,
        ),
        c,
    )
}

#[derive(Debug, Deserialize)]
struct CreateForm {
    #[serde(default)]
    csrf: String,
    admin: String,
    password: String,
    password2: String,
    #[serde(default)]
    domains: String,
    #[serde(default)]
    downstream: String,
}

async fn setup_create(
    State(app): State<App>,
    headers: HeaderMap,
    Form(f): Form<CreateForm>,
) -> Response {
    if let Err(r) = check_form_token(&headers, &f.csrf) {
        return r;
    }
    if app.backend().setup_done() {
        return Redirect::to("/login").into_response();
    }
    if f.password != f.password2 {
        return back("/setup", Err("The two passwords differ.".into()));
    }
    let domains = f
        .domains
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
        .collect();
    let actor = Actor {
        name: f.admin.clone(),
        role: Role::Admin,
        via: Via::Gui,
    };
    let r = app
        .run(
            &actor,
            Command::Setup {
                admin: f.admin.clone(),
                password: f.password,
                domains,
                downstream: f.downstream.trim().to_owned(),
            },
        )
        .await;
    if !r.ok {
        return back("/setup", Err(r.error.unwrap_or_default()));
    }
    let body = format!(
        "<section class=\"secret\"><p>The cluster is set up. Add this second factor to an authenticator app now: it is shown only once.</p>\
<p>Account: <b>{}</b></p><p>Secret: <code id=\"totp-secret\">{}</code></p><p>Or import: <code id=\"totp-uri\">{}</code></p></section>\
<p><a href=\"/login\" id=\"to-login\">Continue to the login</a></p>",
        esc(&f.admin),
        esc(&s(&r.data["totp_secret"])),
        esc(&s(&r.data["totp_uri"])),
    );
    Html(page(
        &app.backend().node_name(),
        "Cluster created",
        "",
        None,
        Some(Ok("Cluster created.")),
        &body,
    ))
    .into_response()
}

/// Reads a multipart form's text fields and files (by field name), bounded by the body limit.
async fn fields(mut m: Multipart) -> Result<std::collections::HashMap<String, Vec<u8>>, String> {
    let mut out = std::collections::HashMap::new();
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
    Ok(out)
}

fn text(f: &std::collections::HashMap<String, Vec<u8>>, name: &str) -> String {
    f.get(name)
        .map(|v| String::from_utf8_lossy(v).trim().to_owned())
        .unwrap_or_default()
}

async fn setup_join(State(app): State<App>, headers: HeaderMap, m: Multipart) -> Response {
    let f = match fields(m).await {
        Ok(f) => f,
        Err(e) => return back("/setup", Err(e)),
    };
    if let Err(r) = check_form_token(&headers, &text(&f, "csrf")) {
        return r;
    }
    if app.backend().setup_done() {
        return Redirect::to("/login").into_response();
    }
    let credentials =
        String::from_utf8_lossy(f.get("credentials").map(Vec::as_slice).unwrap_or_default())
            .into_owned();
    let actor = Actor {
        name: "setup".into(),
        role: Role::Admin,
        via: Via::Gui,
    };
    let r = app
        .run(
            &actor,
            Command::ClusterJoin {
                credentials,
                peer: text(&f, "peer"),
            },
        )
        .await;
    if !r.ok {
        return back("/setup", Err(r.error.unwrap_or_default()));
    }
    let body = format!(
        "<p>This node is now node <b id=\"joined-node\">{}</b> of cluster <code>{}</code>. Log in with an administrator account of that cluster.</p><p><a href=\"/login\" id=\"to-login\">Continue to the login</a></p>",
        esc(&s(&r.data["node_id"])),
        esc(&s(&r.data["cluster_id"])),
    );
    Html(page(
        &app.backend().node_name(),
        "Joined the cluster",
        "",
        None,
        Some(Ok("Joined.")),
        &body,
    ))
    .into_response()
}

async fn login_page(
    State(app): State<App>,
    headers: HeaderMap,
    Query(f): Query<Flash>,
) -> Response {
    if !app.backend().setup_done() {
        return Redirect::to("/setup").into_response();
    }
    let (t, c) = form_token(&headers);
    let body = format!(
        "<section class=\"login\"><form method=\"post\" action=\"/login\" id=\"login\">{}\
<label for=\"name\">Name</label><input type=\"text\" id=\"name\" name=\"name\" required autocomplete=\"username\" autofocus>\
<label for=\"password\">Password</label><input type=\"password\" id=\"password\" name=\"password\" required autocomplete=\"current-password\">\
<label for=\"code\">Authenticator code</label><input type=\"text\" id=\"code\" name=\"code\" required inputmode=\"numeric\" pattern=\"[0-9]{{6}}\" autocomplete=\"one-time-code\">\
<button type=\"submit\" id=\"login-submit\">Log in</button></form></section>",
        hidden_csrf(&t)
    );
    with_cookie(
        page(
            &app.backend().node_name(),
            "Log in",
            "",
            None,
            f.notice(),
            &body,
        ),
        c,
    )
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    name: String,
    password: String,
    code: String,
}

async fn login(State(app): State<App>, parts: Parts, Form(f): Form<LoginForm>) -> Response {
    if let Err(r) = check_form_token(&parts.headers, &f.csrf) {
        return r;
    }
    let ip = client_ip(&parts);
    let inner = &app.0;
    match inner.guard.admit(&f.name, ip) {
        Ok(()) => {}
        Err(Throttled::Locked(left)) => {
            tracing::warn!(account = %f.name, %ip, "login refused: account locked");
            return back(
                "/login",
                Err(format!(
                    "This account is locked for {} more minutes after repeated failed logins.",
                    left.as_secs().div_ceil(60)
                )),
            );
        }
        Err(Throttled::TooManyAttempts) => {
            tracing::warn!(%ip, "login refused: too many attempts from this address");
            let mut r = back(
                "/login",
                Err("Too many login attempts from your address; wait a few minutes.".into()),
            );
            *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            r.headers_mut().remove(header::LOCATION);
            return r;
        }
    }
    let login = inner.backend.login(&f.name);
    let (password, code) = (f.password.clone(), f.code.clone());
    // argon2 is deliberately slow: off the async threads.
    let checked = tokio::task::spawn_blocking(move || {
        let login = login?;
        if !auth::verify_password(&login.password_hash, &password) {
            return None;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        crate::totp::verify(&login.totp_secret, &code, now).map(|step| (login.role, step))
    })
    .await
    .ok()
    .flatten();
    let Some((role, _)) = checked.filter(|(_, step)| inner.guard.succeeded(&f.name, *step)) else {
        let locked = inner.guard.failed(&f.name);
        tracing::warn!(account = %f.name, %ip, locked, "failed login");
        let msg = if locked {
            format!(
                "Wrong name, password or code. The account is now locked for {} minutes.",
                auth::LOCK_FOR.as_secs() / 60
            )
        } else {
            "Wrong name, password or code.".to_owned()
        };
        return back("/login", Err(msg));
    };
    let Ok(session) = inner.sessions.create(&f.name, role) else {
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

#[derive(Debug, Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(app): State<App>,
    a: Admin,
    headers: HeaderMap,
    Form(f): Form<CsrfOnly>,
) -> Response {
    if let Err(r) = a.check(&f.csrf) {
        return r;
    }
    if let Some(c) = cookie(&headers, SESSION_COOKIE) {
        app.0.sessions.remove(c);
    }
    let mut r = back("/login", Ok("Logged out.".into()));
    r.headers_mut()
        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", Some(0)));
    r
}

// ---------------------------------------------------------------------------------------
// Dashboard

async fn dashboard(State(app): State<App>, a: Admin, Query(f): Query<Flash>) -> Response {
    let status = run(&app, &a, Command::ClusterStatus).await;
    let vips = run(&app, &a, Command::VipList).await.unwrap_or(Value::Null);
    let stats = run(&app, &a, Command::Stats).await.unwrap_or(Value::Null);
    let trace = run(&app, &a, Command::TraceList { limit: 200 })
        .await
        .unwrap_or(Value::Null);
    let mut body = String::new();
    body.push_str(&format!(
        "<div class=\"counters\"><div class=\"counter\">Delivered<b id=\"count-delivered\">{}</b></div><div class=\"counter\">Refused / failed<b id=\"count-refused\">{}</b></div><div class=\"counter\">SMTP sessions<b id=\"count-sessions\">{}</b></div></div>",
        esc(&s(&stats["delivered"])),
        esc(&s(&stats["refused"])),
        esc(&s(&stats["sessions"]))
    ));
    body.push_str(
        "<h2>Throughput (messages per second, this node)</h2><canvas id=\"throughput\"></canvas>",
    );
    body.push_str("<div class=\"grid\"><section><h2>Cluster</h2>");
    match &status {
        Ok(st) => body.push_str(&members_table(st, None)),
        Err(e) => body.push_str(&format!("<p class=\"notice error\">{}</p>", esc(e))),
    }
    body.push_str("</section><section><h2>Virtual IPs</h2>");
    body.push_str(&vips_table(&vips, None));
    body.push_str("</section></div>");
    let hw = run(&app, &a, Command::Hardware)
        .await
        .unwrap_or(Value::Null);
    body.push_str(&hardware_section(&hw));
    let sys = run(&app, &a, Command::System).await.unwrap_or(Value::Null);
    body.push_str(&system_section(&sys));
    body.push_str("<h2>Last errors</h2>");
    let errors: Vec<Vec<String>> = trace
        .as_array()
        .map(|v| {
            v.iter()
                .filter(|t| t["code"].as_u64().unwrap_or(0) >= 400)
                .take(10)
                .map(|t| {
                    vec![
                        esc(&time(t["time"].as_u64().unwrap_or(0))),
                        esc(&s(&t["sender"])),
                        esc(&s(&t["reply"])),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    body.push_str(&table(
        "errors",
        &["Time", "Sender", "Reply"],
        &errors,
        "No errors recently.",
    ));
    render(&app, &a, "Dashboard", "/", &f, &body)
}

/// The dashboard's system panel: the root slot and image version this node runs, and what
/// became of the last update (POST /api/v1/system/update, posternctl update).
fn system_section(sys: &Value) -> String {
    let mut out = String::from("<section><h2>System</h2>");
    match sys["slot"].as_str() {
        Some(slot) => out.push_str(&format!(
            "<p>Root slot <strong id=\"system-slot\">{}</strong>, version <span id=\"system-version\">{}</span></p>",
            esc(slot),
            esc(&s(&sys["version"]))
        )),
        None => out.push_str(&format!(
            "<p class=\"hint\">{}</p>",
            esc(&s(&sys["appliance"]))
        )),
    }
    let last = &sys["last_update"];
    if last.is_object() {
        let badge = match last["state"].as_str() {
            Some("running" | "installed" | "staged" | "installing") => "good",
            _ => "bad",
        };
        out.push_str(&format!(
            "<p>Last update: <span class=\"badge {badge}\" id=\"update-state\">{}</span> {} ({})</p>",
            esc(&s(&last["state"])),
            esc(&s(&last["message"])),
            esc(&time(last["at"].as_u64().unwrap_or(0)))
        ));
    }
    out.push_str("</section>");
    out
}

/// The dashboard's hardware panel: this node's overall state and its problems, and every
/// node's summary from the cluster state.
fn hardware_section(hw: &Value) -> String {
    let mut out = String::from("<section><h2>Hardware</h2>");
    let report = &hw["report"];
    if report.is_null() {
        out.push_str("<p class=\"hint\">No hardware readings yet.</p></section>");
        return out;
    }
    let overall = s(&report["overall"]);
    let badge = match overall.as_str() {
        "ok" => "good",
        _ => "bad",
    };
    out.push_str(&format!(
        "<p>This node ({}): <span class=\"badge {badge}\" id=\"hardware-state\">{}</span></p>",
        esc(&s(&report["model"])),
        esc(&overall)
    ));
    let rows: Vec<Vec<String>> = report["components"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter(|c| c["state"] != "ok")
                .map(|c| {
                    vec![
                        esc(&s(&c["kind"])),
                        esc(&s(&c["name"])),
                        esc(&s(&c["state"])),
                        esc(&s(&c["detail"])),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    out.push_str(&table(
        "hardware-problems",
        &["Kind", "Component", "State", "Detail"],
        &rows,
        "All components in order.",
    ));
    let nodes: Vec<Vec<String>> = hw["cluster"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(id, r)| {
                    let problems: Vec<String> = r["problems"]
                        .as_array()
                        .map(|p| p.iter().map(|x| esc(&s(x))).collect())
                        .unwrap_or_default();
                    vec![
                        esc(id),
                        esc(&s(&r["model"])),
                        esc(&s(&r["overall"])),
                        problems.join("<br>"),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    out.push_str(&table(
        "hardware-nodes",
        &["Node", "Model", "Hardware", "Problems"],
        &nodes,
        "",
    ));
    out.push_str("</section>");
    out
}

fn members_table(st: &Value, csrf: Option<&str>) -> String {
    let leader = st["leader"].as_u64().unwrap_or(0);
    let me = st["node_id"].as_u64().unwrap_or(0);
    let voters: Vec<u64> = st["voters"]
        .as_array()
        .map(|v| v.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let rows: Vec<Vec<String>> = st["members"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(id, addr)| {
                    let n: u64 = id.parse().unwrap_or(0);
                    let mut role = if n == leader {
                        "<span class=\"badge good\">leader</span>".to_owned()
                    } else if voters.contains(&n) {
                        "<span class=\"badge\">voter</span>".to_owned()
                    } else {
                        "<span class=\"badge\">learner</span>".to_owned()
                    };
                    if n == me {
                        role.push_str(" <span class=\"badge\">this node</span>");
                    }
                    let lag = st["lag"].get(id).map(s).unwrap_or_default();
                    let mut row = vec![esc(id), esc(&s(addr)), role, esc(&lag)];
                    if let Some(c) = csrf {
                        row.push(if n == me {
                            String::new()
                        } else {
                            button(
                                "/cluster/remove",
                                c,
                                &[("id", id)],
                                "Remove",
                                "small danger",
                            )
                        });
                    }
                    row
                })
                .collect()
        })
        .unwrap_or_default();
    let mut head = vec!["Node", "Cluster address", "Role", "Lag (entries)"];
    if csrf.is_some() {
        head.push("");
    }
    format!(
        "<p>Cluster <code id=\"cluster-id\">{}</code>, term {}, applied {}.</p>{}",
        esc(&s(&st["cluster_id"])),
        esc(&s(&st["term"])),
        esc(&s(&st["applied"])),
        table("members", &head, &rows, "No members.")
    )
}

fn vips_table(vips: &Value, csrf: Option<&str>) -> String {
    let rows: Vec<Vec<String>> = vips
        .as_array()
        .map(|v| {
            v.iter()
                .map(|x| {
                    let holder = match x["holder"].as_u64() {
                        Some(n) => format!("node {n}"),
                        None => "<span class=\"badge bad\">nobody</span>".into(),
                    };
                    let mut row = vec![
                        format!("<code>{}</code>", esc(&s(&x["address"]))),
                        esc(&s(&x["interface"])),
                        holder,
                        esc(&s(&x["lease_ms_left"])),
                    ];
                    if let Some(c) = csrf {
                        row.push(button(
                            "/vips/remove",
                            c,
                            &[("address", &s(&x["address"]))],
                            "Remove",
                            "small danger",
                        ));
                    }
                    row
                })
                .collect()
        })
        .unwrap_or_default();
    let mut head = vec!["Address", "Interface", "Holder", "Lease left (ms)"];
    if csrf.is_some() {
        head.push("");
    }
    table("vips", &head, &rows, "No virtual IPs configured.")
}

// ---------------------------------------------------------------------------------------
// Users

async fn users(State(app): State<App>, a: Admin, Query(f): Query<Flash>) -> Response {
    let list = run(&app, &a, Command::UserList)
        .await
        .unwrap_or(Value::Null);
    let rows: Vec<Vec<String>> = list
        .as_array()
        .map(|v| {
            v.iter()
                .map(|u| {
                    let addr = s(&u["address"]);
                    let smime: Vec<String> = u["smime"].as_array().map(|c| c.iter().map(|c| format!("<code>{}</code> until {}", esc(&s(&c["serial"])), esc(&time(c["not_after"].as_u64().unwrap_or(0))))).collect()).unwrap_or_default();
                    let pgp: Vec<String> = u["pgp"].as_array().map(|c| c.iter().map(|f| format!("<code>{}</code>", esc(&s(f)))).collect()).unwrap_or_default();
                    let mut actions = format!(
                        "<a href=\"/users/{u}/certificate.pem\" download>certificate</a> · <a href=\"/users/{u}/openpgp.asc\" download>OpenPGP key</a>",
                        u = url(&addr)
                    );
                    if a.can_change() {
                        actions.push(' ');
                        actions.push_str(&button("/users/remove", &a.csrf, &[("address", &addr)], "Remove", "small danger"));
                    }
                    vec![esc(&addr), smime.join("<br>"), pgp.join("<br>"), actions]
                })
                .collect()
        })
        .unwrap_or_default();
    let mut body = table(
        "users",
        &["Address", "S/MIME certificates", "OpenPGP keys", ""],
        &rows,
        "No users enrolled yet.",
    );
    if a.can_change() {
        body.push_str(&format!(
            "<div class=\"grid\"><section><h2>Enrol a user</h2><p class=\"hint\">Makes an S/MIME certificate (signed by the cluster's CA) and an OpenPGP key.</p><form method=\"post\" action=\"/users/enrol\" id=\"enrol\">{c}<label for=\"address\">Mail address</label><input type=\"text\" id=\"address\" name=\"address\" required placeholder=\"alice@example.com\"><button type=\"submit\" id=\"enrol-submit\">Enrol</button></form></section>\
<section><h2>Import a user's key</h2><form method=\"post\" action=\"/users/import\" enctype=\"multipart/form-data\" id=\"import\">{c}<label for=\"kind\">Kind</label><select id=\"kind\" name=\"kind\"><option value=\"pkcs12\">S/MIME identity (PKCS#12, .p12/.pfx)</option><option value=\"openpgp\">OpenPGP secret key</option></select><label for=\"file\">File</label><input type=\"file\" id=\"file\" name=\"file\" required><label for=\"p12password\">PKCS#12 password</label><input type=\"password\" id=\"p12password\" name=\"password\"><button type=\"submit\">Import</button></form></section></div>",
            c = hidden_csrf(&a.csrf)
        ));
    }
    render(&app, &a, "Users", "/users", &f, &body)
}

#[derive(Debug, Deserialize)]
struct AddressForm {
    #[serde(default)]
    csrf: String,
    address: String,
}

async fn user_enrol(State(app): State<App>, a: Admin, Form(f): Form<AddressForm>) -> Response {
    if let Err(r) = a.check(&f.csrf) {
        return r;
    }
    let address = f.address.trim().to_owned();
    let r = run(
        &app,
        &a,
        Command::UserEnrol {
            address: address.clone(),
        },
    )
    .await;
    back("/users", r.map(|_| format!("{address} enrolled.")))
}

async fn user_remove(State(app): State<App>, a: Admin, Form(f): Form<AddressForm>) -> Response {
    act(
        &app,
        &a,
        &f.csrf,
        Command::UserRemove {
            address: f.address.clone(),
        },
        "/users",
        format!("{} removed.", f.address),
    )
    .await
}

fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

async fn user_import(State(app): State<App>, a: Admin, m: Multipart) -> Response {
    let f = match fields(m).await {
        Ok(f) => f,
        Err(e) => return back("/users", Err(e)),
    };
    if let Err(r) = a.check(&text(&f, "csrf")) {
        return r;
    }
    let data = b64(f.get("file").map(Vec::as_slice).unwrap_or_default());
    let cmd = match text(&f, "kind").as_str() {
        "pkcs12" => Command::ImportPkcs12 {
            data,
            password: text(&f, "password"),
        },
        "openpgp" => Command::ImportPgpSecret { data },
        other => return back("/users", Err(format!("unknown kind of key {other:?}"))),
    };
    let r = run(&app, &a, cmd).await;
    back(
        "/users",
        r.map(|u| format!("Imported the key of {}.", s(&u["address"]))),
    )
}

fn download(name: &str, mime: &'static str, body: String) -> Response {
    let disposition = format!(
        "attachment; filename=\"{}\"",
        name.replace(['"', '\\', '\r', '\n'], "_")
    );
    let mut r = ([(header::CONTENT_TYPE, mime)], body).into_response();
    if let Ok(v) = header::HeaderValue::from_str(&disposition) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

async fn user_cert(State(app): State<App>, a: Admin, Path(address): Path<String>) -> Response {
    match run(
        &app,
        &a,
        Command::UserCert {
            address: address.clone(),
        },
    )
    .await
    {
        Ok(pem) => download(&format!("{address}.pem"), "application/x-pem-file", s(&pem)),
        Err(e) => back("/users", Err(e)),
    }
}

async fn user_pgp(State(app): State<App>, a: Admin, Path(address): Path<String>) -> Response {
    match run(
        &app,
        &a,
        Command::UserPgp {
            address: address.clone(),
        },
    )
    .await
    {
        Ok(k) => download(&format!("{address}.asc"), "application/pgp-keys", s(&k)),
        Err(e) => back("/users", Err(e)),
    }
}

// ---------------------------------------------------------------------------------------
// Partners, domains, trust

async fn partners(State(app): State<App>, a: Admin, Query(f): Query<Flash>) -> Response {
    let list = run(&app, &a, Command::PartnerList)
        .await
        .unwrap_or(Value::Null);
    let rows: Vec<Vec<String>> = list
        .as_array()
        .map(|v| {
            v.iter()
                .map(|p| {
                    let smime: Vec<String> = p["smime"]
                        .as_array()
                        .map(|c| {
                            c.iter()
                                .map(|c| {
                                    format!(
                                        "<code>{}</code> until {}",
                                        esc(&s(&c["serial"])),
                                        esc(&time(c["not_after"].as_u64().unwrap_or(0)))
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let pgp: Vec<String> = p["pgp"]
                        .as_array()
                        .map(|c| {
                            c.iter()
                                .map(|f| format!("<code>{}</code>", esc(&s(f))))
                                .collect()
                        })
                        .unwrap_or_default();
                    let gcm = if p["smime_gcm"].as_bool() == Some(true) {
                        "AES-GCM"
                    } else {
                        "AES-CBC"
                    };
                    vec![
                        esc(&s(&p["address"])),
                        smime.join("<br>"),
                        pgp.join("<br>"),
                        esc(gcm),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    let mut body = String::from(
        "<p class=\"hint\">Partner keys are harvested from signed mail automatically, or imported here. Domain keys of federated partner clusters appear here too.</p>",
    );
    body.push_str(&table(
        "partners",
        &[
            "Address or domain",
            "S/MIME certificates",
            "OpenPGP keys",
            "S/MIME content cipher",
        ],
        &rows,
        "No partner keys yet.",
    ));
    body.push_str("<p><a href=\"/ca.pem\" download>Download the cluster's CA certificate</a> (for partners' trust stores).</p>");
    if a.can_change() {
        body.push_str(&format!(
            "<div class=\"grid\"><section><h2>Import partner keys</h2><form method=\"post\" action=\"/partners/import\" enctype=\"multipart/form-data\">{c}<label for=\"pfile\">Certificates (PEM) or OpenPGP public keys</label><input type=\"file\" id=\"pfile\" name=\"file\" required><button type=\"submit\">Import</button></form></section>\
<section><h2>Add S/MIME trust anchors</h2><form method=\"post\" action=\"/trust/add\" enctype=\"multipart/form-data\">{c}<label for=\"tfile\">Root certificates (PEM)</label><input type=\"file\" id=\"tfile\" name=\"file\" required><button type=\"submit\">Trust</button></form></section></div>",
            c = hidden_csrf(&a.csrf)
        ));
    }
    render(&app, &a, "Partners & domains", "/partners", &f, &body)
}

async fn partner_import(State(app): State<App>, a: Admin, m: Multipart) -> Response {
    upload(
        app,
        a,
        m,
        "/partners",
        |data| Command::ImportPublic { data },
        |v| {
            format!(
                "Imported keys of {}.",
                v.as_array()
                    .map(|a| a.iter().map(s).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default()
            )
        },
    )
    .await
}

async fn trust_add(State(app): State<App>, a: Admin, m: Multipart) -> Response {
    upload(
        app,
        a,
        m,
        "/partners",
        |data| Command::TrustAdd { data },
        |v| format!("{} trust anchors added.", s(v)),
    )
    .await
}

async fn upload(
    app: App,
    a: Admin,
    m: Multipart,
    to: &str,
    cmd: impl FnOnce(String) -> Command,
    done: impl FnOnce(&Value) -> String,
) -> Response {
    let f = match fields(m).await {
        Ok(f) => f,
        Err(e) => return back(to, Err(e)),
    };
    if let Err(r) = a.check(&text(&f, "csrf")) {
        return r;
    }
    let data = b64(f.get("file").map(Vec::as_slice).unwrap_or_default());
    let r = run(&app, &a, cmd(data)).await;
    back(to, r.map(|v| done(&v)))
}

async fn ca_pem(State(app): State<App>, a: Admin) -> Response {
    match run(&app, &a, Command::CaCert).await {
        Ok(pem) => download("postern-ca.pem", "application/x-pem-file", s(&pem)),
        Err(e) => back("/partners", Err(e)),
    }
}

// ---------------------------------------------------------------------------------------
// Policies

/// The settings the GUI offers, with what they do.
const POLICY_SETTINGS: &[(&str, &str)] = &[
    (
        "crypto.internal_domains",
        "Internal mail domains, comma separated: mail from them is signed, mail to them decrypted.",
    ),
    (
        "crypto.always_encrypt",
        "true: outbound mail that cannot be encrypted is refused instead of sent signed only.",
    ),
    (
        "crypto.policy_header",
        "true: an X-Postern-Policy header explains what was done to each message.",
    ),
    (
        "crypto.subject_markers",
        "true: subject tags like [secure] or [sign] choose the treatment of a message.",
    ),
    (
        "relay.downstream",
        "The downstream MTA (host:port) mail goes to after the gateway.",
    ),
];

async fn policies(State(app): State<App>, a: Admin, Query(f): Query<Flash>) -> Response {
    let settings = run(&app, &a, Command::SettingList)
        .await
        .unwrap_or(Value::Null);
    let rows: Vec<Vec<String>> = POLICY_SETTINGS
        .iter()
        .map(|(k, what)| {
            let v = settings.get(*k).map(s);
            let shown = match &v {
                Some(v) => format!("<code>{}</code>", esc(v)),
                None => "<span class=\"hint\">configuration file</span>".into(),
            };
            let mut row = vec![format!("<code>{}</code>", esc(k)), shown, esc(what)];
            if a.can_change() {
                row.push(if v.is_some() {
                    button("/policies/unset", &a.csrf, &[("key", k)], "Reset", "small")
                } else {
                    String::new()
                });
            }
            row
        })
        .collect();
    let mut body = String::from(
        "<p class=\"hint\">Cluster-wide settings; they override each node's configuration file. Subject tags are the markers users put in the subject line to ask for a treatment.</p>",
    );
    body.push_str(&table(
        "settings",
        &["Setting", "Value", "Meaning", ""],
        &rows,
        "",
    ));
    if a.can_change() {
        let options: String = POLICY_SETTINGS
            .iter()
            .map(|(k, _)| format!("<option value=\"{k}\">{k}</option>"))
            .collect();
        body.push_str(&format!(
            "<section><h2>Change a setting</h2><form method=\"post\" action=\"/policies/set\" id=\"set\">{}<label for=\"key\">Setting</label><select id=\"key\" name=\"key\">{options}</select><label for=\"value\">Value</label><input type=\"text\" id=\"value\" name=\"value\" required><button type=\"submit\">Save</button></form></section>",
            hidden_csrf(&a.csrf)
        ));
    }
    render(&app, &a, "Policies", "/policies", &f, &body)
}

#[derive(Debug, Deserialize)]
struct SettingForm {
    #[serde(default)]
    csrf: String,
    key: String,
    #[serde(default)]
    value: String,
}

async fn policy_set(State(app): State<App>, a: Admin, Form(f): Form<SettingForm>) -> Response {
    act(
        &app,
        &a,
        &f.csrf,
        Command::SettingSet {
            key: f.key.clone(),
            value: f.value.trim().to_owned(),
        },
        "/policies",
        format!("{} saved.", f.key),
    )
    .await
}

async fn policy_unset(State(app): State<App>, a: Admin, Form(f): Form<SettingForm>) -> Response {
    act(
        &app,
        &a,
        &f.csrf,
        Command::SettingUnset { key: f.key.clone() },
        "/policies",
        format!("{} reset to the configuration file's value.", f.key),
    )
    .await
}

// ---------------------------------------------------------------------------------------
// Network (this node)

async fn network(State(app): State<App>, a: Admin, Query(f): Query<Flash>) -> Response {
    let n = run(&app, &a, Command::NetworkGet).await;
    let mut body = String::from(
        "<p class=\"hint\">This node's own network settings (each node has its own; they are kept on its data partition). No address: DHCP on every Ethernet interface. A change is applied at once: if the address changes, this page moves with it.</p>",
    );
    let n = match n {
        Ok(n) => n,
        Err(e) => {
            body.push_str(&format!("<p class=\"notice error\">{}</p>", esc(&e)));
            Value::Null
        }
    };
    let joined = |k: &str, sep: &str| -> String {
        n[k].as_array()
            .map(|a| a.iter().map(s).collect::<Vec<_>>().join(sep))
            .unwrap_or_default()
    };
    body.push_str(&format!(
        "<p>Now: <strong id=\"network-mode\">{}</strong></p>",
        if n["mode"] == "static" {
            "static addresses"
        } else {
            "DHCP"
        }
    ));
    let disabled = if a.can_change() { "" } else { " disabled" };
    body.push_str(&format!(
        "<section><h2>Settings</h2><form method=\"post\" action=\"/network\" id=\"network\">{}\
<label for=\"addresses\">Addresses with prefix length, one per line (empty: DHCP)</label><textarea id=\"addresses\" name=\"addresses\" rows=\"3\"{disabled}>{}</textarea>\
<label for=\"gateways\">Gateways</label><input type=\"text\" id=\"gateways\" name=\"gateways\" value=\"{}\"{disabled}>\
<label for=\"dns\">DNS servers</label><input type=\"text\" id=\"dns\" name=\"dns\" value=\"{}\"{disabled}>\
<label for=\"ntp\">NTP servers</label><input type=\"text\" id=\"ntp\" name=\"ntp\" value=\"{}\"{disabled}>\
<label for=\"interface\">Interface (empty: every Ethernet interface)</label><input type=\"text\" id=\"interface\" name=\"interface\" value=\"{}\"{disabled}>\
<button type=\"submit\" id=\"network-save\"{disabled}>Save and apply</button></form></section>",
        hidden_csrf(&a.csrf),
        esc(&joined("addresses", "\n")),
        esc(&joined("gateways", " ")),
        esc(&joined("dns", " ")),
        esc(&joined("ntp", " ")),
        esc(&s(&n["interface"])),
    ));
    render(&app, &a, "Network", "/network", &f, &body)
}

#[derive(Debug, Deserialize)]
struct NetworkForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    interface: String,
    #[serde(default)]
    addresses: String,
    #[serde(default)]
    gateways: String,
    #[serde(default)]
    dns: String,
    #[serde(default)]
    ntp: String,
}

/// Whitespace- or comma-separated entries.
fn entries(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn network_set(State(app): State<App>, a: Admin, Form(f): Form<NetworkForm>) -> Response {
    let addresses = entries(&f.addresses);
    let done = if addresses.is_empty() {
        "Network: DHCP; applied.".to_owned()
    } else {
        format!("Network: {}; applied.", addresses.join(", "))
    };
    act(
        &app,
        &a,
        &f.csrf,
        Command::NetworkSet {
            settings: crate::command::NetworkSettings {
                interface: f.interface.trim().to_owned(),
                addresses,
                gateways: entries(&f.gateways),
                dns: entries(&f.dns),
                ntp: entries(&f.ntp),
            },
        },
        "/network",
        done,
    )
    .await
}

// ---------------------------------------------------------------------------------------
// Cluster and VIPs

async fn cluster(State(app): State<App>, a: Admin, Query(f): Query<Flash>) -> Response {
    let status = run(&app, &a, Command::ClusterStatus).await;
    let vips = run(&app, &a, Command::VipList).await.unwrap_or(Value::Null);
    let csrf = a.can_change().then_some(a.csrf.as_str());
    let mut body = String::new();
    match &status {
        Ok(st) => body.push_str(&members_table(st, csrf)),
        Err(e) => body.push_str(&format!("<p class=\"notice error\">{}</p>", esc(e))),
    }
    if a.can_change() {
        body.push_str(&format!(
            "<section><h2>Add a node</h2><p class=\"hint\">Export credentials here, then open the new node's setup page, choose “Join an existing cluster”, upload the file and give this node's cluster address.</p><form method=\"post\" action=\"/cluster/credentials\" id=\"export\">{}<label for=\"ttl\">Valid for (minutes)</label><input type=\"number\" id=\"ttl\" name=\"minutes\" value=\"60\" min=\"1\" max=\"10080\"><button type=\"submit\" id=\"export-submit\">Export credentials</button></form></section>",
            hidden_csrf(&a.csrf)
        ));
    }
    body.push_str("<h2>Virtual IPs</h2>");
    body.push_str(&vips_table(&vips, csrf));
    if a.can_change() {
        body.push_str(&format!(
            "<div class=\"grid\"><section><h2>Add a virtual IP</h2><form method=\"post\" action=\"/vips/add\">{c}<label for=\"vaddress\">Address/prefix</label><input type=\"text\" id=\"vaddress\" name=\"address\" required placeholder=\"192.0.2.25/24\"><label for=\"interface\">Interface</label><input type=\"text\" id=\"interface\" name=\"interface\" required placeholder=\"eth0\"><label for=\"preferred\">Preferred nodes (ids, comma separated)</label><input type=\"text\" id=\"preferred\" name=\"preferred\"><button type=\"submit\">Add</button></form></section>\
<section><h2>Move a virtual IP</h2><form method=\"post\" action=\"/vips/move\">{c}<label for=\"maddress\">Address/prefix</label><input type=\"text\" id=\"maddress\" name=\"address\" required><label for=\"to\">To node</label><input type=\"number\" id=\"to\" name=\"to\" required min=\"1\"><button type=\"submit\">Move</button></form></section></div>",
            c = hidden_csrf(&a.csrf)
        ));
    }
    render(&app, &a, "Cluster", "/cluster", &f, &body)
}

#[derive(Debug, Deserialize)]
struct CredentialsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default = "sixty")]
    minutes: u64,
}

fn sixty() -> u64 {
    60
}

async fn credentials(State(app): State<App>, a: Admin, Form(f): Form<CredentialsForm>) -> Response {
    if let Err(r) = a.check(&f.csrf) {
        return r;
    }
    let ttl_secs = f.minutes.clamp(1, 10_080) * 60;
    match run(&app, &a, Command::ClusterExportCredentials { ttl_secs }).await {
        Ok(c) => {
            let name = format!(
                "postern-credentials-{}.json",
                s(&c["cluster_id"]).chars().take(8).collect::<String>()
            );
            download(
                &name,
                "application/json",
                serde_json::to_string_pretty(&c).unwrap_or_default(),
            )
        }
        Err(e) => back("/cluster", Err(e)),
    }
}

#[derive(Debug, Deserialize)]
struct IdForm {
    #[serde(default)]
    csrf: String,
    id: u64,
}

async fn cluster_remove(State(app): State<App>, a: Admin, Form(f): Form<IdForm>) -> Response {
    let done = format!("Node {} removed.", f.id);
    act(
        &app,
        &a,
        &f.csrf,
        Command::ClusterRemove { id: f.id },
        "/cluster",
        done,
    )
    .await
}

#[derive(Debug, Deserialize)]
struct VipForm {
    #[serde(default)]
    csrf: String,
    address: String,
    #[serde(default)]
    interface: String,
    #[serde(default)]
    preferred: String,
    #[serde(default)]
    to: Option<u64>,
}

async fn vip_add(State(app): State<App>, a: Admin, Form(f): Form<VipForm>) -> Response {
    if let Err(r) = a.check(&f.csrf) {
        return r;
    }
    let preferred: Result<Vec<u64>, _> = f
        .preferred
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::parse)
        .collect();
    let Ok(preferred) = preferred else {
        return back(
            "/cluster",
            Err("Preferred nodes must be node ids, e.g. 1,2.".into()),
        );
    };
    let r = run(
        &app,
        &a,
        Command::VipAdd {
            address: f.address.trim().to_owned(),
            interface: f.interface.trim().to_owned(),
            preferred,
        },
    )
    .await;
    back(
        "/cluster",
        r.map(|_| format!("Virtual IP {} added.", f.address)),
    )
}

async fn vip_move(State(app): State<App>, a: Admin, Form(f): Form<VipForm>) -> Response {
    if let Err(r) = a.check(&f.csrf) {
        return r;
    }
    let Some(to) = f.to else {
        return back("/cluster", Err("Name the node to move it to.".into()));
    };
    let r = run(
        &app,
        &a,
        Command::VipMove {
            address: f.address.clone(),
            to,
        },
    )
    .await;
    back(
        "/cluster",
        r.map(|_| format!("Virtual IP {} moves to node {to}.", f.address)),
    )
}

async fn vip_remove(State(app): State<App>, a: Admin, Form(f): Form<VipForm>) -> Response {
    act(
        &app,
        &a,
        &f.csrf,
        Command::VipRemove {
            address: f.address.clone(),
        },
        "/cluster",
        format!("Virtual IP {} removed.", f.address),
    )
    .await
}

// ---------------------------------------------------------------------------------------
// Message trace, audit log

async fn trace(State(app): State<App>, a: Admin, Query(f): Query<Flash>) -> Response {
    let list = run(&app, &a, Command::TraceList { limit: 200 })
        .await
        .unwrap_or(Value::Null);
    let rows: Vec<Vec<String>> = list
        .as_array()
        .map(|v| {
            v.iter()
                .map(|t| {
                    let rcpts: Vec<String> = t["recipients"]
                        .as_array()
                        .map(|r| r.iter().map(|x| esc(&s(x))).collect())
                        .unwrap_or_default();
                    vec![
                        esc(&time(t["time"].as_u64().unwrap_or(0))),
                        esc(&s(&t["peer"])),
                        esc(&s(&t["sender"])),
                        rcpts.join("<br>"),
                        esc(&s(&t["size"])),
                        esc(&s(&t["treatment"])),
                        esc(&s(&t["reply"])),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    let body = format!(
        "<p class=\"hint\">The last transactions this node handled (never message bodies).</p>{}",
        table(
            "trace",
            &[
                "Time (UTC)",
                "Client",
                "Sender",
                "Recipients",
                "Bytes",
                "Treatment",
                "Reply to the client"
            ],
            &rows,
            "No mail handled yet."
        )
    );
    render(&app, &a, "Message trace", "/trace", &f, &body)
}

async fn audit(State(app): State<App>, a: Admin, Query(f): Query<Flash>) -> Response {
    let list = run(&app, &a, Command::AuditList { limit: 200 })
        .await
        .unwrap_or(Value::Null);
    let rows: Vec<Vec<String>> = list
        .as_array()
        .map(|v| {
            v.iter()
                .map(|e| {
                    vec![
                        esc(&time(e["time"].as_u64().unwrap_or(0))),
                        esc(&s(&e["actor"])),
                        esc(&s(&e["via"])),
                        esc(&s(&e["action"])),
                        esc(&s(&e["detail"])),
                        esc(&s(&e["result"])),
                        esc(&s(&e["node"])),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    let body = table(
        "audit",
        &[
            "Time (UTC)",
            "Who",
            "Via",
            "Action",
            "Object",
            "Result",
            "Node",
        ],
        &rows,
        "No administrative actions yet.",
    );
    render(&app, &a, "Audit log", "/audit", &f, &body)
}

// ---------------------------------------------------------------------------------------
// Administrators and API tokens

async fn admins(State(app): State<App>, a: Admin, Query(f): Query<Flash>) -> Response {
    let body = admins_body(&app, &a).await;
    render(&app, &a, "Administrators", "/admins", &f, &body)
}

async fn admins_body(app: &App, a: &Admin) -> String {
    let list = run(app, a, Command::AdminList).await.unwrap_or(Value::Null);
    let tokens = run(app, a, Command::TokenList).await.unwrap_or(Value::Null);
    let rows: Vec<Vec<String>> = list
        .as_array()
        .map(|v| {
            v.iter()
                .map(|x| {
                    let name = s(&x["name"]);
                    let mut row = vec![
                        esc(&name),
                        esc(&s(&x["role"])),
                        esc(&time(x["created"].as_u64().unwrap_or(0))),
                    ];
                    if a.can_change() {
                        row.push(button(
                            "/admins/remove",
                            &a.csrf,
                            &[("name", &name)],
                            "Remove",
                            "small danger",
                        ));
                    }
                    row
                })
                .collect()
        })
        .unwrap_or_default();
    let trows: Vec<Vec<String>> = tokens
        .as_array()
        .map(|v| {
            v.iter()
                .map(|x| {
                    let name = s(&x["name"]);
                    let mut row = vec![
                        esc(&name),
                        esc(&s(&x["role"])),
                        esc(&time(x["created"].as_u64().unwrap_or(0))),
                    ];
                    if a.can_change() {
                        row.push(button(
                            "/tokens/revoke",
                            &a.csrf,
                            &[("name", &name)],
                            "Revoke",
                            "small danger",
                        ));
                    }
                    row
                })
                .collect()
        })
        .unwrap_or_default();
    let mut body = table("admins", &["Name", "Role", "Created", ""], &rows, "");
    if a.can_change() {
        body.push_str(&format!(
            "<section><h2>Add an administrator</h2><form method=\"post\" action=\"/admins/add\" id=\"admin-add\">{c}<label for=\"aname\">Name</label><input type=\"text\" id=\"aname\" name=\"name\" required><label for=\"apassword\">Password (at least {min} characters)</label><input type=\"password\" id=\"apassword\" name=\"password\" required autocomplete=\"new-password\"><label for=\"role\">Role</label><select id=\"role\" name=\"role\"><option value=\"admin\">admin (may change things)</option><option value=\"readonly\">readonly</option></select><button type=\"submit\">Add</button></form></section>",
            c = hidden_csrf(&a.csrf),
            min = auth::MIN_PASSWORD
        ));
    }
    body.push_str("<h2>API tokens</h2><p class=\"hint\">For scripts and Prometheus: <code>Authorization: Bearer &lt;token&gt;</code>. The API is described at <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>.</p>");
    body.push_str(&table(
        "tokens",
        &["Name", "Role", "Created", ""],
        &trows,
        "No API tokens.",
    ));
    if a.can_change() {
        body.push_str(&format!(
            "<section><h2>Create an API token</h2><form method=\"post\" action=\"/tokens/create\" id=\"token-create\">{}<label for=\"tname\">Name</label><input type=\"text\" id=\"tname\" name=\"name\" required><label for=\"trole\">Role</label><select id=\"trole\" name=\"role\"><option value=\"readonly\">readonly</option><option value=\"admin\">admin</option></select><button type=\"submit\">Create</button></form></section>",
            hidden_csrf(&a.csrf)
        ));
    }
    body
}

#[derive(Debug, Deserialize)]
struct NameForm {
    #[serde(default)]
    csrf: String,
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
}

async fn admin_add(State(app): State<App>, a: Admin, Form(f): Form<NameForm>) -> Response {
    let name = f.name.clone();
    let cmd = Command::AdminAdd {
        name: f.name.clone(),
        password: f.password,
        role: f.role,
    };
    let secret = |d: &Value| {
        format!(
            "<section class=\"secret\"><p>Give {} this second factor for their authenticator app (shown only once):</p><p>Secret: <code id=\"totp-secret\">{}</code></p><p><code>{}</code></p></section>",
            esc(&name),
            esc(&s(&d["totp_secret"])),
            esc(&s(&d["totp_uri"]))
        )
    };
    let done = format!("{} added.", f.name);
    act_shown(&app, &a, &f.csrf, cmd, secret, done).await
}

async fn admin_remove(State(app): State<App>, a: Admin, Form(f): Form<NameForm>) -> Response {
    act(
        &app,
        &a,
        &f.csrf,
        Command::AdminRemove {
            name: f.name.clone(),
        },
        "/admins",
        format!("{} removed.", f.name),
    )
    .await
}

async fn token_create(State(app): State<App>, a: Admin, Form(f): Form<NameForm>) -> Response {
    let name = f.name.clone();
    let cmd = Command::TokenCreate {
        name: f.name.clone(),
        role: f.role,
    };
    let secret = |d: &Value| {
        format!(
            "<section class=\"secret\"><p>The token {} (shown only once):</p><p><code id=\"api-token\">{}</code></p></section>",
            esc(&name),
            esc(&s(&d["token"]))
        )
    };
    let done = format!("Token {} created.", f.name);
    act_shown(&app, &a, &f.csrf, cmd, secret, done).await
}

async fn token_revoke(State(app): State<App>, a: Admin, Form(f): Form<NameForm>) -> Response {
    act(
        &app,
        &a,
        &f.csrf,
        Command::TokenRevoke {
            name: f.name.clone(),
        },
        "/admins",
        format!("Token {} revoked.", f.name),
    )
    .await
}
