//! Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP): HMAC-SHA1, 30-second steps,
//! six digits — what every authenticator app speaks.

use data_encoding::BASE32_NOPAD;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;

/// Seconds per step.
pub const STEP: u64 = 30;
/// Length of a new secret (RFC 4226 recommends 160 bits).
pub const SECRET_LEN: usize = 20;

/// The secret as authenticator apps take it: RFC 4648 base32 without padding.
pub fn base32(secret: &[u8]) -> String {
    BASE32_NOPAD.encode(secret)
}

/// The HOTP value for `counter`, reduced to `digits` digits (None: HMAC unavailable).
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> Option<u32> {
    let key = PKey::hmac(secret).ok()?;
    let mut signer = Signer::new(MessageDigest::sha1(), &key).ok()?;
    signer.update(&counter.to_be_bytes()).ok()?;
    let h = signer.sign_to_vec().ok()?;
    let off = usize::from(h.last()? & 0x0f);
    let bin = u32::from_be_bytes([
        *h.get(off)? & 0x7f,
        *h.get(off + 1)?,
        *h.get(off + 2)?,
        *h.get(off + 3)?,
    ]);
    Some(bin % 10u32.pow(digits))
}

/// Checks a six-digit code at `now` (seconds since the epoch), allowing one step of clock
/// drift either way. Returns the step that matched, so a caller can refuse its reuse.
pub fn verify(secret: &[u8], code: &str, now: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let want: u32 = code.parse().ok()?;
    let step = now / STEP;
    [step, step.saturating_sub(1), step + 1]
        .into_iter()
        .find(|&s| hotp(secret, s, 6) == Some(want))
}

fn uri_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `otpauth://` URI an authenticator app imports.
pub fn uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits=6&period={STEP}",
        uri_escape(issuer),
        uri_escape(account),
        base32(secret),
        uri_escape(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_vectors() {
        // RFC 6238 appendix B, SHA-1, eight digits.
        let secret = b"12345678901234567890";
        for (t, want) in [
            (59u64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
        ] {
            assert_eq!(hotp(secret, t / STEP, 8), Some(want), "T = {t}");
        }
        assert_eq!(verify(secret, "081804", 1111111109), Some(1111111109 / 30));
        // One step early or late still counts; two do not.
        assert!(verify(secret, "081804", 1111111109 + 30).is_some());
        assert!(verify(secret, "081804", 1111111109 + 65).is_none());
        assert!(verify(secret, "08180", 1111111109).is_none());
        assert!(verify(secret, "0818a4", 1111111109).is_none());
    }

    #[test]
    fn base32_and_otpauth_uri() {
        // RFC 4648 test vectors.
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"f"), "MY");
        let u = uri("Postern gw1", "root", b"foobar");
        assert_eq!(
            u,
            "otpauth://totp/Postern%20gw1:root?secret=MZXW6YTBOI&issuer=Postern%20gw1&algorithm=SHA1&digits=6&period=30"
        );
    }
}
