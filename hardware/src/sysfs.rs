//! Disks and NICs from sysfs, and the DMI product name that picks the profile. Each reads
//! below a root directory (`/sys` on the appliance, a recorded tree in tests).

use std::path::Path;

use crate::{Kind, Reading};

fn read_trim(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The DMI product name (`class/dmi/id/product_name`), empty when there is none.
pub fn product(sys: &Path) -> String {
    read_trim(&sys.join("class/dmi/id/product_name")).unwrap_or_default()
}

/// Block devices that are disks (not partitions, loop, ram or dm devices): the SCSI
/// device state (`running` is healthy), and for md RAID whether it is degraded.
pub fn disks(sys: &Path) -> Vec<Reading> {
    let block = sys.join("block");
    names(&block)
        .into_iter()
        .filter(|n| {
            !["loop", "ram", "zram", "dm-", "sr"]
                .iter()
                .any(|p| n.starts_with(p))
        })
        .map(|n| {
            let dev = block.join(&n);
            let mut r = Reading::new("sysfs", Kind::Disk, &n);
            if let Some(state) = read_trim(&dev.join("device/state"))
                && state != "running"
            {
                r.fault = format!("device state {state}");
            }
            if let Some(degraded) = read_trim(&dev.join("md/degraded"))
                && degraded != "0"
            {
                r.fault = format!("RAID degraded ({degraded} member(s) missing)");
            }
            r
        })
        .collect()
}

/// Network interfaces with a device behind them (not lo, bridges or veth): link state.
pub fn nics(sys: &Path) -> Vec<Reading> {
    let net = sys.join("class/net");
    names(&net)
        .into_iter()
        .filter(|n| n != "lo")
        .filter(|n| net.join(n).join("device").exists())
        .map(|n| {
            let dir = net.join(&n);
            let mut r = Reading::new("sysfs", Kind::Nic, &n);
            let oper = read_trim(&dir.join("operstate")).unwrap_or_else(|| "unknown".into());
            if let Some(speed) = read_trim(&dir.join("speed")).and_then(|s| s.parse::<f64>().ok())
                && speed > 0.0
            {
                r.value = Some(speed);
                r.unit = "Mb/s".into();
            }
            if oper != "up" {
                r.fault = format!("link {oper}");
            }
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disks_nics_and_product() {
        let root = std::env::temp_dir().join(format!("postern-sysfs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (p, c) in [
            ("class/dmi/id/product_name", "Postern A200\n"),
            ("block/sda/device/state", "running\n"),
            ("block/sdb/device/state", "offline\n"),
            ("block/md0/md/degraded", "1\n"),
            ("block/loop0/size", "0\n"),
            ("class/net/eno1/operstate", "up\n"),
            ("class/net/eno1/speed", "1000\n"),
            ("class/net/eno1/device/vendor", "0x8086\n"),
            ("class/net/eno2/operstate", "down\n"),
            ("class/net/eno2/device/vendor", "0x8086\n"),
            ("class/net/br0/operstate", "up\n"),
            ("class/net/lo/operstate", "unknown\n"),
        ] {
            let f = root.join(p);
            std::fs::create_dir_all(f.parent().expect("parent")).expect("dir");
            std::fs::write(f, c).expect("write");
        }
        assert_eq!(product(&root), "Postern A200");
        let d = disks(&root);
        assert_eq!(
            d.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["md0", "sda", "sdb"]
        );
        assert!(d[0].fault.contains("degraded"));
        assert!(d[1].fault.is_empty());
        assert_eq!(d[2].fault, "device state offline");
        let n = nics(&root);
        assert_eq!(n.len(), 2, "{n:?}");
        assert_eq!((n[0].value, n[0].fault.as_str()), (Some(1000.0), ""));
        assert_eq!(n[1].fault, "link down");
        let _ = std::fs::remove_dir_all(&root);
    }
}
