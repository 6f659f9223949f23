//! A small HTTPS/1.1 client for the API tests: one request per connection, the server's
//! certificate pinned (a node's self-signed certificate from its data directory).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// Accepts exactly one certificate (byte for byte), or any when none is pinned (a VM's
/// self-signed certificate the test never saw), with real handshake signatures.
#[derive(Debug)]
struct Pinned {
    cert: Option<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if self
            .cert
            .as_ref()
            .is_none_or(|c| end_entity.as_ref() == c.as_ref())
        {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("not the pinned certificate".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A reply: status, headers (lower-case names), body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A client of one server.
#[derive(Debug, Clone)]
pub struct Client {
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    read_timeout: Duration,
}

impl Client {
    /// A client of `addr` that trusts only the certificate in `cert_pem`.
    pub fn pinned(addr: SocketAddr, cert_pem: &str) -> Result<Client> {
        let cert =
            CertificateDer::from_pem_slice(cert_pem.as_bytes()).context("pinned certificate")?;
        Client::with(addr, Some(cert))
    }

    /// A client that accepts whatever certificate the server shows (a booted VM's).
    pub fn any_certificate(addr: SocketAddr) -> Result<Client> {
        Client::with(addr, None)
    }

    fn with(addr: SocketAddr, cert: Option<CertificateDer<'static>>) -> Result<Client> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned { cert, provider }))
            .with_no_client_auth();
        Ok(Client {
            addr,
            config: Arc::new(config),
            read_timeout: Duration::from_secs(60),
        })
    }

    /// How long to wait for a reply (default 60 s).
    pub fn with_read_timeout(mut self, d: Duration) -> Client {
        self.read_timeout = d;
        self
    }

    /// Sends one request; `headers` as (name, value).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Reply> {
        let name = ServerName::try_from("localhost")?.to_owned();
        let mut conn = rustls::ClientConnection::new(Arc::clone(&self.config), name)?;
        let mut tcp = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))
            .with_context(|| format!("connect {}", self.addr))?;
        tcp.set_read_timeout(Some(self.read_timeout))?;
        let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        tls.write_all(req.as_bytes())?;
        tls.write_all(body)?;
        let mut raw = Vec::new();
        match tls.read_to_end(&mut raw) {
            Ok(_) => {}
            // A server closing without close_notify after a complete reply.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
            Err(e) => return Err(e).context("read reply"),
        }
        parse(&raw)
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Result<Reply> {
        self.request("GET", path, headers, b"")
    }

    /// A JSON request with a bearer token.
    pub fn json(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> Result<Reply> {
        let auth = format!("Bearer {token}");
        let data = body.map(|b| b.to_string()).unwrap_or_default();
        self.request(
            method,
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            data.as_bytes(),
        )
    }
}

fn parse(raw: &[u8]) -> Result<Reply> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers in the reply")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .context("no status line")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body)?;
    }
    Ok(Reply {
        status,
        headers,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("bad chunk")?;
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..line_end]).trim(), 16)?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size + 2 {
            bail!("truncated chunk");
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}
