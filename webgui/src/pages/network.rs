//! This node's own network settings: static addresses, gateways, DNS and NTP, or DHCP.
//! A readonly viewer sees the form disabled.

use axum::Form;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::{Markup, html};
use postern_api::command::requests as req;
use postern_api::views::{Network, NetworkMode, NetworkSettings};
use serde::Deserialize;

use super::layout::{Viewer, csrf_field, error_line};
use super::{Flash, act, render};
use crate::App;
use crate::app::Admin;

pub async fn page(State(app): State<App>, a: Admin, Query(f): Query<Flash>) -> Response {
    let network = app
        .call(&a.actor, req::NetworkGet {})
        .await
        .map_err(|e| e.message);
    let body = body(&network, &Viewer::of(&a));
    render(&app, &a, "Network", "/network", &f, body)
}

/// The mode in force and the settings form (disabled for a readonly viewer).
pub fn body(network: &Result<Network, String>, v: &Viewer<'_>) -> Markup {
    let (settings, mode) = match network {
        Ok(n) => (n.settings.clone(), n.mode),
        Err(_) => (NetworkSettings::default(), NetworkMode::Dhcp),
    };
    html! {
        p.hint {
            "This node's own network settings (each node has its own; they are kept on its data partition). No address: DHCP on every Ethernet interface. A change is applied at once: if the address changes, this page moves with it."
        }
        @if let Err(e) = network { (error_line(e)) }
        p {
            "Now: "
            strong #network-mode {
                @match mode {
                    NetworkMode::Static => "static addresses",
                    NetworkMode::Dhcp => "DHCP",
                }
            }
        }
        section { h2 { "Settings" } (form(&settings, v)) }
    }
}

fn form(n: &NetworkSettings, v: &Viewer<'_>) -> Markup {
    let off = !v.can_change();
    html! {
        form method="post" action="/network" #network {
            (csrf_field(v.csrf))
            label for="addresses" { "Addresses with prefix length, one per line (empty: DHCP)" }
            textarea #addresses name="addresses" rows="3" disabled[off] { (n.addresses.join("\n")) }
            label for="gateways" { "Gateways" }
            input type="text" #gateways name="gateways" value=(n.gateways.join(" ")) disabled[off];
            label for="dns" { "DNS servers" }
            input type="text" #dns name="dns" value=(n.dns.join(" ")) disabled[off];
            label for="ntp" { "NTP servers" }
            input type="text" #ntp name="ntp" value=(n.ntp.join(" ")) disabled[off];
            label for="interface" { "Interface (empty: every Ethernet interface)" }
            input type="text" #interface name="interface" value=(n.interface) disabled[off];
            button type="submit" #network-save disabled[off] { "Save and apply" }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct NetworkForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    interface: String,
    #[serde(default)]
    addresses: String,
    #[serde(default)]
    gateways: String,
    #[serde(default)]
    dns: String,
    #[serde(default)]
    ntp: String,
}

/// Whitespace- or comma-separated entries.
fn entries(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect()
}

pub async fn set(State(app): State<App>, a: Admin, Form(f): Form<NetworkForm>) -> Response {
    let settings = NetworkSettings {
        interface: f.interface.trim().to_owned(),
        addresses: entries(&f.addresses),
        gateways: entries(&f.gateways),
        dns: entries(&f.dns),
        ntp: entries(&f.ntp),
    };
    let done = if settings.addresses.is_empty() {
        "Network: DHCP; applied.".to_owned()
    } else {
        format!("Network: {}; applied.", settings.addresses.join(", "))
    };
    act(
        &app,
        &a,
        &f.csrf,
        req::NetworkSet { settings },
        "/network",
        done,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_api::Role;

    fn network() -> Network {
        Network {
            settings: NetworkSettings {
                interface: "eth0\"><script>".into(),
                addresses: vec!["192.0.2.10/24".into(), "2001:db8::25/64".into()],
                gateways: vec!["192.0.2.1".into()],
                dns: vec!["192.0.2.53".into(), "198.51.100.53".into()],
                ntp: vec![],
            },
            mode: NetworkMode::Static,
        }
    }

    #[test]
    fn the_form_shows_the_settings_escaped() {
        let admin = Viewer::new("root", Role::Admin, "tok");
        let out = body(&Ok(network()), &admin).into_string();
        assert!(out.contains("<strong id=\"network-mode\">static addresses</strong>"));
        assert!(
            out.contains(">192.0.2.10/24\n2001:db8::25/64</textarea>"),
            "{out}"
        );
        assert!(out.contains("value=\"192.0.2.53 198.51.100.53\""));
        assert!(
            out.contains("value=\"eth0&quot;&gt;&lt;script&gt;\""),
            "{out}"
        );
        assert!(!out.contains("disabled"), "{out}");
        assert!(out.contains("id=\"network-save\""));
    }

    #[test]
    fn a_readonly_viewer_sees_the_form_disabled() {
        let ro = Viewer::new("ro", Role::Readonly, "tok");
        let out = body(&Ok(network()), &ro).into_string();
        assert_eq!(out.matches(" disabled").count(), 6, "{out}");
        assert!(
            out.contains("<button id=\"network-save\" type=\"submit\" disabled>"),
            "{out}"
        );
        let failed = body(&Err("unreachable".into()), &ro).into_string();
        assert!(failed.contains("<strong id=\"network-mode\">DHCP</strong>"));
        assert!(failed.contains("<p class=\"notice error\">unreachable</p>"));
    }

    #[test]
    fn entries_split_on_commas_and_space() {
        assert_eq!(
            entries("192.0.2.53, 198.51.100.53\n x"),
            ["192.0.2.53", "198.51.100.53", "x"]
        );
    }
}
