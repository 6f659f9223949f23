//! The audit log: the latest administrative actions of the whole cluster.

use axum::extract::{Query, State};
use axum::response::Response;
use maud::{Markup, html};
use postern_api::command::requests as req;
use postern_api::views::AuditEntry;

use super::layout::{datetime, table};
use super::{Flash, render};
use crate::App;
use crate::app::Admin;

pub async fn page(State(app): State<App>, a: Admin, Query(f): Query<Flash>) -> Response {
    let list = app
        .call(&a.actor, req::AuditList { limit: 200 })
        .await
        .unwrap_or_default();
    render(&app, &a, "Audit log", "/audit", &f, body(&list))
}

pub fn body(list: &[AuditEntry]) -> Markup {
    let rows: Vec<Vec<Markup>> = list
        .iter()
        .map(|e| {
            vec![
                html! { (datetime(e.time)) },
                html! { (e.actor) },
                html! { (e.via) },
                html! { (e.action) },
                html! { (e.detail) },
                html! { (e.result) },
                html! { (e.node) },
            ]
        })
        .collect();
    let head = [
        "Time (UTC)",
        "Who",
        "Via",
        "Action",
        "Object",
        "Result",
        "Node",
    ];
    table("audit", &head, &rows, "No administrative actions yet.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_escaped() {
        let e = AuditEntry {
            time: 0,
            actor: "token:<ci>".into(),
            via: "api".into(),
            action: "setting-set".into(),
            detail: "relay.downstream = \"><script>".into(),
            result: "ok".into(),
            node: 3,
        };
        let out = body(&[e]).into_string();
        assert!(!out.contains("<script>") && !out.contains("<ci>"), "{out}");
        assert!(out.contains("<td>1970-01-01 00:00:00</td><td>token:&lt;ci&gt;</td>"));
        assert!(
            out.contains(
                "<td>relay.downstream = &quot;&gt;&lt;script&gt;</td><td>ok</td><td>3</td>"
            )
        );
    }
}
