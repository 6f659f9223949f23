//! Administrators and API tokens. A new administrator's TOTP secret and a new token are
//! shown once, above the page, right after they are made.

use axum::Form;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::{Markup, html};
use postern_api::Request;
use postern_api::Role;
use postern_api::command::requests as req;
use postern_api::views::{Admin as Account, Token};
use serde::Deserialize;

use super::layout::{Viewer, button, csrf_field, datetime, table};
use super::{Flash, act, back, csrf_refused, render};
use crate::App;
use crate::app::Admin;
use crate::auth::MIN_PASSWORD;

pub async fn page(State(app): State<App>, a: Admin, Query(f): Query<Flash>) -> Response {
    let body = load(&app, &a).await;
    render(&app, &a, "Administrators", "/admins", &f, body)
}

/// The page's body with the lists as they are now.
async fn load(app: &App, a: &Admin) -> Markup {
    let (admins, tokens) = tokio::join!(
        app.call(&a.actor, req::AdminList {}),
        app.call(&a.actor, req::TokenList {}),
    );
    body(
        &admins.unwrap_or_default(),
        &tokens.unwrap_or_default(),
        &Viewer::of(a),
    )
}

/// Administrators, API tokens, and for an admin the forms to add and remove them.
pub fn body(admins: &[Account], tokens: &[Token], v: &Viewer<'_>) -> Markup {
    let csrf = v.writer();
    let admin_rows: Vec<Vec<Markup>> = admins
        .iter()
        .map(|x| {
            let mut r = row(
                &x.name,
                x.role.as_str(),
                x.created,
                csrf,
                ("/admins/remove", "Remove"),
            );
            if let Some(c) = csrf {
                let (to, label) = match x.role {
                    Role::Admin => ("readonly", "Make readonly"),
                    Role::Readonly => ("admin", "Make admin"),
                };
                let fields = [("name", x.name.as_str()), ("role", to)];
                r.insert(3, button("/admins/role", c, &fields, label, "small"));
            }
            r
        })
        .collect();
    let token_rows: Vec<Vec<Markup>> = tokens
        .iter()
        .map(|x| {
            row(
                &x.name,
                x.role.as_str(),
                x.created,
                csrf,
                ("/tokens/revoke", "Revoke"),
            )
        })
        .collect();
    let head = ["Name", "Role", "Created", ""];
    let admin_head = ["Name", "Role", "Created", "", ""];
    let admin_head: &[&str] = if csrf.is_some() { &admin_head } else { &head };
    html! {
        (table("admins", admin_head, &admin_rows, ""))
        @if let Some(csrf) = csrf { (admin_form(csrf)) }
        h2 { "API tokens" }
        p.hint {
            "For scripts and Prometheus: " code { "Authorization: Bearer <token>" }
            ". The API is described at "
            a href="/api/v1/openapi.json" { "/api/v1/openapi.json" }
            "."
        }
        (table("tokens", &head, &token_rows, "No API tokens."))
        @if let Some(csrf) = csrf { (token_form(csrf)) }
    }
}

/// A listed administrator or token; with `csrf`, the button that ends it.
fn row(name: &str, role: &str, created: u64, csrf: Option<&str>, end: (&str, &str)) -> Vec<Markup> {
    let mut row = vec![
        html! { (name) },
        html! { (role) },
        html! { (datetime(created)) },
    ];
    if let Some(c) = csrf {
        row.push(button(end.0, c, &[("name", name)], end.1, "small danger"));
    }
    row
}

fn admin_form(csrf: &str) -> Markup {
    html! {
        section {
            h2 { "Add an administrator" }
            form method="post" action="/admins/add" #admin-add {
                (csrf_field(csrf))
                label for="aname" { "Name" }
                input type="text" #aname name="name" required;
                label for="apassword" { "Password (at least " (MIN_PASSWORD) " characters)" }
                input type="password" #apassword name="password" required
                    autocomplete="new-password";
                label for="role" { "Role" }
                select #role name="role" {
                    option value="admin" { "admin (may change things)" }
                    option value="readonly" { "readonly" }
                }
                button type="submit" { "Add" }
            }
        }
    }
}

fn token_form(csrf: &str) -> Markup {
    html! {
        section {
            h2 { "Create an API token" }
            form method="post" action="/tokens/create" #token-create {
                (csrf_field(csrf))
                label for="tname" { "Name" }
                input type="text" #tname name="name" required;
                label for="trole" { "Role" }
                select #trole name="role" {
                    option value="readonly" { "readonly" }
                    option value="admin" { "admin" }
                }
                button type="submit" { "Create" }
            }
        }
    }
}

/// A form whose request hands out a secret (a TOTP secret, an API token): on success the
/// page itself, with the secret above it, shown this once.
async fn shown<R: Request>(
    app: &App,
    a: &Admin,
    csrf: &str,
    req: R,
    secret: impl FnOnce(&R::Response) -> Markup,
    done: String,
) -> Response {
    if !a.csrf_ok(csrf) {
        return csrf_refused();
    }
    match app.call(&a.actor, req).await {
        Ok(made) => {
            let body = html! { (secret(&made)) (load(app, a).await) };
            render(app, a, "Administrators", "/admins", &Flash::ok(done), body)
        }
        Err(e) => back("/admins", Err(e.message)),
    }
}

#[derive(Debug, Deserialize)]
pub struct NameForm {
    #[serde(default)]
    csrf: String,
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
}

pub async fn add(State(app): State<App>, a: Admin, Form(f): Form<NameForm>) -> Response {
    let name = f.name.clone();
    let secret = |d: &postern_api::views::AdminCreated| {
        html! {
            section.secret {
                p {
                    "Give " (name)
                    " this second factor for their authenticator app (shown only once):"
                }
                p { "Secret: " code #totp-secret { (d.totp_secret) } }
                p { code { (d.totp_uri) } }
            }
        }
    };
    let done = format!("{} added.", f.name);
    let add = req::AdminAdd {
        name: f.name.clone(),
        password: f.password,
        role: f.role,
    };
    shown(&app, &a, &f.csrf, add, secret, done).await
}

pub async fn remove(State(app): State<App>, a: Admin, Form(f): Form<NameForm>) -> Response {
    let done = format!("{} removed.", f.name);
    act(
        &app,
        &a,
        &f.csrf,
        req::AdminRemove { name: f.name },
        "/admins",
        done,
    )
    .await
}

/// Another role for an administrator: in force for their open sessions at their next click.
pub async fn role(State(app): State<App>, a: Admin, Form(f): Form<NameForm>) -> Response {
    let done = format!("{} is now {}.", f.name, f.role);
    let change = req::AdminRole {
        name: f.name,
        role: f.role,
    };
    act(&app, &a, &f.csrf, change, "/admins", done).await
}

pub async fn token_create(State(app): State<App>, a: Admin, Form(f): Form<NameForm>) -> Response {
    let name = f.name.clone();
    let secret = |d: &postern_api::views::TokenCreated| {
        html! {
            section.secret {
                p { "The token " (name) " (shown only once):" }
                p { code #api-token { (d.token) } }
            }
        }
    };
    let done = format!("Token {} created.", f.name);
    let create = req::TokenCreate {
        name: f.name.clone(),
        role: f.role,
    };
    shown(&app, &a, &f.csrf, create, secret, done).await
}

pub async fn token_revoke(State(app): State<App>, a: Admin, Form(f): Form<NameForm>) -> Response {
    let done = format!("Token {} revoked.", f.name);
    act(
        &app,
        &a,
        &f.csrf,
        req::TokenRevoke { name: f.name },
        "/admins",
        done,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists() -> (Vec<Account>, Vec<Token>) {
        let admins = vec![Account {
            name: "<script>ops</script>".into(),
            role: Role::Admin,
            created: 0,
        }];
        let tokens = vec![Token {
            name: "ci\"&".into(),
            role: Role::Readonly,
            created: 951_782_400,
        }];
        (admins, tokens)
    }

    #[test]
    fn names_are_escaped() {
        let (admins, tokens) = lists();
        let v = Viewer::new("root", Role::Admin, "tok");
        let out = body(&admins, &tokens, &v).into_string();
        assert!(!out.contains("<script>"), "{out}");
        assert!(out.contains(
            "<td>&lt;script&gt;ops&lt;/script&gt;</td><td>admin</td><td>1970-01-01 00:00:00</td>"
        ));
        assert!(
            out.contains("<td>ci&quot;&amp;</td><td>readonly</td><td>2000-02-29 00:00:00</td>")
        );
        assert!(out.contains("<code>Authorization: Bearer &lt;token&gt;</code>"));
        for needle in [
            "id=\"admin-add\"",
            "id=\"aname\"",
            "id=\"apassword\"",
            "id=\"token-create\"",
            "id=\"tname\"",
        ] {
            assert!(out.contains(needle), "{needle}");
        }
        assert!(
            out.contains("action=\"/admins/remove\"") && out.contains("action=\"/tokens/revoke\"")
        );
    }

    #[test]
    fn a_readonly_viewer_gets_no_write_forms() {
        let (admins, tokens) = lists();
        let v = Viewer::new("ro", Role::Readonly, "tok");
        let out = body(&admins, &tokens, &v).into_string();
        assert!(!out.contains("<form"), "{out}");
        assert!(
            out.contains("id=\"admins\"")
                && out.contains("id=\"tokens\"")
                && out.contains("API tokens")
        );
        let empty = body(&[], &[], &v).into_string();
        assert!(empty.contains("No API tokens."));
    }
}
