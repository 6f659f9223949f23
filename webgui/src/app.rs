//! The application: shared state, who is asking (session cookie or API token), and the
//! routes of the GUI and the API.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use postern_api::{Actor, Command, Error, ErrorKind, Reply, Request, Role, Via};

use crate::Backend;
use crate::auth::{Guard, LiveSession, Sessions};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "postern_session";
/// Name of the pre-session CSRF cookie (login and first-boot forms: double submit).
pub const FORM_COOKIE: &str = "postern_form";
/// Largest request body (a PKCS#12 bundle, a keyring, credentials).
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// The web server's state, shared by every request.
#[derive(Clone)]
pub struct App(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub backend: Arc<dyn Backend>,
    pub sessions: Sessions,
    pub guard: Guard,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

impl App {
    pub fn new(backend: Arc<dyn Backend>) -> App {
        App(Arc::new(Inner {
            backend,
            sessions: Sessions::default(),
            guard: Guard::default(),
        }))
    }

    pub fn backend(&self) -> &dyn Backend {
        &*self.0.backend
    }

    /// Runs a command for `actor`.
    pub async fn exec(&self, actor: &Actor, cmd: Command) -> Result<Reply, Error> {
        self.0.backend.execute(cmd, actor.clone()).await
    }

    /// Runs a request for `actor` and returns its typed answer.
    pub async fn call<R: Request>(&self, actor: &Actor, req: R) -> Result<R::Response, Error> {
        let reply = self.exec(actor, req.into()).await?;
        let name = format!("{reply:?}");
        R::response(reply).ok_or_else(|| {
            Error::new(
                ErrorKind::Internal,
                format!("the daemon answered with {name} to another command"),
            )
        })
    }

    /// The live session of the request's session cookie, checked against the account as
    /// this node's copy of the replicated state has it now.
    pub fn session(&self, headers: &HeaderMap) -> Option<LiveSession> {
        let c = cookie(headers, SESSION_COOKIE)?;
        self.0.sessions.get(c, |name| self.0.backend.account(name))
    }
}

/// Headers on every response: no framing, no sniffing, no referrer, no caching of pages
/// that show keys, a strict content security policy (scripts and styles from this origin).
pub async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &'static str| {
        h.entry(k).or_insert(HeaderValue::from_static(v));
    };
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::CACHE_CONTROL, "no-store");
    set(h, header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    );
    r
}

/// A cookie's value from the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, Secure, SameSite=Strict, whole site.
pub fn set_cookie(name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let age = max_age
        .map(|a| format!("; Max-Age={a}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; Secure; SameSite=Strict{age}"
    ))
    .unwrap_or(HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// The client's address (for login throttling).
pub fn client_ip(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// A logged-in administrator on a GUI page. Anyone else is sent to the login page (or to
/// the first-boot setup page while the cluster has no administrator).
#[derive(Debug, Clone)]
pub struct Admin {
    pub actor: Actor,
    pub csrf: String,
}

impl Admin {
    /// Whether a form's CSRF field is this session's token.
    pub fn csrf_ok(&self, csrf: &str) -> bool {
        crate::auth::same(&self.csrf, csrf)
    }

    pub fn can_change(&self) -> bool {
        self.actor.role >= Role::Admin
    }
}

impl FromRequestParts<App> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        if !app.0.backend.setup_done() {
            return Err(Redirect::to("/setup").into_response());
        }
        match app.session(&parts.headers) {
            Some(s) => Ok(Admin {
                actor: Actor {
                    name: s.name,
                    role: s.role,
                    via: Via::Gui,
                },
                csrf: s.csrf,
            }),
            None => Err(Redirect::to("/login").into_response()),
        }
    }
}

/// An authenticated API caller: `Authorization: Bearer <token>`, or a GUI session (whose
/// writes must carry its CSRF token in `X-CSRF-Token`, as the GUI's scripts do).
#[derive(Debug, Clone)]
pub struct ApiCaller(pub Actor);

impl FromRequestParts<App> for ApiCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let backend = &app.0.backend;
        if let Some(auth) = parts.headers.get(header::AUTHORIZATION) {
            let token = auth
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim);
            return match token.and_then(|t| backend.api_token(&crate::auth::sha256_hex(t))) {
                Some((name, role)) => Ok(ApiCaller(Actor {
                    name: format!("token:{name}"),
                    role,
                    via: Via::Api,
                })),
                None => Err(api_error(StatusCode::UNAUTHORIZED, "invalid API token")),
            };
        }
        if let Some(s) = app.session(&parts.headers) {
            let safe = matches!(parts.method, Method::GET | Method::HEAD);
            let csrf = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !safe && !crate::auth::same(&s.csrf, csrf) {
                return Err(api_error(
                    StatusCode::FORBIDDEN,
                    "CSRF token missing or wrong",
                ));
            }
            return Ok(ApiCaller(Actor {
                name: s.name,
                role: s.role,
                via: Via::Api,
            }));
        }
        Err(api_error(
            StatusCode::UNAUTHORIZED,
            "authentication required (Authorization: Bearer <token>)",
        ))
    }
}

/// A failed command as an API response: the status of its kind, `{"error", "kind"}`.
pub fn error_response(e: &Error) -> Response {
    let status =
        StatusCode::from_u16(e.kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    api_error(status, &e.message)
}

/// A JSON error body: `{"error": "...", "kind": "..."}`.
pub fn api_error(status: StatusCode, msg: &str) -> Response {
    let kind = match status {
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::CONFLICT => "conflict",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        StatusCode::INTERNAL_SERVER_ERROR => "internal",
        StatusCode::TOO_MANY_REQUESTS => "throttled",
        _ => "invalid",
    };
    let mut r = (
        status,
        axum::Json(serde_json::json!({ "error": msg, "kind": kind })),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"postern\""),
        );
    }
    r
}
