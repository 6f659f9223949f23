//! The cluster's own PKI: a CA created at `cluster init`, and one certificate per node for
//! mutual TLS between members. A node certificate names its node id
//! (`node-<id>.postern-cluster`), so a member can tell which node is talking and refuse a
//! message that claims to come from another.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private, Public};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName, SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509Builder, X509NameBuilder};

const SUFFIX: &str = ".postern-cluster";
const VALIDITY: Duration = Duration::from_secs(10 * 365 * 86_400);

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("OpenSSL: {0}")]
    Openssl(#[from] ErrorStack),
    #[error("not a certificate of this cluster's CA")]
    Foreign,
}

/// The name a node's certificate carries.
pub fn node_name(id: u64) -> String {
    format!("node-{id}{SUFFIX}")
}

/// The node id a certificate (DER) was issued for.
pub fn node_id_of(cert_der: &[u8]) -> Option<u64> {
    let cert = X509::from_der(cert_der).ok()?;
    let names = cert.subject_alt_names()?;
    names.iter().find_map(|n| {
        n.dnsname()?
            .strip_suffix(SUFFIX)?
            .strip_prefix("node-")?
            .parse()
            .ok()
    })
}

fn time(t: SystemTime) -> Result<Asn1Time, ErrorStack> {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    Asn1Time::from_unix(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// A certificate builder with the fields every cluster certificate has: v3, a random
/// serial, subject, issuer, public key, and validity from an hour ago for ten years.
fn builder<T: openssl::pkey::HasPublic>(
    subject: &openssl::x509::X509NameRef,
    issuer: &openssl::x509::X509NameRef,
    key: &openssl::pkey::PKeyRef<T>,
    now: SystemTime,
) -> Result<X509Builder, ErrorStack> {
    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    b.set_serial_number(&*serial.to_asn1_integer()?)?;
    b.set_subject_name(subject)?;
    b.set_issuer_name(issuer)?;
    b.set_pubkey(key)?;
    b.set_not_before(&*time(now - Duration::from_secs(3600))?)?;
    b.set_not_after(&*time(now + VALIDITY)?)?;
    Ok(b)
}

/// A new P-256 key (fast TLS handshakes, supported by rustls/ring).
pub fn new_key() -> Result<PKey<Private>, ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    PKey::from_ec_key(EcKey::generate(&group)?)
}

/// The cluster key: what the gateway seals private keys under before they enter the
/// replicated state, so neither the Raft log nor snapshots carry them in the clear. Every
/// member holds it in `data_dir/cluster/cluster.key` (0600); a joining node receives it in
/// the join reply, over the mutual-TLS channel. Its bytes never appear in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterKey([u8; 32]);

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterKey(..)")
    }
}

impl Drop for ClusterKey {
    fn drop(&mut self) {
        self.0.fill(0);
    }
}

impl ClusterKey {
    pub fn generate() -> Result<ClusterKey, ErrorStack> {
        let mut k = [0u8; 32];
        openssl::rand::rand_bytes(&mut k)?;
        Ok(ClusterKey(k))
    }

    pub fn bytes(&self) -> [u8; 32] {
        self.0
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses 64 hex digits (surrounding white space ignored).
    pub fn from_hex(text: &str) -> Option<ClusterKey> {
        let t = text.trim().as_bytes();
        if t.len() != 64 {
            return None;
        }
        let mut k = [0u8; 32];
        for (i, pair) in t.chunks(2).enumerate() {
            let hex = std::str::from_utf8(pair).ok()?;
            k[i] = u8::from_str_radix(hex, 16).ok()?;
        }
        Some(ClusterKey(k))
    }
}

/// The cluster CA.
#[derive(Clone)]
pub struct ClusterCa {
    pub cert: X509,
    key: PKey<Private>,
}

impl std::fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCa")
            .field("subject", &self.cert.subject_name())
            .finish_non_exhaustive()
    }
}

impl ClusterCa {
    /// A new CA for the cluster `cluster_id`.
    pub fn generate(cluster_id: &str, now: SystemTime) -> Result<ClusterCa, PkiError> {
        let key = new_key()?;
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_text("O", "Postern cluster")?;
        name.append_entry_by_text("CN", &format!("cluster {cluster_id}"))?;
        let name = name.build();
        let mut b = builder(&name, &name, &key, now)?;
        b.append_extension(BasicConstraints::new().critical().ca().pathlen(0).build()?)?;
        b.append_extension(KeyUsage::new().critical().key_cert_sign().build()?)?;
        let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
        b.append_extension(ski)?;
        b.sign(&key, MessageDigest::sha256())?;
        Ok(ClusterCa {
            cert: b.build(),
            key,
        })
    }

    /// Loads a CA from PEM certificate and key.
    pub fn from_pem(cert: &[u8], key: &[u8]) -> Result<ClusterCa, PkiError> {
        Ok(ClusterCa {
            cert: X509::from_pem(cert)?,
            key: PKey::private_key_from_pem(key)?,
        })
    }

    pub fn key_pem(&self) -> Result<Vec<u8>, PkiError> {
        Ok(self.key.private_key_to_pem_pkcs8()?)
    }

    /// Issues node `id`'s certificate for its public key (client and server use).
    pub fn issue(&self, id: u64, public: &PKey<Public>, now: SystemTime) -> Result<X509, PkiError> {
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_text("CN", &node_name(id))?;
        let name = name.build();
        let mut b = builder(&name, self.cert.subject_name(), public, now)?;
        b.append_extension(BasicConstraints::new().critical().build()?)?;
        b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
        b.append_extension(
            ExtendedKeyUsage::new()
                .server_auth()
                .client_auth()
                .build()?,
        )?;
        let san = SubjectAlternativeName::new()
            .dns(&node_name(id))
            .build(&b.x509v3_context(Some(&self.cert), None))?;
        b.append_extension(san)?;
        b.sign(&self.key, MessageDigest::sha256())?;
        Ok(b.build())
    }
}

/// What a node needs for mutual TLS: the CA, its certificate and key (DER).
#[derive(Clone)]
pub struct NodeTls {
    pub id: u64,
    pub ca_der: Vec<u8>,
    pub cert_der: Vec<u8>,
    /// PKCS#8.
    pub key_der: Vec<u8>,
}

impl std::fmt::Debug for NodeTls {
    /// Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeTls")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl NodeTls {
    /// From PEM parts (what a join returns) and the node's own key.
    pub fn from_parts(
        id: u64,
        ca_pem: &str,
        cert_pem: &str,
        key: &PKey<Private>,
    ) -> Result<NodeTls, PkiError> {
        let ca = X509::from_pem(ca_pem.as_bytes())?;
        let cert = X509::from_pem(cert_pem.as_bytes())?;
        let ca_key = ca.public_key()?;
        if !cert.verify(&ca_key)? {
            return Err(PkiError::Foreign);
        }
        Ok(NodeTls {
            id,
            ca_der: ca.to_der()?,
            cert_der: cert.to_der()?,
            key_der: key.private_key_to_pkcs8()?,
        })
    }

    /// A node identity issued by `ca` (used by `cluster init` and the join handler).
    pub fn issue(ca: &ClusterCa, id: u64, now: SystemTime) -> Result<NodeTls, PkiError> {
        let key = new_key()?;
        let public = PKey::public_key_from_der(&key.public_key_to_der()?)?;
        let cert = ca.issue(id, &public, now)?;
        Ok(NodeTls {
            id,
            ca_der: ca.cert.to_der()?,
            cert_der: cert.to_der()?,
            key_der: key.private_key_to_pkcs8()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_certificates_name_their_node() {
        let now = SystemTime::now();
        let ca = ClusterCa::generate("c1", now).unwrap();
        let tls = NodeTls::issue(&ca, 42, now).unwrap();
        assert_eq!(node_id_of(&tls.cert_der), Some(42));
        assert_eq!(node_id_of(&tls.ca_der), None);
        assert_eq!(node_id_of(b"garbage"), None);
        let cert = X509::from_der(&tls.cert_der).unwrap();
        assert!(cert.verify(&ca.cert.public_key().unwrap()).unwrap());
        let again =
            ClusterCa::from_pem(&ca.cert.to_pem().unwrap(), &ca.key_pem().unwrap()).unwrap();
        let other = NodeTls::issue(&again, 7, now).unwrap();
        assert_eq!(node_id_of(&other.cert_der), Some(7));
        assert!(!format!("{tls:?}").contains("key_der"));
    }
}
