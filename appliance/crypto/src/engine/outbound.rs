//! Outbound: subject tags, then sign (S/MIME, or OpenPGP inside OpenPGP encryption), then
//! encrypt to every recipient of the transaction (they share the method by construction).

use std::time::SystemTime;

use super::subject::{self, ENCRYPT, NOSIGN, SECURE};
use super::{Engine, ProcessError};
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
    let has_key = matches!(method, Method::Smime | Method::OpenPgp);
    let encrypt = has_key && !never_encrypt;
    if never_encrypt && (has_key || must_encrypt) {
        notes.push("calendar invitation or TNEF: never encrypted".into());
    } else if must_encrypt && !has_key {
        let who = recipients.first().cloned().unwrap_or_default();
        return Err(ProcessError::EncryptionImpossible(who));
    }
    let crypto = |e: &dyn std::fmt::Display| ProcessError::Crypto(e.to_string());
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
