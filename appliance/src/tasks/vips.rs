//! The VIP agent's loop: holds, renews and gives up this node's virtual IPs under the
//! leader's leases, and reports this node's health (its downstream answers a TCP connect
//! and its disks are sound) so that an unhealthy node gives its addresses away.

use std::sync::Arc;
use std::time::Duration;

use postern_cluster::state::Command;
use postern_cluster::vip::{self, agent::Agent, kernel};
use tokio::sync::watch;

use crate::member::Member;
use crate::relay::downstream::Targets;
use crate::services::hardware::Monitor;

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

/// Runs the agent until `shutdown`; then releases the addresses it holds.
pub async fn run(
    member: Arc<Member>,
    targets: Arc<Targets>,
    hardware: Arc<Monitor>,
    mut shutdown: watch::Receiver<bool>,
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
        if let Ok((handle, m)) = member.current().await {
            agent.step(&handle).await;
            if tokio::time::Instant::now() >= next_probe {
                next_probe = tokio::time::Instant::now() + HEALTH_EVERY;
                let mut reason = probe(&targets.default_address()).await;
                if reason.is_empty() {
                    reason = hardware.vip_reason();
                }
                let me = m.info.node_id;
                if reported.as_ref() != Some(&(me, reason.clone())) {
                    let cmd = Command::SetHealth {
                        node: me,
                        reason: reason.clone(),
                    };
                    if member.propose_once(cmd).await.is_ok() {
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
