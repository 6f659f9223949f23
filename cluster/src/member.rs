//! A running member: the Raft node on its thread, the mutual-TLS transport, and the join
//! service, started together — what `posternd` runs, and what the tests start three of.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::join::Joiner;
use crate::node::{Node, NodeError};
use crate::pki::{ClusterCa, NodeTls};
use crate::runner::{self, Handle};
use crate::transport::{self, Outbound, TransportError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Transport(#[from] TransportError),
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
