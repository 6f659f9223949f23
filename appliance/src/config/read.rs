//! The reader that walks the TOML table and collects every problem with its dotted key.

use super::*;

/// Collects typed values and errors from a TOML table.
#[derive(Default)]
pub(super) struct Reader {
    pub(super) errors: Vec<String>,
}

impl Reader {
    pub(super) fn config(&mut self, root: &Table) -> Config {
        self.known(
            root,
            "",
            &[
                "server",
                "smtp",
                "tls",
                "downstream",
                "route",
                "crypto",
                "cluster",
                "web",
                "hardware",
                "update",
                "federation",
            ],
        );
        let empty = Table::new();
        let server = self.section(root, "server").unwrap_or(&empty);
        let smtp = self.section(root, "smtp").unwrap_or(&empty);
        let tls = self.section(root, "tls").unwrap_or(&empty);
        let downstream = self.section(root, "downstream").unwrap_or(&empty);
        let crypto = self.section(root, "crypto").unwrap_or(&empty);
        let cluster = self.section(root, "cluster").unwrap_or(&empty);
        let web = self.section(root, "web").unwrap_or(&empty);
        let hardware = self.section(root, "hardware").unwrap_or(&empty);
        let update = self.section(root, "update").unwrap_or(&empty);
        let federation = self.section(root, "federation").unwrap_or(&empty);
        let config = Config {
            server: self.server(server),
            smtp: self.smtp(smtp),
            tls: self.tls(tls),
            downstream: self.downstream(downstream, "downstream"),
            routes: self.routes(root),
            crypto: self.crypto(crypto),
            cluster: self.cluster(cluster),
            web: self.web(web),
            hardware: self.hardware(hardware),
            update: self.update(update),
            federation: self.federation(federation),
        };
        self.check(&config);
        config
    }

    fn server(&mut self, t: &Table) -> ServerConfig {
        self.known(
            t,
            "server.",
            &[
                "listen",
                "hostname",
                "data_dir",
                "max_connections",
                "max_connections_per_ip",
                "shutdown_grace",
            ],
        );
        let listen = self.string(t, "server.", "listen", "0.0.0.0:25");
        let listen = listen.parse().unwrap_or_else(|_| {
            self.errors.push(format!(
                "server.listen: {listen:?} is not an address:port (e.g. 0.0.0.0:25)"
            ));
            SocketAddr::from(([0, 0, 0, 0], 25))
        });
        let hostname = self.string(t, "server.", "hostname", &default_hostname());
        if hostname.is_empty()
            || !hostname
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            self.errors
                .push(format!("server.hostname: {hostname:?} is not a host name"));
        }
        ServerConfig {
            listen,
            hostname,
            data_dir: PathBuf::from(self.string(t, "server.", "data_dir", "/var/lib/postern")),
            max_connections: self.count(t, "server.", "max_connections", 500),
            max_connections_per_ip: self.count(t, "server.", "max_connections_per_ip", 50),
            shutdown_grace: self.duration(t, "server.", "shutdown_grace", Duration::from_secs(30)),
        }
    }

    fn smtp(&mut self, t: &Table) -> SmtpConfig {
        self.known(
            t,
            "smtp.",
            &[
                "max_message_size",
                "max_line_length",
                "max_recipients",
                "max_errors",
                "max_received_headers",
                "command_timeout",
                "data_timeout",
                "tls_handshake_timeout",
            ],
        );
        let max_line_length = self.count(t, "smtp.", "max_line_length", 1000);
        if !(1000..=65_536).contains(&max_line_length) {
            self.errors.push(format!(
                "smtp.max_line_length: {max_line_length} is outside 1000..=65536 (RFC 5321 requires at least 1000)"
            ));
        }
        let max_recipients = self.count(t, "smtp.", "max_recipients", 1000);
        if max_recipients < 100 {
            self.errors.push(format!(
                "smtp.max_recipients: {max_recipients} is below the RFC 5321 minimum of 100"
            ));
        }
        SmtpConfig {
            max_message_size: self.size(t, "smtp.", "max_message_size", 50 * 1000 * 1000),
            max_line_length,
            max_recipients,
            max_errors: self.count(t, "smtp.", "max_errors", 10) as u32,
            max_received_headers: self.count(t, "smtp.", "max_received_headers", 100),
            command_timeout: self.duration(t, "smtp.", "command_timeout", Duration::from_secs(300)),
            data_timeout: self.duration(t, "smtp.", "data_timeout", Duration::from_secs(180)),
            tls_handshake_timeout: self.duration(
                t,
                "smtp.",
                "tls_handshake_timeout",
                Duration::from_secs(30),
            ),
        }
    }

    fn tls(&mut self, t: &Table) -> TlsConfig {
        self.known(t, "tls.", &["cert", "key"]);
        let cert = self.opt_string(t, "tls.", "cert").map(PathBuf::from);
        let key = self.opt_string(t, "tls.", "key").map(PathBuf::from);
        if cert.is_some() != key.is_some() {
            self.errors.push("tls: give both cert and key, or neither (a self-signed certificate is then generated)".to_owned());
        }
        TlsConfig { cert, key }
    }

    fn downstream(&mut self, t: &Table, prefix: &str) -> DownstreamConfig {
        let p = format!("{prefix}.");
        self.known(
            t,
            &p,
            &[
                "address",
                "tls",
                "ca_file",
                "tls_name",
                "connect_timeout",
                "command_timeout",
                "data_timeout",
                "domains",
            ],
        );
        let address = match self.opt_string(t, &p, "address") {
            Some(a) => a,
            None => {
                self.errors.push(format!(
                    "{p}address: required (the mail server to relay to, host:port)"
                ));
                String::new()
            }
        };
        if !address.is_empty() && !valid_host_port(&address) {
            self.errors
                .push(format!("{p}address: {address:?} is not host:port"));
        }
        let tls = match self.string(t, &p, "tls", "opportunistic").as_str() {
            "none" => DownstreamTls::None,
            "opportunistic" => DownstreamTls::Opportunistic,
            "required" => DownstreamTls::Required,
            other => {
                self.errors.push(format!(
                    "{p}tls: {other:?} is not one of none, opportunistic, required"
                ));
                DownstreamTls::Opportunistic
            }
        };
        let data_timeout = self.duration(t, &p, "data_timeout", Duration::from_secs(300));
        if data_timeout >= UPSTREAM_DATA_DONE_TIMEOUT {
            self.errors.push(format!(
                "{p}data_timeout: must be shorter than the upstream's 10-minute end-of-data timeout (RFC 5321 4.5.3.2.6)"
            ));
        }
        DownstreamConfig {
            address,
            tls,
            ca_file: self.opt_string(t, &p, "ca_file").map(PathBuf::from),
            tls_name: self.opt_string(t, &p, "tls_name"),
            connect_timeout: self.duration(t, &p, "connect_timeout", Duration::from_secs(30)),
            command_timeout: self.duration(t, &p, "command_timeout", Duration::from_secs(60)),
            data_timeout,
        }
    }

    fn routes(&mut self, root: &Table) -> Vec<RouteConfig> {
        let Some(value) = root.get("route") else {
            return Vec::new();
        };
        let Some(list) = value.as_array() else {
            self.errors
                .push("route: must be an array of tables ([[route]])".to_owned());
            return Vec::new();
        };
        let mut routes = Vec::new();
        for (i, item) in list.iter().enumerate() {
            let prefix = format!("route[{i}]");
            let Some(t) = item.as_table() else {
                self.errors.push(format!("{prefix}: must be a table"));
                continue;
            };
            let domains = match t.get("domains").and_then(Value::as_array) {
                Some(list) => list
                    .iter()
                    .filter_map(|d| match d.as_str() {
                        Some(s) if !s.is_empty() && !s.contains('@') => {
                            Some(s.to_ascii_lowercase())
                        }
                        _ => {
                            self.errors
                                .push(format!("{prefix}.domains: {d} is not a domain"));
                            None
                        }
                    })
                    .collect(),
                None => {
                    self.errors
                        .push(format!("{prefix}.domains: required, a list of domains"));
                    Vec::new()
                }
            };
            routes.push(RouteConfig {
                domains,
                downstream: self.downstream(t, &prefix),
            });
        }
        routes
    }

    fn crypto(&mut self, t: &Table) -> CryptoConfig {
        self.known(
            t,
            "crypto.",
            &[
                "internal_domains",
                "always_encrypt",
                "policy_header",
                "subject_markers",
                "key_validity",
                "rollover_interval",
            ],
        );
        let internal_domains = match t.get("internal_domains") {
            None => Vec::new(),
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(|d| match d.as_str() {
                    Some(s) if !s.is_empty() && !s.contains('@') && !s.contains(' ') => {
                        Some(s.to_ascii_lowercase())
                    }
                    _ => {
                        self.errors
                            .push(format!("crypto.internal_domains: {d} is not a domain"));
                        None
                    }
                })
                .collect(),
            Some(_) => {
                self.errors
                    .push("crypto.internal_domains: must be a list of domains".to_owned());
                Vec::new()
            }
        };
        CryptoConfig {
            internal_domains,
            always_encrypt: self.flag(t, "crypto.", "always_encrypt", false),
            policy_header: self.flag(t, "crypto.", "policy_header", true),
            subject_markers: self.flag(t, "crypto.", "subject_markers", true),
            key_validity: self.duration(
                t,
                "crypto.",
                "key_validity",
                Duration::from_secs(365 * 86_400),
            ),
            rollover_interval: self.duration(
                t,
                "crypto.",
                "rollover_interval",
                Duration::from_secs(3600),
            ),
        }
    }

    fn hardware(&mut self, t: &Table) -> HardwareConfig {
        self.known(
            t,
            "hardware.",
            &[
                "enabled",
                "interval",
                "sys_root",
                "ipmi_device",
                "ipmi_recorded",
                "watchdog",
                "alert_to",
            ],
        );
        let interval = self.duration(t, "hardware.", "interval", Duration::from_secs(10));
        if interval < Duration::from_secs(1) {
            self.errors
                .push("hardware.interval: must be at least 1s".into());
        }
        let alert_to = self.mail_address(t, "hardware.", "alert_to");
        HardwareConfig {
            enabled: self.flag(t, "hardware.", "enabled", true),
            interval,
            sys_root: PathBuf::from(self.string(t, "hardware.", "sys_root", "/sys")),
            ipmi_device: self.string(t, "hardware.", "ipmi_device", "/dev/ipmi0"),
            ipmi_recorded: self
                .opt_string(t, "hardware.", "ipmi_recorded")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
            watchdog: self
                .opt_string(t, "hardware.", "watchdog")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
            alert_to,
        }
    }

    fn update(&mut self, t: &Table) -> UpdateConfig {
        self.known(t, "update.", &["public_key"]);
        UpdateConfig {
            public_key: self
                .opt_string(t, "update.", "public_key")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
        }
    }

    /// An optional mail address (empty: none).
    fn mail_address(&mut self, t: &Table, section: &str, key: &str) -> Option<String> {
        let a = self.opt_string(t, section, key).filter(|a| !a.is_empty())?;
        if !a.contains('@') || a.chars().any(|c| c.is_whitespace() || c == '<' || c == '>') {
            self.errors.push(format!(
                "{section}{key}: {a:?} is not a mail address (e.g. ops@example.com)"
            ));
        }
        Some(a)
    }

    fn federation(&mut self, t: &Table) -> FederationConfig {
        let p = "federation.";
        self.known(
            t,
            p,
            &[
                "discover",
                "resolver",
                "wkd_roots",
                "lookup_timeout",
                "refresh",
                "negative_ttl",
                "alert_to",
            ],
        );
        let resolver = self.opt_string(t, p, "resolver").filter(|r| !r.is_empty());
        let resolver = resolver.and_then(|r| match r.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.errors.push(format!(
                    "federation.resolver: {r:?} is not an address:port (e.g. 127.0.0.1:53)"
                ));
                None
            }
        });
        FederationConfig {
            discover: self.flag(t, p, "discover", true),
            resolver,
            wkd_roots: self
                .opt_string(t, p, "wkd_roots")
                .filter(|r| !r.is_empty())
                .map(PathBuf::from),
            lookup_timeout: self.duration(t, p, "lookup_timeout", Duration::from_secs(5)),
            refresh: self.duration(t, p, "refresh", Duration::from_secs(3600)),
            negative_ttl: self.duration(t, p, "negative_ttl", Duration::from_secs(900)),
            alert_to: self.mail_address(t, p, "alert_to"),
        }
    }

    fn web(&mut self, t: &Table) -> WebConfig {
        self.known(t, "web.", &["listen"]);
        let text = self.string(t, "web.", "listen", "0.0.0.0:443");
        let listen = text.parse().unwrap_or_else(|_| {
            self.errors.push(format!(
                "web.listen: {text:?} is not an address:port (e.g. 0.0.0.0:443)"
            ));
            SocketAddr::from(([0, 0, 0, 0], 443))
        });
        WebConfig { listen }
    }

    fn cluster(&mut self, t: &Table) -> ClusterConfig {
        self.known(t, "cluster.", &["listen", "advertise", "snapshot_every"]);
        let text = self.string(t, "cluster.", "listen", "0.0.0.0:7946");
        let listen = text.parse().unwrap_or_else(|_| {
            self.errors.push(format!(
                "cluster.listen: {text:?} is not an address:port (e.g. 0.0.0.0:7946)"
            ));
            SocketAddr::from(([0, 0, 0, 0], 7946))
        });
        let advertise = self
            .opt_string(t, "cluster.", "advertise")
            .filter(|a| !a.is_empty());
        if let Some(a) = &advertise {
            match a.parse::<SocketAddr>() {
                Ok(sa) if !sa.ip().is_unspecified() && sa.port() != 0 => {}
                _ => self.errors.push(format!(
                    "cluster.advertise: {a:?} is not an address:port other members can reach (e.g. 192.0.2.10:7946)"
                )),
            }
        }
        let snapshot_every = self.count(t, "cluster.", "snapshot_every", 1000);
        if snapshot_every < 10 {
            self.errors
                .push("cluster.snapshot_every: must be at least 10 entries".into());
        }
        ClusterConfig {
            listen,
            advertise,
            snapshot_every: snapshot_every as u64,
        }
    }

    /// Checks that need several values.
    fn check(&mut self, c: &Config) {
        if c.smtp.max_message_size < 1024 {
            self.errors
                .push("smtp.max_message_size: must be at least 1 KB".to_owned());
        }
        if c.server.max_connections_per_ip > c.server.max_connections {
            self.errors.push(
                "server.max_connections_per_ip: larger than server.max_connections".to_owned(),
            );
        }
    }
}

fn valid_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

fn default_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "postern".to_owned())
}
