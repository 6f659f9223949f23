//! Private keys at rest: AES-256-GCM under the store key (later: the cluster key). A sealed
//! blob is `nonce (12) || ciphertext || tag (16)`; the purpose string is authenticated
//! data, so a blob sealed as one user's key cannot be swapped in for another's.

use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("cannot seal: the random number generator or cipher failed")]
    Seal,
    #[error("a sealed key does not open with this store key (wrong key or damaged data)")]
    Open,
}

/// The key that seals private keys. Its bytes never appear in `Debug` output.
#[derive(Clone)]
pub struct Sealer {
    key: [u8; 32],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Drop for Sealer {
    fn drop(&mut self) {
        self.key.fill(0);
    }
}

impl Sealer {
    pub fn new(key: [u8; 32]) -> Sealer {
        Sealer { key }
    }

    /// A new random store key.
    pub fn generate() -> Result<[u8; 32], SealError> {
        let mut k = [0u8; 32];
        openssl::rand::rand_bytes(&mut k).map_err(|_| SealError::Seal)?;
        Ok(k)
    }

    pub fn seal(&self, purpose: &str, plain: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; 12];
        openssl::rand::rand_bytes(&mut nonce).map_err(|_| SealError::Seal)?;
        let mut tag = [0u8; 16];
        let ct = encrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(&nonce),
            purpose.as_bytes(),
            plain,
            &mut tag,
        )
        .map_err(|_| SealError::Seal)?;
        Ok([&nonce[..], &ct, &tag].concat())
    }

    pub fn open(&self, purpose: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < 28 {
            return Err(SealError::Open);
        }
        let (nonce, rest) = sealed.split_at(12);
        let (ct, tag) = rest.split_at(rest.len() - 16);
        decrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(nonce),
            purpose.as_bytes(),
            ct,
            tag,
        )
        .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_tamper() {
        let s = Sealer::new([7; 32]);
        let blob = s.seal("user:a", b"secret").unwrap();
        assert_eq!(s.open("user:a", &blob).unwrap(), b"secret");
        assert_eq!(s.open("user:b", &blob), Err(SealError::Open));
        let mut bad = blob.clone();
        bad[14] ^= 1;
        assert_eq!(s.open("user:a", &bad), Err(SealError::Open));
        assert_eq!(
            Sealer::new([8; 32]).open("user:a", &blob),
            Err(SealError::Open)
        );
        assert!(!format!("{s:?}").contains('7'));
    }
}
