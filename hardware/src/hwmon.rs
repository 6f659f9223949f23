//! hwmon sysfs (`/sys/class/hwmon/hwmon*/`): temperatures (m°C), fans (RPM), voltages (mV)
//! and power (µW), with the labels and thresholds the driver reports.

use std::path::Path;

use crate::{Kind, Reading};

fn read_trim(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

fn read_num(path: &Path) -> Option<f64> {
    read_trim(path)?.parse().ok()
}

/// Reads every sensor below `class_dir` (normally `/sys/class/hwmon`). A missing directory
/// reads as no sensors; unreadable single files are skipped.
pub fn read(class_dir: &Path) -> Vec<Reading> {
    let Ok(entries) = std::fs::read_dir(class_dir) else {
        return Vec::new();
    };
    let mut chips: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    chips.sort();
    let mut out = Vec::new();
    for chip in chips {
        let chip_name = read_trim(&chip.join("name")).unwrap_or_else(|| "hwmon".into());
        let Ok(files) = std::fs::read_dir(&chip) else {
            continue;
        };
        let mut inputs: Vec<String> = files
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with("_input"))
            .collect();
        inputs.sort();
        for input in inputs {
            let stem = &input[..input.len() - "_input".len()];
            let (kind, scale, unit) = match stem.trim_end_matches(|c: char| c.is_ascii_digit()) {
                "temp" => (Kind::Temperature, 1000.0, "°C"),
                "fan" => (Kind::Fan, 1.0, "RPM"),
                "in" => (Kind::Voltage, 1000.0, "V"),
                "power" => (Kind::Power, 1_000_000.0, "W"),
                _ => continue,
            };
            let Some(raw) = read_num(&chip.join(&input)) else {
                continue;
            };
            let at = |suffix: &str| read_num(&chip.join(format!("{stem}_{suffix}")));
            let label = read_trim(&chip.join(format!("{stem}_label")))
                .unwrap_or_else(|| format!("{chip_name} {stem}"));
            let mut r = Reading::new("hwmon", kind, &label);
            r.value = Some(raw / scale);
            r.unit = unit.into();
            r.low = at("min").map(|v| v / scale);
            r.high = at("crit").or_else(|| at("max")).map(|v| v / scale);
            let value = raw / scale;
            if at("fault") == Some(1.0) {
                r.fault = "the driver reports a fault".into();
            } else if at("alarm") == Some(1.0) {
                r.fault = "the driver reports an alarm".into();
            } else if let Some(crit) = at("crit").map(|v| v / scale)
                && value >= crit
            {
                r.fault = format!("{value:.1} {unit} at or over the critical {crit:.1} {unit}");
            }
            out.push(r);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> std::path::PathBuf {
        let root = std::env::temp_dir().join(format!(
            "postern-hwmon-{}-{}",
            std::process::id(),
            files.len()
        ));
        let _ = std::fs::remove_dir_all(&root);
        for (path, content) in files {
            let p = root.join(path);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("dir");
            std::fs::write(p, content).expect("write");
        }
        root
    }

    #[test]
    fn reads_values_labels_and_thresholds() {
        let root = tree(&[
            ("hwmon0/name", "coretemp\n"),
            ("hwmon0/temp1_input", "45000\n"),
            ("hwmon0/temp1_label", "Package id 0\n"),
            ("hwmon0/temp1_crit", "100000\n"),
            ("hwmon0/temp2_input", "101000\n"),
            ("hwmon0/temp2_crit", "100000\n"),
            ("hwmon1/name", "nct6775\n"),
            ("hwmon1/fan1_input", "0\n"),
            ("hwmon1/fan1_alarm", "1\n"),
            ("hwmon1/in0_input", "1212\n"),
            ("hwmon1/power1_input", "12500000\n"),
            ("hwmon1/bogus_input", "7\n"),
        ]);
        let r = read(&root);
        assert_eq!(r.len(), 5, "{r:?}");
        assert_eq!(r[0].name, "Package id 0");
        assert_eq!(r[0].value, Some(45.0));
        assert_eq!(r[0].high, Some(100.0));
        assert!(r[0].fault.is_empty());
        assert_eq!(r[1].name, "coretemp temp2");
        assert!(r[1].fault.contains("critical"), "{:?}", r[1]);
        assert_eq!((r[2].kind, r[2].fault.is_empty()), (Kind::Fan, false));
        assert_eq!(r[3].value, Some(1.212));
        assert_eq!(r[4].value, Some(12.5));
        assert!(read(&root.join("missing")).is_empty());
        let _ = std::fs::remove_dir_all(&root);
    }
}
