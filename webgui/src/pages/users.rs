//! Internal users: their keys, enrolment (new S/MIME and OpenPGP keys), import of an
//! existing key, removal, and the downloads of their public keys.

use axum::Form;
use axum::extract::{Multipart, Path, Query, State};
use axum::response::Response;
use maud::{Markup, html};
use postern_api::command::requests as req;
use postern_api::views::{Cert, User};
use serde::Deserialize;

use super::layout::{Viewer, button, csrf_field, datetime, lines, table, url};
use super::{Flash, Upload, act, back, csrf_refused, download, perform, render};
use crate::App;
use crate::app::Admin;

pub async fn page(State(app): State<App>, a: Admin, Query(f): Query<Flash>) -> Response {
    let list = app
        .call(&a.actor, req::UserList {})
        .await
        .unwrap_or_default();
    let body = body(&list, &Viewer::of(&a));
    render(&app, &a, "Users", "/users", &f, body)
}

/// The users table and, for an admin, the enrol and import forms.
pub fn body(list: &[User], v: &Viewer<'_>) -> Markup {
    let rows: Vec<Vec<Markup>> = list
        .iter()
        .map(|u| {
            let (smime, pgp) = (certs(&u.smime), fingerprints(&u.pgp));
            vec![html! { (u.address) }, smime, pgp, actions(&u.address, v)]
        })
        .collect();
    let head = ["Address", "S/MIME certificates", "OpenPGP keys", ""];
    html! {
        (table("users", &head, &rows, "No users enrolled yet."))
        @if let Some(csrf) = v.writer() { (forms(csrf)) }
    }
}

/// S/MIME certificates, one per line: serial and end of validity.
pub fn certs(certs: &[Cert]) -> Markup {
    lines(
        certs
            .iter()
            .map(|c| html! { code { (c.serial) } " until " (datetime(c.not_after)) }),
    )
}

/// OpenPGP fingerprints, one per line.
pub fn fingerprints(fprs: &[String]) -> Markup {
    lines(fprs.iter().map(|f| html! { code { (f) } }))
}

/// The downloads of a user's public keys, and for an admin the remove button.
fn actions(address: &str, v: &Viewer<'_>) -> Markup {
    let u = url(address);
    html! {
        a href={ "/users/" (u) "/certificate.pem" } download { "certificate" }
        " · "
        a href={ "/users/" (u) "/openpgp.asc" } download { "OpenPGP key" }
        @if let Some(csrf) = v.writer() {
            " "
            (button("/users/remove", csrf, &[("address", address)], "Remove", "small danger"))
        }
    }
}

fn forms(csrf: &str) -> Markup {
    html! {
        div.grid {
            section {
                h2 { "Enrol a user" }
                p.hint { "Makes an S/MIME certificate (signed by the cluster's CA) and an OpenPGP key." }
                form method="post" action="/users/enrol" #enrol {
                    (csrf_field(csrf))
                    label for="address" { "Mail address" }
                    input type="text" #address name="address" required
                        placeholder="alice@example.com";
                    button type="submit" #enrol-submit { "Enrol" }
                }
            }
            section { h2 { "Import a user's key" } (import_form(csrf)) }
        }
    }
}

fn import_form(csrf: &str) -> Markup {
    html! {
        form method="post" action="/users/import" enctype="multipart/form-data" #import {
            (csrf_field(csrf))
            label for="kind" { "Kind" }
            select #kind name="kind" {
                option value="pkcs12" { "S/MIME identity (PKCS#12, .p12/.pfx)" }
                option value="openpgp" { "OpenPGP secret key" }
            }
            label for="file" { "File" }
            input type="file" #file name="file" required;
            label for="p12password" { "PKCS#12 password" }
            input type="password" #p12password name="password";
            button type="submit" { "Import" }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct AddressForm {
    #[serde(default)]
    csrf: String,
    address: String,
}

pub async fn enrol(State(app): State<App>, a: Admin, Form(f): Form<AddressForm>) -> Response {
    if !a.csrf_ok(&f.csrf) {
        return csrf_refused();
    }
    let address = f.address.trim().to_owned();
    let done = format!("{address} enrolled.");
    perform(&app, &a, req::UserEnrol { address }, "/users", done).await
}

pub async fn remove(State(app): State<App>, a: Admin, Form(f): Form<AddressForm>) -> Response {
    let done = format!("{} removed.", f.address);
    let rm = req::UserRemove { address: f.address };
    act(&app, &a, &f.csrf, rm, "/users", done).await
}

/// A user's key from a file: a PKCS#12 identity or an OpenPGP secret key.
pub async fn import(State(app): State<App>, a: Admin, m: Multipart) -> Response {
    let f = match Upload::read(m).await {
        Ok(f) => f,
        Err(e) => return back("/users", Err(e)),
    };
    if !a.csrf_ok(&f.text("csrf")) {
        return csrf_refused();
    }
    let data = f.base64("file");
    let imported = match f.text("kind").as_str() {
        "pkcs12" => {
            let password = f.text("password");
            app.call(&a.actor, req::ImportPkcs12 { data, password })
                .await
        }
        "openpgp" => app.call(&a.actor, req::ImportPgpSecret { data }).await,
        other => return back("/users", Err(format!("unknown kind of key {other:?}"))),
    };
    let r = imported.map(|u| format!("Imported the key of {}.", u.address));
    back("/users", r.map_err(|e| e.message))
}

pub async fn certificate(
    State(app): State<App>,
    a: Admin,
    Path(address): Path<String>,
) -> Response {
    let name = format!("{address}.pem");
    match app.call(&a.actor, req::UserCert { address }).await {
        Ok(pem) => download(&name, "application/x-pem-file", pem),
        Err(e) => back("/users", Err(e.message)),
    }
}

pub async fn openpgp(State(app): State<App>, a: Admin, Path(address): Path<String>) -> Response {
    let name = format!("{address}.asc");
    match app.call(&a.actor, req::UserPgp { address }).await {
        Ok(keys) => download(&name, "application/pgp-keys", keys),
        Err(e) => back("/users", Err(e.message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_api::Role;

    fn users() -> Vec<User> {
        vec![User {
            address: "<script>alert(1)</script>\"@corp.example".into(),
            smime: vec![Cert {
                serial: "0a&1".into(),
                not_before: 0,
                not_after: 951_782_400,
            }],
            pgp: vec!["ABCD".into(), "EF01".into()],
        }]
    }

    fn viewer(role: Role) -> Viewer<'static> {
        Viewer::new("v", role, "tok")
    }

    #[test]
    fn user_data_is_escaped_and_links_encoded() {
        let out = body(&users(), &viewer(Role::Admin)).into_string();
        assert!(!out.contains("<script>"), "{out}");
        assert!(out.contains("<td>&lt;script&gt;alert(1)&lt;/script&gt;&quot;@corp.example</td>"));
        assert!(
            out.contains("<code>0a&amp;1</code> until 2000-02-29 00:00:00"),
            "{out}"
        );
        assert!(out.contains("<code>ABCD</code><br><code>EF01</code>"));
        assert!(out.contains("href=\"/users/%3Cscript%3Ealert%281%29%3C%2Fscript%3E%22@corp.example/certificate.pem\""));
        assert!(
            out.contains("name=\"address\" value=\"&lt;script&gt;"),
            "{out}"
        );
        for id in [
            "id=\"enrol\"",
            "id=\"address\"",
            "id=\"enrol-submit\"",
            "id=\"import\"",
            "/users/remove",
        ] {
            assert!(out.contains(id), "{id}");
        }
    }

    #[test]
    fn a_readonly_viewer_gets_no_write_forms() {
        let out = body(&users(), &viewer(Role::Readonly)).into_string();
        assert!(!out.contains("<form"), "{out}");
        assert!(
            !out.contains("tok"),
            "no CSRF token where nothing is posted"
        );
        assert!(out.contains("certificate.pem") && out.contains("openpgp.asc"));
        let none = body(&[], &viewer(Role::Readonly)).into_string();
        assert_eq!(
            none,
            "<p class=\"empty\" id=\"users\">No users enrolled yet.</p>"
        );
    }
}
