//! Virtual IPs: which addresses the cluster serves, on which interface, preferring which
//! nodes. The holder and its lease are the VIP agent's (`crate::tasks`); this service
//! changes the configuration and reports it.

use std::sync::Arc;
use std::time::SystemTime;

use postern_api::views;
use postern_cluster::state::{Command, VipConfig};
use postern_cluster::vip::kernel;

use crate::member::{Member, MemberError};

#[derive(Debug, thiserror::Error)]
pub enum VipError {
    #[error("{0}")]
    BadAddress(String),
    #[error("{0:?} is not an interface name")]
    BadInterface(String),
    #[error("node {0} is not a member")]
    NotAMember(u64),
    #[error("no virtual IP {0}")]
    NoSuchVip(String),
    #[error(transparent)]
    Member(#[from] MemberError),
}

/// The VIP service.
#[derive(Debug, Clone)]
pub struct Vips {
    pub member: Arc<Member>,
}

impl Vips {
    /// The replicated VIP part of the state, after a read barrier.
    async fn view(&self) -> Result<postern_cluster::runner::VipView, MemberError> {
        self.member.read_barrier().await?;
        let (handle, _) = self.member.current().await?;
        handle.vips().await.ok_or(MemberError::Stopped)
    }

    pub async fn add(
        &self,
        address: String,
        interface: String,
        preferred: Vec<u64>,
    ) -> Result<(), VipError> {
        kernel::parse(&address).map_err(|e| VipError::BadAddress(e.to_string()))?;
        if interface.is_empty() || interface.len() > 15 || interface.contains(['/', ' ']) {
            return Err(VipError::BadInterface(interface));
        }
        let view = self.view().await?;
        if let Some(n) = preferred
            .iter()
            .find(|n| !view.state.members.contains_key(n))
        {
            return Err(VipError::NotAMember(*n));
        }
        let config = VipConfig {
            interface,
            preferred,
            move_to: None,
        };
        self.member
            .propose(Command::PutVip { address, config })
            .await?;
        Ok(())
    }

    /// Configuration, holder and lease left of each virtual IP.
    pub async fn list(&self) -> Result<Vec<views::Vip>, VipError> {
        let view = self.view().await?;
        let now = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Ok(view
            .state
            .vip_config
            .iter()
            .map(|(vip, c)| {
                let a = view.state.vips.get(vip).filter(|a| a.lease_until_ms > now);
                views::Vip {
                    address: vip.clone(),
                    interface: c.interface.clone(),
                    preferred: c.preferred.clone(),
                    move_to: c.move_to,
                    holder: a.map(|a| a.node),
                    lease_ms_left: a.map(|a| a.lease_until_ms - now),
                }
            })
            .collect())
    }

    /// To node `to` once the current lease ends.
    pub async fn move_to(&self, address: String, to: u64) -> Result<(), VipError> {
        let view = self.view().await?;
        if !view.state.members.contains_key(&to) {
            return Err(VipError::NotAMember(to));
        }
        let mut config = view
            .state
            .vip_config
            .get(&address)
            .cloned()
            .ok_or_else(|| VipError::NoSuchVip(address.clone()))?;
        config.move_to = Some(to);
        self.member
            .propose(Command::PutVip { address, config })
            .await?;
        Ok(())
    }

    pub async fn remove(&self, address: String) -> Result<(), VipError> {
        self.member.propose(Command::RemoveVip { address }).await?;
        Ok(())
    }
}
