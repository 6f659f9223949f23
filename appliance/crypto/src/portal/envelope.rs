//! Sealing, reading and opening a portal envelope (the format is in the module above).

use openssl::base64;
use openssl::hash::MessageDigest;
use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};
use serde::{Deserialize, Serialize};

use super::{CHUNK, MAGIC, MAX_HEADER, MIN_ITERATIONS, PortalError, PortalKeys, hkdf};

/// The largest chunk size a header may name.
const MAX_CHUNK: u64 = 1 << 20;
const TAG: usize = 16;
const KEY: usize = 32;
const WRAP_NONCE: usize = 12;

/// An envelope's header: public, authenticated by the cluster's mac, bound into every
/// ciphertext of the envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub id: [u8; 16],
    pub to: String,
    pub from: String,
    /// Expiry, seconds since the epoch: the share is not released from then on.
    pub exp: u64,
    pub iterations: u32,
    pub salt: [u8; 16],
    /// Plaintext bytes per chunk.
    pub chunk: u64,
    /// Plaintext bytes in all.
    pub size: u64,
    pub nonce_prefix: [u8; 8],
}

/// The header as JSON.
#[derive(Serialize, Deserialize)]
struct Wire {
    v: u32,
    id: String,
    to: String,
    from: String,
    exp: u64,
    kdf: Kdf,
    chunk: u64,
    size: u64,
    np: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    alg: String,
    iter: u32,
    salt: String,
}

fn b64(b: &[u8]) -> String {
    base64::encode_block(b)
}

fn unb64<const N: usize>(what: &str, s: &str) -> Result<[u8; N], PortalError> {
    let bad = || PortalError::Malformed(format!("header field {what}"));
    let v = base64::decode_block(s).map_err(|_| bad())?;
    v.try_into().map_err(|_| bad())
}

impl Header {
    /// The id as hex (what a revocation names).
    pub fn id_hex(&self) -> String {
        self.id.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn to_json(&self) -> Vec<u8> {
        let w = Wire {
            v: 1,
            id: b64(&self.id),
            to: self.to.clone(),
            from: self.from.clone(),
            exp: self.exp,
            kdf: Kdf {
                alg: "pbkdf2-sha256".into(),
                iter: self.iterations,
                salt: b64(&self.salt),
            },
            chunk: self.chunk,
            size: self.size,
            np: b64(&self.nonce_prefix),
        };
        serde_json::to_vec(&w).unwrap_or_default()
    }

    pub(super) fn from_json(bytes: &[u8]) -> Result<Header, PortalError> {
        #[derive(Deserialize)]
        struct Version {
            v: u32,
        }
        let bad = |e: serde_json::Error| PortalError::Malformed(format!("header: {e}"));
        let Version { v } = serde_json::from_slice(bytes).map_err(bad)?;
        if v != 1 {
            return Err(PortalError::Version(v));
        }
        let w: Wire = serde_json::from_slice(bytes).map_err(bad)?;
        if w.kdf.alg != "pbkdf2-sha256" {
            return Err(PortalError::Malformed(format!(
                "key derivation {:?}",
                w.kdf.alg
            )));
        }
        if w.kdf.iter < MIN_ITERATIONS {
            return Err(PortalError::WeakKdf(w.kdf.iter));
        }
        if w.chunk == 0 || w.chunk > MAX_CHUNK {
            return Err(PortalError::Malformed(format!("chunk size {}", w.chunk)));
        }
        Ok(Header {
            id: unb64("id", &w.id)?,
            to: w.to,
            from: w.from,
            exp: w.exp,
            iterations: w.kdf.iter,
            salt: unb64("kdf.salt", &w.kdf.salt)?,
            chunk: w.chunk,
            size: w.size,
            nonce_prefix: unb64("np", &w.np)?,
        })
    }

    /// How many chunks the payload has (at least one: an empty message is one empty, final
    /// chunk), and how many bytes it is.
    fn payload_len(&self) -> Option<(u64, u64)> {
        let n = self.size.div_ceil(self.chunk).max(1);
        let len = self.size.checked_add(n.checked_mul(TAG as u64)?)?;
        Some((n, len))
    }
}

/// What an envelope is sealed for.
#[derive(Debug, Clone)]
pub struct Sealing<'a> {
    pub to: &'a str,
    pub from: &'a str,
    /// Seconds since the epoch.
    pub exp: u64,
    pub password: &'a str,
    pub iterations: u32,
}

/// An envelope read (structure only, nothing decrypted).
#[derive(Debug, Clone)]
pub struct Parsed<'a> {
    pub header: Header,
    /// What the browser sends to the server with `mac` to ask for the share.
    pub header_bytes: &'a [u8],
    pub mac: &'a [u8],
    wrap_nonce: &'a [u8],
    wrapped: &'a [u8],
    payload: &'a [u8],
}

fn random<const N: usize>() -> Result<[u8; N], PortalError> {
    let mut b = [0u8; N];
    openssl::rand::rand_bytes(&mut b)?;
    Ok(b)
}

/// The key that wraps the content key: both the recipient's secret and the share.
fn kek(password: &str, h: &Header, share: &[u8; 32]) -> Result<[u8; 32], PortalError> {
    let mut secret = [0u8; 32];
    openssl::pkcs5::pbkdf2_hmac(
        password.as_bytes(),
        &h.salt,
        h.iterations as usize,
        MessageDigest::sha256(),
        &mut secret,
    )?;
    let mut ikm = [0u8; 64];
    ikm[..32].copy_from_slice(&secret);
    ikm[32..].copy_from_slice(share);
    hkdf(&h.id, &ikm, b"postern portal kek v1")
}

fn chunk_nonce(h: &Header, i: u32) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&h.nonce_prefix);
    n[8..].copy_from_slice(&i.to_be_bytes());
    n
}

fn chunk_aad(digest: &[u8; 32], i: u32, last: bool) -> [u8; 37] {
    let mut a = [0u8; 37];
    a[..32].copy_from_slice(digest);
    a[32..36].copy_from_slice(&i.to_be_bytes());
    a[36] = u8::from(last);
    a
}

/// Seals `plaintext` (the whole message, as the recipient will download it) for `s.to`.
pub fn seal(keys: &PortalKeys, s: &Sealing<'_>, plaintext: &[u8]) -> Result<Vec<u8>, PortalError> {
    if s.iterations < MIN_ITERATIONS {
        return Err(PortalError::WeakKdf(s.iterations));
    }
    let header = Header {
        id: random()?,
        to: s.to.to_owned(),
        from: s.from.to_owned(),
        exp: s.exp,
        iterations: s.iterations,
        salt: random()?,
        chunk: CHUNK as u64,
        size: plaintext.len() as u64,
        nonce_prefix: random()?,
    };
    let json = header.to_json();
    if json.len() > MAX_HEADER {
        return Err(PortalError::Malformed(
            "addresses too long for a header".into(),
        ));
    }
    let digest = openssl::sha::sha256(&json);
    let content_key: [u8; KEY] = random()?;
    let wrap_nonce: [u8; WRAP_NONCE] = random()?;
    let kek = kek(s.password, &header, &keys.share(&header)?)?;
    let gcm = Cipher::aes_256_gcm();
    let mut tag = [0u8; TAG];
    let wrapped = encrypt_aead(
        gcm,
        &kek,
        Some(&wrap_nonce),
        &digest,
        &content_key,
        &mut tag,
    )?;

    let (n, len) = header
        .payload_len()
        .ok_or_else(|| PortalError::Malformed("message too large".into()))?;
    let mut out = Vec::with_capacity(json.len() + 128 + len as usize);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&keys.mac(&json)?);
    out.extend_from_slice(&wrap_nonce);
    out.extend_from_slice(&wrapped);
    out.extend_from_slice(&tag);
    let mut pieces = plaintext.chunks(CHUNK);
    for i in 0..n {
        let i = u32::try_from(i).map_err(|_| PortalError::Malformed("message too large".into()))?;
        let piece = pieces.next().unwrap_or_default();
        let aad = chunk_aad(&digest, i, u64::from(i) + 1 == n);
        let ct = encrypt_aead(
            gcm,
            &content_key,
            Some(&chunk_nonce(&header, i)),
            &aad,
            piece,
            &mut tag,
        )?;
        out.extend_from_slice(&ct);
        out.extend_from_slice(&tag);
    }
    Ok(out)
}

/// Reads an envelope's structure: the header (checked for form, not for authenticity —
/// only the cluster can, see [`PortalKeys::release`]) and where the rest lies.
pub fn parse(envelope: &[u8]) -> Result<Parsed<'_>, PortalError> {
    let short = || PortalError::Malformed("too short".into());
    let rest = envelope.strip_prefix(MAGIC.as_slice()).ok_or_else(|| {
        PortalError::Malformed("no PPE1 magic (not a Postern portal envelope)".into())
    })?;
    let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(short)?;
    let len = u32::from_be_bytes(*len) as usize;
    if len > MAX_HEADER {
        return Err(PortalError::Malformed(format!("header of {len} bytes")));
    }
    let (header_bytes, rest) = rest.split_at_checked(len).ok_or_else(short)?;
    let (mac, rest) = rest.split_at_checked(32).ok_or_else(short)?;
    let (wrap_nonce, rest) = rest.split_at_checked(WRAP_NONCE).ok_or_else(short)?;
    let (wrapped, payload) = rest.split_at_checked(KEY + TAG).ok_or_else(short)?;
    let header = Header::from_json(header_bytes)?;
    match header.payload_len() {
        Some((_, n)) if n == payload.len() as u64 => {}
        _ => return Err(PortalError::Length),
    }
    Ok(Parsed {
        header,
        header_bytes,
        mac,
        wrap_nonce,
        wrapped,
        payload,
    })
}

/// Opens an envelope with the recipient's password and the share the cluster released:
/// the whole plaintext, or an error and nothing of it.
pub fn open(envelope: &[u8], password: &str, share: &[u8; 32]) -> Result<Vec<u8>, PortalError> {
    let p = parse(envelope)?;
    let h = &p.header;
    let digest = openssl::sha::sha256(p.header_bytes);
    let gcm = Cipher::aes_256_gcm();
    let kek = kek(password, h, share)?;
    let (wrapped, tag) = p.wrapped.split_at(KEY);
    let content_key = decrypt_aead(gcm, &kek, Some(p.wrap_nonce), &digest, wrapped, tag)
        .map_err(|_| PortalError::Decrypt)?;
    let (n, _) = h.payload_len().ok_or(PortalError::Length)?;
    let step = h.chunk as usize + TAG;
    let mut out = Vec::with_capacity(h.size as usize);
    for (i, piece) in p.payload.chunks(step).enumerate() {
        let i = u32::try_from(i).map_err(|_| PortalError::Length)?;
        let (ct, tag) = piece.split_at(piece.len() - TAG);
        let aad = chunk_aad(&digest, i, u64::from(i) + 1 == n);
        let plain = decrypt_aead(gcm, &content_key, Some(&chunk_nonce(h, i)), &aad, ct, tag)
            .map_err(|_| PortalError::Decrypt)?;
        out.extend_from_slice(&plain);
    }
    Ok(out)
}
