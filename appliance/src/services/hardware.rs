//! The node's hardware on the daemon's side: reads the sensors (postern-hardware), keeps the
//! latest report for the GUI, API and metrics, and says whether a failing disk should make
//! the node give up its virtual IPs. The reading loop (which also records a summary in the
//! cluster state and mails the admin when a part goes bad or recovers) is a task
//! (`crate::tasks::hardware`). The watchdog is petted by a thread of its own while a
//! heartbeat from the async side is fresh: a hung daemon lets the hardware reset the machine.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use postern_api::views;
use postern_hardware::health::{Report, State};
use postern_hardware::ipmi::{IpmiSource as _, Ipmitool, Recorded};
use postern_hardware::profile::Profile;
use postern_hardware::watchdog::Watchdog;
use postern_hardware::{Reading, health, hwmon, ipmi, sysfs};

use crate::config::HardwareConfig;
use crate::services::now_secs;

/// One round of reading: the evaluation, the readings, the BMC's event log, and what each
/// source said.
pub type Round = (
    Report,
    Vec<Reading>,
    Vec<ipmi::SelEvent>,
    views::HardwareSources,
);

/// The latest readings and their evaluation.
#[derive(Debug)]
pub struct Monitor {
    pub config: HardwareConfig,
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
    pub fn read(&self) -> Round {
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
        let sources = views::HardwareSources {
            hwmon_sensors: readings.iter().filter(|r| r.source == "hwmon").count(),
            product,
            ipmi: ipmi_status,
            watchdog: self
                .config
                .watchdog
                .as_ref()
                .filter(|_| watchdog)
                .map(|p| p.display().to_string()),
            watchdog_identity: self
                .config
                .watchdog
                .as_ref()
                .and_then(|p| postern_hardware::watchdog::identity(sys, p)),
        };
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

    /// Keeps a round as the latest.
    pub fn keep(&self, round: Round) {
        *self.latest.write().unwrap_or_else(|e| e.into_inner()) = Some(round);
    }

    /// The report, the readings and the event log, for the API and the GUI (every node's
    /// summary is the caller's to add).
    pub fn view(&self) -> views::Hardware {
        let latest = self.latest.read().unwrap_or_else(|e| e.into_inner());
        let mut v = views::Hardware {
            report: None,
            readings: None,
            events: None,
            sources: None,
            disabled: false,
            cluster: Default::default(),
        };
        match latest.as_ref() {
            Some((report, readings, sel, sources)) => {
                v.report = Some(report_view(report));
                v.readings = Some(readings.iter().map(reading_view).collect());
                v.events = Some(sel.iter().map(event_view).collect());
                v.sources = Some(sources.clone());
            }
            None => v.disabled = !self.config.enabled,
        }
        v
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

fn state_view(s: State) -> views::HealthState {
    match s {
        State::Ok => views::HealthState::Ok,
        State::Degraded => views::HealthState::Degraded,
        State::Failed => views::HealthState::Failed,
    }
}

fn kind_view(k: postern_hardware::Kind) -> views::PartKind {
    use postern_hardware::Kind as K;
    match k {
        K::Temperature => views::PartKind::Temperature,
        K::Fan => views::PartKind::Fan,
        K::Voltage => views::PartKind::Voltage,
        K::Power => views::PartKind::Power,
        K::Psu => views::PartKind::Psu,
        K::Disk => views::PartKind::Disk,
        K::Nic => views::PartKind::Nic,
        K::Watchdog => views::PartKind::Watchdog,
        K::Other => views::PartKind::Other,
    }
}

fn report_view(r: &Report) -> views::HardwareReport {
    views::HardwareReport {
        model: r.model.clone(),
        overall: state_view(r.overall),
        components: r
            .components
            .iter()
            .map(|c| views::Component {
                kind: kind_view(c.kind),
                name: c.name.clone(),
                state: state_view(c.state),
                detail: c.detail.clone(),
            })
            .collect(),
        disk_failing: r.disk_failing,
    }
}

fn reading_view(r: &Reading) -> views::Reading {
    views::Reading {
        source: r.source.clone(),
        kind: kind_view(r.kind),
        name: r.name.clone(),
        value: r.value,
        unit: r.unit.clone(),
        fault: r.fault.clone(),
        low: r.low,
        high: r.high,
    }
}

fn event_view(e: &ipmi::SelEvent) -> views::SelEvent {
    views::SelEvent {
        id: e.id.clone(),
        date: e.date.clone(),
        time: e.time.clone(),
        sensor: e.sensor.clone(),
        event: e.event.clone(),
        direction: e.direction.clone(),
    }
}

/// What changed between two reports: components that went bad, and those that recovered.
pub fn changes(before: Option<&Report>, after: &Report) -> (Vec<String>, Vec<String>) {
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

/// A state as the alert mail and the cluster record spell it.
pub fn state_word(s: State) -> &'static str {
    match s {
        State::Ok => "ok",
        State::Degraded => "degraded",
        State::Failed => "FAILED",
    }
}

/// Why the watchdog is not petted.
#[derive(Debug, thiserror::Error)]
pub enum WatchdogStartError {
    #[error(transparent)]
    Device(#[from] postern_hardware::watchdog::WatchdogError),
    #[error("cannot start the watchdog thread: {0}")]
    Thread(std::io::Error),
}

/// Pets `path` every second while `monitor.heartbeat` is at most `stale` old; stops (and
/// disarms) when `stop` turns true. A thread of its own: a hung async runtime stops the
/// heartbeat, not this loop, and the hardware resets the machine.
pub fn start_watchdog(
    path: &std::path::Path,
    monitor: Arc<Monitor>,
    stale: Duration,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, WatchdogStartError> {
    let mut dog = Watchdog::open(path)?;
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
        .map_err(WatchdogStartError::Thread)
}
