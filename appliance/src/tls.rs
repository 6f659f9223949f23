//! The server certificate for STARTTLS: loaded from the configured files, or a self-signed
//! one generated on first start and kept in `data_dir/tls/` (private key mode 0600).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsConfig;

#[derive(Debug, thiserror::Error)]
pub enum ServerTlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: no PEM certificate found")]
    NoCertificate { path: PathBuf },
    #[error("{path}: no PEM private key found (PKCS#8, PKCS#1 or SEC1)")]
    NoKey { path: PathBuf },
    #[error("certificate {cert} and key {key} cannot be used together: {source}")]
    Unusable {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Builds the rustls server configuration, generating a certificate when none is configured.
pub fn server_config(
    tls: &TlsConfig,
    data_dir: &Path,
    hostname: &str,
) -> Result<Arc<ServerConfig>, ServerTlsError> {
    let (cert, key) = match (&tls.cert, &tls.key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => ensure_self_signed(data_dir, hostname)?,
    };
    let certs = read_certs(&cert)?;
    let key_der = read_key(&key)?;
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|source| ServerTlsError::Unusable {
            cert: cert.clone(),
            key: key.clone(),
            source,
        })?;
    Ok(Arc::new(config))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ServerTlsError> {
    let pem = std::fs::read(path).map_err(|source| ServerTlsError::Read {
        path: path.to_owned(),
        source,
    })?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(ServerTlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, ServerTlsError> {
    let pem = std::fs::read(path).map_err(|source| ServerTlsError::Read {
        path: path.to_owned(),
        source,
    })?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| ServerTlsError::NoKey {
        path: path.to_owned(),
    })
}

/// Paths of the generated certificate and key, created when missing.
fn ensure_self_signed(
    data_dir: &Path,
    hostname: &str,
) -> Result<(PathBuf, PathBuf), ServerTlsError> {
    let dir = data_dir.join("tls");
    let cert = dir.join("server.crt");
    let key = dir.join("server.key");
    // Kept from an earlier start, unless a power cut left a file empty or cut short: then
    // make a new one rather than fail at every start.
    let usable = |p: &Path| {
        std::fs::read_to_string(p)
            .is_ok_and(|t| t.contains("-----END ") && t.contains("-----BEGIN "))
    };
    if usable(&cert) && usable(&key) {
        return Ok((cert, key));
    }
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source| ServerTlsError::Write { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(write_err(&dir))?;
    let generated = rcgen::generate_simple_self_signed(vec![hostname.to_owned()])?;
    postern_cluster::files::write_private(&key, generated.signing_key.serialize_pem().as_bytes())
        .map_err(write_err(&key))?;
    postern_cluster::files::write_private(&cert, generated.cert.pem().as_bytes())
        .map_err(write_err(&cert))?;
    tracing::info!(cert = %cert.display(), "generated a self-signed TLS certificate for {hostname}");
    Ok((cert, key))
}
