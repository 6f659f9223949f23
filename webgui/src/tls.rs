//! The server's certificate: the cluster's (set by an admin, replicated, its key sealed),
//! else this node's own self-signed one, made at first start and kept in its data directory.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::Backend;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("no certificate in the PEM data")]
    NoCertificate,
    #[error("no usable private key in the PEM data ({0})")]
    Key(String),
    #[error("the private key does not belong to the certificate")]
    Mismatch,
    #[error("TLS configuration: {0}")]
    Config(String),
    #[error("cannot make a self-signed certificate: {0}")]
    Generate(String),
}

/// Parses a certificate chain and key (PEM) into what rustls serves.
pub fn certified_key(cert_pem: &str, key_pem: &str) -> Result<CertifiedKey, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| TlsError::Key(e.to_string()))?;
    let provider = rustls::crypto::ring::default_provider();
    let ck = CertifiedKey::from_der(certs, key, &provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => TlsError::Mismatch,
        other => TlsError::Key(other.to_string()),
    })?;
    Ok(ck)
}

/// This node's self-signed certificate for `hostname` (and localhost), made once and kept
/// as `dir/self-signed.crt` and `dir/self-signed.key` (0600).
pub fn self_signed(dir: &Path, hostname: &str) -> Result<(String, String), TlsError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| TlsError::Io { path, source }
    };
    let (crt, key) = (dir.join("self-signed.crt"), dir.join("self-signed.key"));
    if let (Ok(c), Ok(k)) = (std::fs::read_to_string(&crt), std::fs::read_to_string(&key)) {
        // A power cut may have left a file empty or cut short: make a new pair then.
        match certified_key(&c, &k) {
            Ok(_) => return Ok((c, k)),
            Err(e) => {
                tracing::warn!(error = %e, dir = %dir.display(), "the web certificate kept here is unusable; making a new one")
            }
        }
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut names = vec![hostname.to_owned()];
    if hostname != "localhost" {
        names.push("localhost".into());
    }
    let ck =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    let (c, k) = (ck.cert.pem(), ck.signing_key.serialize_pem());
    postern_cluster::files::write_private(&key, k.as_bytes()).map_err(io(&key))?;
    postern_cluster::files::write_private(&crt, c.as_bytes()).map_err(io(&crt))?;
    Ok((c, k))
}

/// Picks the certificate per handshake: the cluster's when set (re-parsed only when it
/// changed), else the node's own.
pub struct Resolver {
    backend: Arc<dyn Backend>,
    own: Arc<CertifiedKey>,
    cached: Mutex<Option<(String, Arc<CertifiedKey>)>>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

impl Resolver {
    pub fn new(backend: Arc<dyn Backend>, own: CertifiedKey) -> Resolver {
        Resolver {
            backend,
            own: Arc::new(own),
            cached: Mutex::new(None),
        }
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let Some((cert, key)) = self.backend.web_tls() else {
            return Some(Arc::clone(&self.own));
        };
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((c, ck)) = cached.as_ref()
            && *c == cert
        {
            return Some(Arc::clone(ck));
        }
        match certified_key(&cert, &key) {
            Ok(ck) => {
                let ck = Arc::new(ck);
                *cached = Some((cert, Arc::clone(&ck)));
                Some(ck)
            }
            Err(e) => {
                tracing::error!(error = %e, "the cluster's web certificate is unusable; serving this node's own");
                Some(Arc::clone(&self.own))
            }
        }
    }
}

/// The rustls server configuration (HTTP/1.1).
pub fn server_config(resolver: Resolver) -> Result<rustls::ServerConfig, TlsError> {
    let mut c = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| TlsError::Config(e.to_string()))?
    .with_no_client_auth()
    .with_cert_resolver(Arc::new(resolver));
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_is_kept_and_loads() {
        let dir = std::env::temp_dir().join(format!("postern-webtls-{}", std::process::id()));
        let (c1, k1) = self_signed(&dir, "gw1.example").expect("made");
        let (c2, _) = self_signed(&dir, "gw1.example").expect("kept");
        assert_eq!(c1, c2);
        assert!(certified_key(&c1, &k1).is_ok());
        let other = rcgen::generate_simple_self_signed(vec!["x".into()]).expect("cert");
        assert!(matches!(
            certified_key(&c1, &other.signing_key.serialize_pem()),
            Err(TlsError::Mismatch)
        ));
        // A file cut short by a power cut: a new pair instead of a daemon that never starts.
        std::fs::write(dir.join("self-signed.crt"), "").expect("truncate");
        let (c3, k3) = self_signed(&dir, "gw1.example").expect("remade");
        assert_ne!(c3, c1);
        assert!(certified_key(&c3, &k3).is_ok());
        assert!(matches!(
            certified_key("junk", &k1),
            Err(TlsError::NoCertificate)
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
