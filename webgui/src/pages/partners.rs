//! Partners and federated domains: their harvested or imported keys, imports of public
//! keys, S/MIME trust anchors, and the cluster's CA certificate for partners.

use axum::extract::{Multipart, Query, State};
use axum::response::Response;
use maud::{Markup, html};
use postern_api::Request;
use postern_api::command::requests as req;
use postern_api::views::Partner;

use super::layout::{Viewer, csrf_field, table};
use super::users::{certs, fingerprints};
use super::{Flash, Upload, back, csrf_refused, download, render};
use crate::App;
use crate::app::Admin;

pub async fn page(State(app): State<App>, a: Admin, Query(f): Query<Flash>) -> Response {
    let (list, ours, partners) = tokio::join!(
        app.call(&a.actor, req::PartnerList {}),
        app.call(&a.actor, req::DomainList {}),
        app.call(&a.actor, req::PartnerDomainList {}),
    );
    let v = Viewer::of(&a);
    let body = html! {
        (body(&list.unwrap_or_default(), &v))
        (super::domains::section(&ours.unwrap_or_default(), &partners.unwrap_or_default(), &v))
    };
    render(&app, &a, "Partners & domains", "/partners", &f, body)
}

pub fn body(list: &[Partner], v: &Viewer<'_>) -> Markup {
    let rows: Vec<Vec<Markup>> = list
        .iter()
        .map(|p| {
            let cipher = if p.smime_gcm { "AES-GCM" } else { "AES-CBC" };
            let address = html! { (p.address) };
            vec![
                address,
                certs(&p.smime),
                fingerprints(&p.pgp),
                html! { (cipher) },
            ]
        })
        .collect();
    let head = [
        "Address or domain",
        "S/MIME certificates",
        "OpenPGP keys",
        "S/MIME content cipher",
    ];
    html! {
        p.hint {
            "Partner keys are harvested from signed mail automatically, or imported here. Domain keys of federated partner clusters appear here too."
        }
        (table("partners", &head, &rows, "No partner keys yet."))
        p {
            a href="/ca.pem" download { "Download the cluster's CA certificate" }
            " (for partners' trust stores)."
        }
        @if let Some(csrf) = v.writer() { (forms(csrf)) }
    }
}

fn forms(csrf: &str) -> Markup {
    html! {
        div.grid {
            section {
                h2 { "Import partner keys" }
                form method="post" action="/partners/import" enctype="multipart/form-data" {
                    (csrf_field(csrf))
                    label for="pfile" { "Certificates (PEM) or OpenPGP public keys" }
                    input type="file" #pfile name="file" required;
                    button type="submit" { "Import" }
                }
            }
            section {
                h2 { "Add S/MIME trust anchors" }
                form method="post" action="/trust/add" enctype="multipart/form-data" {
                    (csrf_field(csrf))
                    label for="tfile" { "Root certificates (PEM)" }
                    input type="file" #tfile name="file" required;
                    button type="submit" { "Trust" }
                }
            }
        }
    }
}

pub async fn import(State(app): State<App>, a: Admin, m: Multipart) -> Response {
    let request = |data| req::ImportPublic { data };
    let done = |who: Vec<String>| format!("Imported keys of {}.", who.join(", "));
    upload(app, a, m, request, done).await
}

pub async fn trust_add(State(app): State<App>, a: Admin, m: Multipart) -> Response {
    let done = |n: usize| format!("{n} trust anchors added.");
    upload(app, a, m, |data| req::TrustAdd { data }, done).await
}

/// A file form: its `file` as base64 in one request, back to the partners page.
async fn upload<R: Request>(
    app: App,
    a: Admin,
    m: Multipart,
    request: impl FnOnce(String) -> R,
    done: impl FnOnce(R::Response) -> String,
) -> Response {
    let f = match Upload::read(m).await {
        Ok(f) => f,
        Err(e) => return back("/partners", Err(e)),
    };
    if !a.csrf_ok(&f.text("csrf")) {
        return csrf_refused();
    }
    let r = app.call(&a.actor, request(f.base64("file"))).await;
    back("/partners", r.map(done).map_err(|e| e.message))
}

pub async fn ca_pem(State(app): State<App>, a: Admin) -> Response {
    match app.call(&a.actor, req::CaCert {}).await {
        Ok(pem) => download("postern-ca.pem", "application/x-pem-file", pem),
        Err(e) => back("/partners", Err(e.message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_api::Role;

    #[test]
    fn partners_are_escaped_and_readonly_gets_no_forms() {
        let list = vec![Partner {
            address: "'><img src=x onerror=alert(1)>".into(),
            smime: vec![],
            smime_gcm: true,
            pgp: vec![],
        }];
        let ro = Viewer::new("ro", Role::Readonly, "tok");
        let out = body(&list, &ro).into_string();
        assert!(!out.contains("<img"), "{out}");
        assert!(
            out.contains("<td>'&gt;&lt;img src=x onerror=alert(1)&gt;</td>"),
            "{out}"
        );
        assert!(out.contains("AES-GCM") && out.contains("href=\"/ca.pem\""));
        assert!(!out.contains("<form"), "{out}");
        let admin = Viewer::new("root", Role::Admin, "tok");
        let out = body(&list, &admin).into_string();
        assert!(
            out.contains("action=\"/partners/import\"") && out.contains("action=\"/trust/add\"")
        );
    }
}
