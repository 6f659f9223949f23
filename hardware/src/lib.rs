//! The appliance's hardware (DESIGN.md §8): a profile per appliance model (what PSUs, fans,
//! temperature sensors, disks, NICs and watchdog it has), readers for hwmon sysfs, IPMI
//! (through `ipmitool` on `/dev/ipmi0`), disk and NIC state — each reading a root directory
//! or a command's output, so tests point them at recorded trees — a health evaluation per
//! component and overall, and the hardware watchdog. No other Postern crate is used.

pub mod health;
pub mod hwmon;
pub mod ipmi;
pub mod profile;
pub mod sysfs;
pub mod watchdog;

use serde::{Deserialize, Serialize};

/// What a reading measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
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

/// One sensor or component as read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// `hwmon`, `ipmi`, `sysfs`.
    pub source: String,
    pub kind: Kind,
    /// The name the profile refers to (hwmon label, IPMI sensor name, device name).
    pub name: String,
    /// The value in `unit` (°C, RPM, V, W), if it has one.
    pub value: Option<f64>,
    pub unit: String,
    /// Problems the hardware itself reports (over a critical threshold, "Failure
    /// detected", link down, disk offline); empty: none.
    pub fault: String,
    /// Thresholds the hardware reports, when it does.
    pub low: Option<f64>,
    pub high: Option<f64>,
}

impl Reading {
    pub fn new(source: &str, kind: Kind, name: &str) -> Reading {
        Reading {
            source: source.into(),
            kind,
            name: name.into(),
            value: None,
            unit: String::new(),
            fault: String::new(),
            low: None,
            high: None,
        }
    }
}
