//! A running member: the Raft node on its thread, the mutual-TLS transport, and the join
//! service, started together — what `posternd` runs, and what the tests start three of.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use crate::files::{ClusterFiles, FilesError, Membership};
use crate::join::{self, Credentials, JoinError, Joiner};
use crate::node::{Node, NodeError, ProposeError};
use crate::pki;
use crate::runner::{self, Handle, Observer};
use crate::state::{Command, Outcome};
use crate::transport::{self, Outbound, TransportError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Files(#[from] FilesError),
    #[error(transparent)]
    Join(#[from] JoinError),
    #[error("{0:?} is not an address:port")]
    BadAddress(String),
    #[error("cluster: {0}")]
    Cluster(String),
    /// A proposal of this member was not committed (no quorum, timeout, leader change).
    #[error(transparent)]
    Propose(#[from] ProposeError),
    #[error("OpenSSL: {0}")]
    Openssl(#[from] openssl::error::ErrorStack),
}

/// Makes the observer of a member about to start (it may need the member's cluster key).
pub type ObserverFactory = Arc<dyn Fn(&Membership) -> Arc<dyn Observer> + Send + Sync>;

/// How the daemon wants its member run.
#[derive(Clone, Default)]
pub struct Options {
    /// Sees every change of the state (the gateway's key store).
    pub observer: Option<ObserverFactory>,
    /// Save the state (and compact the log) every this many entries (default 1,000).
    pub snapshot_every: Option<u64>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("observer", &self.observer.is_some())
            .field("snapshot_every", &self.snapshot_every)
            .finish()
    }
}

fn socket(addr: &str) -> Result<SocketAddr, StartError> {
    addr.parse()
        .map_err(|_| StartError::BadAddress(addr.to_owned()))
}

/// Starts the member `files` describes, if this node belongs to a cluster (at boot).
pub async fn resume(
    files: &ClusterFiles,
    listen: SocketAddr,
    options: &Options,
) -> Result<Option<(Handle, Membership)>, StartError> {
    let Some(m) = files.load()? else {
        return Ok(None);
    };
    let (handle, _) = start(
        &files.raft_dir(),
        &[],
        &BTreeMap::new(),
        &m,
        listen,
        options,
    )
    .await?;
    Ok(Some((handle, m)))
}

/// `cluster init`: a new cluster with this node as member 1, listening on `listen` and
/// reachable by other members on `addr`; returns once the member elected itself and
/// recorded its address in the state.
pub async fn found(
    files: &ClusterFiles,
    listen: SocketAddr,
    addr: &str,
    now: SystemTime,
    options: &Options,
) -> Result<(Handle, Membership), StartError> {
    socket(addr)?;
    let m = files.init(addr, now)?;
    let (handle, _) = start(
        &files.raft_dir(),
        &[1],
        &BTreeMap::new(),
        &m,
        listen,
        options,
    )
    .await?;
    let record = Command::PutMember {
        id: 1,
        addr: addr.to_owned(),
    };
    for _ in 0..50 {
        if handle
            .propose(record.clone(), Duration::from_secs(2))
            .await
            .is_ok()
        {
            return Ok((handle, m));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(StartError::Cluster(
        "the new cluster did not elect its first member".into(),
    ))
}

/// `cluster join`: joins through the member at `peer` with `creds`, keeps the identity in
/// `files`, and starts as a learner listening on `listen`, reachable on `addr`.
pub async fn join(
    files: &ClusterFiles,
    creds: &Credentials,
    peer: SocketAddr,
    listen: SocketAddr,
    addr: &str,
    now: SystemTime,
    options: &Options,
) -> Result<(Handle, Membership), StartError> {
    let admitted = request_join(creds, peer, addr, now).await?;
    start_joined(files, admitted, listen, options).await
}

/// A cluster's answer to a join: this node's new identity, not yet on disk.
pub struct Admitted {
    accepted: join::Accepted,
    key: openssl::pkey::PKey<openssl::pkey::Private>,
    addr: String,
}

impl std::fmt::Debug for Admitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admitted")
            .field("accepted", &self.accepted)
            .finish_non_exhaustive()
    }
}

/// The first half of a join: presents `creds` to `peer` (spending the token) and gets this
/// node's certificate. Nothing on this node changes yet, so a node that belongs to another
/// (single-member) cluster can keep running until the join is certain.
pub async fn request_join(
    creds: &Credentials,
    peer: SocketAddr,
    addr: &str,
    now: SystemTime,
) -> Result<Admitted, StartError> {
    socket(addr)?;
    let key = pki::new_key()?;
    let accepted = join::request(creds, peer, &key, addr, now).await?;
    Ok(Admitted {
        accepted,
        key,
        addr: addr.to_owned(),
    })
}

/// The second half: keeps the identity in `files` and starts as a learner.
pub async fn start_joined(
    files: &ClusterFiles,
    admitted: Admitted,
    listen: SocketAddr,
    options: &Options,
) -> Result<(Handle, Membership), StartError> {
    let m = files.joined(&admitted.accepted, &admitted.key, &admitted.addr)?;
    let (handle, _) = start(
        &files.raft_dir(),
        &[],
        &admitted.accepted.members,
        &m,
        listen,
        options,
    )
    .await?;
    Ok((handle, m))
}

/// `cluster export-credentials`: credentials for one join, valid for `ttl`, with the token
/// made known to the cluster.
pub async fn export_credentials(
    handle: &Handle,
    m: &Membership,
    ttl: Duration,
    now: SystemTime,
) -> Result<Credentials, StartError> {
    let status = handle
        .status()
        .await
        .ok_or_else(|| StartError::Cluster("the member stopped".into()))?;
    let ca = m.ca.cert.to_pem()?;
    let (creds, cmd) = Credentials::export(
        &m.info.cluster_id,
        &String::from_utf8_lossy(&ca),
        status.state.members,
        now,
        ttl,
    )?;
    match handle.propose(cmd, Duration::from_secs(10)).await? {
        Outcome::Done => Ok(creds),
        other => Err(StartError::Cluster(format!("unexpected outcome {other:?}"))),
    }
}

/// Starts member `m` with its store in `dir`, listening on `listen` (port 0: any).
/// `voters` bootstraps a new cluster (`[id]` for the founding member); a joining node passes
/// `[]` and learns the configuration from the leader, reaching the other members through
/// `members` (from the join reply) until the replicated state names them. Returns the handle
/// and the bound address. Must be called inside a tokio runtime.
pub async fn start(
    dir: &Path,
    voters: &[u64],
    members: &BTreeMap<u64, String>,
    m: &Membership,
    listen: SocketAddr,
    options: &Options,
) -> Result<(Handle, SocketAddr), StartError> {
    let tls = &m.tls;
    let mut node = Node::open(tls.id, dir, voters)?;
    if let Some(n) = options.snapshot_every {
        node.set_snapshot_every(n);
    }
    let (tx, rx) = mpsc::channel(4096);
    let outbound = Arc::new(Outbound::new(tls, Default::default())?);
    outbound.set_addresses(members);
    let observer = options.observer.as_ref().map(|make| make(m));
    let handle = runner::start(node, rx, outbound, observer);
    let joiner = Arc::new(Joiner {
        handle: handle.clone(),
        ca: m.ca.clone(),
        key: m.key.clone(),
        cluster_id: m.info.cluster_id.clone(),
    });
    // A member that just stopped on this port may still be closing its socket.
    let mut tries = 0;
    let (addr, listener) = loop {
        match transport::listen(listen, tls, tx.clone(), Some(joiner.clone())).await {
            Ok(bound) => break bound,
            Err(TransportError::Listen { .. }) if tries < 30 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                handle.shutdown().await;
                return Err(e.into());
            }
        }
    };
    handle.attach_listener(listener);
    Ok((handle, addr))
}
