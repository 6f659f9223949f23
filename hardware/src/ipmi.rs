//! IPMI through the BMC (`/dev/ipmi0`, the kernel's ipmi_si/ipmi_devintf drivers), read with
//! `ipmitool -I open`: the sensor data records with their readings and states (`sdr elist`),
//! PSU and fan status among them, and the system event log (`sel elist`). The parsers take
//! the tool's text, so tests feed them recorded output.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::{Kind, Reading};

#[derive(Debug, thiserror::Error)]
pub enum IpmiError {
    #[error(
        "no IPMI device ({0} missing: no BMC, or the ipmi_si/ipmi_devintf modules are not loaded)"
    )]
    NoDevice(String),
    #[error("ipmitool: {0}")]
    Tool(String),
    #[error("ipmitool did not answer within {0:?}")]
    Timeout(Duration),
}

/// Where IPMI text comes from.
pub trait IpmiSource {
    fn sdr(&self) -> Result<String, IpmiError>;
    fn sel(&self) -> Result<String, IpmiError>;
}

/// The real BMC through `ipmitool -I open`.
#[derive(Debug, Clone)]
pub struct Ipmitool {
    pub device: String,
    pub timeout: Duration,
}

impl Default for Ipmitool {
    fn default() -> Self {
        Ipmitool {
            device: "/dev/ipmi0".into(),
            timeout: Duration::from_secs(20),
        }
    }
}

impl Ipmitool {
    fn run(&self, args: &[&str]) -> Result<String, IpmiError> {
        if !Path::new(&self.device).exists() {
            return Err(IpmiError::NoDevice(self.device.clone()));
        }
        let mut child = Command::new("ipmitool")
            .args([
                "-I",
                "open",
                "-d",
                self.device.trim_start_matches("/dev/ipmi"),
            ])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| IpmiError::Tool(format!("cannot run ipmitool: {e}")))?;
        let start = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if start.elapsed() > self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(IpmiError::Timeout(self.timeout));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => return Err(IpmiError::Tool(e.to_string())),
            }
        }
        let out = child
            .wait_with_output()
            .map_err(|e| IpmiError::Tool(e.to_string()))?;
        if !out.status.success() {
            return Err(IpmiError::Tool(
                String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl IpmiSource for Ipmitool {
    fn sdr(&self) -> Result<String, IpmiError> {
        self.run(&["sdr", "elist"])
    }
    fn sel(&self) -> Result<String, IpmiError> {
        self.run(&["sel", "elist"])
    }
}

/// Recorded `sdr.txt` and `sel.txt` in a directory (tests, support bundles).
#[derive(Debug, Clone)]
pub struct Recorded(pub std::path::PathBuf);

impl IpmiSource for Recorded {
    fn sdr(&self) -> Result<String, IpmiError> {
        std::fs::read_to_string(self.0.join("sdr.txt"))
            .map_err(|_| IpmiError::NoDevice(self.0.join("sdr.txt").display().to_string()))
    }
    fn sel(&self) -> Result<String, IpmiError> {
        Ok(std::fs::read_to_string(self.0.join("sel.txt")).unwrap_or_default())
    }
}

/// Words in a discrete sensor's state that mean a failed part.
const FAILURE_WORDS: &[&str] = &[
    "failure detected",
    "ac lost",
    "predictive failure",
    "power supply input lost",
    "config error",
    "transition to non-recoverable",
    "transition to critical",
];

/// Parses `ipmitool sdr elist`: `name | id | status | entity | reading`.
pub fn parse_sdr(text: &str) -> Vec<Reading> {
    let mut out = Vec::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        if cols.len() < 5 || cols[0].is_empty() {
            continue;
        }
        let (name, status, reading) = (cols[0], cols[2], cols[4]);
        let lower = reading.to_ascii_lowercase();
        let lname = name.to_ascii_lowercase();
        let number = reading
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<f64>().ok());
        let (kind, unit) = if lower.ends_with("rpm") {
            (Kind::Fan, "RPM")
        } else if lower.contains("degrees c") {
            (Kind::Temperature, "°C")
        } else if lower.ends_with("volts") {
            (Kind::Voltage, "V")
        } else if lower.ends_with("watts") {
            (Kind::Power, "W")
        } else if lname.starts_with("ps") || lname.contains("power supply") || lname.contains("psu")
        {
            (Kind::Psu, "")
        } else if lname.contains("fan") {
            (Kind::Fan, "")
        } else if lname.contains("watchdog") {
            (Kind::Watchdog, "")
        } else {
            (Kind::Other, "")
        };
        let mut r = Reading::new("ipmi", kind, name);
        r.unit = unit.into();
        if !unit.is_empty() {
            r.value = number;
        }
        if matches!(status, "cr" | "nr") {
            r.fault = format!("BMC status {status} ({reading})");
        } else if let Some(w) = FAILURE_WORDS.iter().find(|w| lower.contains(*w)) {
            r.fault = format!("BMC reports {w} ({reading})");
        } else if kind == Kind::Psu && !lower.contains("presence detected") && status != "ns" {
            r.fault = format!("not present ({reading})");
        } else if status == "ns" && kind == Kind::Psu {
            r.fault = "no reading (absent or unpowered)".into();
        }
        out.push(r);
    }
    out
}

/// One entry of the system event log.
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

/// Parses `ipmitool sel elist`: `id | date | time | sensor | event | direction`.
pub fn parse_sel(text: &str) -> Vec<SelEvent> {
    text.lines()
        .filter_map(|line| {
            let c: Vec<&str> = line.split('|').map(str::trim).collect();
            (c.len() >= 5).then(|| SelEvent {
                id: c[0].to_owned(),
                date: c[1].to_owned(),
                time: c[2].to_owned(),
                sensor: c[3].to_owned(),
                event: c[4].to_owned(),
                direction: c.get(5).copied().unwrap_or("").to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDR: &str = "\
CPU Temp         | 01h | ok  |  3.1 | 45 degrees C
System Temp      | 02h | cr  |  7.1 | 71 degrees C
FAN1             | 30h | ok  | 29.1 | 5400 RPM
FAN2             | 31h | cr  | 29.2 | 0 RPM
12V              | 40h | ok  |  7.1 | 12.10 Volts
PS1 Status       | 67h | ok  | 10.1 | Presence detected
PS2 Status       | 68h | ok  | 10.2 | Presence detected, Power Supply AC lost
Watchdog2        | 70h | ok  |  7.1 | 
garbage line without columns
";

    #[test]
    fn sdr_readings_and_faults() {
        let r = parse_sdr(SDR);
        assert_eq!(r.len(), 8);
        assert_eq!((r[0].kind, r[0].value), (Kind::Temperature, Some(45.0)));
        assert!(r[0].fault.is_empty());
        assert!(r[1].fault.contains("cr"));
        assert_eq!((r[2].kind, r[2].value), (Kind::Fan, Some(5400.0)));
        assert!(!r[3].fault.is_empty());
        assert_eq!((r[4].kind, r[4].value), (Kind::Voltage, Some(12.1)));
        assert_eq!(r[5].kind, Kind::Psu);
        assert!(r[5].fault.is_empty());
        assert!(r[6].fault.contains("ac lost"), "{:?}", r[6]);
        assert_eq!(r[7].kind, Kind::Watchdog);
    }

    #[test]
    fn sel_entries() {
        let e = parse_sel(
            "   1 | 11/23/2026 | 19:20:01 | Power Supply PS2 Status | Failure detected | Asserted\nnoise\n",
        );
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].sensor, "Power Supply PS2 Status");
        assert_eq!(e[0].direction, "Asserted");
    }

    #[test]
    fn no_device_is_a_clear_error() {
        let t = Ipmitool {
            device: "/nonexistent/ipmi9".into(),
            timeout: Duration::from_secs(1),
        };
        assert!(matches!(t.sdr(), Err(IpmiError::NoDevice(_))));
    }
}
