//! What OpenSSL's safe API does not hand out, read straight from the DER: which CMS content
//! type a structure is, the signer's SMIMECapabilities attribute, and the digest algorithms
//! a SignedData names.
//! A bounds-checked reader; malformed input yields "unknown"/"nothing announced".

/// id-signedData, id-envelopedData, id-ct-authEnvelopedData (RFC 5652, RFC 5083).
const SIGNED_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02];
const ENVELOPED_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x03];
const AUTH_ENVELOPED_DATA: &[u8] = &[
    0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x10, 0x01, 0x17,
];
/// smimeCapabilities (RFC 8551 §2.5.2) and aes256-GCM (RFC 5084).
const SMIME_CAPABILITIES: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x0F];
const AES256_GCM: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2E];

/// What a signer announced it can decrypt.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Capabilities {
    /// The attribute was present at all.
    pub announced: bool,
    pub aes256_gcm: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmsType {
    Signed,
    Enveloped,
    AuthEnveloped,
    Other,
}

/// One TLV: (tag, content, rest). BER indefinite lengths (NSS writes them) are read as
/// "the rest of the input": enough for scanning, which is all this module does.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    if first == 0x80 {
        return (tag & 0x20 != 0).then_some((tag, rest, &[][..]));
    }
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let mut l = 0usize;
        for b in &rest[..n] {
            l = l << 8 | usize::from(*b);
        }
        rest = &rest[n..];
        l
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// ContentInfo ::= SEQUENCE { contentType OBJECT IDENTIFIER, content [0] EXPLICIT ANY }
pub fn content_type(der: &[u8]) -> CmsType {
    let Some((0x30, seq, _)) = tlv(der) else {
        return CmsType::Other;
    };
    match tlv(seq) {
        Some((0x06, oid, _)) if oid == SIGNED_DATA => CmsType::Signed,
        Some((0x06, oid, _)) if oid == ENVELOPED_DATA => CmsType::Enveloped,
        Some((0x06, oid, _)) if oid == AUTH_ENVELOPED_DATA => CmsType::AuthEnveloped,
        _ => CmsType::Other,
    }
}

/// The digest algorithms (their OIDs' content octets) a SignedData names:
/// `ContentInfo { id-signedData, [0] SignedData { version, digestAlgorithms SET OF
/// AlgorithmIdentifier, ... } }`. None when the structure does not read that far.
pub fn digest_algorithms(der: &[u8]) -> Option<Vec<&[u8]>> {
    let Some((0x30, info, _)) = tlv(der) else {
        return None;
    };
    let Some((0x06, SIGNED_DATA, rest)) = tlv(info) else {
        return None;
    };
    let Some((0xA0, explicit, _)) = tlv(rest) else {
        return None;
    };
    let Some((0x30, signed, _)) = tlv(explicit) else {
        return None;
    };
    let Some((0x02, _, rest)) = tlv(signed) else {
        return None;
    };
    let Some((0x31, mut set, _)) = tlv(rest) else {
        return None;
    };
    let mut out = Vec::new();
    while let Some((0x30, alg, rest)) = tlv(set) {
        let Some((0x06, oid, _)) = tlv(alg) else {
            return None;
        };
        out.push(oid);
        set = rest;
    }
    Some(out)
}

/// An OID's content octets as dotted text (`2.16.840.1.101.3.4.2.1`); None if malformed.
pub fn oid_text(oid: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut v: u64 = 0;
    for (i, b) in oid.iter().enumerate() {
        if v > (u64::MAX >> 7) {
            return None;
        }
        v = v << 7 | u64::from(b & 0x7F);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (v / 40).min(2);
                arcs.push(first);
                arcs.push(v - first * 40);
            } else {
                arcs.push(v);
            }
            v = 0;
        } else if i + 1 == oid.len() {
            return None;
        }
    }
    (!arcs.is_empty()).then(|| {
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(".")
    })
}

/// Finds the SMIMECapabilities attribute: `SEQUENCE { OID smimeCapabilities, SET { ... } }`
/// anywhere in the structure (it sits in the signed attributes of a SignerInfo).
pub fn capabilities(der: &[u8]) -> Capabilities {
    let mut caps = Capabilities::default();
    walk(der, 0, &mut |content| {
        let Some((0x06, oid, rest)) = tlv(content) else {
            return;
        };
        if oid != SMIME_CAPABILITIES {
            return;
        }
        let Some((0x31, set, _)) = tlv(rest) else {
            return;
        };
        caps.announced = true;
        walk(set, 0, &mut |inner| {
            if let Some((0x06, oid, _)) = tlv(inner)
                && oid == AES256_GCM
            {
                caps.aes256_gcm = true;
            }
        });
    });
    caps
}

/// Calls `f` with the content of every constructed SEQUENCE, depth-first.
fn walk(mut input: &[u8], depth: usize, f: &mut dyn FnMut(&[u8])) {
    if depth > 32 {
        return;
    }
    while let Some((tag, content, rest)) = tlv(input) {
        if tag == 0x30 {
            f(content);
        }
        // Constructed types (bit 6) and [n] EXPLICIT wrappers hold further TLVs.
        if tag & 0x20 != 0 {
            walk(content, depth + 1, f);
        }
        input = rest;
    }
}
