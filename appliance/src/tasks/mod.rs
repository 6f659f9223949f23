//! The daemon's periodic work beside the mail path: the watchdog's heartbeat, key rollover
//! and domain keys on the leader, the hardware loop ([`hardware`]), the VIP agent
//! ([`vips`]), and alert mails to the admin ([`alert`], [`partners`]).

pub mod alert;
pub mod hardware;
pub mod partners;
pub mod vips;

use std::time::Duration;

use crate::member::Member;
use crate::services::hardware::Monitor;
use crate::services::keys::{Keys, KeysError};
use crate::services::now_secs;

/// The async side's sign of life for the watchdog, every second while this node is
/// healthy: its runtime runs (this task is scheduled) and its cluster member answers with a
/// known leader (or it is a cluster of one).
pub async fn heartbeat(member: std::sync::Arc<Member>, monitor: std::sync::Arc<Monitor>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut was_healthy = true;
    loop {
        tick.tick().await;
        let healthy = member
            .local_status()
            .await
            .is_some_and(|s| s.leader != 0 || s.state.members.len() <= 1);
        if healthy {
            monitor
                .heartbeat
                .store(now_secs(), std::sync::atomic::Ordering::Relaxed);
        } else if was_healthy {
            tracing::warn!("the cluster has no leader this node can reach: it counts as unhealthy");
        }
        was_healthy = healthy;
    }
}

/// Runs the key rollover check on its interval, on the leader only (one node makes the
/// new keys; the cluster gives them to every node).
pub async fn rollover(
    keys: Keys,
    every: Duration,
    policy: std::sync::Arc<postern_crypto::policy::SharedPolicy>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last: Option<tokio::time::Instant> = None;
    loop {
        tick.tick().await;
        if last.is_some_and(|t| t.elapsed() < every) || !keys.member.is_leader().await {
            continue;
        }
        // The service reads after a barrier: a new leader makes keys from the latest state.
        match keys.rollover(policy.get().domain_rollover_lead()).await {
            Err(KeysError::Member(e)) => {
                tracing::warn!(error = %e, "key rollover postponed");
                continue;
            }
            Ok(users) if !users.is_empty() => {
                tracing::info!(users = ?users, "key rollover: new keys sign from now on")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "key rollover failed"),
        }
        last = Some(tokio::time::Instant::now());
    }
}

/// Gives every internal domain a domain key (federation), on the leader: checked every ten
/// seconds, so a domain added to `crypto.internal_domains` has its key within moments.
pub async fn domain_keys(keys: Keys, policy: std::sync::Arc<postern_crypto::policy::SharedPolicy>) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tick.tick().await;
        let wanted = policy.get().exact_internal_domains();
        let have = keys.store.own_domains();
        if wanted.iter().all(|d| have.contains(d)) || !keys.member.is_leader().await {
            continue;
        }
        for domain in wanted.into_iter().filter(|d| !have.contains(d)) {
            match keys.ensure_domain_key(domain.clone()).await {
                Ok(true) => {
                    tracing::info!(%domain, "domain key created (S/MIME and OpenPGP, domainkey@{domain})")
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(%domain, error = %e, "domain key not created yet"),
            }
        }
    }
}
