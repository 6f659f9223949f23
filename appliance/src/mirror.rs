//! What `posternd` reads from the cluster state, kept current on the Raft thread: the key
//! store the mail path uses ([`crate::keystore`]) and the crypto policy ([`crate::settings`]).
//! Both are updated before a proposer hears that its command was applied.

use std::sync::Arc;

use postern_cluster::runner::Observer;
use postern_cluster::state::{Command, State};
use postern_crypto::keys::MemoryKeyStore;
use postern_crypto::keys::seal::Sealer;
use postern_crypto::policy::{PolicyConfig, SharedPolicy};

use crate::admin::{WebView, touches_web};
use crate::keystore::{from_cluster, touched};
use crate::relay::downstream::Targets;
use crate::settings::{DOWNSTREAM, POLICY_KEYS, effective};

/// Mirrors one member's state into the daemon.
#[derive(Debug)]
pub struct StateMirror {
    pub keys: Arc<MemoryKeyStore>,
    /// Administrators, API tokens and the web certificate for the web server.
    pub web: Arc<WebView>,
    /// The downstream targets (the `relay.downstream` setting moves the default one).
    pub targets: Arc<Targets>,
    /// The cluster key of the member this mirror serves.
    pub sealer: Sealer,
    pub policy: Arc<SharedPolicy>,
    /// The policy of the configuration file, which settings override.
    pub base: PolicyConfig,
}

fn changes_setting(cmd: &Command, keys: &[&str]) -> bool {
    match cmd {
        Command::PutSetting { key, .. } | Command::RemoveSetting { key } => {
            keys.contains(&key.as_str())
        }
        Command::Batch { commands } => commands.iter().any(|c| changes_setting(c, keys)),
        _ => false,
    }
}

impl StateMirror {
    fn set_downstream(&self, state: &State) {
        let wanted = state.settings.get(DOWNSTREAM).map(String::as_str);
        match self.targets.set_default(wanted) {
            Ok(()) => {}
            Err(e) => {
                tracing::error!(error = %e, "the replicated downstream is unusable; keeping the previous one")
            }
        }
    }

    fn set_policy(&self, state: &State) {
        let next = effective(&self.base, &state.settings);
        if *self.policy.get() != next {
            tracing::info!(
                internal_domains = ?next.internal_domains,
                always_encrypt = next.always_encrypt,
                policy_header = next.policy_header,
                subject_markers = next.subject_markers,
                "crypto policy from the cluster settings"
            );
            self.policy.set(next);
        }
    }
}

impl Observer for StateMirror {
    fn restored(&self, state: &State) {
        for e in self
            .keys
            .replace(from_cluster(state), Some(self.sealer.clone()))
        {
            tracing::error!(error = %e, "a replicated key does not open with this node's cluster key");
        }
        self.set_policy(state);
        self.web.restored(state, self.sealer.clone());
        self.set_downstream(state);
    }

    fn applied(&self, state: &State, cmd: &Command) {
        let mut changes = Vec::new();
        touched(state, cmd, &mut changes);
        if !changes.is_empty() {
            for e in self.keys.install(&changes) {
                tracing::error!(error = %e, "a replicated key does not open with this node's cluster key");
            }
        }
        if changes_setting(cmd, &POLICY_KEYS) {
            self.set_policy(state);
        }
        if changes_setting(cmd, &[DOWNSTREAM]) {
            self.set_downstream(state);
        }
        if touches_web(cmd) {
            self.web.update(state);
        }
    }
}
