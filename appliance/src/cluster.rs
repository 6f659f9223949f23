//! The node's cluster membership inside `posternd`. Every node is a member: at first start
//! it founds a single-member cluster of its own (the embedded default: users, keys and
//! settings live in its replicated state from the first minute), which it leaves when it
//! joins another cluster with exported credentials. The key store the mail path reads
//! mirrors the state ([`crate::keystore`]). The commands of `posternctl cluster …` and
//! `posternctl setting …` land here.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use postern_cluster::files::{ClusterFiles, Membership};
use postern_cluster::join::Credentials;
use postern_cluster::member::{self, Options};
use postern_cluster::runner::Handle;
use postern_cluster::state::{Command as ClusterCommand, Outcome};
use postern_crypto::keys::MemoryKeyStore;
use postern_crypto::keys::seal::Sealer;
use postern_crypto::policy::{PolicyConfig, SharedPolicy};
use serde_json::json;
use tokio::sync::Mutex;

use postern_cluster::state::VipConfig;
use postern_cluster::vip::{self, agent::Agent, kernel};

use crate::admin::WebView;
use crate::config::ClusterConfig;
use crate::keystore::ClusterKeys;
use crate::mirror::StateMirror;
use crate::relay::downstream::Targets;

const PROPOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often this node checks it can reach its downstream (its health for VIPs).
const HEALTH_EVERY: Duration = Duration::from_secs(1);

/// "" when the downstream accepts a TCP connection, else why not.
async fn probe(downstream: &str) -> String {
    match tokio::time::timeout(
        Duration::from_secs(1),
        tokio::net::TcpStream::connect(downstream),
    )
    .await
    {
        Ok(Ok(_)) => String::new(),
        Ok(Err(e)) => format!("downstream {downstream} unreachable: {e}"),
        Err(_) => format!("downstream {downstream} does not answer"),
    }
}

/// How long an admin read waits for the leader to confirm it (ReadIndex).
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The running member.
#[derive(Debug)]
pub struct Cluster {
    files: ClusterFiles,
    /// Where the cluster port listens.
    listen: SocketAddr,
    /// Where other members reach it.
    advertise: String,
    snapshot_every: u64,
    keys: Arc<MemoryKeyStore>,
    web: Arc<WebView>,
    targets: Arc<Targets>,
    ca_name: String,
    /// The crypto policy in force, and the file's version that settings override.
    policy: Arc<SharedPolicy>,
    base_policy: PolicyConfig,
    running: Mutex<Option<(Handle, Membership)>>,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
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

impl Cluster {
    pub fn new(
        data_dir: &std::path::Path,
        config: &ClusterConfig,
        keys: Arc<MemoryKeyStore>,
        web: Arc<WebView>,
        targets: Arc<Targets>,
        ca_name: String,
        policy: Arc<SharedPolicy>,
    ) -> Cluster {
        let base_policy = (*policy.get()).clone();
        Cluster {
            files: ClusterFiles::new(data_dir),
            listen: config.listen,
            advertise: config
                .advertise
                .clone()
                .unwrap_or_else(|| advertised(config.listen)),
            snapshot_every: config.snapshot_every,
            keys,
            web,
            targets,
            ca_name,
            policy,
            base_policy,
            running: Mutex::new(None),
        }
    }

    fn options(&self) -> Options {
        let keys = Arc::clone(&self.keys);
        let policy = Arc::clone(&self.policy);
        let base = self.base_policy.clone();
        let web = Arc::clone(&self.web);
        let targets = Arc::clone(&self.targets);
        Options {
            observer: Some(Arc::new(move |m: &Membership| {
                Arc::new(StateMirror {
                    keys: Arc::clone(&keys),
                    web: Arc::clone(&web),
                    targets: Arc::clone(&targets),
                    sealer: Sealer::new(m.key.bytes()),
                    policy: Arc::clone(&policy),
                    base: base.clone(),
                }) as Arc<dyn postern_cluster::runner::Observer>
            })),
            snapshot_every: Some(self.snapshot_every),
        }
    }

    fn attach(&self, handle: &Handle) {
        self.keys.set_replication(Arc::new(ClusterKeys {
            handle: handle.clone(),
        }));
    }

    /// At daemon start: resumes this node's membership, or founds its own single-member
    /// cluster on first start; makes sure the cluster has its built-in CA.
    pub async fn start(&self) -> Result<(), String> {
        let mut running = self.running.lock().await;
        let options = self.options();
        let (handle, m) = match member::resume(&self.files, self.listen, &options)
            .await
            .map_err(err)?
        {
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
                .await
                .map_err(err)?;
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
        if lone && self.keys.ca_pem().is_none() {
            self.ensure_ca().await?;
        }
        Ok(())
    }

    async fn ensure_ca(&self) -> Result<(), String> {
        let keys = Arc::clone(&self.keys);
        let name = self.ca_name.clone();
        let created = tokio::task::spawn_blocking(move || keys.ensure_ca(&name, SystemTime::now()))
            .await
            .map_err(err)?
            .map_err(err)?;
        if created {
            tracing::info!(ca = %self.ca_name, "built-in certificate authority created");
        }
        Ok(())
    }

    /// The running member (a copy: no lock is held while the caller awaits).
    async fn member(&self) -> Result<(Handle, Membership), String> {
        self.running
            .lock()
            .await
            .clone()
            .ok_or_else(|| "this node is not in a cluster".to_owned())
    }

    /// Whether this node leads the cluster now (periodic work runs on the leader only).
    pub async fn is_leader(&self) -> bool {
        let Ok((handle, _)) = self.member().await else {
            return false;
        };
        handle
            .leadership()
            .await
            .is_some_and(|(id, leader)| id == leader)
    }

    /// Waits until this node has applied everything committed so far, confirmed by a
    /// quorum: admin reads after it see every acknowledged write, whichever node took it.
    pub async fn read_barrier(&self) -> Result<(), String> {
        let (handle, _) = self.member().await?;
        handle.read_barrier(READ_TIMEOUT).await.map_err(|e| {
            format!(
                "the cluster cannot confirm a consistent read ({e}); is a majority of members up?"
            )
        })
    }

    /// `cluster init`: every node founds its own cluster at first start; this reports it.
    pub async fn init(&self) -> Result<serde_json::Value, String> {
        let (handle, m) = self.member().await?;
        let s = handle.status().await.ok_or("the cluster member stopped")?;
        if s.state.members.len() > 1 {
            return Err(format!(
                "this node already belongs to cluster {} with {} members",
                m.info.cluster_id,
                s.state.members.len()
            ));
        }
        Ok(
            json!({ "cluster_id": m.info.cluster_id, "node_id": m.info.node_id, "addr": m.info.addr }),
        )
    }

    /// `cluster export-credentials`: a one-time join token valid for `ttl`.
    pub async fn export(&self, ttl: Duration) -> Result<serde_json::Value, String> {
        let (handle, m) = self.member().await?;
        let creds = member::export_credentials(&handle, &m, ttl, SystemTime::now())
            .await
            .map_err(err)?;
        serde_json::to_value(&creds).map_err(err)
    }

    /// `cluster join`: leave this node's own single-member cluster and become a member of
    /// the cluster the credentials name, through the member at `peer`. Refused when this
    /// node's cluster has other members or already holds users or partner keys (they would
    /// be lost).
    pub async fn join(&self, credentials: &str, peer: &str) -> Result<serde_json::Value, String> {
        let creds = Credentials::parse(credentials.as_bytes()).map_err(err)?;
        let peer: SocketAddr = peer
            .parse()
            .map_err(|_| format!("{peer:?} is not an address:port"))?;
        let mut running = self.running.lock().await;
        let mut leaving = None;
        if let Some((handle, m)) = running.as_ref() {
            let s = handle.status().await.ok_or("the cluster member stopped")?;
            if m.info.cluster_id == creds.cluster_id {
                return Err(format!(
                    "this node is already a member of cluster {}",
                    creds.cluster_id
                ));
            }
            if s.state.members.len() > 1 {
                return Err(format!(
                    "this node belongs to cluster {} with {} members; remove it there first",
                    m.info.cluster_id,
                    s.state.members.len()
                ));
            }
            let (users, partners) = (s.state.users.len(), s.state.partner_keys.len());
            if users + partners > 0 {
                return Err(format!(
                    "this node holds {users} users and {partners} partners of its own, which joining would discard; join from a fresh node"
                ));
            }
            if !s.state.admins.is_empty() {
                return Err(
                    "this node has been set up as a cluster of its own (it has administrators), which joining would discard; join from a fresh node".into(),
                );
            }
            leaving = Some((handle.clone(), m.info.cluster_id.clone()));
        }
        // Spend the token first: a refused join leaves this node as it was.
        let admitted = member::request_join(&creds, peer, &self.advertise, SystemTime::now())
            .await
            .map_err(err)?;
        let mut kept = None;
        if let Some((handle, old)) = leaving {
            handle.shutdown().await;
            *running = None;
            match self.files.retire(SystemTime::now()) {
                Ok(k) => {
                    tracing::info!(cluster = %old, kept = %k.display(), "left the single-member cluster to join another");
                    kept = Some(k);
                }
                Err(e) => {
                    self.go_back(&mut running, None).await;
                    return Err(e.to_string());
                }
            }
        }
        let joined =
            member::start_joined(&self.files, admitted, self.listen, &self.options()).await;
        let (handle, m) = match joined {
            Ok(j) => j,
            Err(e) => {
                let back = self.go_back(&mut running, kept.as_deref()).await;
                return Err(format!(
                    "{e}; {back} (the cluster joined holds an unused learner: `posternctl cluster remove` it there)"
                ));
            }
        };
        self.attach(&handle);
        let out = json!({ "cluster_id": m.info.cluster_id, "node_id": m.info.node_id, "addr": m.info.addr });
        tracing::info!(cluster = %m.info.cluster_id, node = m.info.node_id, "joined the cluster");
        *running = Some((handle, m));
        Ok(out)
    }

    /// After a join failed half-way: back to the cluster this node left (its directory
    /// restored from `kept`), so the node keeps working. Says where the node is now.
    async fn go_back(
        &self,
        running: &mut Option<(Handle, Membership)>,
        kept: Option<&std::path::Path>,
    ) -> String {
        if let Some(k) = kept
            && let Err(e) = self.files.restore(k)
        {
            return format!(
                "this node could not go back to its own cluster ({e}): restart posternd"
            );
        }
        match member::resume(&self.files, self.listen, &self.options()).await {
            Ok(Some(own)) => {
                self.attach(&own.0);
                *running = Some(own);
                "this node went back to its own cluster".into()
            }
            Ok(None) => "this node is in no cluster now: restart posternd".into(),
            Err(e) => {
                format!("this node could not restart its own cluster ({e}): restart posternd")
            }
        }
    }

    /// `cluster remove`: takes member `id` out of the cluster (a dead node, or one being
    /// replaced); run on any other member.
    pub async fn remove(&self, id: u64) -> Result<serde_json::Value, String> {
        let (handle, m) = self.member().await?;
        if id == m.info.node_id {
            return Err("a node cannot remove itself: run this on another member".into());
        }
        let s = handle.status().await.ok_or("the cluster member stopped")?;
        if !s.voters.contains(&id) && !s.learners.contains(&id) {
            return Err(format!("node {id} is not a member"));
        }
        if s.voters == [id] {
            return Err("cannot remove the last voter".into());
        }
        let deadline = tokio::time::Instant::now() + PROPOSE_TIMEOUT;
        loop {
            match handle.remove_node(id).await {
                Ok(()) => break,
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e.to_string()),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        // Wait until the configuration no longer names it, then forget its address.
        loop {
            let s = handle.status().await.ok_or("the cluster member stopped")?;
            if !s.voters.contains(&id) && !s.learners.contains(&id) {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("node {id} is still in the configuration"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        match handle
            .propose_retrying(ClusterCommand::RemoveMember { id }, PROPOSE_TIMEOUT)
            .await
        {
            Ok(Outcome::Done | Outcome::NotFound(_)) => Ok(json!({ "removed": id })),
            Ok(o) => Err(format!("unexpected outcome {o:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// `cluster status`: members, leader, term, and on the leader each member's lag.
    pub async fn status(&self) -> Result<serde_json::Value, String> {
        let (handle, m) = self.member().await?;
        let s = handle.status().await.ok_or("the cluster member stopped")?;
        let lag: serde_json::Map<String, serde_json::Value> = s
            .matched
            .iter()
            .map(|(id, matched)| (id.to_string(), json!(s.last_index.saturating_sub(*matched))))
            .collect();
        Ok(json!({
            "cluster_id": m.info.cluster_id,
            "node_id": s.id,
            "leader": s.leader,
            "term": s.term,
            "applied": s.applied,
            "voters": s.voters,
            "learners": s.learners,
            "members": s.state.members,
            "lag": lag,
        }))
    }

    /// `setting set`: a replicated setting (policy settings are checked first).
    pub async fn set(&self, key: String, value: String) -> Result<serde_json::Value, String> {
        crate::settings::check(&key, &value)?;
        let (handle, _) = self.member().await?;
        match handle
            .propose_retrying(ClusterCommand::PutSetting { key, value }, PROPOSE_TIMEOUT)
            .await
        {
            Ok(Outcome::Done) => Ok(serde_json::Value::Null),
            Ok(o) => Err(format!("unexpected outcome {o:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// `setting unset`: back to each node's configuration file.
    pub async fn unset(&self, key: String) -> Result<serde_json::Value, String> {
        let (handle, _) = self.member().await?;
        match handle
            .propose_retrying(ClusterCommand::RemoveSetting { key }, PROPOSE_TIMEOUT)
            .await
        {
            Ok(Outcome::Done) => Ok(serde_json::Value::Null),
            Ok(Outcome::NotFound(m) | Outcome::Refused(m)) => Err(m),
            Ok(o) => Err(format!("unexpected outcome {o:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// `setting get`: a linearizable read of a replicated setting.
    pub async fn get(&self, key: &str) -> Result<serde_json::Value, String> {
        self.read_barrier().await?;
        let (handle, _) = self.member().await?;
        let s = handle.status().await.ok_or("the cluster member stopped")?;
        s.state
            .settings
            .get(key)
            .map(|v| json!(v))
            .ok_or_else(|| format!("no setting {key}"))
    }

    /// This member's node id (None while it is between clusters).
    pub async fn node_id(&self) -> Option<u64> {
        self.member().await.ok().map(|(_, m)| m.info.node_id)
    }

    /// A copy of this member's state as applied so far (after a `read_barrier`, everything
    /// committed before it).
    pub async fn state(&self) -> Result<postern_cluster::state::State, String> {
        let (handle, _) = self.member().await?;
        let s = handle.status().await.ok_or("the cluster member stopped")?;
        Ok(s.state)
    }

    /// This member's status without asking the leader (metrics).
    pub async fn local_status(&self) -> Option<postern_cluster::runner::Status> {
        let (handle, _) = self.member().await.ok()?;
        handle.status().await
    }

    /// Commits an admin change (retried across a leader change).
    pub async fn propose_admin(&self, cmd: ClusterCommand) -> Result<serde_json::Value, String> {
        let (handle, _) = self.member().await?;
        match handle.propose_retrying(cmd, PROPOSE_TIMEOUT).await {
            Ok(Outcome::Done) => Ok(serde_json::Value::Null),
            Ok(Outcome::NotFound(m) | Outcome::Refused(m)) => Err(m),
            Ok(o) => Err(format!("unexpected outcome {o:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// `vip add`.
    pub async fn vip_add(
        &self,
        address: String,
        interface: String,
        preferred: Vec<u64>,
    ) -> Result<serde_json::Value, String> {
        kernel::parse(&address).map_err(err)?;
        if interface.is_empty() || interface.len() > 15 || interface.contains(['/', ' ']) {
            return Err(format!("{interface:?} is not an interface name"));
        }
        self.read_barrier().await?;
        let (handle, _) = self.member().await?;
        let view = handle.vips().await.ok_or("the cluster member stopped")?;
        if let Some(n) = preferred
            .iter()
            .find(|n| !view.state.members.contains_key(n))
        {
            return Err(format!("node {n} is not a member"));
        }
        self.propose_admin(ClusterCommand::PutVip {
            address,
            config: VipConfig {
                interface,
                preferred,
                move_to: None,
            },
        })
        .await
    }

    /// `vip list`: configuration, holder and lease left of each virtual IP.
    pub async fn vip_list(&self) -> Result<serde_json::Value, String> {
        self.read_barrier().await?;
        let (handle, _) = self.member().await?;
        let view = handle.vips().await.ok_or("the cluster member stopped")?;
        let now = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let list: Vec<serde_json::Value> = view
            .state
            .vip_config
            .iter()
            .map(|(vip, c)| {
                let a = view.state.vips.get(vip).filter(|a| a.lease_until_ms > now);
                json!({
                    "address": vip,
                    "interface": c.interface,
                    "preferred": c.preferred,
                    "move_to": c.move_to,
                    "holder": a.map(|a| a.node),
                    "lease_ms_left": a.map(|a| a.lease_until_ms - now),
                })
            })
            .collect();
        Ok(json!(list))
    }

    /// `vip move`: to node `to` once the current lease ends.
    pub async fn vip_move(&self, address: String, to: u64) -> Result<serde_json::Value, String> {
        self.read_barrier().await?;
        let (handle, _) = self.member().await?;
        let view = handle.vips().await.ok_or("the cluster member stopped")?;
        if !view.state.members.contains_key(&to) {
            return Err(format!("node {to} is not a member"));
        }
        let mut config = view
            .state
            .vip_config
            .get(&address)
            .cloned()
            .ok_or_else(|| format!("no virtual IP {address}"))?;
        config.move_to = Some(to);
        self.propose_admin(ClusterCommand::PutVip { address, config })
            .await
    }

    /// `vip remove`.
    pub async fn vip_remove(&self, address: String) -> Result<serde_json::Value, String> {
        self.propose_admin(ClusterCommand::RemoveVip { address })
            .await
    }

    /// Runs the VIP agent and reports this node's health (the downstream answers a TCP
    /// connect) until `shutdown`; then releases the addresses it holds.
    pub async fn run_vips(
        &self,
        targets: Arc<Targets>,
        hardware: Arc<crate::hardware::Monitor>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let kernel = match kernel::Kernel::new() {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(error = %e, "virtual IPs unavailable");
                return;
            }
        };
        let mut agent = Agent::new(kernel);
        let mut reported: Option<(u64, String)> = None;
        let mut next_probe = tokio::time::Instant::now();
        loop {
            if let Ok((handle, m)) = self.member().await {
                agent.step(&handle).await;
                if tokio::time::Instant::now() >= next_probe {
                    next_probe = tokio::time::Instant::now() + HEALTH_EVERY;
                    let mut reason = probe(&targets.default_address()).await;
                    if reason.is_empty() {
                        reason = hardware.vip_reason();
                    }
                    let me = m.info.node_id;
                    if reported.as_ref() != Some(&(me, reason.clone())) {
                        let cmd = ClusterCommand::SetHealth {
                            node: me,
                            reason: reason.clone(),
                        };
                        if handle.propose(cmd, PROPOSE_TIMEOUT).await.is_ok() {
                            if !reason.is_empty() {
                                tracing::warn!(reason = %reason, "this node cannot serve mail: it gives up its virtual IPs");
                            }
                            reported = Some((me, reason));
                        }
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(vip::agent::PERIOD) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                break;
            }
        }
        agent.release_all().await;
    }

    /// Stops the member (at daemon shutdown).
    pub async fn stop(&self) {
        if let Some((handle, _)) = self.running.lock().await.take() {
            handle.shutdown().await;
        }
    }
}
