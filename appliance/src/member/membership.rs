//! Changing who is in the cluster: `cluster init` (report the node's own cluster), export
//! credentials, join another cluster, remove a member, and the status of it all.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use postern_api::views;
use postern_cluster::files::Membership;
use postern_cluster::join::{Credentials, JoinError, TOKEN_TTL_SECS};
use postern_cluster::member::{self, StartError};
use postern_cluster::runner::Handle;
use postern_cluster::state::Command;
use postern_crypto::keys::store::is_domain_key;

use super::{Member, MemberError, PROPOSE_TIMEOUT};

/// Why a membership change was not made.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    #[error(transparent)]
    Member(#[from] MemberError),
    #[error(
        "a join token lives {min} to {max} seconds; {0} is out of range",
        min = TOKEN_TTL_SECS.start(),
        max = TOKEN_TTL_SECS.end()
    )]
    TtlOutOfRange(u64),
    #[error("{0:?} is not an address:port")]
    BadPeer(String),
    #[error("this node already belongs to cluster {cluster} with {members} members")]
    HasMembers { cluster: String, members: usize },
    #[error("this node is already a member of cluster {0}")]
    AlreadyMember(String),
    #[error("this node belongs to cluster {cluster} with {members} members; remove it there first")]
    BelongsElsewhere { cluster: String, members: usize },
    #[error(
        "this node holds {users} users and {partners} partners of its own, which joining would discard; join from a fresh node"
    )]
    HoldsData { users: usize, partners: usize },
    #[error(
        "this node has been set up as a cluster of its own (it has administrators), which joining would discard; join from a fresh node"
    )]
    SetUp,
    /// The credentials or the member refused the join.
    #[error(transparent)]
    Join(#[from] JoinError),
    /// Joining failed after this node left its own cluster; where it is now.
    #[error(
        "{cause}; {whereabouts} (the cluster joined holds an unused learner: `posternctl cluster remove` it there)"
    )]
    Aborted { cause: String, whereabouts: String },
    #[error("this node could not leave its own cluster: {0}")]
    Leave(String),
    #[error("a node cannot remove itself: run this on another member")]
    RemoveSelf,
    #[error("node {0} is not a member")]
    NotAMember(u64),
    #[error("cannot remove the last voter")]
    LastVoter,
    #[error("node {0} is still in the configuration")]
    StillConfigured(u64),
}

impl From<StartError> for MembershipError {
    fn from(e: StartError) -> MembershipError {
        match e {
            StartError::Join(j) => MembershipError::Join(j),
            other => MembershipError::Member(MemberError::Start(other)),
        }
    }
}

fn membership_view(m: &Membership) -> views::Membership {
    views::Membership {
        cluster_id: m.info.cluster_id.clone(),
        node_id: m.info.node_id,
        addr: m.info.addr.clone(),
    }
}

impl Member {
    /// `cluster init`: every node founds its own cluster at first start; this reports it.
    pub async fn init(&self) -> Result<views::Membership, MembershipError> {
        let (handle, m) = self.current().await?;
        let s = handle.status().await.ok_or(MemberError::Stopped)?;
        if s.state.members.len() > 1 {
            return Err(MembershipError::HasMembers {
                cluster: m.info.cluster_id.clone(),
                members: s.state.members.len(),
            });
        }
        Ok(membership_view(&m))
    }

    /// `cluster export-credentials`: a one-time join token valid for `ttl_secs`.
    pub async fn export(&self, ttl_secs: u64) -> Result<views::Credentials, MembershipError> {
        if !TOKEN_TTL_SECS.contains(&ttl_secs) {
            return Err(MembershipError::TtlOutOfRange(ttl_secs));
        }
        let (handle, m) = self.current().await?;
        let c = member::export_credentials(
            &handle,
            &m,
            Duration::from_secs(ttl_secs),
            SystemTime::now(),
        )
        .await
        .map_err(|e| match e {
            StartError::Propose(p) => MemberError::NotCommitted(p).into(),
            other => MembershipError::from(other),
        })?;
        Ok(views::Credentials {
            cluster_id: c.cluster_id,
            ca_cert: c.ca_cert,
            members: c.members,
            token: c.token,
            expires: c.expires,
        })
    }

    /// `cluster join`: leave this node's own single-member cluster and become a member of
    /// the cluster the credentials name, through the member at `peer`. Refused when this
    /// node's cluster has other members or already holds users, partner keys or
    /// administrators (they would be lost).
    pub async fn join(
        &self,
        credentials: &str,
        peer: &str,
    ) -> Result<views::Membership, MembershipError> {
        let creds = Credentials::parse(credentials.as_bytes())?;
        let peer: SocketAddr = peer
            .parse()
            .map_err(|_| MembershipError::BadPeer(peer.to_owned()))?;
        let mut running = self.running.lock().await;
        let mut leaving = None;
        if let Some((handle, m)) = running.as_ref() {
            let s = handle.status().await.ok_or(MemberError::Stopped)?;
            if m.info.cluster_id == creds.cluster_id {
                return Err(MembershipError::AlreadyMember(creds.cluster_id));
            }
            if s.state.members.len() > 1 {
                return Err(MembershipError::BelongsElsewhere {
                    cluster: m.info.cluster_id.clone(),
                    members: s.state.members.len(),
                });
            }
            // Domain keys are made by every node on its own (and the cluster joined has
            // its own): they are not the node's data.
            let users = s.state.users.keys().filter(|a| !is_domain_key(a)).count();
            let partners = s.state.partner_keys.len();
            if users + partners > 0 {
                return Err(MembershipError::HoldsData { users, partners });
            }
            if !s.state.admins.is_empty() {
                return Err(MembershipError::SetUp);
            }
            leaving = Some((handle.clone(), m.info.cluster_id.clone()));
        }
        // Spend the token first: a refused join leaves this node as it was.
        let admitted =
            member::request_join(&creds, peer, &self.advertise, SystemTime::now()).await?;
        let mut kept = None;
        if let Some((handle, old)) = leaving {
            handle.shutdown().await;
            *running = None;
            // Nothing of the cluster left may reach the one joined: keys being made now from
            // the old CA are refused at commit, and the joined cluster's snapshot fills the
            // store again (a failed join restores the old one).
            self.readers.keys.clear();
            match self.files.retire(SystemTime::now()) {
                Ok(k) => {
                    tracing::info!(cluster = %old, kept = %k.display(), "left the single-member cluster to join another");
                    kept = Some(k);
                }
                Err(e) => {
                    self.go_back(&mut running, None).await;
                    return Err(MembershipError::Leave(e.to_string()));
                }
            }
        }
        let joined =
            member::start_joined(&self.files, admitted, self.listen, &self.options()).await;
        let (handle, m) = match joined {
            Ok(j) => j,
            Err(e) => {
                let whereabouts = self.go_back(&mut running, kept.as_deref()).await;
                return Err(MembershipError::Aborted {
                    cause: e.to_string(),
                    whereabouts,
                });
            }
        };
        self.attach(&handle);
        let out = membership_view(&m);
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
    pub async fn remove(&self, id: u64) -> Result<views::Removed, MembershipError> {
        let (handle, m) = self.current().await?;
        if id == m.info.node_id {
            return Err(MembershipError::RemoveSelf);
        }
        let s = handle.status().await.ok_or(MemberError::Stopped)?;
        if !s.voters.contains(&id) && !s.learners.contains(&id) {
            return Err(MembershipError::NotAMember(id));
        }
        if s.voters == [id] {
            return Err(MembershipError::LastVoter);
        }
        let deadline = tokio::time::Instant::now() + PROPOSE_TIMEOUT;
        loop {
            match handle.remove_node(id).await {
                Ok(()) => break,
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(MemberError::NotCommitted(e).into());
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        // Wait until the configuration no longer names it, then forget its address.
        loop {
            let s = handle.status().await.ok_or(MemberError::Stopped)?;
            if !s.voters.contains(&id) && !s.learners.contains(&id) {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(MembershipError::StillConfigured(id));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        match self.propose(Command::RemoveMember { id }).await {
            // Gone already (a retry across a leader change applied it twice): as asked.
            Ok(()) | Err(MemberError::NotFound(_)) => Ok(views::Removed { removed: id }),
            Err(e) => Err(e.into()),
        }
    }

    /// `cluster status`: members, leader, term, and on the leader each member's lag.
    pub async fn cluster_status(&self) -> Result<views::ClusterStatus, MemberError> {
        let (handle, m) = self.current().await?;
        let s = handle.status().await.ok_or(MemberError::Stopped)?;
        let lag = s
            .matched
            .iter()
            .map(|(id, matched)| (id.to_string(), s.last_index.saturating_sub(*matched)))
            .collect();
        Ok(views::ClusterStatus {
            cluster_id: m.info.cluster_id,
            node_id: s.id,
            leader: s.leader,
            term: s.term,
            applied: s.applied,
            voters: s.voters,
            learners: s.learners,
            members: s.state.members,
            lag,
        })
    }
}
