//! The cluster: members (and removing one), join credentials for a new node, and the
//! virtual IPs ([`super::vips`]). The members table is on the dashboard too, without its
//! buttons.

use axum::Form;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::{Markup, html};
use postern_api::command::requests as req;
use postern_api::views::{ClusterStatus, Vip};
use serde::Deserialize;

use super::layout::{Viewer, button, csrf_field, error_line, table};
use super::{Flash, act, back, csrf_refused, download, render, vips};
use crate::App;
use crate::app::Admin;

pub async fn page(State(app): State<App>, a: Admin, Query(f): Query<Flash>) -> Response {
    let (status, vips) = tokio::join!(
        app.call(&a.actor, req::ClusterStatus {}),
        app.call(&a.actor, req::VipList {}),
    );
    let status = status.map_err(|e| e.message);
    let body = body(&status, &vips.unwrap_or_default(), &Viewer::of(&a));
    render(&app, &a, "Cluster", "/cluster", &f, body)
}

/// The cluster page: members, the credentials export, virtual IPs and their forms.
pub fn body(status: &Result<ClusterStatus, String>, vips: &[Vip], v: &Viewer<'_>) -> Markup {
    html! {
        @match status {
            Ok(st) => (members(st, v.writer())),
            Err(e) => (error_line(e)),
        }
        @if let Some(csrf) = v.writer() { (export_form(csrf)) }
        h2 { "Virtual IPs" }
        (vips::table(vips, v.writer()))
        @if let Some(csrf) = v.writer() { (vips::forms(csrf)) }
    }
}

/// The members table; with `csrf`, a remove button for each other member.
pub fn members(st: &ClusterStatus, csrf: Option<&str>) -> Markup {
    let rows: Vec<Vec<Markup>> = st
        .members
        .iter()
        .map(|(&id, addr)| {
            let lag = st
                .lag
                .get(&id.to_string())
                .map(u64::to_string)
                .unwrap_or_default();
            let mut row = vec![
                html! { (id) },
                html! { (addr) },
                role(st, id),
                html! { (lag) },
            ];
            if let Some(c) = csrf {
                let me = id == st.node_id;
                let id = id.to_string();
                let remove = button(
                    "/cluster/remove",
                    c,
                    &[("id", &id)],
                    "Remove",
                    "small danger",
                );
                row.push(if me {
                    html! {}
                } else {
                    remove
                });
            }
            row
        })
        .collect();
    let mut head = vec!["Node", "Cluster address", "Role", "Lag (entries)"];
    if csrf.is_some() {
        head.push("");
    }
    html! {
        p {
            "Cluster " code #cluster-id { (st.cluster_id) }
            ", term " (st.term) ", applied " (st.applied) "."
        }
        (table("members", &head, &rows, "No members."))
    }
}

/// A member's role badges: leader, voter or learner, and whether it is this node.
fn role(st: &ClusterStatus, id: u64) -> Markup {
    html! {
        @if id == st.leader {
            span.badge.good { "leader" }
        } @else if st.voters.contains(&id) {
            span.badge { "voter" }
        } @else {
            span.badge { "learner" }
        }
        @if id == st.node_id { " " span.badge { "this node" } }
    }
}

fn export_form(csrf: &str) -> Markup {
    html! {
        section {
            h2 { "Add a node" }
            p.hint {
                "Export credentials here, then open the new node's setup page, choose “Join an existing cluster”, upload the file and give this node's cluster address."
            }
            form method="post" action="/cluster/credentials" #export {
                (csrf_field(csrf))
                label for="ttl" { "Valid for (minutes)" }
                input type="number" #ttl name="minutes" value="60" min="1" max="10080";
                button type="submit" #export-submit { "Export credentials" }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CredentialsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default = "sixty")]
    minutes: u64,
}

fn sixty() -> u64 {
    60
}

/// The credentials file for one join, as a download.
pub async fn credentials(
    State(app): State<App>,
    a: Admin,
    Form(f): Form<CredentialsForm>,
) -> Response {
    if !a.csrf_ok(&f.csrf) {
        return csrf_refused();
    }
    let ttl_secs = f.minutes.clamp(1, 10_080) * 60;
    match app
        .call(&a.actor, req::ClusterExportCredentials { ttl_secs })
        .await
    {
        Ok(c) => {
            let short: String = c.cluster_id.chars().take(8).collect();
            let json = serde_json::to_string_pretty(&c).unwrap_or_default();
            download(
                &format!("postern-credentials-{short}.json"),
                "application/json",
                json,
            )
        }
        Err(e) => back("/cluster", Err(e.message)),
    }
}

#[derive(Debug, Deserialize)]
pub struct IdForm {
    #[serde(default)]
    csrf: String,
    id: u64,
}

pub async fn remove(State(app): State<App>, a: Admin, Form(f): Form<IdForm>) -> Response {
    let done = format!("Node {} removed.", f.id);
    act(
        &app,
        &a,
        &f.csrf,
        req::ClusterRemove { id: f.id },
        "/cluster",
        done,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_api::Role;

    fn status() -> ClusterStatus {
        ClusterStatus {
            cluster_id: "c-<1>".into(),
            node_id: 1,
            leader: 1,
            term: 3,
            applied: 42,
            voters: vec![1, 2],
            learners: vec![3],
            members: [
                (1, "192.0.2.1:7946".into()),
                (2, "<b>x</b>".into()),
                (3, "192.0.2.3:7946".into()),
            ]
            .into(),
            lag: [("2".to_owned(), 7)].into(),
        }
    }

    fn vips() -> Vec<Vip> {
        vec![Vip {
            address: "192.0.2.25/24\"><script>".into(),
            interface: "eth0".into(),
            preferred: vec![],
            move_to: None,
            holder: None,
            lease_ms_left: Some(900),
        }]
    }

    #[test]
    fn members_show_roles_and_escape_addresses() {
        let out = members(&status(), None).into_string();
        assert!(out.contains("<code id=\"cluster-id\">c-&lt;1&gt;</code>, term 3, applied 42."));
        assert!(out.contains("<table id=\"members\">"));
        assert!(out.contains("leader") && out.contains("voter") && out.contains("learner"));
        assert!(out.contains("this node"));
        assert!(
            out.contains("&lt;b&gt;x&lt;/b&gt;") && !out.contains("<b>x"),
            "{out}"
        );
        assert!(out.contains("<td>7</td>"), "{out}");
        assert!(!out.contains("/cluster/remove"));
    }

    #[test]
    fn a_readonly_viewer_gets_no_write_forms() {
        let ro = Viewer::new("ro", Role::Readonly, "t");
        let out = body(&Ok(status()), &vips(), &ro).into_string();
        for form in [
            "/cluster/remove",
            "/cluster/credentials",
            "/vips/add",
            "/vips/move",
            "/vips/remove",
            "<form",
        ] {
            assert!(!out.contains(form), "{form}: {out}");
        }
        assert!(!out.contains("<script>"), "{out}");
        assert!(out.contains("nobody") && out.contains("<td>900</td>"));
        let admin = Viewer::new("root", Role::Admin, "tok");
        let out = body(&Ok(status()), &vips(), &admin).into_string();
        for form in [
            "id=\"export\"",
            "/cluster/remove",
            "/vips/add",
            "/vips/move",
            "/vips/remove",
        ] {
            assert!(out.contains(form), "{form}");
        }
        // No button to remove this node itself: two others can be removed.
        assert_eq!(out.matches("action=\"/cluster/remove\"").count(), 2);
        let failed = body(&Err("no quorum".into()), &[], &admin).into_string();
        assert!(failed.contains("<p class=\"notice error\">no quorum</p>"));
    }
}
