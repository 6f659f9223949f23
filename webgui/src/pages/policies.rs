//! Policies: Postern's replicated settings ([`Setting::ALL`]) with their values and
//! meanings; an admin changes one or resets it to the configuration file's value.

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::{Markup, html};
use postern_api::Setting;
use postern_api::command::requests as req;
use serde::Deserialize;

use super::layout::{Viewer, button, csrf_field, table};
use super::{Flash, act, render};
use crate::App;
use crate::app::Admin;

pub async fn page(State(app): State<App>, a: Admin, Query(f): Query<Flash>) -> Response {
    let settings = app
        .call(&a.actor, req::SettingList {})
        .await
        .unwrap_or_default();
    let body = body(&settings, &Viewer::of(&a));
    render(&app, &a, "Policies", "/policies", &f, body)
}

/// The settings table (every setting Postern reads, set or not) and the change form.
pub fn body(settings: &BTreeMap<String, String>, v: &Viewer<'_>) -> Markup {
    let rows: Vec<Vec<Markup>> = Setting::ALL
        .iter()
        .map(|s| row(*s, settings.get(s.key()), v))
        .collect();
    html! {
        p.hint {
            "Cluster-wide settings; they override each node's configuration file. Subject tags are the markers users put in the subject line to ask for a treatment."
        }
        (table("settings", &["Setting", "Value", "Meaning", ""], &rows, ""))
        @if let Some(csrf) = v.writer() { (form(csrf)) }
    }
}

fn row(s: Setting, value: Option<&String>, v: &Viewer<'_>) -> Vec<Markup> {
    let shown = html! {
        @match value {
            Some(value) => code { (value) },
            None => span.hint { "configuration file" },
        }
    };
    let mut row = vec![html! { code { (s.key()) } }, shown, html! { (s.meaning()) }];
    if let Some(csrf) = v.writer() {
        row.push(match value {
            Some(_) => button(
                "/policies/unset",
                csrf,
                &[("key", s.key())],
                "Reset",
                "small",
            ),
            None => html! {},
        });
    }
    row
}

fn form(csrf: &str) -> Markup {
    html! {
        section {
            h2 { "Change a setting" }
            form method="post" action="/policies/set" #set {
                (csrf_field(csrf))
                label for="key" { "Setting" }
                select #key name="key" {
                    @for s in Setting::ALL { option value=(s.key()) { (s.key()) } }
                }
                label for="value" { "Value" }
                input type="text" #value name="value" required;
                button type="submit" { "Save" }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct SettingForm {
    #[serde(default)]
    csrf: String,
    key: String,
    #[serde(default)]
    value: String,
}

pub async fn set(State(app): State<App>, a: Admin, Form(f): Form<SettingForm>) -> Response {
    let done = format!("{} saved.", f.key);
    let set = req::SettingSet {
        key: f.key,
        value: f.value.trim().to_owned(),
    };
    act(&app, &a, &f.csrf, set, "/policies", done).await
}

pub async fn unset(State(app): State<App>, a: Admin, Form(f): Form<SettingForm>) -> Response {
    let done = format!("{} reset to the configuration file's value.", f.key);
    act(
        &app,
        &a,
        &f.csrf,
        req::SettingUnset { key: f.key },
        "/policies",
        done,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_api::Role;

    #[test]
    fn values_are_escaped_and_readonly_gets_no_forms() {
        let settings: BTreeMap<String, String> =
            [("relay.downstream".to_owned(), "<i>mx</i>:25".to_owned())].into();
        let ro = Viewer::new("ro", Role::Readonly, "tok");
        let out = body(&settings, &ro).into_string();
        assert!(
            out.contains("<code>&lt;i&gt;mx&lt;/i&gt;:25</code>"),
            "{out}"
        );
        assert!(out.contains("crypto.internal_domains") && out.contains("configuration file"));
        assert!(!out.contains("<form"), "{out}");
        let admin = Viewer::new("root", Role::Admin, "tok");
        let out = body(&settings, &admin).into_string();
        assert_eq!(out.matches("action=\"/policies/unset\"").count(), 1);
        assert!(
            out.contains("id=\"set\"") && out.contains("<option value=\"crypto.always_encrypt\">")
        );
    }
}
