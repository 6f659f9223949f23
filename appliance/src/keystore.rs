//! The key store on the cluster state: users, their keys, harvested partner keys, the
//! built-in CA and the trust anchors live in the replicated [`State`]; the mail path reads
//! them from a local [`MemoryKeyStore`] that mirrors it.
//!
//! - Writes: a key store change ([`Change`]s) becomes one [`ClusterCommand::Batch`] proposed
//!   through the leader ([`ClusterKeys`]); admin changes wait until they are committed,
//!   keys harvested from mail wait briefly and are dropped without quorum (mail flows on).
//! - Reads: [`crate::views::StateMirror`] sees every applied command on the Raft thread and
//!   installs the touched user or partner ([`touched`]) in the local store before the
//!   proposer hears "applied", so a change is visible on the node that made it as soon as
//!   it returns.
//! - Private keys are sealed under the cluster key before they are proposed; the log, the
//!   snapshots and RocksDB never hold them in the clear.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use postern_cluster::runner::Handle;
use postern_cluster::state::{
    Command as ClusterCommand, DomainPolicyRecord, KeyRecord, Outcome,
    PartnerDomain as ClusterPartnerDomain, State, User as ClusterUser,
};
use postern_crypto::keys::store::{
    Change, HarvestedCert, HarvestedPgp, PartnerDomainRecord, PartnerRecord, PinnedCertRecord,
    PinnedKeyRecord, PinnedPolicyRecord, Replication, SealedIdentity, SealedPgp, StoreState,
    Urgency, UserRecord,
};
use postern_crypto::keys::{KeyStoreError, ca};
use postern_crypto::pgp;

use crate::clock::secs;

const SMIME: &str = "smime";
const OPENPGP: &str = "openpgp";
/// How long an admin change may take to commit.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a harvested key may hold up the message it came with.
const HARVEST_TIMEOUT: Duration = Duration::from_secs(1);

/// Proposes key store changes to the cluster.
#[derive(Debug)]
pub struct ClusterKeys {
    pub handle: Handle,
}

impl Replication for ClusterKeys {
    fn commit(&self, changes: Vec<Change>, urgency: Urgency) -> Result<(), KeyStoreError> {
        let commands = changes.iter().map(to_command).collect();
        // Admin changes ride out an election; a harvested key is tried once (no quorum:
        // not kept, the message goes on).
        let (timeout, retry) = match urgency {
            Urgency::Admin => (ADMIN_TIMEOUT, true),
            Urgency::Harvest => (HARVEST_TIMEOUT, false),
        };
        match self
            .handle
            .propose_blocking(ClusterCommand::Batch { commands }, timeout, retry)
        {
            // Removing what is already gone (the store checked it existed; a retry across a
            // leader change may apply a removal twice) reached the state asked for.
            Ok(Outcome::Done | Outcome::NotFound(_)) => Ok(()),
            Ok(Outcome::Refused(m)) => Err(KeyStoreError::Refused(m)),
            Ok(other) => Err(KeyStoreError::Replication(format!(
                "unexpected outcome {other:?}"
            ))),
            Err(e) => Err(KeyStoreError::Replication(e.to_string())),
        }
    }
}

/// The key store entities `cmd` changed, with their value in `state`.
pub fn touched(state: &State, cmd: &ClusterCommand, out: &mut Vec<Change>) {
    use ClusterCommand as C;
    match cmd {
        C::PutUser { address, .. } | C::RemoveUser { address } | C::AddUserKey { address, .. } => {
            out.push(Change::User(
                address.clone(),
                state.users.get(address).map(user_from),
            ))
        }
        C::PutPartnerKey { address, .. }
        | C::PutPartner { address, .. }
        | C::RemovePartner { address } => out.push(Change::Partner(
            address.clone(),
            state.partner_keys.get(address).map(|k| partner_from(k)),
        )),
        C::PutCa { .. } => {
            if let Some(ca) = &state.ca {
                out.push(Change::Ca(identity_from(ca)));
            }
        }
        C::SetTrustAnchors { .. } => out.push(Change::Anchors(state.trust_anchors.clone())),
        C::PutPartnerDomain { domain, .. } | C::RemovePartnerDomain { domain } => {
            out.push(Change::PartnerDomain(
                domain.clone(),
                state.partner_domains.get(domain).map(partner_domain_from),
            ))
        }
        C::Batch { commands } => {
            for c in commands {
                touched(state, c, out);
            }
        }
        _ => {}
    }
}

fn cert_not_after(pem: &str) -> u64 {
    openssl::x509::X509::from_pem(pem.as_bytes())
        .ok()
        .and_then(|c| ca::not_after(&c))
        .map(secs)
        .unwrap_or_default()
}

fn pgp_not_after(armored: &str) -> u64 {
    pgp::parse_cert(armored.as_bytes())
        .ok()
        .and_then(|c| pgp::expires(&c, SystemTime::now()))
        .map(secs)
        .unwrap_or_default()
}

fn identity_record(id: &SealedIdentity) -> KeyRecord {
    let mut meta = BTreeMap::new();
    if !id.chain.is_empty() {
        meta.insert("chain".to_owned(), id.chain.concat());
    }
    if id.revoked {
        meta.insert("revoked".to_owned(), "true".to_owned());
    }
    KeyRecord {
        kind: SMIME.into(),
        public: id.cert.clone(),
        sealed_private: Some(id.key.clone()),
        not_after: cert_not_after(&id.cert),
        meta,
    }
}

fn identity_from(k: &KeyRecord) -> SealedIdentity {
    let chain = k
        .meta
        .get("chain")
        .map(|pems| split_pems(pems))
        .unwrap_or_default();
    SealedIdentity {
        cert: k.public.clone(),
        chain,
        key: k.sealed_private.clone().unwrap_or_default(),
        revoked: k.meta.get("revoked").is_some_and(|v| v == "true"),
    }
}

/// Splits concatenated PEM blocks.
fn split_pems(text: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    text.split_inclusive(END)
        .map(|p| p.trim_start().to_owned())
        .filter(|p| p.ends_with(END))
        .map(|p| p + "\n")
        .collect()
}

fn to_command(change: &Change) -> ClusterCommand {
    match change {
        Change::Ca(id) => ClusterCommand::PutCa {
            key: identity_record(id),
        },
        Change::Anchors(pems) => ClusterCommand::SetTrustAnchors { pems: pems.clone() },
        Change::User(address, None) => ClusterCommand::RemoveUser {
            address: address.clone(),
        },
        Change::User(address, Some(u)) => {
            let keys = u
                .smime
                .iter()
                .map(identity_record)
                .chain(u.pgp.iter().map(|k| KeyRecord {
                    kind: OPENPGP.into(),
                    public: k.public.clone(),
                    sealed_private: Some(k.secret.clone()),
                    not_after: pgp_not_after(&k.public),
                    meta: BTreeMap::new(),
                }))
                .collect();
            ClusterCommand::PutUser {
                address: address.clone(),
                user: ClusterUser { keys },
            }
        }
        Change::PartnerDomain(domain, None) => ClusterCommand::RemovePartnerDomain {
            domain: domain.clone(),
        },
        Change::PartnerDomain(domain, Some(r)) => ClusterCommand::PutPartnerDomain {
            domain: domain.clone(),
            record: partner_domain_to(r),
        },
        Change::Partner(address, p) => {
            let keys = p.iter().flat_map(|p| {
                p.smime
                    .iter()
                    .map(|h| KeyRecord {
                        kind: SMIME.into(),
                        public: h.cert.clone(),
                        sealed_private: None,
                        not_after: cert_not_after(&h.cert),
                        meta: [
                            ("seen".to_owned(), h.seen.to_string()),
                            (
                                "capabilities".to_owned(),
                                serde_json::to_string(&h.capabilities).unwrap_or_default(),
                            ),
                        ]
                        .into(),
                    })
                    .chain(p.pgp.iter().map(|h| KeyRecord {
                        kind: OPENPGP.into(),
                        public: h.cert.clone(),
                        sealed_private: None,
                        not_after: pgp_not_after(&h.cert),
                        meta: [("seen".to_owned(), h.seen.to_string())].into(),
                    }))
            });
            ClusterCommand::PutPartner {
                address: address.clone(),
                keys: keys.collect(),
            }
        }
    }
}

fn user_from(u: &ClusterUser) -> UserRecord {
    UserRecord {
        smime: u
            .keys
            .iter()
            .filter(|k| k.kind == SMIME)
            .map(identity_from)
            .collect(),
        pgp: u
            .keys
            .iter()
            .filter(|k| k.kind == OPENPGP)
            .map(|k| SealedPgp {
                public: k.public.clone(),
                secret: k.sealed_private.clone().unwrap_or_default(),
            })
            .collect(),
    }
}

fn seen(k: &KeyRecord) -> u64 {
    k.meta
        .get("seen")
        .and_then(|s| s.parse().ok())
        .unwrap_or_default()
}

fn partner_from(keys: &[KeyRecord]) -> PartnerRecord {
    PartnerRecord {
        smime: keys
            .iter()
            .filter(|k| k.kind == SMIME)
            .map(|k| HarvestedCert {
                cert: k.public.clone(),
                capabilities: k
                    .meta
                    .get("capabilities")
                    .and_then(|c| serde_json::from_str(c).ok())
                    .unwrap_or_default(),
                seen: seen(k),
            })
            .collect(),
        pgp: keys
            .iter()
            .filter(|k| k.kind == OPENPGP)
            .map(|k| HarvestedPgp {
                cert: k.public.clone(),
                seen: seen(k),
            })
            .collect(),
    }
}

fn partner_domain_to(r: &PartnerDomainRecord) -> ClusterPartnerDomain {
    ClusterPartnerDomain {
        keys: r
            .keys
            .iter()
            .map(|k| KeyRecord {
                kind: OPENPGP.into(),
                public: k.cert.clone(),
                sealed_private: None,
                not_after: pgp_not_after(&k.cert),
                meta: [
                    ("sources".to_owned(), k.sources.join(",")),
                    ("first_seen".to_owned(), k.first_seen.to_string()),
                    ("last_seen".to_owned(), k.last_seen.to_string()),
                    ("revoked".to_owned(), k.revoked.to_string()),
                ]
                .into(),
            })
            .chain(r.certs.iter().map(|c| {
                KeyRecord {
                    kind: SMIME.into(),
                    public: c.cert.clone(),
                    sealed_private: None,
                    not_after: cert_not_after(&c.cert),
                    meta: [
                        ("sources".to_owned(), c.sources.join(",")),
                        ("first_seen".to_owned(), c.first_seen.to_string()),
                        ("last_seen".to_owned(), c.last_seen.to_string()),
                    ]
                    .into(),
                }
            }))
            .collect(),
        policy: r.policy.as_ref().map(|p| DomainPolicyRecord {
            mode: p.mode.clone(),
            max_age: p.max_age,
            seen: p.seen,
            source: p.source.clone(),
            verified: p.verified,
        }),
    }
}

fn partner_domain_from(r: &ClusterPartnerDomain) -> PartnerDomainRecord {
    let meta = |k: &KeyRecord, name: &str| k.meta.get(name).cloned().unwrap_or_default();
    let sources = |k: &KeyRecord| -> Vec<String> {
        meta(k, "sources")
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    PartnerDomainRecord {
        certs: r
            .keys
            .iter()
            .filter(|k| k.kind == SMIME)
            .map(|k| PinnedCertRecord {
                cert: k.public.clone(),
                sources: sources(k),
                first_seen: meta(k, "first_seen").parse().unwrap_or_default(),
                last_seen: meta(k, "last_seen").parse().unwrap_or_default(),
            })
            .collect(),
        keys: r
            .keys
            .iter()
            .filter(|k| k.kind == OPENPGP)
            .map(|k| PinnedKeyRecord {
                cert: k.public.clone(),
                sources: sources(k),
                first_seen: meta(k, "first_seen").parse().unwrap_or_default(),
                last_seen: meta(k, "last_seen").parse().unwrap_or_default(),
                revoked: meta(k, "revoked") == "true",
            })
            .collect(),
        policy: r.policy.as_ref().map(|p| PinnedPolicyRecord {
            mode: p.mode.clone(),
            max_age: p.max_age,
            seen: p.seen,
            source: p.source.clone(),
            verified: p.verified,
        }),
    }
}

/// The key store part of the replicated state.
pub fn from_cluster(state: &State) -> StoreState {
    StoreState {
        ca: state.ca.as_ref().map(identity_from),
        anchors: state.trust_anchors.clone(),
        users: state
            .users
            .iter()
            .map(|(a, u)| (a.clone(), user_from(u)))
            .collect(),
        partners: state
            .partner_keys
            .iter()
            .map(|(a, k)| (a.clone(), partner_from(k)))
            .collect(),
        partner_domains: state
            .partner_domains
            .iter()
            .map(|(d, r)| (d.clone(), partner_domain_from(r)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use postern_cluster::state::apply;
    use postern_crypto::keys::KeyStore as _;
    use postern_crypto::keys::MemoryKeyStore;
    use postern_crypto::keys::seal::Sealer;

    /// The cluster in miniature: applies each commit to one state and tells every
    /// node's observer, as the Raft thread does.
    #[derive(Default)]
    struct Leader {
        state: std::sync::Mutex<State>,
        nodes: std::sync::Mutex<Vec<Arc<MemoryKeyStore>>>,
    }

    impl std::fmt::Debug for Leader {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Leader")
        }
    }

    impl Replication for Leader {
        fn commit(&self, changes: Vec<Change>, _: Urgency) -> Result<(), KeyStoreError> {
            let cmd = ClusterCommand::Batch {
                commands: changes.iter().map(to_command).collect(),
            };
            let mut state = self.state.lock().unwrap();
            match apply(&mut state, &cmd) {
                Outcome::Done => {}
                other => return Err(KeyStoreError::Replication(format!("{other:?}"))),
            }
            let mut changes = Vec::new();
            touched(&state, &cmd, &mut changes);
            for store in self.nodes.lock().unwrap().iter() {
                assert!(store.install(&changes).is_empty());
            }
            Ok(())
        }
    }

    /// Every kind of key store change travels as cluster commands: the node that makes it
    /// and another node see the same users, keys, partners and CA; a restore from the
    /// state gives the same store; the state holds no private key in the clear.
    #[test]
    fn changes_replicate_through_the_cluster_state() {
        let key = [7u8; 32];
        let now = SystemTime::now();
        let leader = Arc::new(Leader::default());
        let origin = Arc::new(MemoryKeyStore::new(Sealer::new(key)));
        let mirror = Arc::new(MemoryKeyStore::new(Sealer::new(key)));
        for store in [&origin, &mirror] {
            leader.nodes.lock().unwrap().push(Arc::clone(store));
        }
        origin.set_replication(leader.clone());
        mirror.set_replication(leader.clone());

        origin.ensure_ca("Test CA", now).unwrap();
        assert!(!mirror.ensure_ca("Other CA", now).unwrap(), "one CA");
        origin
            .enrol("alice@corp.example", now, Duration::from_secs(86_400 * 30))
            .unwrap();
        let partner = ca::Ca::generate("Partner CA", now, Duration::from_secs(86_400)).unwrap();
        let bob = partner
            .issue(
                "bob@partner.example",
                now,
                now + Duration::from_secs(86_400),
            )
            .unwrap();
        mirror
            .import_public(&bob.cert.to_pem().unwrap(), now)
            .unwrap();
        origin
            .add_trust_anchors(&partner.identity.cert.to_pem().unwrap())
            .unwrap();
        mirror
            .enrol("carol@corp.example", now, Duration::from_secs(86_400))
            .unwrap();

        assert_eq!(origin.users().len(), 2);
        assert_eq!(mirror.users(), origin.users());
        assert_eq!(mirror.partners(), origin.partners());
        assert_eq!(mirror.ca_pem(), origin.ca_pem());
        assert!(mirror.signing_identity("alice@corp.example", now).is_some());
        assert!(origin.pgp_signer("carol@corp.example", now).is_some());
        assert!(origin.smime_recipient("bob@partner.example", now).is_some());

        origin.remove_user("carol@corp.example").unwrap();
        assert!(!mirror.is_enrolled("carol@corp.example"));

        // A partner domain's pin and the own domain key travel the same way.
        origin
            .ensure_domain_key("corp.example", now, Duration::from_secs(86_400))
            .unwrap();
        assert_eq!(mirror.own_domains(), ["corp.example"]);
        let k = pgp::generate(
            "domainkey@partner.example",
            now,
            Duration::from_secs(86_400),
        )
        .unwrap();
        let ev = postern_crypto::federation::pin::Evidence {
            source: postern_crypto::federation::pin::Source::InBand,
            keys: vec![k.strip_secret_key_material()],
            certs: Vec::new(),
            policy: None,
        };
        assert!(!origin.learn_domain("partner.example", &ev, now).is_empty());
        assert_eq!(mirror.partner_domains(now), origin.partner_domains(now));
        assert_eq!(mirror.partner_domains(now).len(), 1);
        // An S/MIME domain certificate pinned beside it, and our own one revoked.
        let vendor = partner
            .issue(
                "domainkey@partner.example",
                now,
                now + Duration::from_secs(86_400),
            )
            .unwrap();
        origin
            .import_partner_domain("partner.example", &vendor.cert.to_pem().unwrap(), now)
            .unwrap();
        assert_eq!(mirror.partner_domains(now), origin.partner_domains(now));
        assert_eq!(mirror.partner_domains(now)[0].certs.len(), 1);
        let ours = origin
            .signing_identity("domainkey@corp.example", now)
            .unwrap();
        origin
            .revoke_domain_key(
                "corp.example",
                &postern_crypto::smime::fingerprint(&ours.cert),
                now,
            )
            .unwrap();
        assert!(
            mirror
                .domain_published_certs("corp.example", now)
                .is_empty()
        );

        let state = leader.state.lock().unwrap().clone();
        let restored = MemoryKeyStore::new(Sealer::new([0; 32]));
        let errors = restored.replace(from_cluster(&state), Some(Sealer::new(key)));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(restored.users(), mirror.users());
        assert_eq!(restored.partners(), mirror.partners());
        assert_eq!(restored.to_bytes(), origin.to_bytes());

        let text = serde_json::to_string(&state).unwrap();
        assert!(!text.contains("PRIVATE KEY"), "a private key in the clear");

        // Under another cluster key nothing opens, and that is reported.
        let wrong = MemoryKeyStore::new(Sealer::new([0; 32]));
        assert!(
            !wrong
                .replace(from_cluster(&state), Some(Sealer::new([9; 32])))
                .is_empty()
        );
        assert!(wrong.signing_identity("alice@corp.example", now).is_none());
    }

    #[test]
    fn chains_split_back_into_certificates() {
        let a = "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n";
        let b = "-----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n";
        assert_eq!(split_pems(&format!("{a}{b}")), [a, b]);
        assert!(split_pems("").is_empty());
    }
}
