//! The node's cluster membership inside `posternd`: started at boot when `data_dir/cluster`
//! says this node belongs to one, created by `cluster init`, or joined with credentials.
//! The commands of `posternctl cluster …` and `posternctl setting …` land here.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use postern_cluster::files::{ClusterFiles, Membership};
use postern_cluster::join::Credentials;
use postern_cluster::member;
use postern_cluster::runner::Handle;
use postern_cluster::state::{Command as ClusterCommand, Outcome};
use serde_json::json;
use tokio::sync::Mutex;

const PROPOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// The running member, if any.
#[derive(Debug)]
pub struct Cluster {
    files: ClusterFiles,
    /// Where the cluster port listens when this node creates or joins a cluster.
    listen: SocketAddr,
    running: Mutex<Option<(Handle, Membership)>>,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Cluster {
    pub fn new(data_dir: &std::path::Path, listen: SocketAddr) -> Cluster {
        Cluster {
            files: ClusterFiles::new(data_dir),
            listen,
            running: Mutex::new(None),
        }
    }

    /// Starts the member if this node belongs to a cluster (at daemon start).
    pub async fn resume(&self) -> Result<(), String> {
        if let Some((handle, m)) = member::resume(&self.files).await.map_err(err)? {
            tracing::info!(cluster = %m.info.cluster_id, node = m.info.node_id, "cluster member started");
            *self.running.lock().await = Some((handle, m));
        }
        Ok(())
    }

    /// `cluster init`: a new cluster with this node as its first member.
    pub async fn init(&self, addr: Option<String>) -> Result<serde_json::Value, String> {
        let mut running = self.running.lock().await;
        if running.is_some() {
            return Err("this node already belongs to a cluster".into());
        }
        let addr = addr.unwrap_or_else(|| self.listen.to_string());
        let (handle, m) = member::found(&self.files, &addr, SystemTime::now())
            .await
            .map_err(err)?;
        let out = json!({ "cluster_id": m.info.cluster_id, "node_id": 1, "addr": addr });
        *running = Some((handle, m));
        Ok(out)
    }

    /// `cluster export-credentials`: a one-time join token valid for `ttl`.
    pub async fn export(&self, ttl: Duration) -> Result<serde_json::Value, String> {
        let running = self.running.lock().await;
        let (handle, m) = running.as_ref().ok_or("this node is not in a cluster")?;
        let creds = member::export_credentials(handle, m, ttl, SystemTime::now())
            .await
            .map_err(err)?;
        serde_json::to_value(&creds).map_err(err)
    }

    /// `cluster join`: become a member with credentials exported on `peer`'s cluster.
    pub async fn join(
        &self,
        credentials: &str,
        peer: &str,
        addr: Option<String>,
    ) -> Result<serde_json::Value, String> {
        let mut running = self.running.lock().await;
        if running.is_some() {
            return Err("this node already belongs to a cluster".into());
        }
        let creds = Credentials::parse(credentials.as_bytes()).map_err(err)?;
        let peer: SocketAddr = peer
            .parse()
            .map_err(|_| format!("{peer:?} is not an address:port"))?;
        let addr = addr.unwrap_or_else(|| self.listen.to_string());
        let (handle, m) = member::join(&self.files, &creds, peer, &addr, SystemTime::now())
            .await
            .map_err(err)?;
        let out =
            json!({ "cluster_id": m.info.cluster_id, "node_id": m.info.node_id, "addr": addr });
        tracing::info!(cluster = %m.info.cluster_id, node = m.info.node_id, "joined the cluster");
        *running = Some((handle, m));
        Ok(out)
    }

    /// `cluster status`.
    pub async fn status(&self) -> Result<serde_json::Value, String> {
        let running = self.running.lock().await;
        let (handle, m) = running
            .as_ref()
            .ok_or("this node is not in a cluster (posternctl cluster init, or join)")?;
        let s = handle.status().await.ok_or("the cluster member stopped")?;
        Ok(json!({
            "cluster_id": m.info.cluster_id,
            "node_id": s.id,
            "leader": s.leader,
            "term": s.term,
            "applied": s.applied,
            "voters": s.voters,
            "learners": s.learners,
            "members": s.state.members,
        }))
    }

    /// `setting set`: a replicated setting.
    pub async fn set(&self, key: String, value: String) -> Result<serde_json::Value, String> {
        let running = self.running.lock().await;
        let (handle, _) = running.as_ref().ok_or("this node is not in a cluster")?;
        match handle
            .propose(ClusterCommand::PutSetting { key, value }, PROPOSE_TIMEOUT)
            .await
        {
            Ok(Outcome::Done) => Ok(serde_json::Value::Null),
            Ok(o) => Err(format!("unexpected outcome {o:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// `setting get`: this node's copy (a local read).
    pub async fn get(&self, key: &str) -> Result<serde_json::Value, String> {
        let running = self.running.lock().await;
        let (handle, _) = running.as_ref().ok_or("this node is not in a cluster")?;
        let s = handle.status().await.ok_or("the cluster member stopped")?;
        s.state
            .settings
            .get(key)
            .map(|v| json!(v))
            .ok_or_else(|| format!("no setting {key}"))
    }
}
