//! The hardware loop: reads the sensors every `hardware.interval`, logs what went bad or
//! recovered, mails the admin about it, and records a summary in the cluster state (every
//! member sees every node's hardware; only changes travel through Raft).

use std::sync::Arc;

use postern_hardware::health::Report;
use tokio::sync::watch;

use crate::member::Member;
use crate::relay::downstream::Targets;
use crate::services::hardware::{Monitor, changes, state_word};
use crate::services::now_secs;

/// Runs the monitor until `shutdown`: reads, evaluates, logs changes, records the summary
/// in the cluster, mails the admin.
pub async fn run(
    monitor: Arc<Monitor>,
    member: Arc<Member>,
    targets: Arc<Targets>,
    hostname: String,
    mut shutdown: watch::Receiver<bool>,
) {
    if !monitor.config.enabled {
        return;
    }
    let mut recorded: Option<postern_cluster::state::HardwareRecord> = None;
    loop {
        let m = Arc::clone(&monitor);
        let Ok((report, readings, sel, sources)) =
            tokio::task::spawn_blocking(move || m.read()).await
        else {
            break;
        };
        let before = monitor.report();
        let (new, recovered) = changes(before.as_ref(), &report);
        for p in &new {
            tracing::warn!(problem = %p, "hardware problem");
        }
        for r in &recovered {
            tracing::info!(component = %r, "hardware recovered");
        }
        monitor.keep((report.clone(), readings, sel, sources));
        if (!new.is_empty() || !recovered.is_empty())
            && let Some(to) = &monitor.config.alert_to
        {
            let text = alert_text(&hostname, &report, &new, &recovered);
            if let Err(e) =
                super::alert::send(&targets.default_address(), &hostname, to, "hw", &text).await
            {
                tracing::error!(error = %e, to = %to, "hardware alert mail not sent");
            } else {
                tracing::info!(to = %to, "hardware alert mail sent");
            }
        }
        let record = postern_cluster::state::HardwareRecord {
            model: report.model.clone(),
            overall: state_word(report.overall).to_owned(),
            problems: report
                .problems()
                .map(|c| format!("{}: {}", c.name, c.detail))
                .collect(),
            disk_failing: report.disk_failing,
            time: now_secs(),
        };
        // Only changes travel through Raft (the time alone does not).
        let changed = recorded
            .as_ref()
            .is_none_or(|r| (&r.overall, &r.problems) != (&record.overall, &record.problems));
        if changed && let Some(node) = member.node_id().await {
            let cmd = postern_cluster::state::Command::SetHardware {
                node,
                record: record.clone(),
            };
            match member.propose(cmd).await {
                Ok(_) => recorded = Some(record),
                Err(e) => tracing::warn!(error = %e, "hardware record not committed (retried)"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(monitor.config.interval) => {}
            _ = shutdown.changed() => break,
        }
    }
}

fn alert_text(host: &str, report: &Report, new: &[String], recovered: &[String]) -> String {
    let mut t = format!(
        "Hardware of {host} ({}) is now {}.\r\n\r\n",
        report.model,
        state_word(report.overall)
    );
    if !new.is_empty() {
        t.push_str("New problems:\r\n");
        for p in new {
            t.push_str(&format!("  - {p}\r\n"));
        }
    }
    if !recovered.is_empty() {
        t.push_str("Recovered:\r\n");
        for r in recovered {
            t.push_str(&format!("  - {r}\r\n"));
        }
    }
    t.push_str("\r\nSee the dashboard or GET /api/v1/hardware for all readings.\r\n");
    t
}
