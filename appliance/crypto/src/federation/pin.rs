//! What Postern knows of a partner domain — its keys and its policy, with where each came
//! from — and the rules that keep it safe (DESIGN.md §5):
//!
//! - a key is *verified* when DNSSEC vouched for it, the admin imported it, or two
//!   independent sources (WKD, the in-band announcement) agree; otherwise it is trust on
//!   first use, good for opportunistic encryption only;
//! - a different key replaces a pinned one only when DNSSEC or the admin says so, or when
//!   the pinned key certified it (a rollover); anything else is refused and the pin stays;
//! - a policy from a weaker source (in-band < WKD < DNSSEC < admin) never replaces a fresh
//!   one from a stronger source, and `enforce` counts only when the policy is verified and
//!   younger than its `max_age`;
//! - a revoked key is never used again;
//! - an S/MIME domain certificate (another vendor's gateway, or a Postern that has no
//!   OpenPGP key pinned here) is taken only from DNSSEC (SMIMEA) or the admin; one that
//!   DNSSEC stops publishing is dropped, as DNSSEC is the authority that put it there.
//!
//! When a partner has both, a verified OpenPGP key is preferred (Postern to Postern), then
//! the S/MIME certificate, then an OpenPGP key on trust on first use.

use std::collections::BTreeSet;
use std::time::SystemTime;

use openssl::x509::X509;

use super::{DomainPolicy, Mode};
use crate::keys::ca;
use crate::pgp::{self, PgpCert};
use crate::smime;

/// Where a key or a policy was learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// A DNSSEC-validated DNS answer.
    Dnssec,
    /// The Web Key Directory (HTTPS, WebPKI).
    Wkd,
    /// The signed announcement header on the partner's mail.
    InBand,
    /// Imported by an administrator.
    Imported,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Dnssec => "dnssec",
            Source::Wkd => "wkd",
            Source::InBand => "in-band",
            Source::Imported => "imported",
        }
    }

    pub fn parse(s: &str) -> Option<Source> {
        [
            Source::Dnssec,
            Source::Wkd,
            Source::InBand,
            Source::Imported,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }

    /// A source that decides alone: DNSSEC or the admin.
    fn authoritative(self) -> bool {
        matches!(self, Source::Dnssec | Source::Imported)
    }

    /// Which source's policy wins while both are fresh: the admin's, DNSSEC, WKD, then the
    /// in-band announcement (which can be replayed, so it never overrides the others).
    fn rank(self) -> u8 {
        match self {
            Source::InBand => 0,
            Source::Wkd => 1,
            Source::Dnssec => 2,
            Source::Imported => 3,
        }
    }
}

/// How far a key is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Trust {
    /// Seen from one unauthenticated source only: opportunistic encryption, never enforced.
    Tofu,
    Verified,
}

impl Trust {
    /// The trust a key or certificate vouched for by `sources` earns: verified when an
    /// authoritative source (DNSSEC, the admin) or two independent ones vouch for it.
    fn of(sources: &BTreeSet<Source>) -> Trust {
        if sources.iter().any(|s| s.authoritative()) || sources.len() >= 2 {
            Trust::Verified
        } else {
            Trust::Tofu
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Trust::Tofu => "tofu",
            Trust::Verified => "verified",
        }
    }
}

/// A partner's domain key as pinned.
#[derive(Debug, Clone)]
pub struct PinnedKey {
    pub cert: PgpCert,
    pub sources: BTreeSet<Source>,
    pub first_seen: u64,
    pub last_seen: u64,
    pub revoked: bool,
}

impl PinnedKey {
    pub fn fingerprint(&self) -> String {
        pgp::fingerprint(&self.cert)
    }

    pub fn trust(&self) -> Trust {
        Trust::of(&self.sources)
    }
}

/// A partner's S/MIME domain certificate as pinned.
#[derive(Debug, Clone)]
pub struct PinnedCert {
    pub cert: X509,
    pub sources: BTreeSet<Source>,
    pub first_seen: u64,
    pub last_seen: u64,
}

impl PinnedCert {
    /// SHA-256 of the certificate, hex.
    pub fn fingerprint(&self) -> String {
        smime::fingerprint(&self.cert)
    }

    pub fn trust(&self) -> Trust {
        Trust::of(&self.sources)
    }

    /// Whether it can be encrypted to at `now` (within its validity period).
    pub fn usable(&self, now: SystemTime) -> bool {
        ca::valid_at(&self.cert, now)
    }
}

/// A partner's policy as pinned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinnedPolicy {
    pub policy: DomainPolicy,
    /// When it was last seen (seconds since the epoch): it holds until `seen + max_age`.
    pub seen: u64,
    pub source: Source,
    pub verified: bool,
}

/// Everything pinned for one partner domain.
#[derive(Debug, Clone, Default)]
pub struct PartnerDomain {
    /// OpenPGP domain keys, newest first.
    pub keys: Vec<PinnedKey>,
    /// S/MIME domain certificates, newest first.
    pub certs: Vec<PinnedCert>,
    pub policy: Option<PinnedPolicy>,
}

/// What one lookup or one message said about a domain.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub source: Source,
    /// Public keys whose user IDs name the domain key's address.
    pub keys: Vec<PgpCert>,
    /// S/MIME certificates issued for the domain (SMIMEA, or imported).
    pub certs: Vec<X509>,
    pub policy: Option<DomainPolicy>,
}

/// What merging evidence did, for the log, the trace and alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A key pinned for the first time.
    Pinned(String),
    /// A pinned key seen again (from this source).
    Confirmed(String),
    /// A new key accepted in place of the pinned one (rollover or authoritative source).
    Replaced {
        old: String,
        new: String,
    },
    /// A different key refused: the pin stays.
    Refused {
        offered: String,
        reason: String,
    },
    /// A pinned key was revoked (or its S/MIME certificate withdrawn from DNS) and will not
    /// be used again.
    Revoked(String),
    PolicyPinned(Mode),
    /// A policy from a weaker source than the pinned one, ignored.
    PolicyIgnored(Mode),
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// `pin` after `ev`, and what changed.
pub fn merge(
    pin: Option<&PartnerDomain>,
    ev: &Evidence,
    now: SystemTime,
) -> (PartnerDomain, Vec<Note>) {
    let mut next = pin.cloned().unwrap_or_default();
    let mut notes = Vec::new();
    let t = secs(now);
    for cert in &ev.keys {
        let fpr = pgp::fingerprint(cert);
        let known = next.keys.iter().position(|k| k.fingerprint() == fpr);
        if pgp::is_revoked(cert, now) {
            if let Some(i) = known {
                next.keys[i].revoked = true;
                next.keys[i].cert = pgp::merge(next.keys[i].cert.clone(), cert.clone());
                notes.push(Note::Revoked(fpr));
            }
            continue;
        }
        if let Some(i) = known {
            let k = &mut next.keys[i];
            k.sources.insert(ev.source);
            k.last_seen = t;
            k.cert = pgp::merge(k.cert.clone(), cert.clone());
            notes.push(Note::Confirmed(fpr));
            continue;
        }
        let live: Vec<&PinnedKey> = next.keys.iter().filter(|k| !k.revoked).collect();
        let vouched = live.iter().find(|k| pgp::certified_by(cert, &k.cert));
        let accept = live.is_empty() || ev.source.authoritative() || vouched.is_some();
        if !accept {
            notes.push(Note::Refused {
                offered: fpr,
                reason: format!(
                    "a different key than the pinned {} from {} (not certified by it, not DNSSEC)",
                    live[0].fingerprint(),
                    ev.source.as_str()
                ),
            });
            continue;
        }
        let mut sources = BTreeSet::from([ev.source]);
        if let Some(old) = vouched {
            // Certified by a pinned key: as trusted as that key.
            sources.extend(old.sources.iter().copied());
        }
        match live.first() {
            Some(old) => notes.push(Note::Replaced {
                old: old.fingerprint(),
                new: fpr,
            }),
            None => notes.push(Note::Pinned(fpr)),
        }
        next.keys.push(PinnedKey {
            cert: cert.clone(),
            sources,
            first_seen: t,
            last_seen: t,
            revoked: false,
        });
    }
    next.keys
        .sort_by_key(|k| std::cmp::Reverse(k.cert.primary_key().key().creation_time()));
    merge_certs(&mut next, ev, t, &mut notes);
    if let Some(p) = ev.policy {
        let verified = ev.source.authoritative()
            || next.keys.iter().any(|k| {
                !k.revoked && k.sources.contains(&ev.source) && k.trust() == Trust::Verified
            });
        let weaker = next.policy.is_some_and(|old| {
            let fresh = t < old.seen.saturating_add(old.policy.max_age);
            fresh && (old.source.rank() > ev.source.rank() || (old.verified && !verified))
        });
        if weaker {
            notes.push(Note::PolicyIgnored(p.mode));
        } else {
            next.policy = Some(PinnedPolicy {
                policy: p,
                seen: t,
                source: ev.source,
                verified,
            });
            notes.push(Note::PolicyPinned(p.mode));
        }
    }
    (next, notes)
}

/// The S/MIME half of [`merge`]: certificates only from an authoritative source; the ones
/// DNSSEC no longer publishes (and nobody else vouched for) are dropped.
fn merge_certs(next: &mut PartnerDomain, ev: &Evidence, t: u64, notes: &mut Vec<Note>) {
    let offered: Vec<String> = ev.certs.iter().map(smime::fingerprint).collect();
    for (cert, fpr) in ev.certs.iter().zip(&offered) {
        if let Some(k) = next.certs.iter_mut().find(|k| &k.fingerprint() == fpr) {
            k.sources.insert(ev.source);
            k.last_seen = t;
            notes.push(Note::Confirmed(fpr.clone()));
            continue;
        }
        if !ev.source.authoritative() {
            notes.push(Note::Refused {
                offered: fpr.clone(),
                reason: format!(
                    "an S/MIME domain certificate is taken only from DNSSEC (SMIMEA) or the admin, not from {}",
                    ev.source.as_str()
                ),
            });
            continue;
        }
        match next.certs.first() {
            Some(old) => notes.push(Note::Replaced {
                old: old.fingerprint(),
                new: fpr.clone(),
            }),
            None => notes.push(Note::Pinned(fpr.clone())),
        }
        next.certs.push(PinnedCert {
            cert: cert.clone(),
            sources: BTreeSet::from([ev.source]),
            first_seen: t,
            last_seen: t,
        });
    }
    if ev.source == Source::Dnssec && !offered.is_empty() {
        next.certs.retain(|c| {
            let fpr = c.fingerprint();
            let withdrawn =
                !offered.contains(&fpr) && c.sources.iter().all(|s| *s == Source::Dnssec);
            if withdrawn {
                notes.push(Note::Revoked(fpr));
            }
            !withdrawn
        });
    }
    next.certs
        .sort_by_key(|c| std::cmp::Reverse(ca::not_before(&c.cert)));
}

/// Whether the partner's pinned policy forbids sending in the clear now: `enforce`,
/// verified, and seen within its `max_age`.
pub fn enforced(pin: &PartnerDomain, now: SystemTime) -> bool {
    pin.policy.is_some_and(|p| {
        p.policy.mode == Mode::Enforce
            && p.verified
            && secs(now) < p.seen.saturating_add(p.policy.max_age)
    })
}

/// What to do for mail to a partner domain.
#[derive(Debug)]
pub enum Choice<'a> {
    /// Encrypt to this OpenPGP key (verified keys first, then the newest).
    Use { key: &'a PinnedKey, trust: Trust },
    /// Encrypt to this S/MIME certificate (S/MIME domain encryption).
    UseCert { cert: &'a PinnedCert },
    /// The partner enforces encryption and no pinned key can be used: refuse for now.
    Unusable { reason: String },
    /// Nothing usable and nothing enforced: the ordinary policy decides.
    Nothing,
}

///
/// A partner that enforces encryption gets mail only encrypted to a verified key: a key
/// seen from one unauthenticated source (which an attacker on the path could have put
/// there) is not good enough for it, and the mail waits (451) until one is verified.
pub fn choose(pin: &PartnerDomain, now: SystemTime) -> Choice<'_> {
    let usable = |k: &&PinnedKey| {
        !k.revoked && !pgp::is_revoked(&k.cert, now) && pgp::can_encrypt(&k.cert, now)
    };
    let enforced = enforced(pin, now);
    let best = pin
        .keys
        .iter()
        .filter(usable)
        .filter(|k| !enforced || k.trust() == Trust::Verified)
        .max_by_key(|k| (k.trust(), k.cert.primary_key().key().creation_time()));
    let cert = pin
        .certs
        .iter()
        .filter(|c| c.usable(now))
        .filter(|c| !enforced || c.trust() == Trust::Verified)
        .max_by_key(|c| (c.trust(), ca::not_before(&c.cert)));
    match (best, cert) {
        (Some(key), _) if key.trust() == Trust::Verified => Choice::Use {
            trust: key.trust(),
            key,
        },
        (_, Some(cert)) => Choice::UseCert { cert },
        (Some(key), None) => Choice::Use {
            trust: key.trust(),
            key,
        },
        (None, None) if enforced => Choice::Unusable {
            reason: if pin.keys.is_empty() && pin.certs.is_empty() {
                "the partner enforces encryption and no domain key is known".into()
            } else if pin.keys.iter().any(|k| usable(&k)) {
                "the partner enforces encryption and its domain key is not verified yet (one unauthenticated source: not DNSSEC, not two sources agreeing)".into()
            } else {
                "the partner enforces encryption and every pinned domain key is revoked or expired"
                    .into()
            },
        },
        (None, None) => Choice::Nothing,
    }
}
