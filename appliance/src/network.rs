//! This node's network settings on the appliance: the data partition's `network.conf`
//! (image/README.md, "First-boot settings"), which `postern-settings` turns into a
//! systemd-networkd file. No file: DHCP on every Ethernet interface. The GUI and the API read
//! and replace it here; posternd then leaves `network.apply` beside it, and the root-owned
//! `postern-network.service` (a path unit) applies it at once.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use postern_api::views::{self, NetworkMode};

/// How many addresses, gateways, DNS or NTP servers at most.
const MAX_ENTRIES: usize = 16;

/// Static settings; no addresses means DHCP (the command language's type: the GUI, the API
/// and this file speak the same fields).
pub use postern_api::views::NetworkSettings as Network;

/// Why the network settings cannot be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The settings asked for are not what `postern-settings` accepts.
    #[error("{0}")]
    Invalid(String),
    /// network.conf on this node does not read back.
    #[error("{0}")]
    Unreadable(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> NetworkError + '_ {
    move |source| NetworkError::Io {
        path: path.to_owned(),
        source,
    }
}

fn interface_ok(s: &str) -> bool {
    (1..=15).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':' | b'-'))
}

/// `192.0.2.10/24` or `2001:db8::10/64`.
fn address_ok(s: &str) -> bool {
    let Some((ip, prefix)) = s.split_once('/') else {
        return false;
    };
    let (Ok(ip), Ok(prefix)) = (ip.parse::<IpAddr>(), prefix.parse::<u8>()) else {
        return false;
    };
    prefix <= if ip.is_ipv4() { 32 } else { 128 }
}

/// Reads network.conf (`KEY=VALUE` lines, `#` comments).
pub fn parse(text: &str) -> Result<Network, String> {
    let mut n = Network::default();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("network.conf: cannot read {line:?}"))?;
        let value = value.trim().to_owned();
        match key.trim() {
            "INTERFACE" => n.interface = value,
            "ADDRESS" => n.addresses.push(value),
            "GATEWAY" => n.gateways.push(value),
            "DNS" => n.dns.push(value),
            "NTP" => n.ntp.push(value),
            other => return Err(format!("network.conf: unknown setting {other}")),
        }
    }
    Ok(n)
}

/// What `postern-settings` accepts, checked here so that the GUI says what is wrong
/// instead of the appliance falling back to DHCP at the next boot.
pub fn check(n: &Network) -> Result<(), String> {
    if !n.interface.is_empty() && !interface_ok(&n.interface) {
        return Err(format!(
            "interface {:?}: a name like enp1s0 (letters, digits, _ . : -, at most 15)",
            n.interface
        ));
    }
    for a in &n.addresses {
        if !address_ok(a) {
            return Err(format!(
                "address {a:?}: an IP address with its prefix length, e.g. 192.0.2.10/24"
            ));
        }
    }
    for (what, list) in [
        ("gateway", &n.gateways),
        ("DNS server", &n.dns),
        ("NTP server", &n.ntp),
    ] {
        if let Some(bad) = list.iter().find(|v| v.parse::<IpAddr>().is_err()) {
            return Err(format!("{what} {bad:?}: an IP address, e.g. 192.0.2.1"));
        }
    }
    if [&n.addresses, &n.gateways, &n.dns, &n.ntp]
        .iter()
        .any(|l| l.len() > MAX_ENTRIES)
    {
        return Err(format!("at most {MAX_ENTRIES} of each"));
    }
    if n.addresses.is_empty() && !(n.gateways.is_empty() && n.interface.is_empty()) {
        return Err("a gateway or an interface needs a static address (no address: DHCP)".into());
    }
    Ok(())
}

/// network.conf's text.
pub fn render(n: &Network) -> String {
    let mut out = String::from("# Written by posternd (GUI/API); see image/README.md.\n");
    if !n.interface.is_empty() {
        out.push_str(&format!("INTERFACE={}\n", n.interface));
    }
    for (key, list) in [
        ("ADDRESS", &n.addresses),
        ("GATEWAY", &n.gateways),
        ("DNS", &n.dns),
        ("NTP", &n.ntp),
    ] {
        for v in list {
            out.push_str(&format!("{key}={v}\n"));
        }
    }
    out
}

/// Where this node's settings live (the data directory).
#[derive(Debug, Clone)]
pub struct NetworkFile {
    pub dir: PathBuf,
}

impl NetworkFile {
    fn conf(&self) -> PathBuf {
        self.dir.join("network.conf")
    }

    /// The settings in force at the next apply: static ones, or DHCP.
    pub fn get(&self) -> Result<views::Network, NetworkError> {
        let conf = self.conf();
        let settings = match std::fs::read_to_string(&conf) {
            Ok(t) => parse(&t).map_err(NetworkError::Unreadable)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Network::default(),
            Err(e) => return Err(io(&conf)(e)),
        };
        let mode = if settings.addresses.is_empty() {
            NetworkMode::Dhcp
        } else {
            NetworkMode::Static
        };
        Ok(views::Network { settings, mode })
    }

    /// Replaces the settings (no addresses: DHCP) and asks for them to be applied.
    pub fn set(&self, n: &Network) -> Result<views::Network, NetworkError> {
        check(n).map_err(NetworkError::Invalid)?;
        let conf = self.conf();
        if n.addresses.is_empty() {
            match std::fs::remove_file(&conf) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&conf)(e)),
            }
        } else {
            postern_cluster::files::write_private(&conf, render(n).as_bytes())
                .map_err(io(&conf))?;
        }
        let apply = self.dir.join("network.apply");
        postern_cluster::files::write_private(&apply, b"").map_err(io(&apply))?;
        self.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_written_and_read_back() {
        let dir = std::env::temp_dir().join(format!("postern-net-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = NetworkFile { dir: dir.clone() };
        assert_eq!(f.get().expect("get").mode, NetworkMode::Dhcp);
        let n = Network {
            interface: "enp1s0".into(),
            addresses: vec!["192.0.2.10/24".into(), "2001:db8::10/64".into()],
            gateways: vec!["192.0.2.1".into()],
            dns: vec!["192.0.2.53".into()],
            ntp: vec![],
        };
        let v = f.set(&n).expect("set");
        assert_eq!(v.mode, NetworkMode::Static);
        let text = std::fs::read_to_string(dir.join("network.conf")).expect("conf");
        assert!(text.contains("INTERFACE=enp1s0\nADDRESS=192.0.2.10/24\nADDRESS=2001:db8::10/64\nGATEWAY=192.0.2.1\nDNS=192.0.2.53\n"), "{text}");
        assert_eq!(parse(&text).expect("parse"), n);
        assert!(dir.join("network.apply").exists());

        for (bad, why) in [
            (
                Network {
                    addresses: vec!["192.0.2.10".into()],
                    ..n.clone()
                },
                "prefix length",
            ),
            (
                Network {
                    addresses: vec!["192.0.2.10/33".into()],
                    ..n.clone()
                },
                "prefix length",
            ),
            (
                Network {
                    gateways: vec!["gw".into()],
                    ..n.clone()
                },
                "gateway",
            ),
            (
                Network {
                    interface: "eth0; rm -rf /".into(),
                    ..n.clone()
                },
                "interface",
            ),
            (
                Network {
                    addresses: vec![],
                    ..n.clone()
                },
                "needs a static address",
            ),
        ] {
            let e = f.set(&bad).expect_err("refused");
            assert!(
                matches!(&e, NetworkError::Invalid(m) if m.contains(why)),
                "{e}"
            );
        }
        // Unchanged by the refusals; DHCP removes the file.
        assert_eq!(f.get().expect("get").settings.addresses[0], "192.0.2.10/24");
        f.set(&Network::default()).expect("dhcp");
        assert!(!dir.join("network.conf").exists());
        assert!(parse("ADDRESS=1.2.3.4/8\nFOO=1\n").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
