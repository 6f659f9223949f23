//! Raft messages between members over TCP with mutual TLS under the cluster CA. A peer that
//! cannot show a certificate from this cluster's CA never gets past the handshake, and a
//! member whose certificate names node A cannot send messages as node B.
//!
//! Framing: a 4-byte big-endian length, a kind byte, then the payload: a protobuf-encoded
//! `raft::prelude::Message` from an authenticated member, or — the only thing a client
//! without a certificate may send — one join request, answered with one join reply.
//! Delivery is best effort (Raft retransmits): a full queue or a broken connection drops
//! messages and the connection is rebuilt on the next one.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use protobuf::Message as _;
use raft::prelude::Message;
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::pki::{NodeTls, node_id_of, node_name};

const RAFT: u8 = 0;
const JOIN_REQUEST: u8 = 1;
const JOIN_REPLY: u8 = 2;
/// Largest join request a client without certificate may send.
const MAX_JOIN_REQUEST: usize = 16 * 1024;

/// Answers join requests (JSON in, JSON out); see [`crate::join`].
pub trait JoinService: Send + Sync {
    fn join(
        &self,
        request: Vec<u8>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<u8>> + Send + '_>>;
}

/// Largest frame accepted (snapshots of a big state included).
const MAX_FRAME: usize = 256 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages queued per peer before new ones are dropped.
const QUEUE: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the transport must be created inside a tokio runtime")]
    NoRuntime,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(tls: &NodeTls) -> Result<Arc<RootCertStore>, TransportError> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(tls.ca_der.clone()))?;
    Ok(Arc::new(roots))
}

fn identity(tls: &NodeTls) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    (
        vec![CertificateDer::from(tls.cert_der.clone())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(tls.key_der.clone())),
    )
}

/// Server side: a client certificate, if shown, must come from the cluster CA; a client
/// without one may only ask to join.
pub fn server_config(tls: &NodeTls) -> Result<Arc<rustls::ServerConfig>, TransportError> {
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(tls)?, provider())
        .allow_unauthenticated()
        .build()?;
    let (chain, key) = identity(tls);
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// Client side: the server must be the node we meant, certified by the cluster CA.
pub fn client_config(tls: &NodeTls) -> Result<Arc<rustls::ClientConfig>, TransportError> {
    let (chain, key) = identity(tls);
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(tls)?)
        .with_client_auth_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// Accepts members' connections on `addr` and forwards their messages to `inbound`.
/// Returns the bound address; aborting the returned handle closes the listening socket.
pub async fn listen(
    addr: SocketAddr,
    tls: &NodeTls,
    inbound: mpsc::Sender<Message>,
    join: Option<Arc<dyn JoinService>>,
) -> Result<(SocketAddr, tokio::task::AbortHandle), TransportError> {
    let acceptor = TlsAcceptor::from(server_config(tls)?);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| TransportError::Listen { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| TransportError::Listen { addr, source })?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, peer)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let inbound = inbound.clone();
            let join = join.clone();
            tokio::spawn(async move {
                if let Err(reason) = serve(tcp, acceptor, inbound, join).await {
                    tracing::debug!(%peer, reason, "cluster connection closed");
                }
            });
        }
    });
    Ok((local, task.abort_handle()))
}

async fn serve(
    tcp: TcpStream,
    acceptor: TlsAcceptor,
    inbound: mpsc::Sender<Message>,
    join: Option<Arc<dyn JoinService>>,
) -> Result<(), String> {
    let _ = tcp.set_nodelay(true);
    let mut tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
        .await
        .map_err(|_| "handshake timed out".to_owned())?
        .map_err(|e| format!("handshake failed: {e}"))?;
    let peer_id = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| node_id_of(c).ok_or("client certificate names no node"))
        .transpose()?;
    let Some(peer_id) = peer_id else {
        // No certificate: one join request, one reply.
        let (kind, frame) =
            tokio::time::timeout(HANDSHAKE_TIMEOUT, read_frame(&mut tls, MAX_JOIN_REQUEST))
                .await
                .map_err(|_| "join request timed out".to_owned())??;
        let join = join.ok_or("this node does not take join requests")?;
        if kind != JOIN_REQUEST {
            return Err(
                "a client without certificate sent something other than a join request".into(),
            );
        }
        let reply = join.join(frame).await;
        write_frame(&mut tls, JOIN_REPLY, &reply)
            .await
            .map_err(|e| e.to_string())?;
        let _ = tls.shutdown().await;
        return Ok(());
    };
    loop {
        let (kind, frame) = read_frame(&mut tls, MAX_FRAME).await?;
        if kind != RAFT {
            return Err(format!("unexpected frame kind {kind} from node {peer_id}"));
        }
        let msg = Message::parse_from_bytes(&frame).map_err(|e| format!("bad message: {e}"))?;
        if msg.from != peer_id {
            tracing::warn!(
                peer_id,
                claimed = msg.from,
                "cluster peer sent a message in another node's name"
            );
            return Err("message from a node other than the certificate's".into());
        }
        if inbound.send(msg).await.is_err() {
            return Ok(());
        }
    }
}

/// Reads one frame: (kind, payload).
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<(u8, Vec<u8>), String> {
    let mut head = [0u8; 5];
    r.read_exact(&mut head).await.map_err(|e| e.to_string())?;
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if len > max {
        return Err(format!("frame of {len} bytes is over the limit"));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
    Ok((head[4], buf))
}

pub(crate) async fn write_frame<W: tokio::io::AsyncWrite + Unpin>(
    w: &mut W,
    kind: u8,
    payload: &[u8],
) -> std::io::Result<()> {
    let len = u32::try_from(payload.len()).map_err(|_| std::io::Error::other("frame too large"))?;
    let mut frame = Vec::with_capacity(payload.len() + 5);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.push(kind);
    frame.extend_from_slice(payload);
    w.write_all(&frame).await
}

pub(crate) const KIND_JOIN_REQUEST: u8 = JOIN_REQUEST;
pub(crate) const KIND_JOIN_REPLY: u8 = JOIN_REPLY;

/// Sends messages to members by id, one queue and connection per peer.
#[derive(Debug)]
pub struct Outbound {
    config: Arc<rustls::ClientConfig>,
    /// Where each member listens (updated when membership changes).
    pub addresses: Arc<RwLock<BTreeMap<u64, SocketAddr>>>,
    queues: Mutex<HashMap<u64, mpsc::Sender<Message>>>,
    /// Where the per-peer tasks run (`send` is called from the Raft thread).
    runtime: tokio::runtime::Handle,
}

impl Outbound {
    /// Must be called inside a tokio runtime; the peer connections run there.
    pub fn new(
        tls: &NodeTls,
        addresses: BTreeMap<u64, SocketAddr>,
    ) -> Result<Outbound, TransportError> {
        Ok(Outbound {
            config: client_config(tls)?,
            addresses: Arc::new(RwLock::new(addresses)),
            queues: Mutex::new(HashMap::new()),
            runtime: tokio::runtime::Handle::try_current()
                .map_err(|_| TransportError::NoRuntime)?,
        })
    }

    /// Replaces the address book with the members' addresses from the state.
    pub fn set_addresses(&self, members: &BTreeMap<u64, String>) {
        let parsed = members
            .iter()
            .filter_map(|(id, a)| Some((*id, a.parse().ok()?)))
            .collect();
        *self.addresses.write().unwrap_or_else(|p| p.into_inner()) = parsed;
    }

    /// Queues a message for its recipient (dropped when the queue is full).
    pub fn send(&self, msg: Message) {
        let to = msg.to;
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        let queue = queues.entry(to).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            let connector = TlsConnector::from(Arc::clone(&self.config));
            self.runtime
                .spawn(peer_task(to, rx, connector, Arc::clone(&self.addresses)));
            tx
        });
        let _ = queue.try_send(msg);
    }
}

async fn peer_task(
    to: u64,
    mut rx: mpsc::Receiver<Message>,
    connector: TlsConnector,
    addresses: Arc<RwLock<BTreeMap<u64, SocketAddr>>>,
) {
    let mut conn: Option<tokio_rustls::client::TlsStream<TcpStream>> = None;
    while let Some(msg) = rx.recv().await {
        let Ok(bytes) = msg.write_to_bytes() else {
            continue;
        };
        let mut frame = Vec::with_capacity(bytes.len() + 4);
        frame.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
        frame.extend_from_slice(&bytes);
        if conn.is_none() {
            let addr = addresses
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .get(&to)
                .copied();
            let Some(addr) = addr else { continue };
            conn = connect(addr, to, &connector).await;
        }
        if let Some(c) = conn.as_mut()
            && write_frame(c, RAFT, &bytes).await.is_err()
        {
            conn = None;
        }
    }
}

async fn connect(
    addr: SocketAddr,
    to: u64,
    connector: &TlsConnector,
) -> Option<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from(node_name(to)).ok()?;
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, tcp)).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            tracing::debug!(to, %addr, error = %e, "cluster TLS handshake failed");
            None
        }
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests;
