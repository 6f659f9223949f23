//! Fetches a partner domain's Web Key Directory over HTTPS (WebPKI: the system's roots
//! and the configured extra ones): the policy file and the domain key, advanced method
//! first, then the direct method. Bounded in size; one GET per URL, no redirects.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::StatusCode;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use rustls_pki_types::pem::PemObject as _;

/// Largest answer read (a few keys fit in well under this).
pub const MAX_BODY: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum WkdError {
    #[error("{0}: not an https URL")]
    Url(String),
    #[error("{host}: {reason}")]
    Connect { host: String, reason: String },
    #[error("{host}: TLS: {reason}")]
    Tls { host: String, reason: String },
    #[error("{url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: {reason}")]
    Body { url: String, reason: String },
}

/// Why the WKD client cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum RootsError {
    #[error("federation.wkd_roots {path}: {reason}")]
    Roots {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// The TLS client configuration WKD fetches use.
pub fn client_config(
    extra_roots: Option<&std::path::Path>,
) -> Result<Arc<rustls::ClientConfig>, RootsError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for c in native.certs {
        let _ = roots.add(c);
    }
    if let Some(path) = extra_roots {
        let bad = |reason: String| RootsError::Roots {
            path: path.to_owned(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        for c in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
            let c = c.map_err(|e| bad(e.to_string()))?;
            roots.add(c).map_err(|e| bad(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Connects to port 443 of `host`, its addresses asked of `resolver` (or of the system,
/// without one): the first address that answers.
async fn connect(
    resolver: Option<std::net::SocketAddr>,
    host: &str,
) -> Result<tokio::net::TcpStream, WkdError> {
    let failed = |reason: String| WkdError::Connect {
        host: host.to_owned(),
        reason,
    };
    let Some(resolver) = resolver else {
        return tokio::net::TcpStream::connect((host, 443))
            .await
            .map_err(|e| failed(e.to_string()));
    };
    let addrs = super::dns::addresses(resolver, host)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let mut last = "no address".to_owned();
    for ip in addrs {
        match tokio::net::TcpStream::connect((ip, 443)).await {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("{ip}: {e}"),
        }
    }
    Err(failed(last))
}

/// GETs `url` (https only); the body when the answer is 200, None for 404, else an error.
pub async fn get(
    tls: &Arc<rustls::ClientConfig>,
    resolver: Option<std::net::SocketAddr>,
    url: &str,
) -> Result<Option<Bytes>, WkdError> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| WkdError::Url(url.to_owned()))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = format!("/{path}");
    let connect = |reason: String| WkdError::Connect {
        host: host.to_owned(),
        reason,
    };
    let tcp = self::connect(resolver, host).await?;
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from(host.to_owned()).map_err(|e| connect(e.to_string()))?;
    let stream = tokio_rustls::TlsConnector::from(Arc::clone(tls))
        .connect(name, tcp)
        .await
        .map_err(|e| WkdError::Tls {
            host: host.to_owned(),
            reason: e.to_string(),
        })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| connect(e.to_string()))?;
    let driver = tokio::spawn(conn);
    let req = hyper::Request::get(&path)
        .header(hyper::header::HOST, host)
        .header(hyper::header::USER_AGENT, "Postern (WKD)")
        .body(Empty::<Bytes>::new())
        .map_err(|e| connect(e.to_string()))?;
    let body = |reason: String| WkdError::Body {
        url: url.to_owned(),
        reason,
    };
    let result = async {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| body(e.to_string()))?;
        match resp.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            s => {
                return Err(WkdError::Status {
                    url: url.to_owned(),
                    status: s.as_u16(),
                });
            }
        }
        let collected = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| body(format!("{e} (at most {MAX_BODY} bytes)")))?;
        Ok(Some(collected.to_bytes()))
    }
    .await;
    driver.abort();
    result
}
