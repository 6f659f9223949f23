//! Federation on the partners page: our domains with their domain keys and the DNS records
//! to publish, and the partner domains pinned — their keys, where each came from, how far
//! it is trusted, their policy — with the admin's import, look-up and forget.

use axum::Form;
use axum::extract::{Multipart, Path, State};
use axum::response::Response;
use maud::{Markup, html};
use postern_api::command::requests as req;
use postern_api::views::{Domain, PartnerDomain};
use serde::Deserialize;

use super::layout::{Viewer, button, csrf_field, datetime, table, url};
use super::{Upload, act, back, csrf_refused, download};
use crate::App;
use crate::app::Admin;

/// Our domains and the partner domains, for the partners page.
pub fn section(ours: &[Domain], partners: &[PartnerDomain], v: &Viewer<'_>) -> Markup {
    let csrf = v.writer();
    let our_rows: Vec<Vec<Markup>> = ours
        .iter()
        .map(|d| {
            let current = d.keys.iter().find(|k| k.current);
            vec![
                html! { (d.domain) },
                html! { code { (current.map(|k| k.fingerprint.as_str()).unwrap_or("not made yet")) } },
                html! { (d.keys.len()) },
                html! { (d.mode.as_deref().unwrap_or("off")) " " (d.max_age.map(|a| format!("(max_age {a} s)")).unwrap_or_default()) },
                html! { a href={ "/domains/" (url(&d.domain)) "/dns.txt" } download { "DNS records" } },
            ]
        })
        .collect();
    let partner_rows: Vec<Vec<Markup>> = partners
        .iter()
        .map(|p| {
            let mut row = vec![
                html! { (p.domain) },
                html! {
                    @for k in &p.keys {
                        div {
                            code { (k.fingerprint) } " " (k.trust) " (" (k.sources.join(", ")) ")"
                            @if k.revoked { " revoked" }
                            br; span.hint { "last seen " (datetime(k.last_seen)) }
                        }
                    }
                    @for c in &p.certs {
                        div.cert {
                            "S/MIME " code { (c.fingerprint) } " " (c.trust) " (" (c.sources.join(", ")) ")"
                            br; span.hint { (c.subject) ", issued by " (c.issuer) ", valid until " (datetime(c.not_after)) }
                        }
                    }
                },
                html! {
                    (p.mode.as_deref().unwrap_or("none"))
                    @if let Some(a) = p.max_age { " (max_age " (a) " s)" }
                    @if p.enforced { " enforced" }
                },
                html! { (p.policy_seen.map(datetime).unwrap_or_default()) },
            ];
            if let Some(c) = csrf {
                row.push(html! {
                    (button("/domains/refresh", c, &[("domain", p.domain.as_str())], "Look up now", "small"))
                    (button("/domains/forget", c, &[("domain", p.domain.as_str())], "Forget", "small danger"))
                });
            }
            row
        })
        .collect();
    let mut partner_head = vec!["Partner domain", "Domain keys", "Policy", "Policy seen"];
    if csrf.is_some() {
        partner_head.push("");
    }
    html! {
        h2 { "Our domains" }
        p.hint {
            "Each internal domain has a domain key (domainkey@DOMAIN), announced on every outbound message, served by the Web Key Directory, and publishable in DNS (download the records for the domain's DNSSEC-signed zone)."
        }
        (table("domains", &["Domain", "Current key", "Keys", "Publishes", ""], &our_rows, "No internal domains."))
        h2 { "Partner domains" }
        p.hint {
            "Learned from DNSSEC (OPENPGPKEY, SMIMEA), the Web Key Directory or the signed announcement on their mail (trust on first use), or imported. Mail to them without a personal key is encrypted to their domain key: a verified OpenPGP key first, then an S/MIME domain certificate."
        }
        (table("partner-domains", &partner_head, &partner_rows, "No partner domains yet."))
        @if let Some(c) = csrf {
            section {
                h2 { "Import a partner's domain key" }
                form method="post" action="/domains/import" enctype="multipart/form-data" #domain-import {
                    (csrf_field(c))
                    label for="ddomain" { "Partner domain" }
                    input type="text" #ddomain name="domain" required;
                    label for="dfile" { "OpenPGP domain key, or S/MIME domain certificate (PEM or DER)" }
                    input type="file" #dfile name="file" required;
                    button type="submit" { "Pin" }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct DomainForm {
    #[serde(default)]
    csrf: String,
    domain: String,
}

pub async fn refresh(State(app): State<App>, a: Admin, Form(f): Form<DomainForm>) -> Response {
    let done = format!("{} looked up.", f.domain);
    let r = req::PartnerDomainRefresh { domain: f.domain };
    act(&app, &a, &f.csrf, r, "/partners", done).await
}

pub async fn forget(State(app): State<App>, a: Admin, Form(f): Form<DomainForm>) -> Response {
    let done = format!("{} forgotten.", f.domain);
    let r = req::PartnerDomainForget { domain: f.domain };
    act(&app, &a, &f.csrf, r, "/partners", done).await
}

pub async fn import(State(app): State<App>, a: Admin, m: Multipart) -> Response {
    let f = match Upload::read(m).await {
        Ok(f) => f,
        Err(e) => return back("/partners", Err(e)),
    };
    if !a.csrf_ok(&f.text("csrf")) {
        return csrf_refused();
    }
    let domain = f.text("domain");
    let r = req::PartnerDomainImport {
        domain: domain.clone(),
        data: f.base64("file"),
    };
    let r = app.call(&a.actor, r).await;
    back(
        "/partners",
        r.map(|_| format!("Domain key of {domain} pinned."))
            .map_err(|e| e.message),
    )
}

pub async fn dns(State(app): State<App>, a: Admin, Path(domain): Path<String>) -> Response {
    let domain = domain.trim_end_matches("/dns.txt").to_owned();
    match app.call(&a.actor, req::DomainDnsRecords { domain }).await {
        Ok(r) => {
            let mut text = format!("; DNS records of {} (Postern)\n", r.domain);
            for line in &r.records {
                text.push_str(line);
                text.push('\n');
            }
            download(&format!("{}.zone.txt", r.domain), "text/plain", text)
        }
        Err(e) => back("/partners", Err(e.message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_api::Role;
    use postern_api::views::{PinnedCert, PinnedKey};

    #[test]
    fn partner_domains_are_escaped_and_readonly_gets_no_forms() {
        let partners = vec![PartnerDomain {
            domain: "<b>evil</b>.example".into(),
            keys: vec![PinnedKey {
                fingerprint: "AB\"CD".into(),
                trust: "tofu".into(),
                sources: vec!["in-band".into()],
                first_seen: 1,
                last_seen: 2,
                revoked: false,
            }],
            certs: vec![PinnedCert {
                fingerprint: "EF01".into(),
                subject: "CN=<i>partner</i>".into(),
                issuer: "CN=Vendor CA".into(),
                not_after: 4,
                trust: "verified".into(),
                sources: vec!["imported".into()],
                first_seen: 1,
                last_seen: 2,
            }],
            mode: Some("enforce".into()),
            max_age: Some(60),
            policy_seen: Some(3),
            policy_source: Some("wkd".into()),
            enforced: true,
        }];
        let ro = Viewer::new("ro", Role::Readonly, "tok");
        let out = section(&[], &partners, &ro).into_string();
        assert!(
            !out.contains("<b>evil") && !out.contains("<i>partner"),
            "{out}"
        );
        assert!(
            out.contains("S/MIME <code>EF01</code> verified (imported)"),
            "{out}"
        );
        assert!(out.contains("&lt;b&gt;evil&lt;/b&gt;.example"), "{out}");
        assert!(out.contains("enforced") && out.contains("tofu"));
        assert!(!out.contains("<form"), "{out}");
        let admin = Viewer::new("root", Role::Admin, "tok");
        let out = section(&[], &partners, &admin).into_string();
        assert!(
            out.contains("action=\"/domains/import\"")
                && out.contains("action=\"/domains/forget\"")
        );
    }
}
