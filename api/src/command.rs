//! Every management action as one [`Command`] with a typed request struct (in
//! [`requests`]) and a typed reply ([`Reply`], one variant per command). On the control
//! socket a command is one JSON object tagged by `command` (`{"command": "user-enrol",
//! "address": "…"}`); a reply is the JSON of its data.
//!
//! Any member takes any command: writes go through the leader and are committed before the
//! reply; admin reads are linearizable (ReadIndex). What a command needs of its actor is
//! its [`Role`]: reads of public data `readonly`; changes, and reads that hand out secrets
//! (a PKCS#12 bundle, join credentials), `admin`.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::Role;
use crate::views;

/// A request with a typed answer: `R::Response` is what the daemon sends back for it.
pub trait Request: Into<Command> {
    type Response: Serialize + DeserializeOwned + Send + 'static;
    /// The response, if `reply` answers this request.
    fn response(reply: Reply) -> Option<Self::Response>;
}

macro_rules! commands {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident $audit:literal $role:ident {
            $($(#[$fattr:meta])* $field:ident : $fty:ty),* $(,)?
        } -> $resp:ty;
    )+) => {
        /// The request structs, one per command (the command's arguments).
        pub mod requests {
            use super::*;
            $(
                $(#[doc = $doc])*
                #[derive(Clone, PartialEq, Serialize, Deserialize)]
                pub struct $name {
                    $($(#[$fattr])* pub $field: $fty,)*
                }

                // Arguments may be passwords, keys or tokens: never printed.
                impl std::fmt::Debug for $name {
                    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!(stringify!($name), " { .. }"))
                    }
                }

                impl From<$name> for Command {
                    fn from(r: $name) -> Command {
                        Command::$name(r)
                    }
                }

                impl Request for $name {
                    type Response = $resp;
                    fn response(reply: Reply) -> Option<$resp> {
                        match reply {
                            Reply::$name(v) => Some(v),
                            _ => None,
                        }
                    }
                }
            )+
        }

        /// Every management action.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "command", rename_all = "kebab-case")]
        pub enum Command {
            $($(#[doc = $doc])* $name(requests::$name),)+
        }

        /// The answer to a command: one variant per command, its typed data. Serialized as
        /// the data alone (the API's response body).
        #[derive(Clone, PartialEq, Serialize)]
        #[serde(untagged)]
        pub enum Reply {
            $($name($resp),)+
        }

        impl std::fmt::Debug for Reply {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                // The data may hold secrets (a TOTP secret, a token, a PKCS#12 bundle).
                match self {
                    $(Reply::$name(_) => f.write_str(concat!("Reply::", stringify!($name), "(..)")),)+
                }
            }
        }

        impl Command {
            /// Every command's name, in the order they are declared.
            pub const NAMES: &'static [&'static str] = &[$($audit,)+];

            /// The command's name for logs and the audit log (never its arguments).
            pub fn name(&self) -> &'static str {
                match self {
                    $(Command::$name(_) => $audit,)+
                }
            }

            /// The role a command needs.
            pub fn role(&self) -> Role {
                match self {
                    $(Command::$name(_) => Role::$role,)+
                }
            }
        }
    };
}

commands! {
    /// Create S/MIME and OpenPGP keys for an internal user.
    UserEnrol "user-enrol" Admin { address: String } -> views::User;
    UserList "user-list" Readonly {} -> Vec<views::User>;
    UserRemove "user-remove" Admin { address: String } -> ();
    /// Public certificates (PEM) of a user.
    UserCert "user-cert" Readonly { address: String } -> String;
    /// Public OpenPGP keys (armored) of a user.
    UserPgp "user-pgp" Readonly { address: String } -> String;
    /// The user's current S/MIME identity as PKCS#12 (base64) under `password`.
    UserPkcs12 "user-pkcs12" Admin { address: String, password: String } -> String;
    /// Import a PKCS#12 bundle (base64) as a user's S/MIME identity.
    ImportPkcs12 "import-pkcs12" Admin { data: String, password: String } -> views::User;
    /// Import an OpenPGP secret key (base64 of the file) as a user's key.
    ImportPgpSecret "import-pgp-secret" Admin { data: String } -> views::User;
    /// Import partner certificates (PEM) or OpenPGP public keys (base64 of the file); the
    /// addresses that received a key.
    ImportPublic "import-public" Admin { data: String } -> Vec<String>;
    PartnerList "partner-list" Readonly {} -> Vec<views::Partner>;
    /// Add S/MIME trust anchors (base64 of a PEM file); how many certificates it held.
    TrustAdd "trust-add" Admin { data: String } -> usize;
    /// The built-in CA certificate (PEM), for partners' trust stores.
    CaCert "ca-cert" Readonly {} -> String;
    /// Run the key rollover check now; the users that got new keys.
    Rollover "rollover" Admin {} -> Vec<String>;
    /// Our internal domains, their domain keys and what they publish.
    DomainList "domain-list" Readonly {} -> Vec<views::Domain>;
    /// A new domain key now, certified by the current one (rollover happens by itself a
    /// week before expiry).
    DomainRollover "domain-rollover" Admin { domain: String } -> views::Domain;
    /// Revoke one of our domain keys (partners stop using it at their next refresh).
    DomainRevoke "domain-revoke" Admin { domain: String, fingerprint: String } -> ();
    /// The OPENPGPKEY, SMIMEA and policy TXT records for the domain's DNSSEC-signed zone.
    DomainDnsRecords "domain-dns-records" Readonly { domain: String } -> views::DnsRecords;
    /// Partner domains and what is pinned for them.
    PartnerDomainList "partner-domain-list" Readonly {} -> Vec<views::PartnerDomain>;
    /// Pin a partner's OpenPGP domain key by hand (base64 of the key file): verified.
    PartnerDomainImport "partner-domain-import" Admin { domain: String, data: String } -> views::PartnerDomain;
    /// Look a partner domain up now (DNSSEC, WKD).
    PartnerDomainRefresh "partner-domain-refresh" Admin { domain: String } -> views::PartnerDomain;
    /// Forget everything pinned for a partner domain.
    PartnerDomainForget "partner-domain-forget" Admin { domain: String } -> ();
    /// The single-member cluster this node founded at first start.
    ClusterInit "cluster-init" Readonly {} -> views::Membership;
    /// Credentials with a one-time join token valid for `ttl_secs` (60 s to 7 days).
    ClusterExportCredentials "cluster-export-credentials" Admin { ttl_secs: u64 } -> views::Credentials;
    /// Leave this node's own single-member cluster and join the one the credentials (the
    /// exported JSON) name, through the member at `peer`.
    ClusterJoin "cluster-join" Admin { credentials: String, peer: String } -> views::Membership;
    /// Take member `id` out of the cluster.
    ClusterRemove "cluster-remove" Admin { id: u64 } -> views::Removed;
    /// Members, leader, term, applied index of this node.
    ClusterStatus "cluster-status" Readonly {} -> views::ClusterStatus;
    /// A replicated setting (committed through the leader).
    SettingSet "setting-set" Admin { key: String, value: String } -> ();
    /// Remove a replicated setting (Postern's settings: back to the file's value).
    SettingUnset "setting-unset" Admin { key: String } -> ();
    /// A replicated setting (linearizable read).
    SettingGet "setting-get" Readonly { key: String } -> String;
    /// Every replicated setting.
    SettingList "setting-list" Readonly {} -> BTreeMap<String, String>;
    /// Configure a virtual IP (`address/prefix`) on `interface`, preferring `preferred`.
    VipAdd "vip-add" Admin {
        address: String,
        interface: String,
        #[serde(default)]
        preferred: Vec<u64>,
    } -> ();
    /// Virtual IPs, holders and leases.
    VipList "vip-list" Readonly {} -> Vec<views::Vip>;
    /// Move a virtual IP to node `to`.
    VipMove "vip-move" Admin { address: String, to: u64 } -> ();
    VipRemove "vip-remove" Admin { address: String } -> ();
    /// Whether this node's cluster has been set up (it has an administrator).
    SetupStatus "setup-status" Readonly {} -> views::SetupStatus;
    /// First-boot setup of a new cluster: the first administrator, the internal domains and
    /// the downstream MTA. Refused once the cluster has an administrator.
    Setup "setup" Admin {
        admin: String,
        password: String,
        #[serde(default)]
        domains: Vec<String>,
        #[serde(default)]
        downstream: String,
    } -> views::AdminCreated;
    /// A new administrator (role `admin` or `readonly`); the reply carries the TOTP secret.
    AdminAdd "admin-add" Admin { name: String, password: String, role: String } -> views::AdminCreated;
    AdminList "admin-list" Readonly {} -> Vec<views::Admin>;
    AdminRemove "admin-remove" Admin { name: String } -> ();
    /// A new password for an administrator (the TOTP secret stays).
    AdminPassword "admin-password" Admin { name: String, password: String } -> ();
    /// Another role for an administrator (`admin` or `readonly`): in force for their open
    /// sessions at their next request.
    AdminRole "admin-role" Admin { name: String, role: String } -> ();
    /// An API token (shown once in the reply) acting with `role`.
    TokenCreate "token-create" Admin { name: String, role: String } -> views::TokenCreated;
    TokenList "token-list" Readonly {} -> Vec<views::Token>;
    TokenRevoke "token-revoke" Admin { name: String } -> ();
    /// The latest `limit` administrative actions, newest first.
    AuditList "audit-list" Readonly { limit: usize } -> Vec<views::AuditEntry>;
    /// The latest `limit` mail transactions of this node, newest first (never bodies).
    TraceList "trace-list" Readonly { limit: usize } -> Vec<views::TraceRecord>;
    /// This node's mail counters.
    Stats "stats" Readonly {} -> views::Stats;
    /// The web GUI's HTTPS certificate and key (PEM) for every node.
    WebTlsSet "web-tls-set" Admin { cert: String, key: String } -> ();
    /// This node's hardware (report, readings, event log) and every node's summary.
    Hardware "hardware" Readonly {} -> views::Hardware;
    /// This node's system: the root slot and image version it runs, the last update.
    System "system" Readonly {} -> views::System;
    /// Install the update bundle the web server received into this node's spool folder
    /// (verified here, written to the inactive slot by the privileged installer).
    UpdateStage "update" Admin { reboot: bool } -> views::Staged;
    /// This node's network settings: static (addresses, gateways, DNS, NTP) or DHCP.
    NetworkGet "network-get" Readonly {} -> views::Network;
    /// Replace this node's network settings (no addresses: DHCP); applied at once.
    NetworkSet "network-set" Admin { settings: views::NetworkSettings } -> views::Network;
}

impl Command {
    /// What the audit log records as the object of the action: never a secret.
    pub fn subject(&self) -> String {
        use Command as C;
        match self {
            C::UserEnrol(r) => r.address.clone(),
            C::UserRemove(r) => r.address.clone(),
            C::UserPkcs12(r) => r.address.clone(),
            C::UserList(_) | C::UserCert(_) | C::UserPgp(_) => String::new(),
            C::ImportPkcs12(_) | C::ImportPgpSecret(_) | C::ImportPublic(_) => String::new(),
            C::PartnerList(_) | C::TrustAdd(_) | C::CaCert(_) | C::Rollover(_) => String::new(),
            C::ClusterInit(_) | C::ClusterStatus(_) => String::new(),
            C::DomainList(_) | C::PartnerDomainList(_) => String::new(),
            C::DomainRollover(r) => r.domain.clone(),
            C::DomainRevoke(r) => format!("{} key {}", r.domain, r.fingerprint),
            C::DomainDnsRecords(r) => r.domain.clone(),
            C::PartnerDomainImport(r) => r.domain.clone(),
            C::PartnerDomainRefresh(r) => r.domain.clone(),
            C::PartnerDomainForget(r) => r.domain.clone(),
            C::ClusterExportCredentials(r) => format!("valid {} s", r.ttl_secs),
            C::ClusterJoin(r) => format!("via {}", r.peer),
            C::ClusterRemove(r) => format!("node {}", r.id),
            C::SettingSet(r) => format!("{} = {}", r.key, r.value),
            C::SettingUnset(r) => r.key.clone(),
            C::SettingGet(_) | C::SettingList(_) => String::new(),
            C::VipAdd(r) => r.address.clone(),
            C::VipMove(r) => format!("{} to node {}", r.address, r.to),
            C::VipRemove(r) => r.address.clone(),
            C::VipList(_) => String::new(),
            C::SetupStatus(_) => String::new(),
            C::Setup(r) => r.admin.clone(),
            C::AdminAdd(r) => format!("{} ({})", r.name, r.role),
            C::AdminRemove(r) => r.name.clone(),
            C::AdminPassword(r) => r.name.clone(),
            C::AdminRole(r) => format!("{} ({})", r.name, r.role),
            C::AdminList(_) | C::TokenList(_) => String::new(),
            C::TokenCreate(r) => format!("{} ({})", r.name, r.role),
            C::TokenRevoke(r) => r.name.clone(),
            C::AuditList(_) | C::TraceList(_) | C::Stats(_) => String::new(),
            C::WebTlsSet(_) => String::new(),
            C::Hardware(_) | C::System(_) | C::NetworkGet(_) => String::new(),
            C::UpdateStage(r) => if r.reboot { "then reboot" } else { "" }.to_owned(),
            C::NetworkSet(r) if r.settings.addresses.is_empty() => "DHCP".into(),
            C::NetworkSet(r) => r.settings.addresses.join(" "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::requests::*;
    use super::*;

    #[test]
    fn the_wire_form_is_a_tagged_object() {
        let c: Command = UserEnrol {
            address: "a@corp.example".into(),
        }
        .into();
        let json = serde_json::to_string(&c).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"command":"user-enrol","address":"a@corp.example"}"#
        );
        let list: Command = UserList {}.into();
        assert_eq!(
            serde_json::to_string(&list).unwrap_or_default(),
            r#"{"command":"user-list"}"#
        );
        let back: Command = serde_json::from_str(r#"{"command":"user-list"}"#).expect("parse");
        assert_eq!(back, list);
        let vip: Command = serde_json::from_str(
            r#"{"command":"vip-add","address":"192.0.2.1/24","interface":"eth0"}"#,
        )
        .expect("defaults");
        assert_eq!(vip.name(), "vip-add");
        assert_eq!(vip.role(), Role::Admin);
        assert!(serde_json::from_str::<Command>(r#"{"command":"no-such"}"#).is_err());
    }

    #[test]
    fn secrets_never_print() {
        let c: Command = AdminAdd {
            name: "ops".into(),
            password: "correct horse battery".into(),
            role: "admin".into(),
        }
        .into();
        assert!(!format!("{c:?}").contains("horse"));
        assert_eq!(c.subject(), "ops (admin)");
        let r = Reply::TokenCreate(views::TokenCreated {
            name: "ci".into(),
            role: Role::Admin,
            token: "s3cr3t".into(),
        });
        assert!(!format!("{r:?}").contains("s3cr3t"));
        assert_eq!(
            serde_json::to_value(&r).unwrap_or_default()["token"],
            "s3cr3t"
        );
    }

    #[test]
    fn a_reply_answers_its_request_only() {
        let r = Reply::CaCert("PEM".into());
        assert_eq!(CaCert::response(r.clone()), Some("PEM".into()));
        assert_eq!(UserCert::response(r), None);
        assert_eq!(
            serde_json::to_string(&Reply::UserRemove(())).unwrap_or_default(),
            "null"
        );
    }
}
