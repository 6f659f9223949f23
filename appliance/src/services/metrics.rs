//! The Prometheus text exposition (`/metrics`): this node's mail counters, its view of the
//! cluster, and its hardware.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use crate::federation::Federation;
use crate::member::Member;
use crate::relay::trace::Trace;
use crate::services::hardware::Monitor;

/// Renders the metrics of this node.
pub async fn render(
    trace: &Trace,
    member: &Member,
    hardware: &Monitor,
    federation: Option<&Federation>,
) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    metric(
        "postern_smtp_sessions_total",
        "counter",
        "SMTP sessions accepted.",
        trace.sessions.load(Relaxed),
    );
    metric(
        "postern_messages_delivered_total",
        "counter",
        "Messages the downstream accepted.",
        trace.delivered.load(Relaxed),
    );
    metric(
        "postern_messages_refused_total",
        "counter",
        "Messages refused or failed at end of data.",
        trace.refused.load(Relaxed),
    );
    metric(
        "postern_federation_enforced_total",
        "counter",
        "Recipients deferred (451 4.7.5): their domain enforces encryption and no verified domain key of it can be used.",
        trace.enforced.load(Relaxed),
    );
    metric(
        "postern_received_bytes_total",
        "counter",
        "Message bytes received from upstreams.",
        trace.bytes_in.load(Relaxed),
    );
    if let Some(s) = member.local_status().await {
        let gauges = [
            ("postern_cluster_node_id", "This member's node id.", s.id),
            (
                "postern_cluster_leader",
                "The leader's node id as this member knows it (0: none).",
                s.leader,
            ),
            (
                "postern_cluster_is_leader",
                "1 when this member leads.",
                u64::from(s.id == s.leader),
            ),
            ("postern_cluster_term", "Raft term.", s.term),
        ];
        for (name, help, value) in gauges {
            metric(name, "gauge", help, value);
        }
        metric(
            "postern_cluster_applied_index",
            "counter",
            "Raft entries applied.",
            s.applied,
        );
        let held = s.state.vips.values().filter(|a| a.node == s.id).count() as u64;
        let sizes = [
            (
                "postern_cluster_members",
                "Members in the cluster state.",
                s.state.members.len() as u64,
            ),
            (
                "postern_users",
                "Enrolled users.",
                s.state.users.len() as u64,
            ),
            (
                "postern_partners",
                "Partners with keys.",
                s.state.partner_keys.len() as u64,
            ),
            ("postern_vips_held", "Virtual IPs this node holds.", held),
        ];
        for (name, help, value) in sizes {
            metric(name, "gauge", help, value);
        }
    }
    hardware.metrics(&mut out);
    if let Some(f) = federation {
        let c = f.counters();
        for (name, help, v) in [
            (
                "postern_federation_lookups_total",
                "Partner domain lookups that went to the network.",
                c.lookups,
            ),
            (
                "postern_federation_discovered_total",
                "Partner domain keys pinned or rolled over by a lookup (DNS, WKD).",
                c.discovered,
            ),
            (
                "postern_federation_verified_total",
                "Lookups whose answer DNSSEC validated (verified keys and policies).",
                c.verified,
            ),
            (
                "postern_federation_refused_total",
                "Different partner domain keys refused (the pin stayed).",
                c.refused,
            ),
            (
                "postern_federation_failed_total",
                "Lookups that failed or timed out.",
                c.failed,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        }
    }
    out
}
