//! Virtual IPs: where each is, who holds it and for how long; adding, moving and removing
//! one (on the cluster page; the dashboard shows the table without its buttons).

use axum::Form;
use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};
use postern_api::command::requests as req;
use postern_api::views::Vip;
use serde::Deserialize;

use super::layout::{self, button, csrf_field};
use super::{act, back, csrf_refused, perform};
use crate::App;
use crate::app::Admin;

/// The virtual IP table; with `csrf`, a remove button for each.
pub fn table(vips: &[Vip], csrf: Option<&str>) -> Markup {
    let rows: Vec<Vec<Markup>> = vips
        .iter()
        .map(|x| {
            let lease = x.lease_ms_left.map(|l| l.to_string()).unwrap_or_default();
            let holder = html! {
                @match x.holder {
                    Some(n) => { "node " (n) },
                    None => span.badge.bad { "nobody" },
                }
            };
            let mut row = vec![
                html! { code { (x.address) } },
                html! { (x.interface) },
                holder,
                html! { (lease) },
            ];
            if let Some(c) = csrf {
                row.push(button(
                    "/vips/remove",
                    c,
                    &[("address", &x.address)],
                    "Remove",
                    "small danger",
                ));
            }
            row
        })
        .collect();
    let mut head = vec!["Address", "Interface", "Holder", "Lease left (ms)"];
    if csrf.is_some() {
        head.push("");
    }
    layout::table("vips", &head, &rows, "No virtual IPs configured.")
}

/// The add and move forms (for an admin).
pub fn forms(csrf: &str) -> Markup {
    html! {
        div.grid {
            section {
                h2 { "Add a virtual IP" }
                form method="post" action="/vips/add" {
                    (csrf_field(csrf))
                    label for="vaddress" { "Address/prefix" }
                    input type="text" #vaddress name="address" required placeholder="192.0.2.25/24";
                    label for="interface" { "Interface" }
                    input type="text" #interface name="interface" required placeholder="eth0";
                    label for="preferred" { "Preferred nodes (ids, comma separated)" }
                    input type="text" #preferred name="preferred";
                    button type="submit" { "Add" }
                }
            }
            section {
                h2 { "Move a virtual IP" }
                form method="post" action="/vips/move" {
                    (csrf_field(csrf))
                    label for="maddress" { "Address/prefix" }
                    input type="text" #maddress name="address" required;
                    label for="to" { "To node" }
                    input type="number" #to name="to" required min="1";
                    button type="submit" { "Move" }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct VipForm {
    #[serde(default)]
    csrf: String,
    address: String,
    #[serde(default)]
    interface: String,
    #[serde(default)]
    preferred: String,
    #[serde(default)]
    to: Option<u64>,
}

pub async fn add(State(app): State<App>, a: Admin, Form(f): Form<VipForm>) -> Response {
    if !a.csrf_ok(&f.csrf) {
        return csrf_refused();
    }
    let preferred: Result<Vec<u64>, _> = f
        .preferred
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::parse)
        .collect();
    let Ok(preferred) = preferred else {
        return back(
            "/cluster",
            Err("Preferred nodes must be node ids, e.g. 1,2.".into()),
        );
    };
    let add = req::VipAdd {
        address: f.address.trim().to_owned(),
        interface: f.interface.trim().to_owned(),
        preferred,
    };
    let done = format!("Virtual IP {} added.", f.address);
    perform(&app, &a, add, "/cluster", done).await
}

pub async fn move_to(State(app): State<App>, a: Admin, Form(f): Form<VipForm>) -> Response {
    if !a.csrf_ok(&f.csrf) {
        return csrf_refused();
    }
    let Some(to) = f.to else {
        return back("/cluster", Err("Name the node to move it to.".into()));
    };
    let done = format!("Virtual IP {} moves to node {to}.", f.address);
    let mv = req::VipMove {
        address: f.address,
        to,
    };
    perform(&app, &a, mv, "/cluster", done).await
}

pub async fn remove(State(app): State<App>, a: Admin, Form(f): Form<VipForm>) -> Response {
    let done = format!("Virtual IP {} removed.", f.address);
    let rm = req::VipRemove { address: f.address };
    act(&app, &a, &f.csrf, rm, "/cluster", done).await
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn vips_are_escaped_and_buttons_need_a_token() {
        let out = table(&vips(), None).into_string();
        assert!(!out.contains("<script>"), "{out}");
        assert!(
            out.contains("<code>192.0.2.25/24&quot;&gt;&lt;script&gt;</code>"),
            "{out}"
        );
        assert!(
            out.contains("<span class=\"badge bad\">nobody</span>") && out.contains("<td>900</td>")
        );
        assert!(!out.contains("<form"), "{out}");
        let mut held = vips();
        held[0].holder = Some(2);
        held[0].lease_ms_left = None;
        let out = table(&held, Some("tok")).into_string();
        assert!(out.contains("<td>node 2</td><td></td>"), "{out}");
        assert!(out.contains("action=\"/vips/remove\""), "{out}");
        let none = table(&[], None).into_string();
        assert_eq!(
            none,
            "<p class=\"empty\" id=\"vips\">No virtual IPs configured.</p>"
        );
    }
}
