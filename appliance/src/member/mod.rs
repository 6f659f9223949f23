//! This node's cluster membership inside `posternd`. Every node is a member: at first start
//! it founds a single-member cluster of its own (the embedded default: users, keys and
//! settings live in its replicated state from the first minute), which it leaves when it
//! joins another cluster with exported credentials ([`membership`]). The services propose
//! through [`Member::propose`] and read after [`Member::read_barrier`]; the member's
//! observer ([`crate::views::StateMirror`]) keeps the daemon's readers current.

pub mod membership;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use postern_cluster::files::{ClusterFiles, Membership};
use postern_cluster::member::{self, Options, StartError};
use postern_cluster::node::ProposeError;
use postern_cluster::runner::{Handle, Observer, Status};
use postern_cluster::state::{Command, Outcome, State};
use postern_crypto::keys::KeyStoreError;
use tokio::sync::Mutex;

use crate::config::ClusterConfig;
use crate::keystore::ClusterKeys;
use crate::views::Readers;

/// How long a change may take to commit (retried across a leader change).
pub const PROPOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an admin read waits for the leader to confirm it (ReadIndex).
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the member could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    #[error("this node is between clusters (joining or leaving); try again in a moment")]
    NotInCluster,
    #[error("the cluster member stopped")]
    Stopped,
    #[error("the cluster cannot confirm a consistent read ({0}); is a majority of members up?")]
    NoQuorum(ProposeError),
    #[error("the change was not committed ({0}); is a majority of members up?")]
    NotCommitted(ProposeError),
    /// The replicated state refuses the change.
    #[error("{0}")]
    Refused(String),
    /// The change names something the state does not hold.
    #[error("{0}")]
    NotFound(String),
    #[error("the cluster answered with an unexpected outcome: {0}")]
    Unexpected(String),
    #[error("cluster member: {0}")]
    Start(#[from] StartError),
    #[error("built-in certificate authority: {0}")]
    Ca(KeyStoreError),
}

/// The running member and what it needs to (re)start.
#[derive(Debug)]
pub struct Member {
    files: ClusterFiles,
    /// Where the cluster port listens.
    listen: SocketAddr,
    /// Where other members reach it.
    advertise: String,
    snapshot_every: u64,
    readers: Readers,
    ca_name: String,
    running: Mutex<Option<(Handle, Membership)>>,
}

/// The address other members reach `listen` on: itself, unless it is a wildcard; then the
/// address of this host's default route (found without sending anything), else loopback.
pub fn advertised(listen: SocketAddr) -> String {
    if !listen.ip().is_unspecified() {
        return listen.to_string();
    }
    let probe = UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").map(|()| s))
        .and_then(|s| s.local_addr());
    match probe {
        Ok(a) => SocketAddr::new(a.ip(), listen.port()).to_string(),
        Err(_) => SocketAddr::from(([127, 0, 0, 1], listen.port())).to_string(),
    }
}

impl Member {
    pub fn new(
        data_dir: &std::path::Path,
        config: &ClusterConfig,
        readers: Readers,
        ca_name: String,
    ) -> Member {
        Member {
            files: ClusterFiles::new(data_dir),
            listen: config.listen,
            advertise: config
                .advertise
                .clone()
                .unwrap_or_else(|| advertised(config.listen)),
            snapshot_every: config.snapshot_every,
            readers,
            ca_name,
            running: Mutex::new(None),
        }
    }

    fn options(&self) -> Options {
        let readers = self.readers.clone();
        Options {
            observer: Some(Arc::new(move |m: &Membership| {
                Arc::new(readers.mirror(m)) as Arc<dyn Observer>
            })),
            snapshot_every: Some(self.snapshot_every),
        }
    }

    /// Key store changes go through this member from now on.
    fn attach(&self, handle: &Handle) {
        self.readers.keys.set_replication(Arc::new(ClusterKeys {
            handle: handle.clone(),
        }));
    }

    /// At daemon start: resumes this node's membership, or founds its own single-member
    /// cluster on first start; makes sure the cluster has its built-in CA.
    pub async fn start(&self) -> Result<(), MemberError> {
        let mut running = self.running.lock().await;
        let options = self.options();
        let (handle, m) = match member::resume(&self.files, self.listen, &options).await? {
            Some(found) => {
                tracing::info!(cluster = %found.1.info.cluster_id, node = found.1.info.node_id, "cluster member started");
                found
            }
            None => {
                let found = member::found(
                    &self.files,
                    self.listen,
                    &self.advertise,
                    SystemTime::now(),
                    &options,
                )
                .await?;
                tracing::info!(cluster = %found.1.info.cluster_id, addr = %self.advertise, "founded a single-member cluster (first start)");
                found
            }
        };
        self.attach(&handle);
        let lone = handle
            .status()
            .await
            .is_some_and(|s| s.state.members.len() <= 1);
        *running = Some((handle, m));
        drop(running);
        if lone && self.readers.keys.ca_pem().is_none() {
            self.ensure_ca().await?;
        }
        Ok(())
    }

    async fn ensure_ca(&self) -> Result<(), MemberError> {
        let keys = Arc::clone(&self.readers.keys);
        let name = self.ca_name.clone();
        let created = tokio::task::spawn_blocking(move || keys.ensure_ca(&name, SystemTime::now()))
            .await
            .map_err(|e| MemberError::Unexpected(e.to_string()))?
            .map_err(MemberError::Ca)?;
        if created {
            tracing::info!(ca = %self.ca_name, "built-in certificate authority created");
        }
        Ok(())
    }

    /// The running member (a copy: no lock is held while the caller awaits).
    pub async fn current(&self) -> Result<(Handle, Membership), MemberError> {
        self.running
            .lock()
            .await
            .clone()
            .ok_or(MemberError::NotInCluster)
    }

    /// This member's status as it applied the log so far.
    pub async fn status(&self) -> Result<Status, MemberError> {
        let (handle, _) = self.current().await?;
        handle.status().await.ok_or(MemberError::Stopped)
    }

    /// Whether this node leads the cluster now (periodic work runs on the leader only).
    pub async fn is_leader(&self) -> bool {
        let Ok((handle, _)) = self.current().await else {
            return false;
        };
        handle
            .leadership()
            .await
            .is_some_and(|(id, leader)| id == leader)
    }

    /// Waits until this node has applied everything committed so far, confirmed by a
    /// quorum: admin reads after it see every acknowledged write, whichever node took it.
    pub async fn read_barrier(&self) -> Result<(), MemberError> {
        let (handle, _) = self.current().await?;
        handle
            .read_barrier(READ_TIMEOUT)
            .await
            .map_err(MemberError::NoQuorum)
    }

    /// The state after a read barrier (admin reads are linearizable).
    pub async fn read(&self) -> Result<State, MemberError> {
        self.read_barrier().await?;
        Ok(self.status().await?.state)
    }

    /// This member's node id (None while it is between clusters).
    pub async fn node_id(&self) -> Option<u64> {
        self.current().await.ok().map(|(_, m)| m.info.node_id)
    }

    /// This member's status without asking the leader (metrics, health).
    pub async fn local_status(&self) -> Option<Status> {
        self.status().await.ok()
    }

    /// Commits a change, retried across a leader change.
    pub async fn propose(&self, cmd: Command) -> Result<(), MemberError> {
        let (handle, _) = self.current().await?;
        outcome(handle.propose_retrying(cmd, PROPOSE_TIMEOUT).await)
    }

    /// Commits a change with one try (periodic reports that the next round repeats).
    pub async fn propose_once(&self, cmd: Command) -> Result<(), MemberError> {
        let (handle, _) = self.current().await?;
        outcome(handle.propose(cmd, PROPOSE_TIMEOUT).await)
    }

    /// Stops the member (at daemon shutdown).
    pub async fn stop(&self) {
        if let Some((handle, _)) = self.running.lock().await.take() {
            handle.shutdown().await;
        }
    }
}

/// A proposal's result as the services see it.
fn outcome(r: Result<Outcome, ProposeError>) -> Result<(), MemberError> {
    match r {
        Ok(Outcome::Done) => Ok(()),
        Ok(Outcome::NotFound(m)) => Err(MemberError::NotFound(m)),
        Ok(Outcome::Refused(m)) => Err(MemberError::Refused(m)),
        Ok(o @ Outcome::Joined(_)) => Err(MemberError::Unexpected(format!("{o:?}"))),
        Err(e) => Err(MemberError::NotCommitted(e)),
    }
}
