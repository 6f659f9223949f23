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
use crate::node::{Node, NodeError};
use crate::pki::{self, ClusterCa, NodeTls};
use crate::runner::{self, Handle};
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
}

fn socket(addr: &str) -> Result<SocketAddr, StartError> {
    addr.parse()
        .map_err(|_| StartError::BadAddress(addr.to_owned()))
}

/// Starts the member `files` describes, if this node belongs to a cluster (at boot).
pub async fn resume(files: &ClusterFiles) -> Result<Option<(Handle, Membership)>, StartError> {
    let Some(m) = files.load()? else {
        return Ok(None);
    };
    let listen = socket(&m.info.addr)?;
    let (handle, _) = start(
        &files.raft_dir(),
        &[],
        &BTreeMap::new(),
        &m.tls,
        m.ca.clone(),
        &m.info.cluster_id,
        listen,
    )
    .await?;
    Ok(Some((handle, m)))
}

/// `cluster init`: a new cluster with this node as member 1, reachable on `addr`; returns
/// once the member elected itself and recorded its address in the state.
pub async fn found(
    files: &ClusterFiles,
    addr: &str,
    now: SystemTime,
) -> Result<(Handle, Membership), StartError> {
    let listen = socket(addr)?;
    let m = files.init(addr, now)?;
    let (handle, _) = start(
        &files.raft_dir(),
        &[1],
        &BTreeMap::new(),
        &m.tls,
        m.ca.clone(),
        &m.info.cluster_id,
        listen,
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
/// `files`, and starts as a learner reachable on `addr`.
pub async fn join(
    files: &ClusterFiles,
    creds: &Credentials,
    peer: SocketAddr,
    addr: &str,
    now: SystemTime,
) -> Result<(Handle, Membership), StartError> {
    let listen = socket(addr)?;
    let key = pki::new_key().map_err(|e| StartError::Cluster(e.to_string()))?;
    let accepted = join::request(creds, peer, &key, addr, now).await?;
    let m = files.joined(&accepted, &key, addr)?;
    let (handle, _) = start(
        &files.raft_dir(),
        &[],
        &accepted.members,
        &m.tls,
        m.ca.clone(),
        &m.info.cluster_id,
        listen,
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
    let ca =
        m.ca.cert
            .to_pem()
            .map_err(|e| StartError::Cluster(e.to_string()))?;
    let (creds, cmd) = Credentials::export(
        &m.info.cluster_id,
        &String::from_utf8_lossy(&ca),
        status.state.members,
        now,
        ttl,
    )
    .map_err(|e| StartError::Cluster(e.to_string()))?;
    match handle.propose(cmd, Duration::from_secs(10)).await {
        Ok(Outcome::Done) => Ok(creds),
        Ok(other) => Err(StartError::Cluster(format!("unexpected outcome {other:?}"))),
        Err(e) => Err(StartError::Cluster(e.to_string())),
    }
}

/// Starts member `tls.id` with its store in `dir`, listening on `listen` (port 0: any).
/// `voters` bootstraps a new cluster (`[id]` for the founding member); a joining node passes
/// `[]` and learns the configuration from the leader, reaching the other members through
/// `members` (from the join reply) until the replicated state names them. Returns the handle
/// and the bound address. Must be called inside a tokio runtime.
pub async fn start(
    dir: &Path,
    voters: &[u64],
    members: &BTreeMap<u64, String>,
    tls: &NodeTls,
    ca: ClusterCa,
    cluster_id: &str,
    listen: SocketAddr,
) -> Result<(Handle, SocketAddr), StartError> {
    let node = Node::open(tls.id, dir, voters)?;
    let (tx, rx) = mpsc::channel(4096);
    let outbound = Arc::new(Outbound::new(tls, Default::default())?);
    outbound.set_addresses(members);
    let handle = runner::start(node, rx, outbound);
    let joiner = Arc::new(Joiner {
        handle: handle.clone(),
        ca,
        cluster_id: cluster_id.to_owned(),
    });
    let addr = transport::listen(listen, tls, tx, Some(joiner)).await?;
    Ok((handle, addr))
}
