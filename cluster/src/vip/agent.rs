//! The VIP agent every member runs: on the leader it proposes the [`super::plan`]; on
//! every node it makes the kernel hold exactly the addresses [`super::held`] allows, with
//! lifetimes that end with the lease, and announces each newly taken address with a
//! gratuitous ARP request. Addresses it took are released when it stops.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::kernel::{Kernel, announce, parse};
use super::{held, plan};
use crate::runner::Handle;

/// How often the agent looks.
pub const PERIOD: Duration = Duration::from_millis(200);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The agent's memory: the addresses it put on interfaces.
#[derive(Debug)]
pub struct Agent {
    kernel: Kernel,
    /// vip → interface.
    mine: BTreeMap<String, String>,
}

impl Agent {
    pub fn new(kernel: Kernel) -> Agent {
        Agent {
            kernel,
            mine: BTreeMap::new(),
        }
    }

    /// One look (every [`PERIOD`]): plan on the leader, then hold exactly what this node
    /// may. Returns false when the node is stopped.
    pub async fn step(&mut self, handle: &Handle) -> bool {
        let Some(view) = handle.vips().await else {
            return false;
        };
        if view.leader == view.id {
            for cmd in plan(&view.state, &view.live, now_ms()) {
                if let Err(e) = handle.propose(cmd, PERIOD * 5).await {
                    tracing::debug!(error = %e, "VIP lease not committed");
                }
            }
        }
        // Again: a renewal just committed extends what this node may hold.
        let view = handle.vips().await.unwrap_or(view);
        let allowed = held(&view.state, view.id, now_ms());
        for (vip, interface, secs) in &allowed {
            match self.kernel.hold(vip, interface, *secs).await {
                Ok(()) => {
                    if !self.mine.contains_key(vip) {
                        tracing::info!(vip = %vip, interface = %interface, "took the virtual IP");
                        gratuitous_arp(&self.kernel, vip, interface).await;
                        self.mine.insert(vip.clone(), interface.clone());
                    }
                }
                Err(e) => tracing::warn!(vip = %vip, error = %e, "cannot hold the virtual IP"),
            }
        }
        let lost: Vec<(String, String)> = self
            .mine
            .iter()
            .filter(|(vip, _)| !allowed.iter().any(|(v, _, _)| v == *vip))
            .map(|(v, i)| (v.clone(), i.clone()))
            .collect();
        for (vip, interface) in lost {
            release(&self.kernel, &vip, &interface).await;
            self.mine.remove(&vip);
        }
        true
    }

    /// Releases every address this agent holds (at shutdown).
    pub async fn release_all(&mut self) {
        for (vip, interface) in std::mem::take(&mut self.mine) {
            release(&self.kernel, &vip, &interface).await;
        }
    }
}

async fn release(kernel: &Kernel, vip: &str, interface: &str) {
    match kernel.release(vip, interface).await {
        Ok(()) => tracing::info!(vip = %vip, "released the virtual IP"),
        Err(e) => {
            tracing::warn!(vip = %vip, error = %e, "cannot release the virtual IP (its lifetime ends it)")
        }
    }
}

async fn gratuitous_arp(kernel: &Kernel, vip: &str, interface: &str) {
    let (Ok((ip, _)), Ok(mac)) = (parse(vip), kernel.mac(interface).await) else {
        return;
    };
    // Twice, in case the first is lost.
    for _ in 0..2 {
        if let Err(e) = announce(interface, mac, ip) {
            tracing::warn!(vip = %vip, error = %e, "gratuitous ARP not sent");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
