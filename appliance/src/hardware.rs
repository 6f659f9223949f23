//! The node's hardware on the daemon's side: a loop reads the sensors (postern-hardware)
//! every `hardware.interval`, keeps the latest report for the GUI, API and metrics, records
//! a summary in the cluster state (every member sees every node's hardware), mails the admin
//! when a part goes bad or recovers, and feeds the VIP health (a failing disk makes the node
//! give up its virtual IPs). The watchdog is petted by a thread of its own while a heartbeat
//! from the async side is fresh: a hung daemon lets the hardware reset the machine.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use postern_hardware::health::{Report, State};
use postern_hardware::ipmi::{IpmiSource as _, Ipmitool, Recorded};
use postern_hardware::profile::Profile;
use postern_hardware::watchdog::Watchdog;
use postern_hardware::{Reading, health, hwmon, ipmi, sysfs};
use serde_json::{Value, json};

use crate::config::HardwareConfig;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// One round of reading: the evaluation, the readings, the BMC's event log, and what each
/// source said (`ipmi`: "ok" or why not, `watchdog`: the device or none).
type Round = (Report, Vec<Reading>, Vec<ipmi::SelEvent>, Value);

/// The latest readings and their evaluation.
#[derive(Debug)]
pub struct Monitor {
    config: HardwareConfig,
    latest: RwLock<Option<Round>>,
    /// Seconds since the epoch of the async side's last sign of life (the watchdog's input).
    pub heartbeat: AtomicU64,
}

impl Monitor {
    pub fn new(config: HardwareConfig) -> Arc<Monitor> {
        Arc::new(Monitor {
            config,
            latest: RwLock::new(None),
            heartbeat: AtomicU64::new(now_secs()),
        })
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// Reads everything once (blocking: sysfs and ipmitool).
    fn read(&self) -> Round {
        let sys = &self.config.sys_root;
        let product = sysfs::product(sys);
        let profile = Profile::for_product(&product).unwrap_or_else(|e| {
            tracing::error!(error = %e, "built-in hardware profile unusable");
            Profile {
                model: "generic".into(),
                matches: Vec::new(),
                watchdog: postern_hardware::profile::WatchdogNeed::Optional,
                psus: Vec::new(),
                fans: Vec::new(),
                temperatures: Vec::new(),
                disks: Vec::new(),
                nics: Vec::new(),
            }
        });
        let mut readings = hwmon::read(&sys.join("class/hwmon"));
        let (sdr, sel) = match &self.config.ipmi_recorded {
            Some(dir) => {
                let r = Recorded(dir.clone());
                (r.sdr(), r.sel())
            }
            None => {
                let t = Ipmitool {
                    device: self.config.ipmi_device.clone(),
                    ..Ipmitool::default()
                };
                (t.sdr(), t.sel())
            }
        };
        let ipmi_status = match sdr {
            Ok(text) => {
                let before = readings.len();
                readings.extend(ipmi::parse_sdr(&text));
                format!("ok: {} sensor records", readings.len() - before)
            }
            Err(e @ ipmi::IpmiError::NoDevice(_)) => e.to_string(),
            Err(e) => {
                tracing::warn!(error = %e, "IPMI sensors unreadable");
                e.to_string()
            }
        };
        let sel = sel.map(|t| ipmi::parse_sel(&t)).unwrap_or_default();
        readings.extend(sysfs::disks(sys));
        readings.extend(sysfs::nics(sys));
        let watchdog = self.config.watchdog.as_ref().is_some_and(|p| p.exists());
        let sources = json!({
            "product": product,
            "ipmi": ipmi_status,
            "hwmon_sensors": readings.iter().filter(|r| r.source == "hwmon").count(),
            "watchdog": self
                .config
                .watchdog
                .as_ref()
                .filter(|_| watchdog)
                .map(|p| p.display().to_string()),
            "watchdog_identity": self
                .config
                .watchdog
                .as_ref()
                .and_then(|p| postern_hardware::watchdog::identity(sys, p)),
        });
        (
            health::evaluate(&profile, &readings, watchdog),
            readings,
            sel,
            sources,
        )
    }

    pub fn report(&self) -> Option<Report> {
        self.latest
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|l| l.0.clone())
    }

    /// Why this node should not hold virtual IPs for hardware reasons ("" when none).
    pub fn vip_reason(&self) -> String {
        match self.report() {
            Some(r) if r.disk_failing => {
                let disks: Vec<String> = r
                    .problems()
                    .filter(|c| c.kind == postern_hardware::Kind::Disk)
                    .map(|c| format!("{}: {}", c.name, c.detail))
                    .collect();
                format!("hardware: failing disk ({})", disks.join(", "))
            }
            _ => String::new(),
        }
    }

    /// The report, the readings and the event log, for the API and the GUI.
    pub fn json(&self) -> Value {
        let latest = self.latest.read().unwrap_or_else(|e| e.into_inner());
        match latest.as_ref() {
            Some((report, readings, sel, sources)) => {
                json!({ "report": report, "readings": readings, "events": sel, "sources": sources })
            }
            None if !self.config.enabled => json!({ "report": null, "disabled": true }),
            None => json!({ "report": null }),
        }
    }

    /// Prometheus lines: overall state, per component state, sensor values.
    pub fn metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        let latest = self.latest.read().unwrap_or_else(|e| e.into_inner());
        let Some((report, readings, _, _)) = latest.as_ref() else {
            return;
        };
        let level = |s: State| match s {
            State::Ok => 0,
            State::Degraded => 1,
            State::Failed => 2,
        };
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let _ = writeln!(
            out,
            "# HELP postern_hardware_state Hardware health: 0 ok, 1 degraded, 2 failed.\n# TYPE postern_hardware_state gauge\npostern_hardware_state {}",
            level(report.overall)
        );
        let _ = writeln!(
            out,
            "# HELP postern_hardware_component_state Per component: 0 ok, 1 degraded, 2 failed.\n# TYPE postern_hardware_component_state gauge"
        );
        for c in &report.components {
            let _ = writeln!(
                out,
                "postern_hardware_component_state{{kind=\"{:?}\",name=\"{}\"}} {}",
                c.kind,
                esc(&c.name),
                level(c.state)
            );
        }
        let _ = writeln!(
            out,
            "# HELP postern_hardware_sensor A sensor's reading in its unit.\n# TYPE postern_hardware_sensor gauge"
        );
        for r in readings {
            if let Some(v) = r.value {
                let _ = writeln!(
                    out,
                    "postern_hardware_sensor{{kind=\"{:?}\",name=\"{}\",unit=\"{}\"}} {v}",
                    r.kind,
                    esc(&r.name),
                    esc(&r.unit)
                );
            }
        }
    }
}

/// What changed between two reports: components that went bad, and those that recovered.
fn changes(before: Option<&Report>, after: &Report) -> (Vec<String>, Vec<String>) {
    let bad = |r: &Report| -> BTreeSet<String> {
        r.problems()
            .map(|c| {
                format!(
                    "{} {} ({:?}): {}",
                    c.name,
                    state_word(c.state),
                    c.kind,
                    c.detail
                )
            })
            .collect()
    };
    let names = |r: &Report| -> BTreeSet<String> { r.problems().map(|c| c.name.clone()).collect() };
    let now_bad = bad(after);
    let (was, was_names) = before.map(|b| (bad(b), names(b))).unwrap_or_default();
    let new: Vec<String> = now_bad.difference(&was).cloned().collect();
    let after_names = names(after);
    let recovered: Vec<String> = was_names.difference(&after_names).cloned().collect();
    (new, recovered)
}

fn state_word(s: State) -> &'static str {
    match s {
        State::Ok => "ok",
        State::Degraded => "degraded",
        State::Failed => "FAILED",
    }
}

/// Runs the monitor until `shutdown`: reads, evaluates, logs changes, records the summary
/// in the cluster, mails the admin.
pub async fn run(
    monitor: Arc<Monitor>,
    handler: crate::control::Handler,
    targets: Arc<crate::relay::downstream::Targets>,
    hostname: String,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
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
        *monitor.latest.write().unwrap_or_else(|e| e.into_inner()) =
            Some((report.clone(), readings, sel, sources));
        if (!new.is_empty() || !recovered.is_empty())
            && let Some(to) = &monitor.config.alert_to
        {
            let text = alert_text(&hostname, &report, &new, &recovered);
            if let Err(e) = send_alert(&targets.default_address(), &hostname, to, &text).await {
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
        if changed && let Some(node) = handler.cluster.node_id().await {
            let cmd = postern_cluster::state::Command::SetHardware {
                node,
                record: record.clone(),
            };
            match handler.cluster.propose_admin(cmd).await {
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

/// Mails `text` to `to` through the downstream at `relay` (host:port).
async fn send_alert(relay: &str, host: &str, to: &str, text: &str) -> Result<(), String> {
    use lettre::AsyncTransport as _;
    let from = format!("postern@{host}");
    let envelope = lettre::address::Envelope::new(
        Some(from.parse().map_err(|e| format!("sender {from}: {e}"))?),
        vec![to.parse().map_err(|e| format!("recipient {to}: {e}"))?],
    )
    .map_err(|e| e.to_string())?;
    let (h, port) = relay
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.trim_matches(['[', ']']), p.parse::<u16>().ok()?)))
        .ok_or_else(|| format!("downstream {relay:?} is not host:port"))?;
    let now = now_secs();
    let subject = text.lines().next().unwrap_or("Hardware");
    let message = format!(
        "From: Postern {host} <{from}>\r\nTo: <{to}>\r\nSubject: [postern] {subject}\r\nDate: {}\r\nMessage-ID: <hw-{now}-{}@{host}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nAuto-Submitted: auto-generated\r\n\r\n{text}",
        postern_crypto::mime::date::Utc::from(SystemTime::now()).rfc5322(),
        std::process::id()
    );
    let transport = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous(h)
        .port(port)
        .timeout(Some(Duration::from_secs(30)))
        .build();
    transport
        .send_raw(&envelope, message.as_bytes())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Pets `path` every second while `monitor.heartbeat` is at most `stale` old; stops (and
/// disarms) when `stop` turns true. A thread of its own: a hung async runtime stops the
/// heartbeat, not this loop, and the hardware resets the machine.
pub fn start_watchdog(
    path: &std::path::Path,
    monitor: Arc<Monitor>,
    stale: Duration,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, String> {
    let mut dog = Watchdog::open(path).map_err(|e| e.to_string())?;
    let identity = postern_hardware::watchdog::identity(&monitor.config.sys_root, path)
        .unwrap_or_else(|| "unknown".into());
    tracing::info!(device = %path.display(), %identity, "hardware watchdog armed: petted while this node is healthy");
    std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            let mut petting = true;
            while !stop.load(Ordering::Relaxed) {
                let age = now_secs().saturating_sub(monitor.heartbeat.load(Ordering::Relaxed));
                if age <= stale.as_secs() {
                    if let Err(e) = dog.pet() {
                        tracing::error!(error = %e, "watchdog");
                    }
                    if !petting {
                        tracing::info!("watchdog petted again: the node is healthy");
                        petting = true;
                    }
                } else if petting {
                    tracing::error!(age_secs = age, "the node is not healthy: the watchdog is no longer petted and will reset the machine");
                    petting = false;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            if let Err(e) = dog.disarm() {
                tracing::warn!(error = %e, "watchdog not disarmed");
            }
        })
        .map_err(|e| e.to_string())
}
