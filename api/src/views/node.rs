//! One node: its mail trace and counters, hardware, system image and updates, network.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One mail transaction as the trace shows it (never the body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceRecord {
    /// Seconds since the epoch.
    pub time: u64,
    pub session: String,
    pub peer: String,
    pub sender: String,
    pub recipients: Vec<String>,
    /// Bytes received from the upstream.
    pub size: usize,
    /// What the policy did, in words.
    pub treatment: String,
    /// The reply the upstream got at the end of data.
    pub code: u16,
    pub reply: String,
}

/// This node's mail counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub sessions: u64,
    pub delivered: u64,
    /// Refused by the downstream or the policy, or failed (4xx/5xx at end of data).
    pub refused: u64,
    pub bytes_in: u64,
    /// 0 while the node is between clusters.
    pub node_id: u64,
    #[serde(default)]
    pub federation: FederationCounters,
}

/// Partner domain discovery on this node (federation), since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FederationCounters {
    /// Lookups that went to the network (not answered from the cache).
    pub lookups: u64,
    /// Partner domain keys pinned for the first time or rolled over by a lookup (DNS,
    /// WKD; in-band announcements are learned from mail, not counted here).
    pub discovered: u64,
    /// Lookups whose answer DNSSEC validated.
    pub verified: u64,
    /// Different keys refused (the pin stayed).
    pub refused: u64,
    /// Lookups that failed or timed out.
    pub failed: u64,
    /// Recipients deferred (451 4.7.5): their domain enforces encryption and no verified
    /// key of it can be used.
    pub enforced: u64,
}

/// A component's or the node's hardware health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthState {
    Ok,
    Degraded,
    Failed,
}

impl HealthState {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Ok => "ok",
            HealthState::Degraded => "degraded",
            HealthState::Failed => "failed",
        }
    }
}

/// What kind of part a reading or component is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartKind {
    Temperature,
    Fan,
    Voltage,
    Power,
    Psu,
    Disk,
    Nic,
    Watchdog,
    Other,
}

impl PartKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PartKind::Temperature => "temperature",
            PartKind::Fan => "fan",
            PartKind::Voltage => "voltage",
            PartKind::Power => "power",
            PartKind::Psu => "psu",
            PartKind::Disk => "disk",
            PartKind::Nic => "nic",
            PartKind::Watchdog => "watchdog",
            PartKind::Other => "other",
        }
    }
}

/// One part of the hardware profile, evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Component {
    pub kind: PartKind,
    pub name: String,
    pub state: HealthState,
    /// What is wrong, or the reading when nothing is.
    pub detail: String,
}

/// The node's hardware health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HardwareReport {
    pub model: String,
    pub overall: HealthState,
    pub components: Vec<Component>,
    /// A disk reports a fault: the node gives up its virtual IPs.
    pub disk_failing: bool,
}

/// One sensor or device as read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// `hwmon`, `ipmi`, `sysfs`.
    pub source: String,
    pub kind: PartKind,
    pub name: String,
    pub value: Option<f64>,
    pub unit: String,
    /// What the hardware itself reports as wrong; empty: nothing.
    pub fault: String,
    pub low: Option<f64>,
    pub high: Option<f64>,
}

/// An entry of the BMC's event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelEvent {
    pub id: String,
    pub date: String,
    pub time: String,
    pub sensor: String,
    pub event: String,
    /// `Asserted` or `Deasserted`.
    pub direction: String,
}

/// What each hardware source said in the last round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardwareSources {
    /// The DMI product name.
    pub product: String,
    /// `ok: N sensor records`, or why IPMI is not read.
    pub ipmi: String,
    pub hwmon_sensors: usize,
    /// The watchdog device petted, if any.
    pub watchdog: Option<String>,
    /// The watchdog driver's identity (sysfs).
    pub watchdog_identity: Option<String>,
}

/// A node's hardware summary as the cluster state keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardwareSummary {
    pub model: String,
    /// `ok`, `degraded` or `FAILED`.
    pub overall: String,
    /// `component: what is wrong`, one per problem.
    pub problems: Vec<String>,
    pub disk_failing: bool,
    /// When the node last changed it (seconds since the epoch).
    pub time: u64,
}

/// This node's hardware (the latest round) and every node's summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hardware {
    /// None before the first round, or when monitoring is disabled.
    pub report: Option<HardwareReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readings: Option<Vec<Reading>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<SelEvent>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<HardwareSources>,
    /// Monitoring is switched off in this node's configuration.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// Every node's summary by node id.
    pub cluster: BTreeMap<u64, HardwareSummary>,
}

/// A root slot of the appliance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    A,
    B,
}

impl Slot {
    pub fn as_str(self) -> &'static str {
        match self {
            Slot::A => "a",
            Slot::B => "b",
        }
    }
}

/// What became of an update: installing, staged, installed, failed, running, rolled-back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateStatus {
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<Slot>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    pub message: String,
    /// Seconds since the epoch.
    pub at: u64,
}

/// The system this node runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct System {
    /// This node takes update bundles (it has the key they must be signed with).
    pub updates: bool,
    pub slot: Option<Slot>,
    pub version: Option<String>,
    /// Empty on the appliance; else why this is not one.
    pub appliance: String,
    /// An update waits for the installer.
    pub pending: bool,
    pub last_update: Option<UpdateStatus>,
}

/// The slot and version a system runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Running {
    pub slot: Slot,
    pub version: String,
}

/// An update bundle verified and handed to the installer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staged {
    pub version: String,
    pub slot: Slot,
    pub running: Running,
    pub reboot: bool,
    pub message: String,
}

/// A node's static network settings (the appliance's network.conf); no addresses means
/// DHCP. Also the body of `PUT /api/v1/network`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSettings {
    /// The interface (empty: every Ethernet interface, `en*` and `eth*`).
    #[serde(default)]
    pub interface: String,
    /// With prefix length: `192.0.2.10/24`.
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default)]
    pub gateways: Vec<String>,
    #[serde(default)]
    pub dns: Vec<String>,
    #[serde(default)]
    pub ntp: Vec<String>,
}

/// Static or DHCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    Static,
    Dhcp,
}

/// The network settings in force at the next apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    #[serde(flatten)]
    pub settings: NetworkSettings,
    pub mode: NetworkMode,
}
