//! The replicated state and its state machine: a pure `apply(command) -> outcome`. The Raft
//! node feeds it committed entries in log order on every member, so every member holds the
//! same `State` at the same applied index. No I/O, no clocks: time arrives inside commands.
//!
//! Private key material never appears here in the clear: the gateway seals it under the
//! cluster key before proposing (`sealed_private`), so neither the log nor snapshots carry it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A key or certificate of a user or partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// `smime` or `openpgp`.
    pub kind: String,
    /// Certificate (PEM) or public key (armored).
    pub public: String,
    /// The private key sealed under the cluster key (never plaintext).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_private: Option<String>,
    /// Seconds since the epoch.
    pub not_after: u64,
    /// What the gateway keeps beside the key (chain certificates, announced capabilities,
    /// when it was last seen); opaque to the cluster.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub keys: Vec<KeyRecord>,
}

/// A recipient-portal account (issue 7 of DESIGN.md §7): a password hash, never a password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalAccount {
    pub password_hash: String,
    pub created: u64,
}

/// A configured virtual IP (`address/prefix`, e.g. `198.18.0.100/24`): the interface it
/// goes on, the nodes it prefers in order, and a pending move asked for by the admin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipConfig {
    pub interface: String,
    #[serde(default)]
    pub preferred: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub move_to: Option<u64>,
}

/// Which node holds a virtual IP, and until when its lease runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipAssignment {
    pub node: u64,
    pub lease_until_ms: u64,
}

/// An administrator of the web GUI, REST API and CLI: an argon2 password hash and the TOTP
/// secret sealed under the cluster key (never either in the clear).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminAccount {
    pub password_hash: String,
    pub totp_sealed: String,
    /// `admin` (may change things) or `readonly`.
    pub role: String,
    pub created: u64,
}

/// An API token, known by the SHA-256 of its secret only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub name: String,
    pub role: String,
    pub created: u64,
}

/// One administrative action, as the audit log keeps it (never passwords or keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Seconds since the epoch.
    pub time: u64,
    /// Who: an admin account, `token:NAME`, or `local` (the control socket).
    pub actor: String,
    /// `gui`, `api` or `cli`.
    pub via: String,
    pub action: String,
    /// The object acted on (an address, a key name), never secrets.
    pub detail: String,
    /// `ok` or the error.
    pub result: String,
    pub node: u64,
}

/// A node's hardware health as the other members see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardwareRecord {
    pub model: String,
    /// `ok`, `degraded` or `FAILED`.
    pub overall: String,
    /// `component: what is wrong`, one per problem.
    pub problems: Vec<String>,
    pub disk_failing: bool,
    /// When the node last changed it (seconds since the epoch).
    pub time: u64,
}

/// What is pinned for a partner domain (federation): its domain keys (public; `kind`
/// `openpgp` for OpenPGP keys, `smime` for S/MIME domain certificates; `meta`: `sources`,
/// `first_seen`, `last_seen`, and `revoked` for OpenPGP keys) and its policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerDomain {
    /// Newest first.
    pub keys: Vec<KeyRecord>,
    #[serde(default)]
    pub policy: Option<DomainPolicyRecord>,
}

/// A partner domain's policy as pinned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainPolicyRecord {
    /// `testing` or `enforce`.
    pub mode: String,
    pub max_age: u64,
    /// When it was last seen (seconds since the epoch).
    pub seen: u64,
    /// `dnssec`, `wkd`, `in-band` or `imported`.
    pub source: String,
    pub verified: bool,
}

/// How many audit entries the state keeps (oldest dropped first).
pub const AUDIT_KEEP: usize = 1000;

/// A one-time join token, known by its SHA-256 only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinToken {
    pub expires: u64,
    pub used: bool,
}

/// Everything the cluster agrees on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Where each member's cluster port is, by node id.
    #[serde(default)]
    pub members: BTreeMap<u64, String>,
    /// Join tokens by SHA-256 (hex) of the token.
    #[serde(default)]
    pub join_tokens: BTreeMap<String, JoinToken>,
    /// The gateway's built-in certificate authority (its key sealed).
    #[serde(default)]
    pub ca: Option<KeyRecord>,
    /// Certificates (PEM) the admin trusts as S/MIME roots.
    #[serde(default)]
    pub trust_anchors: Vec<String>,
    #[serde(default)]
    pub users: BTreeMap<String, User>,
    /// Harvested or imported partner keys by address.
    #[serde(default)]
    pub partner_keys: BTreeMap<String, Vec<KeyRecord>>,
    /// Domain keys by domain (own ones carry `sealed_private`).
    #[serde(default)]
    pub domain_keys: BTreeMap<String, Vec<KeyRecord>>,
    /// Partner domains' pinned keys and policies (federation), by domain.
    #[serde(default)]
    pub partner_domains: BTreeMap<String, PartnerDomain>,
    #[serde(default)]
    pub policies: BTreeMap<String, String>,
    #[serde(default)]
    pub portal_accounts: BTreeMap<String, PortalAccount>,
    /// Configured virtual IPs by address.
    #[serde(default)]
    pub vip_config: BTreeMap<String, VipConfig>,
    /// Who holds each virtual IP under which lease.
    #[serde(default)]
    pub vips: BTreeMap<String, VipAssignment>,
    /// Nodes that reported they cannot serve mail (SMTP down or downstream unreachable).
    #[serde(default)]
    pub unhealthy: BTreeMap<u64, String>,
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Administrators by login name.
    #[serde(default)]
    pub admins: BTreeMap<String, AdminAccount>,
    /// API tokens by SHA-256 (hex) of the token.
    #[serde(default)]
    pub api_tokens: BTreeMap<String, ApiToken>,
    /// The latest administrative actions, oldest first, at most [`AUDIT_KEEP`].
    #[serde(default)]
    pub audit: std::collections::VecDeque<AuditEntry>,
    /// Each node's hardware health, as it last reported it.
    #[serde(default)]
    pub hardware: BTreeMap<u64, HardwareRecord>,
    /// The HTTPS certificate of the web GUI (its key sealed); none: each node's own.
    #[serde(default)]
    pub web_tls: Option<KeyRecord>,
    /// Commands applied so far (every member reaches the same number).
    #[serde(default)]
    pub applied_commands: u64,
}

/// A change to the state, proposed through the leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Command {
    PutUser {
        address: String,
        user: User,
    },
    RemoveUser {
        address: String,
    },
    /// Adds a key to a user, replacing one with the same public part.
    AddUserKey {
        address: String,
        key: KeyRecord,
    },
    /// Adds or refreshes a partner key (same public part: replaced).
    PutPartnerKey {
        address: String,
        key: KeyRecord,
    },
    /// Replaces every key of a partner (newest first).
    PutPartner {
        address: String,
        keys: Vec<KeyRecord>,
    },
    RemovePartner {
        address: String,
    },
    /// Sets the built-in CA; refused when there already is one (the first founder wins).
    PutCa {
        key: KeyRecord,
    },
    /// Replaces the list of trusted S/MIME roots.
    SetTrustAnchors {
        pems: Vec<String>,
    },
    /// Several commands applied together, in order, in one entry (one change of the
    /// gateway's key store). The outcome is the first that is not `Done`.
    Batch {
        commands: Vec<Command>,
    },
    PutDomainKey {
        domain: String,
        key: KeyRecord,
    },
    /// Replaces what is pinned for a partner domain.
    PutPartnerDomain {
        domain: String,
        record: PartnerDomain,
    },
    RemovePartnerDomain {
        domain: String,
    },
    PutPolicy {
        name: String,
        value: String,
    },
    RemovePolicy {
        name: String,
    },
    PutPortalAccount {
        address: String,
        account: PortalAccount,
    },
    RemovePortalAccount {
        address: String,
    },
    /// Configures (or reconfigures) a virtual IP.
    PutVip {
        address: String,
        config: VipConfig,
    },
    /// Forgets a virtual IP (its holder drops it when its lease is not renewed).
    RemoveVip {
        address: String,
    },
    /// A node's own report: it can serve mail (`reason` empty) or not, and why.
    SetHealth {
        node: u64,
        reason: String,
    },
    /// Assigns a VIP to `node` only if it is free, already `node`'s, or its lease has run out
    /// at `now_ms` (the leader's clock, carried in the command so apply stays deterministic).
    AssignVip {
        vip: String,
        node: u64,
        lease_until_ms: u64,
        now_ms: u64,
    },
    ReleaseVip {
        vip: String,
        node: u64,
    },
    PutSetting {
        key: String,
        value: String,
    },
    RemoveSetting {
        key: String,
    },
    /// Creates or replaces an administrator. With `first`, refused unless there is none yet
    /// (first-boot setup: two browsers racing cannot both create the first account).
    PutAdmin {
        name: String,
        account: AdminAccount,
        #[serde(default)]
        first: bool,
    },
    /// Removes an administrator; refused for the last one with the `admin` role.
    RemoveAdmin {
        name: String,
    },
    PutApiToken {
        hash: String,
        token: ApiToken,
    },
    /// Revokes every token called `name`.
    RemoveApiToken {
        name: String,
    },
    /// Appends to the audit log.
    Audit {
        entry: AuditEntry,
    },
    /// A node's own report of its hardware health.
    SetHardware {
        node: u64,
        record: HardwareRecord,
    },
    /// Sets the web GUI's HTTPS certificate for every node.
    PutWebTls {
        key: KeyRecord,
    },
    /// Records where member `id` listens (the founding member, or a changed address).
    PutMember {
        id: u64,
        addr: String,
    },
    RemoveMember {
        id: u64,
    },
    /// A new one-time join token (its hash) valid until `expires` (seconds).
    AddJoinToken {
        hash: String,
        expires: u64,
    },
    /// Spends a join token for a node that will listen on `addr`: on success the outcome is
    /// the new node's id, and the member is recorded.
    UseJoinToken {
        hash: String,
        now: u64,
        addr: String,
    },
}

/// What applying a command did. Every member computes the same outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Done,
    /// The thing to change does not exist.
    NotFound(String),
    /// The command conflicts with the state (e.g. a VIP held by another node's live lease).
    Refused(String),
    /// A join token was spent: the new member's id.
    Joined(u64),
}

/// Applies one committed command.
pub fn apply(state: &mut State, cmd: &Command) -> Outcome {
    state.applied_commands += 1;
    apply_one(state, cmd)
}

fn apply_one(state: &mut State, cmd: &Command) -> Outcome {
    let missing = |what: &str, key: &str| Outcome::NotFound(format!("{what} {key} does not exist"));
    match cmd {
        Command::PutUser { address, user } => {
            state.users.insert(address.clone(), user.clone());
            Outcome::Done
        }
        Command::RemoveUser { address } => match state.users.remove(address) {
            Some(_) => Outcome::Done,
            None => missing("user", address),
        },
        Command::AddUserKey { address, key } => match state.users.get_mut(address) {
            Some(u) => {
                upsert(&mut u.keys, key);
                Outcome::Done
            }
            None => missing("user", address),
        },
        Command::PutPartnerKey { address, key } => {
            upsert(state.partner_keys.entry(address.clone()).or_default(), key);
            Outcome::Done
        }
        Command::PutPartner { address, keys } => {
            if keys.is_empty() {
                state.partner_keys.remove(address);
            } else {
                state.partner_keys.insert(address.clone(), keys.clone());
            }
            Outcome::Done
        }
        Command::RemovePartner { address } => match state.partner_keys.remove(address) {
            Some(_) => Outcome::Done,
            None => missing("partner", address),
        },
        Command::PutCa { key } => match &state.ca {
            Some(ca) if ca.public != key.public => {
                Outcome::Refused("the cluster already has a certificate authority".into())
            }
            _ => {
                state.ca = Some(key.clone());
                Outcome::Done
            }
        },
        Command::SetTrustAnchors { pems } => {
            state.trust_anchors = pems.clone();
            Outcome::Done
        }
        Command::Batch { commands } => {
            commands
                .iter()
                .map(|c| apply_one(state, c))
                .fold(Outcome::Done, |first, o| match first {
                    Outcome::Done => o,
                    other => other,
                })
        }
        Command::PutDomainKey { domain, key } => {
            upsert(state.domain_keys.entry(domain.clone()).or_default(), key);
            Outcome::Done
        }
        Command::PutPartnerDomain { domain, record } => {
            state.partner_domains.insert(domain.clone(), record.clone());
            Outcome::Done
        }
        Command::RemovePartnerDomain { domain } => match state.partner_domains.remove(domain) {
            Some(_) => Outcome::Done,
            None => missing("partner domain", domain),
        },
        Command::PutPolicy { name, value } => {
            state.policies.insert(name.clone(), value.clone());
            Outcome::Done
        }
        Command::RemovePolicy { name } => match state.policies.remove(name) {
            Some(_) => Outcome::Done,
            None => missing("policy", name),
        },
        Command::PutPortalAccount { address, account } => {
            state
                .portal_accounts
                .insert(address.clone(), account.clone());
            Outcome::Done
        }
        Command::RemovePortalAccount { address } => match state.portal_accounts.remove(address) {
            Some(_) => Outcome::Done,
            None => missing("portal account", address),
        },
        Command::AssignVip {
            vip,
            node,
            lease_until_ms,
            now_ms,
        } => match state.vips.get(vip) {
            Some(a) if a.node != *node && a.lease_until_ms > *now_ms => Outcome::Refused(format!(
                "VIP {vip} is held by node {} until {} ms",
                a.node, a.lease_until_ms
            )),
            _ => {
                state.vips.insert(
                    vip.clone(),
                    VipAssignment {
                        node: *node,
                        lease_until_ms: *lease_until_ms,
                    },
                );
                Outcome::Done
            }
        },
        Command::PutVip { address, config } => {
            state.vip_config.insert(address.clone(), config.clone());
            Outcome::Done
        }
        Command::RemoveVip { address } => match state.vip_config.remove(address) {
            Some(_) => Outcome::Done,
            None => missing("VIP", address),
        },
        Command::SetHealth { node, reason } => {
            if reason.is_empty() {
                state.unhealthy.remove(node);
            } else {
                state.unhealthy.insert(*node, reason.clone());
            }
            Outcome::Done
        }
        Command::ReleaseVip { vip, node } => match state.vips.get(vip) {
            Some(a) if a.node == *node => {
                state.vips.remove(vip);
                Outcome::Done
            }
            Some(a) => {
                Outcome::Refused(format!("VIP {vip} is held by node {}, not {node}", a.node))
            }
            None => missing("VIP", vip),
        },
        Command::PutSetting { key, value } => {
            state.settings.insert(key.clone(), value.clone());
            Outcome::Done
        }
        Command::RemoveSetting { key } => match state.settings.remove(key) {
            Some(_) => Outcome::Done,
            None => missing("setting", key),
        },
        Command::PutAdmin {
            name,
            account,
            first,
        } => {
            if *first && !state.admins.is_empty() {
                return Outcome::Refused("this cluster has already been set up".into());
            }
            if account.role != "admin" && last_admin(state, name) {
                return Outcome::Refused(format!("{name} is the last account with the admin role"));
            }
            state.admins.insert(name.clone(), account.clone());
            Outcome::Done
        }
        Command::RemoveAdmin { name } => {
            if !state.admins.contains_key(name) {
                return missing("admin", name);
            }
            if last_admin(state, name) {
                return Outcome::Refused(format!("{name} is the last account with the admin role"));
            }
            state.admins.remove(name);
            Outcome::Done
        }
        Command::PutApiToken { hash, token } => {
            state.api_tokens.insert(hash.clone(), token.clone());
            Outcome::Done
        }
        Command::RemoveApiToken { name } => {
            let before = state.api_tokens.len();
            state.api_tokens.retain(|_, t| t.name != *name);
            if state.api_tokens.len() == before {
                missing("API token", name)
            } else {
                Outcome::Done
            }
        }
        Command::Audit { entry } => {
            state.audit.push_back(entry.clone());
            while state.audit.len() > AUDIT_KEEP {
                state.audit.pop_front();
            }
            Outcome::Done
        }
        Command::SetHardware { node, record } => {
            state.hardware.insert(*node, record.clone());
            Outcome::Done
        }
        Command::PutWebTls { key } => {
            state.web_tls = Some(key.clone());
            Outcome::Done
        }
        Command::PutMember { id, addr } => {
            state.members.insert(*id, addr.clone());
            Outcome::Done
        }
        Command::RemoveMember { id } => match state.members.remove(id) {
            Some(_) => {
                state.hardware.remove(id);
                Outcome::Done
            }
            None => missing("member", &id.to_string()),
        },
        Command::AddJoinToken { hash, expires } => {
            state.join_tokens.insert(
                hash.clone(),
                JoinToken {
                    expires: *expires,
                    used: false,
                },
            );
            Outcome::Done
        }
        Command::UseJoinToken { hash, now, addr } => match state.join_tokens.get_mut(hash) {
            None => Outcome::Refused("unknown join token (tampered or foreign credentials)".into()),
            Some(t) if t.used => Outcome::Refused("join token already used".into()),
            Some(t) if t.expires <= *now => Outcome::Refused("join token expired".into()),
            Some(t) => {
                t.used = true;
                let id = state.members.keys().max().copied().unwrap_or(0) + 1;
                state.members.insert(id, addr.clone());
                Outcome::Joined(id)
            }
        },
    }
}

/// Whether `name` is the only account with the admin role.
fn last_admin(state: &State, name: &str) -> bool {
    state.admins.get(name).is_some_and(|a| a.role == "admin")
        && state.admins.values().filter(|a| a.role == "admin").count() == 1
}

/// Newest first; a record with the same public part is replaced.
fn upsert(keys: &mut Vec<KeyRecord>, key: &KeyRecord) {
    keys.retain(|k| k.public != key.public);
    keys.insert(0, key.clone());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(public: &str) -> KeyRecord {
        KeyRecord {
            kind: "smime".into(),
            public: public.into(),
            sealed_private: None,
            not_after: 9,
            meta: BTreeMap::new(),
        }
    }

    fn admin(role: &str) -> AdminAccount {
        AdminAccount {
            password_hash: "h".into(),
            totp_sealed: "s".into(),
            role: role.into(),
            created: 1,
        }
    }

    #[test]
    fn admins_first_setup_and_last_admin() {
        let mut s = State::default();
        let put = |name: &str, role: &str, first: bool| Command::PutAdmin {
            name: name.into(),
            account: admin(role),
            first,
        };
        assert_eq!(apply(&mut s, &put("root", "admin", true)), Outcome::Done);
        // A second first-boot setup (another browser) is refused.
        assert!(matches!(
            apply(&mut s, &put("eve", "admin", true)),
            Outcome::Refused(_)
        ));
        // The only admin can neither be removed nor demoted.
        let remove = Command::RemoveAdmin {
            name: "root".into(),
        };
        assert!(matches!(apply(&mut s, &remove), Outcome::Refused(_)));
        assert!(matches!(
            apply(&mut s, &put("root", "readonly", false)),
            Outcome::Refused(_)
        ));
        assert_eq!(apply(&mut s, &put("ops", "admin", false)), Outcome::Done);
        assert_eq!(apply(&mut s, &remove), Outcome::Done);
        assert_eq!(s.admins.len(), 1);
        for i in 0..(AUDIT_KEEP + 5) {
            let entry = AuditEntry {
                time: i as u64,
                actor: "ops".into(),
                via: "gui".into(),
                action: "user-enrol".into(),
                detail: String::new(),
                result: "ok".into(),
                node: 1,
            };
            apply(&mut s, &Command::Audit { entry });
        }
        assert_eq!(s.audit.len(), AUDIT_KEEP);
        assert_eq!(s.audit.front().map(|e| e.time), Some(5));
    }

    #[test]
    fn users_and_keys() {
        let mut s = State::default();
        assert_eq!(
            apply(
                &mut s,
                &Command::AddUserKey {
                    address: "a@x".into(),
                    key: key("k1")
                }
            ),
            Outcome::NotFound("user a@x does not exist".into())
        );
        apply(
            &mut s,
            &Command::PutUser {
                address: "a@x".into(),
                user: User::default(),
            },
        );
        apply(
            &mut s,
            &Command::AddUserKey {
                address: "a@x".into(),
                key: key("k1"),
            },
        );
        apply(
            &mut s,
            &Command::AddUserKey {
                address: "a@x".into(),
                key: key("k2"),
            },
        );
        apply(
            &mut s,
            &Command::AddUserKey {
                address: "a@x".into(),
                key: key("k1"),
            },
        );
        let keys: Vec<&str> = s.users["a@x"]
            .keys
            .iter()
            .map(|k| k.public.as_str())
            .collect();
        assert_eq!(keys, ["k1", "k2"]);
        assert_eq!(
            apply(
                &mut s,
                &Command::RemoveUser {
                    address: "a@x".into()
                }
            ),
            Outcome::Done
        );
        assert_eq!(s.applied_commands, 6);
    }

    #[test]
    fn ca_is_set_once_and_batches_apply_in_order() {
        let mut s = State::default();
        assert_eq!(
            apply(&mut s, &Command::PutCa { key: key("ca1") }),
            Outcome::Done
        );
        assert_eq!(
            apply(&mut s, &Command::PutCa { key: key("ca1") }),
            Outcome::Done,
            "the same CA again is harmless"
        );
        assert!(matches!(
            apply(&mut s, &Command::PutCa { key: key("ca2") }),
            Outcome::Refused(_)
        ));
        let batch = Command::Batch {
            commands: vec![
                Command::PutPartner {
                    address: "p@y".into(),
                    keys: vec![key("p1"), key("p2")],
                },
                Command::RemoveUser {
                    address: "nobody@x".into(),
                },
                Command::PutPartner {
                    address: "p@y".into(),
                    keys: vec![key("p3")],
                },
                Command::SetTrustAnchors {
                    pems: vec!["root".into()],
                },
            ],
        };
        assert_eq!(
            apply(&mut s, &batch),
            Outcome::NotFound("user nobody@x does not exist".into())
        );
        assert_eq!(s.partner_keys["p@y"], [key("p3")], "applied in order");
        assert_eq!(s.trust_anchors, ["root"], "the rest still applied");
        apply(
            &mut s,
            &Command::PutPartner {
                address: "p@y".into(),
                keys: Vec::new(),
            },
        );
        assert!(s.partner_keys.is_empty(), "no keys: the partner is gone");
        assert_eq!(s.ca.as_ref().map(|k| k.public.as_str()), Some("ca1"));
    }

    #[test]
    fn vip_leases_are_exclusive_until_they_run_out() {
        let mut s = State::default();
        let assign = |node, until, now| Command::AssignVip {
            vip: "10.0.0.1/24".into(),
            node,
            lease_until_ms: until,
            now_ms: now,
        };
        assert_eq!(apply(&mut s, &assign(1, 3000, 0)), Outcome::Done);
        assert!(matches!(
            apply(&mut s, &assign(2, 5000, 2999)),
            Outcome::Refused(_)
        ));
        assert_eq!(
            apply(&mut s, &assign(1, 6000, 2999)),
            Outcome::Done,
            "the holder renews"
        );
        assert_eq!(
            apply(&mut s, &assign(2, 9000, 6000)),
            Outcome::Done,
            "expired lease moves"
        );
        assert!(matches!(
            apply(
                &mut s,
                &Command::ReleaseVip {
                    vip: "10.0.0.1/24".into(),
                    node: 1
                }
            ),
            Outcome::Refused(_)
        ));
        assert_eq!(
            apply(
                &mut s,
                &Command::ReleaseVip {
                    vip: "10.0.0.1/24".into(),
                    node: 2
                }
            ),
            Outcome::Done
        );
    }

    #[test]
    fn join_tokens_are_one_time_and_expire() {
        let mut s = State::default();
        apply(
            &mut s,
            &Command::PutMember {
                id: 1,
                addr: "10.0.0.1:7946".into(),
            },
        );
        apply(
            &mut s,
            &Command::AddJoinToken {
                hash: "h".into(),
                expires: 100,
            },
        );
        let join = |now| Command::UseJoinToken {
            hash: "h".into(),
            now,
            addr: "10.0.0.2:7946".into(),
        };
        assert_eq!(apply(&mut s, &join(50)), Outcome::Joined(2));
        assert_eq!(
            apply(&mut s, &join(60)),
            Outcome::Refused("join token already used".into())
        );
        apply(
            &mut s,
            &Command::AddJoinToken {
                hash: "old".into(),
                expires: 100,
            },
        );
        let late = Command::UseJoinToken {
            hash: "old".into(),
            now: 100,
            addr: "x".into(),
        };
        assert_eq!(
            apply(&mut s, &late),
            Outcome::Refused("join token expired".into())
        );
        let unknown = Command::UseJoinToken {
            hash: "nope".into(),
            now: 1,
            addr: "x".into(),
        };
        assert!(matches!(apply(&mut s, &unknown), Outcome::Refused(_)));
        assert_eq!(s.members.len(), 2);
    }

    #[test]
    fn same_commands_same_state() {
        let cmds = [
            Command::PutSetting {
                key: "k".into(),
                value: "v".into(),
            },
            Command::PutPartnerKey {
                address: "p@y".into(),
                key: key("p1"),
            },
            Command::PutPolicy {
                name: "always_encrypt".into(),
                value: "true".into(),
            },
            Command::RemoveSetting {
                key: "missing".into(),
            },
        ];
        let (mut a, mut b) = (State::default(), State::default());
        let oa: Vec<Outcome> = cmds.iter().map(|c| apply(&mut a, c)).collect();
        // Through serialisation, as entries travel.
        let wire: Vec<Command> = cmds
            .iter()
            .map(|c| serde_json::from_str(&serde_json::to_string(c).unwrap()).unwrap())
            .collect();
        let ob: Vec<Outcome> = wire.iter().map(|c| apply(&mut b, c)).collect();
        assert_eq!((a, oa), (b, ob));
    }
}
