//! `posternd`'s configuration: one TOML file, parsed once into typed structs.
//!
//! Parsing walks the TOML table by hand instead of deriving `Deserialize`, so that every
//! problem — wrong type, bad value, unknown key, missing key — is collected with its dotted
//! key and reported at once, not one per start attempt. Command-line overrides are applied to
//! the table first and go through the same checks.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::{Table, Value};

/// Everything `posternd` needs to run the mail path.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub server: ServerConfig,
    pub smtp: SmtpConfig,
    pub tls: TlsConfig,
    /// The default route: the internal mail server.
    pub downstream: DownstreamConfig,
    /// Routes by recipient domain, checked in order before the default.
    pub routes: Vec<RouteConfig>,
    pub crypto: CryptoConfig,
    pub cluster: ClusterConfig,
    pub web: WebConfig,
    pub hardware: HardwareConfig,
    pub update: UpdateConfig,
    pub federation: FederationConfig,
}

/// Discovery of partner domains' keys and policies (DESIGN.md §5).
#[derive(Debug, Clone, PartialEq)]
pub struct FederationConfig {
    /// Look partner domains up (DNSSEC-validated DNS, WKD) when mail goes to them.
    pub discover: bool,
    /// The validating resolver to ask (its AD bit is trusted: it must be local or reached
    /// over a trusted network); none: the first `nameserver` of /etc/resolv.conf.
    pub resolver: Option<SocketAddr>,
    /// Extra CA certificates (PEM) trusted for WKD's HTTPS, beside the system's.
    pub wkd_roots: Option<PathBuf>,
    /// How long one lookup may hold a recipient at RCPT.
    pub lookup_timeout: Duration,
    /// How long a found domain is not asked again.
    pub refresh: Duration,
    /// How long a domain that published nothing is not asked again.
    pub negative_ttl: Duration,
    /// Where to mail a refused partner key (someone offered a different key for a pinned
    /// domain); none: `hardware.alert_to`, if set.
    pub alert_to: Option<String>,
}

/// System updates of the appliance image (signed bundles, DESIGN.md §8).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpdateConfig {
    /// The vendor's Ed25519 public key (PEM) that bundles must be signed with; none: this
    /// node takes no update bundles (not an appliance image).
    pub public_key: Option<PathBuf>,
}

/// Hardware monitoring and the watchdog (DESIGN.md §8).
#[derive(Debug, Clone, PartialEq)]
pub struct HardwareConfig {
    /// Read sensors and evaluate health.
    pub enabled: bool,
    pub interval: Duration,
    /// Where sysfs is (a recorded tree for diagnosis and tests).
    pub sys_root: PathBuf,
    /// The BMC's device (read with ipmitool); absent: no IPMI.
    pub ipmi_device: String,
    /// Instead of the BMC: recorded `sdr.txt`/`sel.txt` in this directory.
    pub ipmi_recorded: Option<PathBuf>,
    /// The watchdog device to pet while healthy; none: no watchdog.
    pub watchdog: Option<PathBuf>,
    /// Where to send a mail when a PSU, fan, disk or temperature goes bad.
    pub alert_to: Option<String>,
}

/// The HTTPS server of the admin GUI and the REST API.
#[derive(Debug, Clone, PartialEq)]
pub struct WebConfig {
    pub listen: SocketAddr,
}

/// The cluster port. Every node is a cluster member: at first start it founds a
/// single-member cluster of its own, which it leaves when it joins another.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    pub listen: SocketAddr,
    /// The address other members reach this node on; empty: `listen`, or this host's
    /// primary address when `listen` is a wildcard.
    pub advertise: Option<String>,
    /// Save the state and compact the Raft log every this many entries.
    pub snapshot_every: u64,
}

/// Signing, encryption and inbound marking (DESIGN.md §4).
#[derive(Debug, Clone, PartialEq)]
pub struct CryptoConfig {
    /// Domains whose users this gateway protects; empty: relay only, no crypto.
    pub internal_domains: Vec<String>,
    pub always_encrypt: bool,
    pub policy_header: bool,
    pub subject_markers: bool,
    /// Validity of keys issued at enrolment and rollover.
    pub key_validity: Duration,
    /// How often the rollover check runs.
    pub rollover_interval: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub hostname: String,
    pub data_dir: PathBuf,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub shutdown_grace: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SmtpConfig {
    pub max_message_size: usize,
    pub max_line_length: usize,
    pub max_recipients: usize,
    pub max_errors: u32,
    pub max_received_headers: usize,
    pub command_timeout: Duration,
    pub data_timeout: Duration,
    pub tls_handshake_timeout: Duration,
}

/// The certificate `posternd` presents on STARTTLS. Without one, a self-signed certificate
/// is generated on first start and kept in `data_dir/tls/`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TlsConfig {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// STARTTLS towards a downstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownstreamTls {
    /// Never.
    None,
    /// When offered, without certificate verification (like Postfix `may`); plaintext when
    /// not offered or when the handshake fails.
    Opportunistic,
    /// Always, verifying the certificate against the system roots plus `ca_file`.
    Required,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DownstreamConfig {
    /// `host:port`.
    pub address: String,
    pub tls: DownstreamTls,
    pub ca_file: Option<PathBuf>,
    /// Name checked in the downstream's certificate (default: the host of `address`).
    pub tls_name: Option<String>,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    /// From the end of our data to the downstream's verdict. Kept below the upstream's
    /// 10-minute end-of-data timeout (RFC 5321 §4.5.3.2.6).
    pub data_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteConfig {
    pub domains: Vec<String>,
    pub downstream: DownstreamConfig,
}

/// Values given on the command line; they win over the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub cluster_listen: Option<String>,
    pub web_listen: Option<String>,
    pub downstream: Option<String>,
    pub data_dir: Option<PathBuf>,
}

/// The configuration could not be used; lists every problem found.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not valid TOML: {message}")]
    Syntax { path: String, message: String },
    #[error("{} configuration error(s):\n{}", .0.len(), .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<String>),
}

/// RFC 5321 §4.5.3.2.6: the client waits 10 minutes for the reply to end-of-data.
pub const UPSTREAM_DATA_DONE_TIMEOUT: Duration = Duration::from_secs(600);

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, &path.display().to_string(), overrides)
    }

    /// Checks a configuration given as TOML text; `origin` names it in messages.
    pub fn parse(text: &str, origin: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut table: Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Syntax {
                path: origin.to_owned(),
                message: e.to_string().trim().replace('\n', " "),
            })?;
        apply_overrides(&mut table, overrides);
        let mut r = Reader::default();
        let config = r.config(&table);
        if r.errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(r.errors))
        }
    }
}

fn apply_overrides(table: &mut Table, o: &Overrides) {
    let mut set = |section: &str, key: &str, value: Value| {
        let entry = table
            .entry(section.to_owned())
            .or_insert_with(|| Value::Table(Table::new()));
        if let Value::Table(t) = entry {
            t.insert(key.to_owned(), value);
        }
    };
    if let Some(v) = &o.listen {
        set("server", "listen", Value::String(v.clone()));
    }
    if let Some(v) = &o.downstream {
        set("downstream", "address", Value::String(v.clone()));
    }
    if let Some(v) = &o.cluster_listen {
        set("cluster", "listen", Value::String(v.clone()));
    }
    if let Some(v) = &o.web_listen {
        set("web", "listen", Value::String(v.clone()));
    }
    if let Some(v) = &o.data_dir {
        set("server", "data_dir", Value::String(v.display().to_string()));
    }
}

mod read;
#[cfg(test)]
mod tests;
mod values;

use read::Reader;
pub use values::{parse_duration, parse_size};
