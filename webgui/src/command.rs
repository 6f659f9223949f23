//! The command layer every management surface shares: the web GUI's forms, the REST API and
//! `posternctl` (through the node's control socket) all turn what the operator asks into one
//! [`Command`], which the daemon executes ([`crate::Backend`]) for an [`Actor`] and answers
//! with one [`Response`]. Permissions and the audit log hang off this one place.

use serde::{Deserialize, Serialize};

/// Every management action. Any member takes any of them: writes go through the leader and
/// are committed before the reply; admin reads are linearizable (ReadIndex).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Command {
    /// Create S/MIME and OpenPGP keys for an internal user.
    UserEnrol {
        address: String,
    },
    UserList,
    UserRemove {
        address: String,
    },
    /// Public certificates (PEM) of a user.
    UserCert {
        address: String,
    },
    /// Public OpenPGP keys (armored) of a user.
    UserPgp {
        address: String,
    },
    /// The user's current S/MIME identity as PKCS#12 (base64) under `password`.
    UserPkcs12 {
        address: String,
        password: String,
    },
    /// Import a PKCS#12 bundle (base64) as a user's S/MIME identity.
    ImportPkcs12 {
        data: String,
        password: String,
    },
    /// Import an OpenPGP secret key (base64 of the file) as a user's key.
    ImportPgpSecret {
        data: String,
    },
    /// Import partner certificates (PEM) or OpenPGP public keys (base64 of the file).
    ImportPublic {
        data: String,
    },
    PartnerList,
    /// Add S/MIME trust anchors (base64 of a PEM file).
    TrustAdd {
        data: String,
    },
    /// The built-in CA certificate (PEM), for partners' trust stores.
    CaCert,
    /// Run the key rollover check now.
    Rollover,
    /// The single-member cluster this node founded at first start.
    ClusterInit,
    /// Credentials (JSON) with a one-time join token valid for `ttl_secs` (member only).
    ClusterExportCredentials {
        ttl_secs: u64,
    },
    /// Leave this node's own single-member cluster and join the one the credentials name,
    /// through the member at `peer`.
    ClusterJoin {
        credentials: String,
        peer: String,
    },
    /// Take member `id` out of the cluster.
    ClusterRemove {
        id: u64,
    },
    /// Members, leader, term, applied index of this node.
    ClusterStatus,
    /// A replicated setting (member only; committed through the leader).
    SettingSet {
        key: String,
        value: String,
    },
    /// Remove a replicated setting (policy settings: back to the file's value).
    SettingUnset {
        key: String,
    },
    /// A replicated setting (linearizable read).
    SettingGet {
        key: String,
    },
    /// Every replicated setting.
    SettingList,
    /// Configure a virtual IP (`address/prefix`) on `interface`, preferring `preferred`.
    VipAdd {
        address: String,
        interface: String,
        #[serde(default)]
        preferred: Vec<u64>,
    },
    /// Virtual IPs, holders and leases.
    VipList,
    /// Move a virtual IP to node `to`.
    VipMove {
        address: String,
        to: u64,
    },
    VipRemove {
        address: String,
    },
    /// Whether this node's cluster has been set up (it has an administrator).
    SetupStatus,
    /// First-boot setup of a new cluster: the first administrator, the internal domains
    /// and the downstream MTA. Refused once the cluster has an administrator.
    Setup {
        admin: String,
        password: String,
        #[serde(default)]
        domains: Vec<String>,
        #[serde(default)]
        downstream: String,
    },
    /// A new administrator (role `admin` or `readonly`); the reply carries the TOTP secret.
    AdminAdd {
        name: String,
        password: String,
        role: String,
    },
    AdminList,
    AdminRemove {
        name: String,
    },
    /// A new password for an administrator (the TOTP secret stays).
    AdminPassword {
        name: String,
        password: String,
    },
    /// An API token (shown once in the reply) acting with `role`.
    TokenCreate {
        name: String,
        role: String,
    },
    TokenList,
    TokenRevoke {
        name: String,
    },
    /// The latest `limit` administrative actions, newest first.
    AuditList {
        limit: usize,
    },
    /// The latest `limit` mail transactions of this node, newest first (never bodies).
    TraceList {
        limit: usize,
    },
    /// This node's mail counters.
    Stats,
    /// The web GUI's HTTPS certificate and key (PEM) for every node.
    WebTlsSet {
        cert: String,
        key: String,
    },
    /// This node's hardware (report, readings, event log) and every node's summary.
    Hardware,
    /// This node's system: the root slot and image version it runs, the last update.
    System,
    /// Install the update bundle the web server received into this node's spool folder
    /// (verified here, written to the inactive slot by the privileged installer).
    UpdateStage {
        reboot: bool,
    },
    /// This node's network settings: static (addresses, gateways, DNS, NTP) or DHCP.
    NetworkGet,
    /// Replace this node's network settings (no addresses: DHCP); applied at once.
    NetworkSet {
        settings: NetworkSettings,
    },
}

/// A node's static network settings (the appliance's network.conf); no addresses means DHCP.
/// Also the body of `PUT /api/v1/network`.
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

/// The largest update bundle the API receives and posternd accepts (a root slot is a few
/// hundred MiB).
pub const MAX_UPDATE_BUNDLE: u64 = 4 << 30;

/// What a setting's name looks like (`crypto.always_encrypt`, `relay.downstream`).
pub const SETTING_KEY_PATTERN: &str = "^[a-z0-9][a-z0-9._-]{0,63}$";

/// Whether `key` is a well-formed setting name ([`SETTING_KEY_PATTERN`]).
pub fn setting_key_ok(key: &str) -> bool {
    let b = key.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        })
}

/// What a command needs of its actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Sees everything except secrets, changes nothing.
    Readonly,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "readonly" => Some(Role::Readonly),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Readonly => "readonly",
        }
    }
}

/// Which surface a command came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    Gui,
    Api,
    Cli,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Gui => "gui",
            Via::Api => "api",
            Via::Cli => "cli",
        }
    }
}

/// Who asks: an authenticated administrator, an API token, or the local control socket
/// (root on the node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub role: Role,
    pub via: Via,
}

impl Actor {
    /// The control socket: whoever can open it is root (or the postern user) on the node.
    pub fn local() -> Actor {
        Actor {
            name: "local".into(),
            role: Role::Admin,
            via: Via::Cli,
        }
    }
}

impl Command {
    /// The command's name for logs and the audit log (never its arguments: they may hold
    /// passwords or keys).
    pub fn name(&self) -> &'static str {
        match self {
            Command::UserEnrol { .. } => "user-enrol",
            Command::UserList => "user-list",
            Command::UserRemove { .. } => "user-remove",
            Command::UserCert { .. } => "user-cert",
            Command::UserPgp { .. } => "user-pgp",
            Command::UserPkcs12 { .. } => "user-pkcs12",
            Command::ImportPkcs12 { .. } => "import-pkcs12",
            Command::ImportPgpSecret { .. } => "import-pgp-secret",
            Command::ImportPublic { .. } => "import-public",
            Command::PartnerList => "partner-list",
            Command::TrustAdd { .. } => "trust-add",
            Command::CaCert => "ca-cert",
            Command::Rollover => "rollover",
            Command::ClusterInit => "cluster-init",
            Command::ClusterRemove { .. } => "cluster-remove",
            Command::ClusterExportCredentials { .. } => "cluster-export-credentials",
            Command::ClusterJoin { .. } => "cluster-join",
            Command::ClusterStatus => "cluster-status",
            Command::SettingSet { .. } => "setting-set",
            Command::SettingGet { .. } => "setting-get",
            Command::SettingUnset { .. } => "setting-unset",
            Command::SettingList => "setting-list",
            Command::VipAdd { .. } => "vip-add",
            Command::VipList => "vip-list",
            Command::VipMove { .. } => "vip-move",
            Command::VipRemove { .. } => "vip-remove",
            Command::SetupStatus => "setup-status",
            Command::Setup { .. } => "setup",
            Command::AdminAdd { .. } => "admin-add",
            Command::AdminList => "admin-list",
            Command::AdminRemove { .. } => "admin-remove",
            Command::AdminPassword { .. } => "admin-password",
            Command::TokenCreate { .. } => "token-create",
            Command::TokenList => "token-list",
            Command::TokenRevoke { .. } => "token-revoke",
            Command::AuditList { .. } => "audit-list",
            Command::TraceList { .. } => "trace-list",
            Command::Stats => "stats",
            Command::WebTlsSet { .. } => "web-tls-set",
            Command::Hardware => "hardware",
            Command::System => "system",
            Command::UpdateStage { .. } => "update",
            Command::NetworkGet => "network-get",
            Command::NetworkSet { .. } => "network-set",
        }
    }

    /// The role a command needs. Reads of public data need `readonly`; changes, and reads
    /// that hand out secrets (a PKCS#12 bundle, join credentials), need `admin`.
    pub fn role(&self) -> Role {
        match self {
            Command::UserList
            | Command::UserCert { .. }
            | Command::UserPgp { .. }
            | Command::PartnerList
            | Command::CaCert
            | Command::ClusterInit
            | Command::ClusterStatus
            | Command::SettingGet { .. }
            | Command::SettingList
            | Command::VipList
            | Command::SetupStatus
            | Command::AdminList
            | Command::TokenList
            | Command::AuditList { .. }
            | Command::TraceList { .. }
            | Command::Stats
            | Command::Hardware
            | Command::System
            | Command::NetworkGet => Role::Readonly,
            _ => Role::Admin,
        }
    }

    /// What the audit log records as the object of the action: never a secret.
    pub fn subject(&self) -> String {
        match self {
            Command::UserEnrol { address }
            | Command::UserRemove { address }
            | Command::UserPkcs12 { address, .. }
            | Command::VipAdd { address, .. }
            | Command::VipMove { address, .. }
            | Command::VipRemove { address } => address.clone(),
            Command::ClusterRemove { id } => format!("node {id}"),
            Command::ClusterJoin { peer, .. } => format!("via {peer}"),
            Command::SettingSet { key, value } => format!("{key} = {value}"),
            Command::SettingUnset { key } => key.clone(),
            Command::Setup { admin, .. } => admin.clone(),
            Command::AdminAdd { name, role, .. } => format!("{name} ({role})"),
            Command::AdminRemove { name }
            | Command::AdminPassword { name, .. }
            | Command::TokenRevoke { name } => name.clone(),
            Command::TokenCreate { name, role } => format!("{name} ({role})"),
            Command::UpdateStage { reboot: true } => "then reboot".into(),
            Command::NetworkSet { settings } if settings.addresses.is_empty() => "DHCP".into(),
            Command::NetworkSet { settings } => settings.addresses.join(" "),
            _ => String::new(),
        }
    }
}

/// Why a command failed, for the HTTP status the API answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The request cannot be done as asked (400).
    Invalid,
    /// The actor's role does not allow it (403).
    Forbidden,
    /// The thing named does not exist (404).
    NotFound,
    /// It conflicts with the state (409), e.g. setup of a cluster that is set up.
    Conflict,
    /// The cluster cannot commit or confirm now (503): no quorum, no leader.
    Unavailable,
}

impl ErrorKind {
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::Invalid => 400,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::Unavailable => 503,
        }
    }
}

/// The answer to one command.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ErrorKind>,
    #[serde(default)]
    pub data: serde_json::Value,
}

impl Response {
    pub fn ok(data: serde_json::Value) -> Response {
        Response {
            ok: true,
            error: None,
            kind: None,
            data,
        }
    }

    pub fn err(kind: ErrorKind, e: impl std::fmt::Display) -> Response {
        Response {
            ok: false,
            error: Some(e.to_string()),
            kind: Some(kind),
            data: serde_json::Value::Null,
        }
    }

    /// From a result whose error is a plain message (an invalid request).
    pub fn from_result(r: Result<serde_json::Value, String>) -> Response {
        match r {
            Ok(d) => Response::ok(d),
            Err(e) => Response::err(ErrorKind::Invalid, e),
        }
    }
}
