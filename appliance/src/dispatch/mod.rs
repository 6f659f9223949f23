//! The management plane's one entry: every command from the GUI, the API and the control
//! socket ends in [`Dispatcher::run`] — the role check, the command (one exhaustive `match`
//! over [`Command`] in [`execute`], each arm calling a typed service), and for changes (and
//! reads that hand out secrets) an entry in the replicated audit log. Service errors become
//! error kinds in [`error`] and nowhere else.

pub mod error;
mod execute;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use postern_api::views::AuditEntry;
use postern_api::{Actor, Command, Error, ErrorKind, Reply, Role};

use postern_crypto::keys::MemoryKeyStore;
use postern_crypto::policy::SharedPolicy;

use crate::config::Config;
use crate::federation::Federation;
use crate::member::Member;
use crate::network::NetworkFile;
use crate::relay::downstream::Targets;
use crate::relay::trace::Trace;
use crate::services::accounts::Accounts;
use crate::services::domains::Domains;
use crate::services::hardware::Monitor;
use crate::services::keys::Keys;
use crate::services::now_secs;
use crate::services::publish::Publisher;
use crate::services::settings::Settings;
use crate::services::vips::Vips;
use crate::update::{Spool, System};
use crate::views::{AccountsView, Readers};

/// The services a command can reach, and the node they run on.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    pub member: Arc<Member>,
    pub keys: Keys,
    pub accounts: Accounts,
    pub settings: Settings,
    pub vips: Vips,
    pub hardware: Arc<Monitor>,
    /// This node's message trace and counters.
    pub trace: Arc<Trace>,
    /// System updates: the spool folder the web server receives bundles into.
    pub spool: Spool,
    /// This node's network settings (network.conf in the data directory).
    pub network: NetworkFile,
    /// Partner-domain discovery (its counters, and lookups asked for by an admin).
    pub federation: Option<Arc<Federation>>,
    /// Our domain keys and the partner domains pinned.
    pub domains: Domains,
    /// What this gateway publishes for its domains (WKD).
    pub publisher: Publisher,
}

impl Dispatcher {
    /// The node's member and services for `config`; the key store, the crypto policy, the
    /// downstream targets and the trace are the mail path's, which the member's observer
    /// keeps current. The member is not started yet.
    pub fn new(
        config: &Config,
        keys: Arc<MemoryKeyStore>,
        policy: Arc<SharedPolicy>,
        targets: Arc<Targets>,
        trace: Arc<Trace>,
    ) -> Dispatcher {
        let data_dir = &config.server.data_dir;
        let view = Arc::new(AccountsView::default());
        let (keys_store, policy_shared) = (Arc::clone(&keys), Arc::clone(&policy));
        let readers = Readers {
            keys: Arc::clone(&keys),
            accounts: Arc::clone(&view),
            targets,
            base_policy: (*policy.get()).clone(),
            policy,
        };
        let member = Arc::new(Member::new(
            data_dir,
            &config.cluster,
            readers,
            format!("Postern CA {}", config.server.hostname),
        ));
        Dispatcher {
            keys: Keys {
                store: keys,
                member: Arc::clone(&member),
                validity: config.crypto.key_validity,
            },
            accounts: Accounts {
                member: Arc::clone(&member),
                view,
                node_name: config.server.hostname.clone(),
            },
            settings: Settings {
                member: Arc::clone(&member),
            },
            vips: Vips {
                member: Arc::clone(&member),
            },
            hardware: Monitor::new(config.hardware.clone()),
            trace,
            spool: Spool {
                dir: data_dir.join("update"),
                public_key: config.update.public_key.clone(),
                system: System::default(),
            },
            network: NetworkFile {
                dir: data_dir.clone(),
            },
            federation: None,
            domains: Domains {
                keys: Keys {
                    store: Arc::clone(&keys_store),
                    member: Arc::clone(&member),
                    validity: config.crypto.key_validity,
                },
                policy: Arc::clone(&policy_shared),
                federation: None,
            },
            publisher: Publisher {
                keys: Arc::clone(&keys_store),
                policy: Arc::clone(&policy_shared),
            },
            member,
        }
    }

    /// Executes `cmd` for `actor`: the role check, the command, and for admin commands an
    /// audit entry (whatever the outcome).
    pub async fn run(&self, cmd: Command, actor: Actor) -> Result<Reply, Error> {
        let name = cmd.name();
        if actor.role < cmd.role() {
            return Err(Error::new(
                ErrorKind::Forbidden,
                format!(
                    "{name} needs the {} role; {} is {}",
                    cmd.role(),
                    actor.name,
                    actor.role
                ),
            ));
        }
        let audited = cmd.role() == Role::Admin;
        let subject = cmd.subject();
        tracing::info!(command = name, actor = %actor.name, via = actor.via.as_str(), "admin command");
        let r = self.execute(cmd, &actor).await.map_err(Error::from);
        if audited {
            let result = match &r {
                Ok(_) => "ok".to_owned(),
                Err(e) => e.message.clone(),
            };
            self.audit(&actor, name, subject, result).await;
        }
        r
    }

    async fn audit(&self, actor: &Actor, action: &str, detail: String, result: String) {
        let entry = AuditEntry {
            time: now_secs(),
            actor: actor.name.clone(),
            via: actor.via.as_str().to_owned(),
            action: action.to_owned(),
            detail,
            result,
            node: self.member.node_id().await.unwrap_or(0),
        };
        if let Err(e) = self.accounts.audit(entry).await {
            tracing::warn!(error = %e, action, "the audit log entry could not be committed");
        }
    }
}
