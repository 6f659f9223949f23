//! The message trace: the last mail transactions this node handled (never bodies).

use axum::extract::{Query, State};
use axum::response::Response;
use maud::{Markup, html};
use postern_api::command::requests as req;
use postern_api::views::TraceRecord;

use super::layout::{datetime, lines, table};
use super::{Flash, render};
use crate::App;
use crate::app::Admin;

pub async fn page(State(app): State<App>, a: Admin, Query(f): Query<Flash>) -> Response {
    let list = app
        .call(&a.actor, req::TraceList { limit: 200 })
        .await
        .unwrap_or_default();
    render(&app, &a, "Message trace", "/trace", &f, body(&list))
}

pub fn body(list: &[TraceRecord]) -> Markup {
    let rows: Vec<Vec<Markup>> = list
        .iter()
        .map(|t| {
            vec![
                html! { (datetime(t.time)) },
                html! { (t.peer) },
                html! { (t.sender) },
                lines(&t.recipients),
                html! { (t.size) },
                html! { (t.treatment) },
                html! { (t.reply) },
            ]
        })
        .collect();
    let head = [
        "Time (UTC)",
        "Client",
        "Sender",
        "Recipients",
        "Bytes",
        "Treatment",
        "Reply to the client",
    ];
    html! {
        p.hint { "The last transactions this node handled (never message bodies)." }
        (table("trace", &head, &rows, "No mail handled yet."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactions_are_escaped() {
        let t = TraceRecord {
            time: 1_795_000_000,
            session: "s1".into(),
            peer: "192.0.2.9".into(),
            sender: "<script>x</script>@evil.example".into(),
            recipients: vec!["bob@partner.example".into(), "a&b@corp.example".into()],
            size: 1234,
            treatment: "signed".into(),
            code: 250,
            reply: "250 \"ok\"".into(),
        };
        let out = body(&[t]).into_string();
        assert!(!out.contains("<script>"), "{out}");
        assert!(
            out.contains("<td>2026-11-18 11:06:40</td><td>192.0.2.9</td>"),
            "{out}"
        );
        assert!(out.contains("<td>bob@partner.example<br>a&amp;b@corp.example</td><td>1234</td>"));
        assert!(out.contains("<td>250 &quot;ok&quot;</td>"));
        assert!(body(&[]).into_string().contains("No mail handled yet."));
    }
}
