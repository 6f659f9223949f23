//! The dashboard: mail counters and the live throughput chart (static/app.js), the
//! cluster and its virtual IPs, hardware health, the system image, the last errors.

use axum::extract::{Query, State};
use axum::response::Response;
use maud::{Markup, html};
use postern_api::command::requests as req;
use postern_api::views::{
    ClusterStatus, Hardware, HardwareReport, HealthState, Stats, System, TraceRecord, Vip,
};

use super::cluster::members;
use super::layout::{datetime, error_line, lines, table};
use super::{Flash, render, vips};
use crate::App;
use crate::app::Admin;

/// What the dashboard shows; a part the daemon could not give is left out (or empty).
#[derive(Debug)]
pub struct Dashboard {
    pub status: Result<ClusterStatus, String>,
    pub vips: Vec<Vip>,
    pub stats: Option<Stats>,
    pub trace: Vec<TraceRecord>,
    pub hardware: Option<Hardware>,
    pub system: Option<System>,
}

pub async fn page(State(app): State<App>, a: Admin, Query(f): Query<Flash>) -> Response {
    let who = &a.actor;
    let (status, vips, stats, trace, hardware, system) = tokio::join!(
        app.call(who, req::ClusterStatus {}),
        app.call(who, req::VipList {}),
        app.call(who, req::Stats {}),
        app.call(who, req::TraceList { limit: 200 }),
        app.call(who, req::Hardware {}),
        app.call(who, req::System {}),
    );
    let d = Dashboard {
        status: status.map_err(|e| e.message),
        vips: vips.unwrap_or_default(),
        stats: stats.ok(),
        trace: trace.unwrap_or_default(),
        hardware: hardware.ok(),
        system: system.ok(),
    };
    render(&app, &a, "Dashboard", "/", &f, body(&d))
}

pub fn body(d: &Dashboard) -> Markup {
    html! {
        (counters(d.stats.as_ref()))
        h2 { "Throughput (messages per second, this node)" }
        canvas #throughput {}
        div.grid {
            section {
                h2 { "Cluster" }
                @match &d.status {
                    Ok(st) => (members(st, None)),
                    Err(e) => (error_line(e)),
                }
            }
            section { h2 { "Virtual IPs" } (vips::table(&d.vips, None)) }
        }
        (hardware(d.hardware.as_ref()))
        (system(d.system.as_ref()))
        h2 { "Last errors" }
        (errors(&d.trace))
    }
}

/// The counters (static/app.js keeps them current).
fn counters(stats: Option<&Stats>) -> Markup {
    let n = |f: fn(&Stats) -> u64| stats.map(|s| f(s).to_string()).unwrap_or_default();
    html! {
        div.counters {
            div.counter { "Delivered" b #count-delivered { (n(|s| s.delivered)) } }
            div.counter { "Refused / failed" b #count-refused { (n(|s| s.refused)) } }
            div.counter { "SMTP sessions" b #count-sessions { (n(|s| s.sessions)) } }
        }
    }
}

/// The last ten transactions that ended with an error reply.
fn errors(trace: &[TraceRecord]) -> Markup {
    let rows: Vec<Vec<Markup>> = trace
        .iter()
        .filter(|t| t.code >= 400)
        .take(10)
        .map(|t| {
            vec![
                html! { (datetime(t.time)) },
                html! { (t.sender) },
                html! { (t.reply) },
            ]
        })
        .collect();
    table(
        "errors",
        &["Time", "Sender", "Reply"],
        &rows,
        "No errors recently.",
    )
}

/// This node's overall hardware state and its problems, and every node's summary.
fn hardware(hw: Option<&Hardware>) -> Markup {
    let Some((hw, report)) = hw.and_then(|h| Some((h, h.report.as_ref()?))) else {
        return html! { section { h2 { "Hardware" } p.hint { "No hardware readings yet." } } };
    };
    let nodes: Vec<Vec<Markup>> = hw
        .cluster
        .iter()
        .map(|(id, r)| {
            let problems = lines(&r.problems);
            vec![
                html! { (id) },
                html! { (r.model) },
                html! { (r.overall) },
                problems,
            ]
        })
        .collect();
    html! {
        section {
            h2 { "Hardware" }
            (this_node(report))
            (table("hardware-nodes", &["Node", "Model", "Hardware", "Problems"], &nodes, ""))
        }
    }
}

fn this_node(report: &HardwareReport) -> Markup {
    let badge = match report.overall {
        HealthState::Ok => "badge good",
        _ => "badge bad",
    };
    let rows: Vec<Vec<Markup>> = report
        .components
        .iter()
        .filter(|c| c.state != HealthState::Ok)
        .map(|c| {
            let (kind, state) = (c.kind.as_str(), c.state.as_str());
            vec![
                html! { (kind) },
                html! { (c.name) },
                html! { (state) },
                html! { (c.detail) },
            ]
        })
        .collect();
    let head = ["Kind", "Component", "State", "Detail"];
    html! {
        p {
            "This node (" (report.model) "): "
            span class=(badge) #hardware-state { (report.overall.as_str()) }
        }
        (table("hardware-problems", &head, &rows, "All components in order."))
    }
}

/// The root slot and image version this node runs, and what became of the last update
/// (POST /api/v1/system/update, posternctl update).
fn system(sys: Option<&System>) -> Markup {
    let version = sys.and_then(|s| s.version.as_deref()).unwrap_or_default();
    let last = sys.and_then(|s| s.last_update.as_ref());
    html! {
        section {
            h2 { "System" }
            @match sys.and_then(|s| s.slot) {
                Some(slot) => p {
                    "Root slot " strong #system-slot { (slot.as_str()) }
                    ", version " span #system-version { (version) }
                },
                None => p.hint { (sys.map(|s| s.appliance.as_str()).unwrap_or_default()) },
            }
            @if let Some(u) = last {
                @let badge = match u.state.as_str() {
                    "running" | "installed" | "staged" | "installing" => "badge good",
                    _ => "badge bad",
                };
                p {
                    "Last update: " span class=(badge) #update-state { (u.state) }
                    " " (u.message) " (" (datetime(u.at)) ")"
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_api::views::PartKind;
    use postern_api::views::{Component, HardwareSummary, Slot, UpdateStatus};

    const HOSTILE: &str = "<script>alert('x')</script>&\"";

    fn dashboard() -> Dashboard {
        let report = HardwareReport {
            model: HOSTILE.into(),
            overall: HealthState::Degraded,
            components: vec![
                Component {
                    kind: PartKind::Psu,
                    name: "PS2 Status".into(),
                    state: HealthState::Degraded,
                    detail: "ac lost".into(),
                },
                Component {
                    kind: PartKind::Fan,
                    name: "FAN1".into(),
                    state: HealthState::Ok,
                    detail: "5400 RPM".into(),
                },
            ],
            disk_failing: false,
        };
        let summary = HardwareSummary {
            model: "A200".into(),
            overall: "degraded".into(),
            problems: vec!["PS2 Status: ac lost".into(), HOSTILE.into()],
            disk_failing: false,
            time: 0,
        };
        let trace = TraceRecord {
            time: 951_782_400,
            session: "s".into(),
            peer: "192.0.2.9".into(),
            sender: HOSTILE.into(),
            recipients: vec![],
            size: 10,
            treatment: "relayed".into(),
            code: 554,
            reply: "554 refused".into(),
        };
        Dashboard {
            status: Err("no leader".into()),
            vips: vec![],
            stats: Some(Stats {
                delivered: 5,
                refused: 1,
                sessions: 9,
                ..Stats::default()
            }),
            trace: vec![trace],
            hardware: Some(Hardware {
                report: Some(report),
                readings: None,
                events: None,
                sources: None,
                disabled: false,
                cluster: [(1, summary)].into(),
            }),
            system: Some(System {
                updates: true,
                slot: Some(Slot::B),
                version: Some("1.2".into()),
                appliance: String::new(),
                pending: false,
                last_update: Some(UpdateStatus {
                    state: "failed".into(),
                    slot: None,
                    version: String::new(),
                    message: HOSTILE.into(),
                    at: 0,
                }),
            }),
        }
    }

    #[test]
    fn the_dashboard_shows_typed_data_escaped() {
        let out = body(&dashboard()).into_string();
        assert!(!out.contains("<script>"), "{out}");
        for needle in [
            "<b id=\"count-delivered\">5</b>",
            "<b id=\"count-refused\">1</b>",
            "<b id=\"count-sessions\">9</b>",
            "<canvas id=\"throughput\"></canvas>",
            "<p class=\"notice error\">no leader</p>",
            "id=\"hardware-problems\"",
            "<td>psu</td><td>PS2 Status</td><td>degraded</td><td>ac lost</td>",
            "<span id=\"hardware-state\" class=\"badge bad\">degraded</span>",
            "PS2 Status: ac lost<br>&lt;script&gt;",
            "<strong id=\"system-slot\">b</strong>",
            "<span id=\"system-version\">1.2</span>",
            "<span id=\"update-state\" class=\"badge bad\">failed</span>",
            "<td>2000-02-29 00:00:00</td><td>&lt;script&gt;alert('x')&lt;/script&gt;&amp;&quot;</td>",
            "No virtual IPs configured.",
        ] {
            assert!(out.contains(needle), "{needle}: {out}");
        }
        assert!(
            !out.contains("FAN1"),
            "a component in order is not a problem"
        );
    }

    #[test]
    fn missing_parts_are_left_out() {
        let d = Dashboard {
            status: Err(String::new()),
            vips: vec![],
            stats: None,
            trace: vec![],
            hardware: None,
            system: None,
        };
        let out = body(&d).into_string();
        assert!(out.contains("<b id=\"count-delivered\"></b>"));
        assert!(out.contains("No hardware readings yet."));
        assert!(out.contains("No errors recently."));
        assert!(!out.contains("system-slot"));
    }
}
