//! Tells the admin when someone offered a different key for a pinned partner domain — by
//! DNS, WKD or an announcement — and it was refused: the pin stayed and mail goes on as the
//! pinned policy says, but a refused key is either the partner's mistake or an attack, and
//! a person must look. One mail per partner domain per hour at most; what came meanwhile is
//! counted into the next one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use postern_crypto::keys::MemoryKeyStore;
use postern_crypto::keys::store::Refusal;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::relay::downstream::Targets;

/// How often the store's refusals are collected.
const EVERY: Duration = Duration::from_secs(5);
/// At most one mail per partner domain this often.
const PER_DOMAIN: Duration = Duration::from_secs(3600);

/// The alert text for `domain`'s refusals (`earlier`: refusals not mailed before).
fn text(host: &str, domain: &str, refusals: &[Refusal], earlier: usize) -> String {
    let mut t = format!(
        "Partner domain key refused for {domain} on {host}\r\n\r\n\
         A key other than the one pinned for {domain} was offered and refused; the pin\r\n\
         stays and mail to {domain} goes on as before. If {domain} really changed its key,\r\n\
         check the new fingerprint with them and import it (posternctl domain import), or\r\n\
         forget the pin; otherwise someone tried to make this gateway encrypt to a key that\r\n\
         is not {domain}'s.\r\n\r\n"
    );
    for r in refusals {
        t.push_str(&format!(
            "  - key {} from {}: {}\r\n",
            r.offered, r.source, r.reason
        ));
    }
    if earlier > 0 {
        t.push_str(&format!(
            "\r\n({earlier} more refusal(s) since the last alert.)\r\n"
        ));
    }
    t.push_str("\r\nSee posternctl domain partners, or the partners page.\r\n");
    t
}

/// Runs until `shutdown`: collects refusals and mails them to `to` through the default
/// downstream.
pub async fn alerts(
    store: Arc<MemoryKeyStore>,
    targets: Arc<Targets>,
    host: String,
    to: Option<String>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(to) = to else {
        tracing::info!(
            "no alert address (federation.alert_to, hardware.alert_to): refused partner keys are only logged"
        );
        return;
    };
    let mut last: HashMap<String, Instant> = HashMap::new();
    let mut waiting: HashMap<String, Vec<Refusal>> = HashMap::new();
    let mut suppressed: HashMap<String, usize> = HashMap::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = shutdown.changed() => break,
        }
        for r in store.take_refusals() {
            waiting.entry(r.domain.clone()).or_default().push(r);
        }
        let due: Vec<String> = waiting
            .keys()
            .filter(|d| last.get(*d).is_none_or(|t| t.elapsed() >= PER_DOMAIN))
            .cloned()
            .collect();
        for domain in due {
            let Some(refusals) = waiting.remove(&domain) else {
                continue;
            };
            let earlier = suppressed.remove(&domain).unwrap_or(0);
            // The mail names at most five; the rest are counted.
            let (shown, more) = refusals.split_at(refusals.len().min(5));
            let body = text(&host, &domain, shown, earlier + more.len());
            match super::alert::send(&targets.default_address(), &host, &to, "fed", &body).await {
                Ok(()) => {
                    tracing::info!(%domain, %to, "refused partner key alert mail sent");
                    last.insert(domain, Instant::now());
                }
                Err(e) => {
                    tracing::error!(%domain, %to, error = %e, "refused partner key alert mail not sent (retried)");
                    *suppressed.entry(domain.clone()).or_default() += earlier;
                    waiting.insert(domain, refusals);
                }
            }
        }
        // Between mails, keep only a count per domain (bounded memory).
        for (domain, list) in waiting.iter_mut() {
            if list.len() > 5 {
                *suppressed.entry(domain.clone()).or_default() += list.len() - 5;
                list.truncate(5);
            }
        }
    }
}
