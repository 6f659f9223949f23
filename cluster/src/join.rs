//! Joining a cluster with exported credentials (seed 001: export the cluster credentials on a
//! member, upload them with the address of any member on the new node).
//!
//! The credentials name the cluster, carry its CA certificate, the members' addresses and a
//! one-time token that expires; the cluster state keeps only the token's SHA-256. The new
//! node connects to a member's cluster port without a client certificate, checks that the
//! member's certificate comes from the credentials' CA, and sends the token with its public
//! key. The member spends the token through Raft (so two members cannot both accept it),
//! issues the node certificate, adds the node as a learner and answers with the certificate;
//! the leader promotes the learner once it has caught up.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, ServerName};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::pki::{ClusterCa, ClusterKey, node_name};
use crate::runner::Handle;
use crate::state::{Command, Outcome};
use crate::transport::{self, JoinService};

/// How long a proposal made while answering a join may take.
const PROPOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// The file `posternctl cluster export-credentials` writes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub cluster_id: String,
    /// The cluster CA certificate (PEM).
    pub ca_cert: String,
    /// Members' cluster ports by node id.
    pub members: BTreeMap<u64, String>,
    /// The one-time join token.
    pub token: String,
    /// Seconds since the epoch.
    pub expires: u64,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("cluster_id", &self.cluster_id)
            .field("members", &self.members)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("the credentials are unreadable: {0}")]
    Unreadable(String),
    #[error("the credentials expired {0} s ago; export new ones on a member")]
    Expired(u64),
    #[error("cannot reach {peer}: {reason}")]
    Unreachable { peer: SocketAddr, reason: String },
    #[error(
        "{peer} does not hold a certificate from the credentials' CA: the credentials are tampered or from another cluster"
    )]
    Untrusted { peer: SocketAddr },
    #[error("the member refused the join: {0}")]
    Refused(String),
}

/// What the new node sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRequest {
    pub token: String,
    /// The new node's public key (PEM); its private key never leaves it.
    pub public_key: String,
    /// Where the new node's cluster port will be.
    pub addr: String,
}

/// What a member answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum JoinReply {
    Accepted(Accepted),
    Refused(String),
}

/// A successful join.
#[derive(Clone, Serialize, Deserialize)]
pub struct Accepted {
    pub id: u64,
    pub cluster_id: String,
    /// The new node's certificate (PEM).
    pub cert: String,
    /// The CA's certificate and key (PEM), so the new member can answer joins too.
    pub ca_cert: String,
    pub ca_key: String,
    /// The cluster key (hex), which seals private keys in the state.
    pub cluster_key: String,
    pub members: BTreeMap<u64, String>,
}

impl std::fmt::Debug for Accepted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accepted")
            .field("id", &self.id)
            .field("cluster_id", &self.cluster_id)
            .field("members", &self.members)
            .finish_non_exhaustive()
    }
}

/// How long exported credentials may stay valid, in seconds: a minute at least (time to carry
/// the file to the new node), a week at most.
pub const TOKEN_TTL_SECS: std::ops::RangeInclusive<u64> = 60..=7 * 24 * 3600;

fn now_secs(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// A new random token and its hash.
pub fn new_token() -> Result<(String, String), openssl::error::ErrorStack> {
    let mut raw = [0u8; 32];
    openssl::rand::rand_bytes(&mut raw)?;
    let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let hash = token_hash(&token);
    Ok((token, hash))
}

/// SHA-256 of a token, hex (what the state stores).
pub fn token_hash(token: &str) -> String {
    openssl::sha::sha256(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Credentials {
    /// New credentials valid for `ttl`, and the command that makes the token known.
    pub fn export(
        cluster_id: &str,
        ca_cert_pem: &str,
        members: BTreeMap<u64, String>,
        now: SystemTime,
        ttl: Duration,
    ) -> Result<(Credentials, Command), openssl::error::ErrorStack> {
        let (token, hash) = new_token()?;
        let expires = now_secs(now).saturating_add(ttl.as_secs());
        Ok((
            Credentials {
                cluster_id: cluster_id.to_owned(),
                ca_cert: ca_cert_pem.to_owned(),
                members,
                token,
                expires,
            },
            Command::AddJoinToken { hash, expires },
        ))
    }

    pub fn parse(data: &[u8]) -> Result<Credentials, JoinError> {
        serde_json::from_slice(data).map_err(|e| JoinError::Unreadable(e.to_string()))
    }
}

/// Asks the member at `peer` to let this node in.
pub async fn request(
    creds: &Credentials,
    peer: SocketAddr,
    key: &PKey<Private>,
    my_addr: &str,
    now: SystemTime,
) -> Result<Accepted, JoinError> {
    let n = now_secs(now);
    if creds.expires <= n {
        return Err(JoinError::Expired(n - creds.expires));
    }
    let ca = X509::from_pem(creds.ca_cert.as_bytes())
        .map_err(|e| JoinError::Unreadable(format!("CA certificate: {e}")))?;
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(
            ca.to_der()
                .map_err(|e| JoinError::Unreadable(e.to_string()))?,
        ))
        .map_err(|e| JoinError::Unreadable(format!("CA certificate: {e}")))?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| JoinError::Unreadable(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(config));
    let public_key = String::from_utf8_lossy(
        &key.public_key_to_pem()
            .map_err(|e| JoinError::Unreadable(e.to_string()))?,
    )
    .into_owned();
    let body = serde_json::to_vec(&JoinRequest {
        token: creds.token.clone(),
        public_key,
        addr: my_addr.to_owned(),
    })
    .map_err(|e| JoinError::Unreadable(e.to_string()))?;
    // The member at `peer` is one of these ids; try the listed one first.
    let mut ids: Vec<u64> = creds
        .members
        .iter()
        .filter(|(_, a)| a.parse::<SocketAddr>().ok() == Some(peer))
        .map(|(i, _)| *i)
        .collect();
    ids.extend(
        creds
            .members
            .keys()
            .filter(|i| !ids.contains(i))
            .copied()
            .collect::<Vec<_>>(),
    );
    for id in ids {
        let tcp = TcpStream::connect(peer)
            .await
            .map_err(|e| JoinError::Unreachable {
                peer,
                reason: e.to_string(),
            })?;
        let Ok(name) = ServerName::try_from(node_name(id)) else {
            continue;
        };
        let Ok(mut tls) = connector.connect(name, tcp).await else {
            continue;
        };
        transport::write_frame(&mut tls, transport::KIND_JOIN_REQUEST, &body)
            .await
            .map_err(|e| JoinError::Unreachable {
                peer,
                reason: e.to_string(),
            })?;
        let (kind, reply) = transport::read_frame(&mut tls, 1024 * 1024)
            .await
            .map_err(|reason| JoinError::Unreachable { peer, reason })?;
        let _ = tls.shutdown().await;
        if kind != transport::KIND_JOIN_REPLY {
            return Err(JoinError::Refused("unexpected answer".into()));
        }
        return match serde_json::from_slice(&reply)
            .map_err(|e| JoinError::Refused(e.to_string()))?
        {
            JoinReply::Accepted(a) => Ok(a),
            JoinReply::Refused(r) => Err(JoinError::Refused(r)),
        };
    }
    Err(JoinError::Untrusted { peer })
}

/// A member's side of joining.
#[derive(Debug)]
pub struct Joiner {
    pub handle: Handle,
    pub ca: ClusterCa,
    pub key: ClusterKey,
    pub cluster_id: String,
}

impl Joiner {
    async fn answer(&self, request: &[u8]) -> JoinReply {
        let req: JoinRequest = match serde_json::from_slice(request) {
            Ok(r) => r,
            Err(_) => return JoinReply::Refused("unreadable join request".into()),
        };
        let public = match PKey::public_key_from_pem(req.public_key.as_bytes()) {
            Ok(k) => k,
            Err(_) => return JoinReply::Refused("unreadable public key".into()),
        };
        let now = SystemTime::now();
        let spend = Command::UseJoinToken {
            hash: token_hash(&req.token),
            now: now_secs(now),
            addr: req.addr.clone(),
        };
        let id = match self.handle.propose(spend, PROPOSE_TIMEOUT).await {
            Ok(Outcome::Joined(id)) => id,
            Ok(Outcome::Refused(r)) => return JoinReply::Refused(r),
            Ok(other) => return JoinReply::Refused(format!("unexpected outcome {other:?}")),
            Err(e) => return JoinReply::Refused(format!("{e}; try again")),
        };
        let cert = match self
            .ca
            .issue(id, &public, now)
            .and_then(|c| c.to_pem().map_err(Into::into))
        {
            Ok(c) => String::from_utf8_lossy(&c).into_owned(),
            Err(e) => return JoinReply::Refused(format!("cannot issue the certificate: {e}")),
        };
        if let Err(e) = self.handle.add_learner(id).await {
            return JoinReply::Refused(format!("cannot add the node: {e}"));
        }
        let status = self.handle.status().await;
        let (Ok(ca_cert), Ok(ca_key)) = (self.ca.cert.to_pem(), self.ca.key_pem()) else {
            return JoinReply::Refused("cannot export the CA".into());
        };
        tracing::info!(node = id, addr = %req.addr, "node joined as learner");
        JoinReply::Accepted(Accepted {
            id,
            cluster_id: self.cluster_id.clone(),
            cert,
            ca_cert: String::from_utf8_lossy(&ca_cert).into_owned(),
            ca_key: String::from_utf8_lossy(&ca_key).into_owned(),
            cluster_key: self.key.to_hex(),
            members: status.map(|s| s.state.members).unwrap_or_default(),
        })
    }
}

impl JoinService for Joiner {
    fn join(
        &self,
        request: Vec<u8>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<u8>> + Send + '_>> {
        Box::pin(async move {
            let reply = self.answer(&request).await;
            serde_json::to_vec(&reply).unwrap_or_default()
        })
    }
}
