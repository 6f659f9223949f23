//! Administrators' credentials: argon2id password hashes, random secrets and tokens, and
//! the SHA-256 under which the state keeps API tokens.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};

pub use postern_api::MIN_PASSWORD;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the password must have at least {MIN_PASSWORD} characters")]
    WeakPassword,
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the system random generator failed")]
    Random,
}

/// `n` random bytes from the operating system's generator (through OpenSSL).
pub fn random_bytes(n: usize) -> Result<Vec<u8>, SecretError> {
    let mut b = vec![0u8; n];
    openssl::rand::rand_bytes(&mut b).map_err(|_| SecretError::Random)?;
    Ok(b)
}

/// A random API token (256 bits, hex).
pub fn random_token() -> Result<String, SecretError> {
    Ok(hex::encode(random_bytes(32)?))
}

/// SHA-256 (hex) of a token: what the state keeps instead of the token.
pub fn sha256_hex(s: &str) -> String {
    hex::encode(openssl::sha::sha256(s.as_bytes()))
}

/// An argon2id hash (PHC string) of an administrator's password.
pub fn hash_password(password: &str) -> Result<String, SecretError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(SecretError::WeakPassword);
    }
    let salt =
        SaltString::encode_b64(&random_bytes(16)?).map_err(|e| SecretError::Hash(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| SecretError::Hash(e.to_string()))
}

/// Whether `password` matches `hash` (false for a malformed hash).
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords() {
        assert!(matches!(
            hash_password("short"),
            Err(SecretError::WeakPassword)
        ));
        let h = hash_password("correct horse battery").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "correct horse batterY"));
        assert!(!verify_password("not a hash", "x"));
        assert_eq!(random_token().expect("token").len(), 64);
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
