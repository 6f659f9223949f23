//! Readings compared with the profile: a state per component and overall. A lost redundant
//! part (one PSU, one fan, one mirrored disk, one NIC) degrades the node; a part over its
//! temperature limit, or the last PSU, fails it. Faults the hardware reports on sensors the
//! profile does not name still count (a VM's generic profile expects nothing).

use serde::{Deserialize, Serialize};

use crate::profile::{Profile, WatchdogNeed};
use crate::{Kind, Reading};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Ok,
    Degraded,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Component {
    pub kind: Kind,
    pub name: String,
    pub state: State,
    /// What is wrong, or the reading when nothing is.
    pub detail: String,
}

/// The node's hardware health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub model: String,
    pub overall: State,
    pub components: Vec<Component>,
    /// A disk reports a fault: the VIP manager may treat the node as unable to serve.
    pub disk_failing: bool,
}

impl Report {
    /// The components that are not OK.
    pub fn problems(&self) -> impl Iterator<Item = &Component> {
        self.components.iter().filter(|c| c.state != State::Ok)
    }
}

fn shown(r: &Reading) -> String {
    match r.value {
        Some(v) => format!("{v:.1} {}", r.unit).trim().to_owned(),
        None => "present".into(),
    }
}

/// Evaluates `readings` against `profile`; `watchdog` says whether a watchdog device exists.
pub fn evaluate(profile: &Profile, readings: &[Reading], watchdog: bool) -> Report {
    let mut components = Vec::new();
    let mut named: Vec<&str> = Vec::new();
    let find = |kind: Kind, name: &str| readings.iter().find(|r| r.kind == kind && r.name == name);
    let mut expect =
        |kind: Kind, name: &str, bad: State, check: &dyn Fn(&Reading) -> Option<String>| {
            let (state, detail) = match find(kind, name) {
                None => (bad, "not reported by the hardware".to_owned()),
                Some(r) if !r.fault.is_empty() => (bad, r.fault.clone()),
                Some(r) => match check(r) {
                    Some(problem) => (bad, problem),
                    None => (State::Ok, shown(r)),
                },
            };
            components.push(Component {
                kind,
                name: name.to_owned(),
                state,
                detail,
            });
        };
    for p in &profile.psus {
        expect(Kind::Psu, &p.name, State::Degraded, &|_| None);
        named.push(&p.name);
    }
    for f in &profile.fans {
        let min = f.min_rpm;
        expect(Kind::Fan, &f.name, State::Degraded, &|r| {
            r.value
                .filter(|v| *v < min)
                .map(|v| format!("stopped or too slow: {v:.0} RPM (minimum {min:.0})"))
        });
        named.push(&f.name);
    }
    for t in &profile.temperatures {
        let max = t.max_c;
        expect(Kind::Temperature, &t.name, State::Failed, &|r| {
            r.value
                .filter(|v| *v > max)
                .map(|v| format!("over temperature: {v:.1} °C (limit {max:.1} °C)"))
        });
        named.push(&t.name);
    }
    for d in &profile.disks {
        expect(Kind::Disk, &d.name, State::Degraded, &|_| None);
        named.push(&d.name);
    }
    for n in &profile.nics {
        expect(Kind::Nic, &n.name, State::Degraded, &|_| None);
        named.push(&n.name);
    }
    // Faults on parts the profile does not name.
    for r in readings
        .iter()
        .filter(|r| !r.fault.is_empty() && !named.contains(&r.name.as_str()))
    {
        let state = if r.kind == Kind::Temperature {
            State::Failed
        } else {
            State::Degraded
        };
        components.push(Component {
            kind: r.kind,
            name: r.name.clone(),
            state,
            detail: r.fault.clone(),
        });
    }
    if profile.watchdog == WatchdogNeed::Required {
        components.push(Component {
            kind: Kind::Watchdog,
            name: "watchdog".into(),
            state: if watchdog { State::Ok } else { State::Degraded },
            detail: if watchdog {
                "present".into()
            } else {
                "no /dev/watchdog".into()
            },
        });
    }
    let psus_ok = components
        .iter()
        .filter(|c| c.kind == Kind::Psu && c.state == State::Ok)
        .count();
    let mut overall = components
        .iter()
        .map(|c| c.state)
        .max()
        .unwrap_or(State::Ok);
    if !profile.psus.is_empty() && psus_ok == 0 {
        overall = State::Failed;
    }
    let disk_failing = components
        .iter()
        .any(|c| c.kind == Kind::Disk && c.state != State::Ok);
    Report {
        model: profile.model.clone(),
        overall,
        components,
        disk_failing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{hwmon, ipmi, sysfs};
    use std::path::{Path, PathBuf};

    /// The recorded trees in `hardware/testdata/<case>/` (sysfs + ipmitool output).
    fn case(name: &str) -> Report {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("testdata")
            .join(name);
        let sys = root.join("sys");
        let profile = Profile::for_product(&sysfs::product(&sys)).expect("profile");
        let mut readings = hwmon::read(&sys.join("class/hwmon"));
        let ipmi = ipmi::Recorded(root.join("ipmi"));
        readings.extend(ipmi::parse_sdr(&ipmi::IpmiSource::sdr(&ipmi).expect("sdr")));
        readings.extend(sysfs::disks(&sys));
        readings.extend(sysfs::nics(&sys));
        evaluate(
            &profile,
            &readings,
            Path::new(&root.join("dev/watchdog")).exists(),
        )
    }

    fn problems(r: &Report) -> Vec<(String, State)> {
        r.problems().map(|c| (c.name.clone(), c.state)).collect()
    }

    #[test]
    fn healthy_appliance() {
        let r = case("healthy");
        assert_eq!(r.model, "Postern A200");
        assert_eq!(problems(&r), []);
        assert_eq!(r.overall, State::Ok);
        // 2 PSUs, 4 fans, 2 temperatures, 2 disks, 2 NICs, the watchdog.
        assert_eq!(r.components.len(), 13, "{:#?}", r.components);
    }

    #[test]
    fn one_psu_lost_degrades() {
        let r = case("psu-lost");
        assert_eq!(problems(&r), [("PS2 Status".to_owned(), State::Degraded)]);
        assert_eq!(r.overall, State::Degraded);
        assert!(r.components.iter().any(|c| c.detail.contains("ac lost")));
    }

    #[test]
    fn one_fan_stopped_degrades() {
        let r = case("fan-stopped");
        assert_eq!(problems(&r), [("FAN3".to_owned(), State::Degraded)]);
        assert!(
            r.problems().all(|c| c.detail.contains("0 RPM")),
            "{:?}",
            r.components
        );
    }

    #[test]
    fn sensor_over_threshold_fails() {
        let r = case("over-temperature");
        assert_eq!(problems(&r), [("CPU Temp".to_owned(), State::Failed)]);
        assert_eq!(r.overall, State::Failed);
    }

    #[test]
    fn failing_disk_is_flagged_for_the_vip_manager() {
        let r = case("disk-failing");
        assert!(r.disk_failing);
        assert_eq!(problems(&r), [("sdb".to_owned(), State::Degraded)]);
    }

    #[test]
    fn generic_vm_expects_nothing_but_counts_hardware_faults() {
        let p = Profile::for_product("KVM").expect("generic");
        assert_eq!(evaluate(&p, &[], false).overall, State::Ok);
        let mut hot = Reading::new("hwmon", Kind::Temperature, "coretemp temp1");
        hot.fault = "at or over the critical".into();
        assert_eq!(evaluate(&p, &[hot], false).overall, State::Failed);
    }
}
