//! Outbound: subject tags, then sign (S/MIME, or OpenPGP inside OpenPGP encryption), then
//! encrypt to every recipient of the transaction (they share the method by construction).

use std::time::SystemTime;

use super::subject::{self, ENCRYPT, NOSIGN, SECURE};
use super::{Engine, ProcessError};
use crate::federation::pin::{self, Choice};
use crate::federation::{domain_key_address, domain_of};
use crate::mime::{self, Header};
use crate::policy::Method;
use crate::{pgp, smime};

pub(super) fn run(
    engine: &Engine,
    method: Method,
    sender: &str,
    recipients: &[String],
    outer: &mut Header,
    content: &[u8],
    now: SystemTime,
) -> Result<(Vec<u8>, String), ProcessError> {
    let keys = engine.keys.as_ref();
    let tags = subject::remove_tags(outer, &[NOSIGN, SECURE, ENCRYPT]);
    let tagged = |t: &str| tags.iter().any(|f| f == t);
    let nosign = tagged(NOSIGN);
    let must_encrypt = tagged(SECURE) || tagged(ENCRYPT) || engine.config().always_encrypt;
    let never_encrypt = mime::contains_calendar_or_tnef(content);
    let mut notes: Vec<String> = Vec::new();
    if !tags.is_empty() {
        notes.push(format!("subject tags {} removed", tags.join(" ")));
    }
    if method == Method::DomainUnavailable {
        let who = recipients.first().cloned().unwrap_or_default();
        return Err(ProcessError::KeyUnavailable(who));
    }
    let has_key = matches!(
        method,
        Method::Smime | Method::OpenPgp | Method::DomainKey | Method::DomainSmime
    );
    let encrypt = has_key && !never_encrypt;
    if never_encrypt && (has_key || must_encrypt) {
        notes.push("calendar invitation or TNEF: never encrypted".into());
    } else if must_encrypt && !has_key {
        let who = recipients.first().cloned().unwrap_or_default();
        return Err(ProcessError::EncryptionImpossible(who));
    }
    let crypto = |e: &dyn std::fmt::Display| ProcessError::Crypto(e.to_string());
    if encrypt && method == Method::DomainKey {
        return domain_encrypt(engine, sender, recipients, content, notes, now);
    }
    if encrypt && method == Method::DomainSmime {
        return domain_encrypt_smime(engine, sender, recipients, content, notes, now);
    }
    if encrypt && method == Method::OpenPgp {
        let mut certs = Vec::new();
        for r in recipients {
            certs.push(
                keys.pgp_recipient(r, now)
                    .ok_or_else(|| ProcessError::KeyUnavailable(r.clone()))?,
            );
        }
        let signer = if nosign {
            None
        } else {
            keys.pgp_signer(sender, now)
        };
        let entity = pgp::encrypt(content, &certs, signer.as_ref(), now).map_err(|e| crypto(&e))?;
        let signed = if signer.is_some() { "signed and " } else { "" };
        notes.insert(
            0,
            format!("OpenPGP {signed}encrypted for {} recipient(s)", certs.len()),
        );
        return Ok((entity, notes.join("; ")));
    }
    let mut entity = content.to_vec();
    let mut done = Vec::new();
    if !nosign && let Some(id) = keys.signing_identity(sender, now) {
        entity = smime::sign(&mime::to_seven_bit(&entity), &id).map_err(|e| crypto(&e))?;
        done.push(format!(
            "S/MIME signed (certificate {})",
            smime::serial_hex(&id.cert)
        ));
    } else if nosign {
        done.push("not signed ([nosign])".into());
    } else {
        done.push(format!("not signed ({sender} is not enrolled)"));
    }
    if encrypt {
        let mut certs = Vec::new();
        let mut caps = Vec::new();
        for r in recipients {
            let (c, cap) = keys
                .smime_recipient(r, now)
                .ok_or_else(|| ProcessError::KeyUnavailable(r.clone()))?;
            certs.push(c);
            caps.push(cap);
        }
        let cipher = smime::ContentCipher::for_recipients(&caps);
        entity = smime::encrypt(&entity, &certs, cipher).map_err(|e| crypto(&e))?;
        done.push(format!(
            "S/MIME encrypted ({cipher:?}) for {} recipient(s)",
            certs.len()
        ));
    }
    done.extend(notes);
    Ok((entity, done.join("; ")))
}

/// Each recipient domain's pinned key of the kind `pick` takes (once per key), and their
/// fingerprints. The pin may have changed since RCPT: a recipient whose domain offers no
/// such key now waits (451).
fn pinned_keys<K>(
    engine: &Engine,
    recipients: &[String],
    now: SystemTime,
    pick: impl Fn(Choice<'_>) -> Option<(String, K)>,
) -> Result<(Vec<K>, Vec<String>), ProcessError> {
    let mut keys = Vec::new();
    let mut used = Vec::new();
    for r in recipients {
        let unusable = || ProcessError::KeyUnavailable(r.clone());
        let domain = domain_of(r).ok_or_else(unusable)?;
        let pinned = engine.keys.partner_domain(&domain).ok_or_else(unusable)?;
        let (fpr, key) = pick(pin::choose(&pinned, now)).ok_or_else(unusable)?;
        if !used.contains(&fpr) {
            keys.push(key);
            used.push(fpr);
        }
    }
    Ok((keys, used))
}

/// Domain encryption: PGP/MIME to each recipient domain's pinned key, signed with the
/// sender domain's own domain key (when it has one).
fn domain_encrypt(
    engine: &Engine,
    sender: &str,
    recipients: &[String],
    content: &[u8],
    mut notes: Vec<String>,
    now: SystemTime,
) -> Result<(Vec<u8>, String), ProcessError> {
    let keys = engine.keys.as_ref();
    let (certs, used) = pinned_keys(engine, recipients, now, |c| match c {
        Choice::Use { key, .. } => Some((key.fingerprint(), key.cert.clone())),
        _ => None,
    })?;
    let signer = domain_of(sender).and_then(|d| keys.pgp_signer(&domain_key_address(&d), now));
    let entity = pgp::encrypt(content, &certs, signer.as_ref(), now)
        .map_err(|e| ProcessError::Crypto(e.to_string()))?;
    let signed = match &signer {
        Some(s) => format!(", signed by domain key {}", pgp::fingerprint(s)),
        None => String::new(),
    };
    notes.insert(
        0,
        format!("domain encrypted (OpenPGP) to {}{signed}", used.join(", ")),
    );
    Ok((entity, notes.join("; ")))
}

/// S/MIME domain encryption: signed with the sender domain's S/MIME domain certificate
/// (when it has one), then encrypted to each recipient domain's pinned certificate.
fn domain_encrypt_smime(
    engine: &Engine,
    sender: &str,
    recipients: &[String],
    content: &[u8],
    mut notes: Vec<String>,
    now: SystemTime,
) -> Result<(Vec<u8>, String), ProcessError> {
    let keys = engine.keys.as_ref();
    let (certs, used) = pinned_keys(engine, recipients, now, |c| match c {
        Choice::UseCert { cert } => Some((cert.fingerprint(), cert.cert.clone())),
        _ => None,
    })?;
    let crypto = |e: &dyn std::fmt::Display| ProcessError::Crypto(e.to_string());
    let mut entity = content.to_vec();
    let signer =
        domain_of(sender).and_then(|d| keys.signing_identity(&domain_key_address(&d), now));
    let signed = match &signer {
        Some(id) => {
            entity = smime::sign(&mime::to_seven_bit(&entity), id).map_err(|e| crypto(&e))?;
            format!(
                ", signed by domain certificate {}",
                smime::serial_hex(&id.cert)
            )
        }
        None => String::new(),
    };
    // What a partner gateway can decrypt is not announced: AES-256-CBC, which every S/MIME
    // implementation reads (RFC 8551 makes it a MUST).
    let cipher = smime::ContentCipher::Aes256Cbc;
    entity = smime::encrypt(&entity, &certs, cipher).map_err(|e| crypto(&e))?;
    notes.insert(
        0,
        format!(
            "domain encrypted (S/MIME, {cipher:?}) to certificate {}{signed}",
            used.join(", ")
        ),
    );
    Ok((entity, notes.join("; ")))
}
