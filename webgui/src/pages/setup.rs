//! First boot: create a new cluster with this node, or join an existing one with
//! credentials exported on a member. Only while the cluster has no administrator.

use axum::Form;
use axum::extract::{Multipart, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use postern_api::command::requests as req;
use postern_api::views::{AdminCreated, Membership};
use postern_api::{Actor, Role, Via};
use serde::Deserialize;

use super::layout::csrf_field;
use super::{Flash, Upload, back, check_form_token, form_token, render_anonymous, with_cookie};
use crate::App;
use crate::auth::MIN_PASSWORD;

pub async fn page(State(app): State<App>, headers: HeaderMap, Query(f): Query<Flash>) -> Response {
    if app.backend().setup_done() {
        return Redirect::to("/login").into_response();
    }
    let (token, cookie) = form_token(&headers);
    let page = render_anonymous(&app, "Set up this node", f.notice(), forms(&token));
    with_cookie(page, cookie)
}

/// The two ways to set a node up, side by side.
fn forms(csrf: &str) -> Markup {
    html! {
        p { "This node is not set up yet. Create a new cluster with it, or join an existing cluster." }
        div.grid {
            section { h2 { "Create a new cluster" } (create_form(csrf)) }
            section { h2 { "Join an existing cluster" } (join_form(csrf)) }
        }
    }
}

fn create_form(csrf: &str) -> Markup {
    html! {
        form method="post" action="/setup/create" #create {
            (csrf_field(csrf))
            label for="admin" { "Administrator name" }
            input type="text" #admin name="admin" value="admin" required autocomplete="username";
            label for="password" { "Password (at least " (MIN_PASSWORD) " characters)" }
            input type="password" #password name="password" required minlength=(MIN_PASSWORD)
                autocomplete="new-password";
            label for="password2" { "Password again" }
            input type="password" #password2 name="password2" required autocomplete="new-password";
            label for="domains" { "Internal mail domains (comma separated)" }
            input type="text" #domains name="domains" placeholder="example.com, example.org";
            label for="downstream" { "Downstream MTA (host:port)" }
            input type="text" #downstream name="downstream" placeholder="mail.example.com:25";
            button type="submit" #create-submit { "Create cluster" }
        }
    }
}

fn join_form(csrf: &str) -> Markup {
    html! {
        form method="post" action="/setup/join" enctype="multipart/form-data" #join {
            (csrf_field(csrf))
            label for="credentials" {
                "Credentials file (exported on a member: Cluster → Export credentials)"
            }
            input type="file" #credentials name="credentials" required;
            label for="peer" { "Address of a member's cluster port (host:port)" }
            input type="text" #peer name="peer" required placeholder="192.0.2.10:7946";
            button type="submit" #join-submit { "Join cluster" }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CreateForm {
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

pub async fn create(
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
    let actor = Actor {
        name: f.admin.clone(),
        role: Role::Admin,
        via: Via::Gui,
    };
    let setup = req::Setup {
        admin: f.admin.clone(),
        password: f.password,
        domains: domains(&f.domains),
        downstream: f.downstream.trim().to_owned(),
    };
    match app.call(&actor, setup).await {
        Ok(created) => {
            let notice = Some(Ok("Cluster created."));
            let body = created_body(&f.admin, &created);
            render_anonymous(&app, "Cluster created", notice, body).into_response()
        }
        Err(e) => back("/setup", Err(e.message)),
    }
}

/// Internal domains as typed in the form: comma, space or line separated.
fn domains(text: &str) -> Vec<String> {
    text.split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The first administrator's second factor, shown once.
fn created_body(admin: &str, created: &AdminCreated) -> Markup {
    html! {
        section.secret {
            p { "The cluster is set up. Add this second factor to an authenticator app now: it is shown only once." }
            p { "Account: " b { (admin) } }
            p { "Secret: " code #totp-secret { (created.totp_secret) } }
            p { "Or import: " code #totp-uri { (created.totp_uri) } }
        }
        p { a href="/login" #to-login { "Continue to the login" } }
    }
}

pub async fn join(State(app): State<App>, headers: HeaderMap, m: Multipart) -> Response {
    let f = match Upload::read(m).await {
        Ok(f) => f,
        Err(e) => return back("/setup", Err(e)),
    };
    if let Err(r) = check_form_token(&headers, &f.text("csrf")) {
        return r;
    }
    if app.backend().setup_done() {
        return Redirect::to("/login").into_response();
    }
    let actor = Actor {
        name: "setup".into(),
        role: Role::Admin,
        via: Via::Gui,
    };
    let join = req::ClusterJoin {
        credentials: String::from_utf8_lossy(f.file("credentials")).into_owned(),
        peer: f.text("peer"),
    };
    match app.call(&actor, join).await {
        Ok(joined) => {
            let body = joined_body(&joined);
            render_anonymous(&app, "Joined the cluster", Some(Ok("Joined.")), body).into_response()
        }
        Err(e) => back("/setup", Err(e.message)),
    }
}

fn joined_body(joined: &Membership) -> Markup {
    html! {
        p {
            "This node is now node " b #joined-node { (joined.node_id) }
            " of cluster " code { (joined.cluster_id) }
            ". Log in with an administrator account of that cluster."
        }
        p { a href="/login" #to-login { "Continue to the login" } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setup_forms_keep_their_ids() {
        let out = forms("tok").into_string();
        for id in [
            "id=\"create\"",
            "id=\"admin\"",
            "id=\"password2\"",
            "id=\"create-submit\"",
            "id=\"join\"",
            "id=\"credentials\"",
            "id=\"peer\"",
            "id=\"join-submit\"",
            "minlength=\"",
        ] {
            assert!(out.contains(id), "{id}: {out}");
        }
        assert_eq!(
            domains("a.example, b.example\nc.example "),
            ["a.example", "b.example", "c.example"]
        );
    }

    #[test]
    fn the_secret_and_the_cluster_id_are_escaped() {
        let created = AdminCreated {
            admin: "root".into(),
            role: Role::Admin,
            totp_secret: "<b>SECRET</b>".into(),
            totp_uri: "otpauth://totp/x?a=1&b=2".into(),
        };
        let out = created_body("<root>", &created).into_string();
        assert!(out.contains("<code id=\"totp-secret\">&lt;b&gt;SECRET&lt;/b&gt;</code>"));
        assert!(out.contains("a=1&amp;b=2") && out.contains("<b>&lt;root&gt;</b>"));
        let joined = Membership {
            cluster_id: "\"><script>".into(),
            node_id: 2,
            addr: String::new(),
        };
        let out = joined_body(&joined).into_string();
        assert!(out.contains("<b id=\"joined-node\">2</b>"));
        assert!(!out.contains("<script>"), "{out}");
    }
}
