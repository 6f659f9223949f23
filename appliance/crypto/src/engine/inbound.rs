//! Inbound: remove forged markers, decrypt the top-level content for the enrolled recipient,
//! verify signatures, harvest keys of verified signers only, and mark the result.
//!
//! EFAIL rules: only an encrypted *top-level* entity is decrypted — encrypted pieces mixed
//! with unprotected parts (multipart/mixed, inline blocks inside other text) are left alone
//! and reported — and OpenPGP data without integrity protection is never decrypted (sequoia
//! refuses it).

use std::time::SystemTime;

use super::subject::{self, ENCRYPTED, SIGNED, SIGNED_INVALID};
use super::{Engine, header_safe};
use crate::federation::announce;
use crate::federation::pin::{Evidence, Note, Source};
use crate::federation::{domain_key_address, domain_of};
use crate::mime::{self, ContentType, Header};
use crate::pgp::{self, PgpCert, SigVerdict};
use crate::smime::{self, CmsType, Verdict};

/// What an entity is, as far as inbound processing cares.
enum Shape {
    Smime(Vec<u8>),
    PgpMime(Vec<u8>),
    PgpInline {
        header: Header,
        armored: Vec<u8>,
    },
    PgpPartial,
    SmimeSigned {
        content: Vec<u8>,
        signature: Vec<u8>,
    },
    PgpSigned {
        content: Vec<u8>,
        signature: Vec<u8>,
    },
    PgpInlineSigned(Vec<u8>),
    Other,
}

struct Signature {
    method: &'static str,
    valid: bool,
    detail: String,
}

pub(super) fn run(
    engine: &Engine,
    user: Option<&str>,
    outer: &mut Header,
    content: &[u8],
    now: SystemTime,
) -> (Vec<u8>, String) {
    let keys = engine.keys.as_ref();
    let mut notes = Vec::new();
    let forged = subject::remove_tags(outer, &[SIGNED_INVALID, SIGNED, ENCRYPTED]);
    if !forged.is_empty() {
        notes.push(format!(
            "forged subject marker {} removed",
            forged.join(" ")
        ));
    }
    let from = outer
        .get("from")
        .and_then(|f| extract_address(&f))
        .unwrap_or_default();
    let autocrypt = autocrypt_key(outer, &from, now);
    learn_announcement(engine, outer, &from, now, &mut notes);
    // Every known OpenPGP certificate, gathered only when an OpenPGP structure needs them.
    let known_cell = std::cell::OnceCell::new();
    let known = || -> &[PgpCert] {
        known_cell.get_or_init(|| {
            let mut k = keys.pgp_known();
            k.extend(autocrypt.iter().cloned());
            k
        })
    };

    let mut entity = content.to_vec();
    let mut decrypted: Option<Result<&str, String>> = None;
    let mut signature: Option<Signature> = None;
    let mut good_pgp: Vec<PgpCert> = Vec::new();

    match shape(&entity) {
        Shape::Smime(der)
            if matches!(
                smime::content_type(&der),
                CmsType::Enveloped | CmsType::AuthEnveloped
            ) =>
        {
            decrypted = Some(match smime_decrypt(engine, user, &der) {
                Ok((plain, how)) => {
                    entity = plain;
                    Ok(how)
                }
                Err(e) => Err(e),
            });
        }
        Shape::Smime(der) if smime::content_type(&der) == CmsType::Other => {
            decrypted = Some(Err("unreadable S/MIME data".into()));
        }
        Shape::PgpMime(armored) => {
            decrypted = Some(match pgp_decrypt(engine, user, &armored, known(), now) {
                Ok((d, how)) => {
                    entity = d.content;
                    signature = pgp_signature(&d.signatures);
                    good_pgp = d.good_signers;
                    Ok(how)
                }
                Err(e) => Err(e),
            });
        }
        Shape::PgpInline { header, armored } => {
            decrypted = Some(
                match pgp_decrypt(engine, user, &armored, known(), now).map(|(d, _)| d) {
                    Ok(d) => {
                        let mut h = header.without("content-transfer-encoding");
                        h.push("Content-Transfer-Encoding", "8bit");
                        entity = h.to_bytes();
                        entity.extend_from_slice(b"\r\n");
                        entity.extend_from_slice(&d.content);
                        signature = pgp_signature(&d.signatures);
                        good_pgp = d.good_signers;
                        Ok("OpenPGP inline")
                    }
                    Err(e) => Err(e),
                },
            );
        }
        Shape::PgpPartial => {
            notes.push("inline OpenPGP block mixed with unprotected text: not decrypted".into());
        }
        _ => {}
    }

    if signature.is_none() {
        signature = verify(engine, &entity, &known, now, &mut good_pgp);
    }
    // Harvest only what a verified signature vouches for.
    if signature.as_ref().is_some_and(|s| s.valid) {
        for cert in &good_pgp {
            let got = keys.harvest_pgp(cert, now);
            if !got.is_empty() {
                notes.push(format!("OpenPGP key of {} harvested", got.join(", ")));
            }
        }
    }

    let mut verdicts = Vec::new();
    match &decrypted {
        Some(Ok(m)) => {
            outer.prepend("X-Postern-Encrypted", &format!("decrypted ({m})"));
            verdicts.push(format!("decrypted ({m})"));
        }
        Some(Err(reason)) => {
            outer.prepend(
                "X-Postern-Encrypted",
                &header_safe(&format!("not decrypted: {reason}")),
            );
            verdicts.push(format!("encrypted, not decrypted: {reason}"));
        }
        None => {}
    }
    if let Some(s) = &signature {
        let v = if s.valid { "valid" } else { "invalid" };
        outer.prepend(
            "X-Postern-Signature",
            &header_safe(&format!("{v} ({}: {})", s.method, s.detail)),
        );
        verdicts.push(format!("{v} {} signature ({})", s.method, s.detail));
    }
    if engine.config().subject_markers {
        match &signature {
            Some(s) if s.valid => subject::add_marker(outer, SIGNED),
            Some(_) => subject::add_marker(outer, SIGNED_INVALID),
            None => {}
        }
        if matches!(decrypted, Some(Ok(_))) {
            subject::add_marker(outer, ENCRYPTED);
        }
    }
    if verdicts.is_empty() {
        verdicts.push("neither signed nor encrypted".into());
    }
    verdicts.extend(notes);
    let explanation = format!(
        "inbound{}: {}",
        user.map(|u| format!(" for {u}")).unwrap_or_default(),
        verdicts.join("; ")
    );
    (entity, explanation)
}

/// Decrypts S/MIME enveloped data with the recipient's own certificates, then with the
/// domain certificates of this gateway's domains; says which opened it.
fn smime_decrypt(
    engine: &Engine,
    user: Option<&str>,
    der: &[u8],
) -> Result<(Vec<u8>, &'static str), String> {
    let keys = engine.keys.as_ref();
    let mut last = "recipient not enrolled and not encrypted to a domain certificate".to_owned();
    if let Some(u) = user {
        match smime::decrypt(der, &keys.smime_identities(u)) {
            Ok(plain) => return Ok((plain, "S/MIME")),
            Err(e) => last = e.to_string(),
        }
    }
    let domain_ids: Vec<smime::Identity> = keys
        .own_domains()
        .iter()
        .flat_map(|d| keys.smime_identities(&domain_key_address(d)))
        .collect();
    if domain_ids.is_empty() {
        return Err(last);
    }
    match smime::decrypt(der, &domain_ids) {
        Ok(plain) => Ok((plain, "S/MIME, domain key")),
        Err(_) if user.is_some() => Err(last),
        Err(e) => Err(e.to_string()),
    }
}

/// Decrypts OpenPGP data with the recipient's own keys, then with the domain keys of this
/// gateway's domains (mail encrypted domain to domain); says which opened it.
fn pgp_decrypt(
    engine: &Engine,
    user: Option<&str>,
    armored: &[u8],
    known: &[PgpCert],
    now: SystemTime,
) -> Result<(pgp::Decrypted, &'static str), String> {
    let keys = engine.keys.as_ref();
    let mut last = "recipient not enrolled and not encrypted to a domain key".to_owned();
    if let Some(u) = user {
        match pgp::decrypt(armored, &keys.pgp_secrets(u), known, now) {
            Ok(d) => return Ok((d, "OpenPGP")),
            Err(e) => last = e.to_string(),
        }
    }
    let domain_secrets: Vec<PgpCert> = keys
        .own_domains()
        .iter()
        .flat_map(|d| keys.pgp_secrets(&domain_key_address(d)))
        .collect();
    if domain_secrets.is_empty() {
        return Err(last);
    }
    match pgp::decrypt(armored, &domain_secrets, known, now) {
        Ok(d) => Ok((d, "OpenPGP, domain key")),
        Err(_) if user.is_some() => Err(last),
        Err(e) => Err(e.to_string()),
    }
}

/// A partner's domain key announcement (`Mailenc-Domain-Key`) on mail from its domain:
/// checked and learned (trust on first use; it never overrides DNSSEC or WKD).
fn learn_announcement(
    engine: &Engine,
    outer: &Header,
    from: &str,
    now: SystemTime,
    notes: &mut Vec<String>,
) {
    let Some(raw) = outer.get(announce::HEADER) else {
        return;
    };
    let Some(from_domain) = domain_of(from) else {
        return;
    };
    match announce::parse(raw.as_bytes(), now) {
        Ok(a) if a.domain == from_domain => {
            let evidence = Evidence {
                source: Source::InBand,
                keys: a.keys,
                certs: Vec::new(),
                policy: a.policy,
            };
            for n in engine.keys.learn_domain(&a.domain, &evidence, now) {
                match n {
                    Note::Pinned(f) => {
                        notes.push(format!("domain key {f} of {} pinned (in-band)", a.domain))
                    }
                    Note::Replaced { old, new } => notes.push(format!(
                        "domain key of {} rolled over from {old} to {new}",
                        a.domain
                    )),
                    Note::Refused { offered, reason } => {
                        tracing::warn!(domain = %a.domain, %offered, %reason, "announced domain key refused");
                        notes.push(format!(
                            "announced domain key {offered} of {} refused: {reason}",
                            a.domain
                        ));
                    }
                    Note::Revoked(f) => {
                        notes.push(format!("domain key {f} of {} revoked", a.domain))
                    }
                    Note::Confirmed(_) | Note::PolicyPinned(_) | Note::PolicyIgnored(_) => {}
                }
            }
        }
        Ok(a) => notes.push(format!(
            "domain key announcement for {} on mail from {from_domain} ignored",
            a.domain
        )),
        Err(e) => {
            tracing::info!(error = %e, domain = %from_domain, "domain key announcement refused");
            notes.push(format!("domain key announcement refused: {e}"));
        }
    }
}

fn verify<'a>(
    engine: &Engine,
    entity: &[u8],
    known: &dyn Fn() -> &'a [PgpCert],
    now: SystemTime,
    good_pgp: &mut Vec<PgpCert>,
) -> Option<Signature> {
    let keys = engine.keys.as_ref();
    match shape(entity) {
        Shape::SmimeSigned { content, signature } => {
            let anchors = keys.trust_anchors().ok()?;
            let check = smime::verify_detached(&content, &signature, &anchors);
            Some(smime_signature(engine, &check, now))
        }
        Shape::Smime(der) if smime::content_type(&der) == CmsType::Signed => {
            let anchors = keys.trust_anchors().ok()?;
            let (check, _content) = smime::verify_opaque(&der, &anchors);
            Some(smime_signature(engine, &check, now))
        }
        Shape::PgpSigned { content, signature } => {
            let (verdicts, good) = pgp::verify_detached(&content, &signature, known(), now);
            *good_pgp = good;
            pgp_signature(&verdicts)
        }
        Shape::PgpInlineSigned(data) => {
            let (verdicts, good, _) = pgp::verify_inline(&data, known(), now);
            *good_pgp = good;
            pgp_signature(&verdicts)
        }
        _ => None,
    }
}

fn smime_signature(engine: &Engine, check: &smime::SignatureCheck, now: SystemTime) -> Signature {
    let signer = check
        .signers
        .first()
        .map(|c| smime::cert_emails(c).join(","))
        .unwrap_or_else(|| "unknown signer".into());
    match &check.verdict {
        Verdict::Valid => {
            for c in &check.signers {
                engine.keys.harvest_smime(c, &check.capabilities, now);
            }
            Signature {
                method: "S/MIME",
                valid: true,
                detail: format!("signer {signer}"),
            }
        }
        Verdict::Untrusted(r) => Signature {
            method: "S/MIME",
            valid: false,
            detail: format!("signer {signer} not trusted: {r}"),
        },
        Verdict::Invalid(r) => Signature {
            method: "S/MIME",
            valid: false,
            detail: format!("bad signature: {r}"),
        },
    }
}

/// Valid when at least one signature is good and none is bad.
fn pgp_signature(verdicts: &[SigVerdict]) -> Option<Signature> {
    if verdicts.is_empty() {
        return None;
    }
    let good: Vec<&String> = verdicts
        .iter()
        .filter_map(|v| match v {
            SigVerdict::Valid { fingerprint } => Some(fingerprint),
            _ => None,
        })
        .collect();
    let bad = verdicts.iter().find_map(|v| match v {
        SigVerdict::Invalid { reason } => Some(format!("bad signature: {reason}")),
        _ => None,
    });
    let unknown = verdicts.iter().find_map(|v| match v {
        SigVerdict::UnknownKey { issuer } => Some(format!("unknown key {issuer}")),
        _ => None,
    });
    Some(match (good.first(), bad, unknown) {
        (Some(f), None, _) => Signature {
            method: "OpenPGP",
            valid: true,
            detail: format!("key {f}"),
        },
        (_, Some(b), _) => Signature {
            method: "OpenPGP",
            valid: false,
            detail: b,
        },
        (None, None, u) => Signature {
            method: "OpenPGP",
            valid: false,
            detail: u.unwrap_or_default(),
        },
    })
}

fn decoded_body(header: &Header, body: &[u8]) -> Vec<u8> {
    let cte = header
        .get("content-transfer-encoding")
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match cte.as_str() {
        "base64" => mime::base64_decode(body).unwrap_or_else(|_| body.to_vec()),
        "quoted-printable" => mime::qp_decode(body),
        _ => body.to_vec(),
    }
}

fn shape(entity: &[u8]) -> Shape {
    let parts = mime::split(entity);
    let header = Header::parse(parts.header);
    let ct = ContentType::of(&header);
    if ct.type_ == "application" && (ct.subtype == "pkcs7-mime" || ct.subtype == "x-pkcs7-mime") {
        return Shape::Smime(decoded_body(&header, parts.body));
    }
    if ct.is("multipart", "encrypted")
        && ct
            .param("protocol")
            .is_some_and(|p| p.eq_ignore_ascii_case("application/pgp-encrypted"))
        && let Some(b) = ct.param("boundary")
        && let Some(children) = mime::multipart_parts(parts.body, b)
        && let Some(second) = children.get(1)
    {
        let p = mime::split(second);
        return Shape::PgpMime(decoded_body(&Header::parse(p.header), p.body));
    }
    if ct.is("multipart", "signed")
        && let Some(b) = ct.param("boundary")
        && let Some(children) = mime::multipart_parts(parts.body, b)
        && children.len() == 2
    {
        let proto = ct
            .param("protocol")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let p = mime::split(children[1]);
        let sig = decoded_body(&Header::parse(p.header), p.body);
        let content = children[0].to_vec();
        if proto.ends_with("pkcs7-signature") {
            return Shape::SmimeSigned {
                content,
                signature: sig,
            };
        }
        if proto == "application/pgp-signature" {
            return Shape::PgpSigned {
                content,
                signature: sig,
            };
        }
    }
    if ct.is("text", "plain") {
        let body = decoded_body(&header, parts.body);
        let trimmed = body.trim_ascii();
        if trimmed.starts_with(b"-----BEGIN PGP MESSAGE-----")
            && trimmed.ends_with(b"-----END PGP MESSAGE-----")
        {
            return Shape::PgpInline {
                header,
                armored: trimmed.to_vec(),
            };
        }
        if trimmed.starts_with(b"-----BEGIN PGP SIGNED MESSAGE-----") {
            return Shape::PgpInlineSigned(trimmed.to_vec());
        }
        if memchr::memmem::find(&body, b"-----BEGIN PGP MESSAGE-----").is_some() {
            return Shape::PgpPartial;
        }
    }
    Shape::Other
}

/// `Name <a@b>` or `a@b` → `a@b`, lower-cased.
fn extract_address(value: &str) -> Option<String> {
    let v = match (value.rfind('<'), value.rfind('>')) {
        (Some(s), Some(e)) if s < e => &value[s + 1..e],
        _ => value,
    };
    let v = v.trim();
    v.contains('@').then(|| v.to_ascii_lowercase())
}

/// The key in an `Autocrypt` header (Autocrypt 1.1 §2.1), when its `addr` is the sender.
fn autocrypt_key(outer: &Header, from: &str, now: SystemTime) -> Option<PgpCert> {
    let value = outer.get("autocrypt")?;
    let mut addr = None;
    let mut keydata = None;
    for attr in value.split(';') {
        let (k, v) = attr.split_once('=')?;
        match k.trim() {
            "addr" => addr = Some(v.trim().to_ascii_lowercase()),
            "keydata" => keydata = Some(v.to_owned()),
            _ => {}
        }
    }
    if addr.as_deref() != Some(from) {
        return None;
    }
    let bytes = mime::base64_decode(keydata?.as_bytes()).ok()?;
    let cert = pgp::parse_cert(&bytes).ok()?;
    pgp::cert_emails(&cert, now)
        .iter()
        .any(|e| e == from)
        .then_some(cert)
}
