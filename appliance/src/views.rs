//! What `posternd` keeps of the replicated state for its readers, current on the Raft thread
//! before a proposer hears that its command was applied: the key store the mail path signs
//! and decrypts with ([`crate::keystore`]), the crypto policy ([`crate::settings`]), the
//! default downstream, and the accounts the web server checks on every request
//! ([`AccountsView`]). [`StateMirror`] is the cluster member's observer that keeps them so.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use postern_api::{Role, Setting};
use postern_cluster::files::Membership;
use postern_cluster::runner::Observer;
use postern_cluster::state::{AdminAccount, ApiToken, Command, KeyRecord, State};
use postern_crypto::keys::MemoryKeyStore;
use postern_crypto::keys::seal::{SealError, Sealer};
use postern_crypto::policy::{PolicyConfig, SharedPolicy};
use postern_webgui::Account;

use crate::keystore::{from_cluster, touched};
use crate::relay::downstream::Targets;
use crate::settings::effective;

/// What the cluster key seals an administrator's TOTP secret under (the AEAD's
/// authenticated data: a secret sealed for one purpose does not open for another).
pub const TOTP_PURPOSE: &str = "admin-totp";
/// … and the web certificate's private key.
pub const WEB_KEY_PURPOSE: &str = "web-tls-key";

/// The credential a web session keeps of the password hash it was opened with (SHA-256,
/// hex): a new password is a new credential, which ends the old sessions.
pub fn credential(password_hash: &str) -> String {
    hex::encode(openssl::sha::sha256(password_hash.as_bytes()))
}

/// An administrator as a login check needs it: the password hash, the TOTP secret
/// (unsealed: it never leaves the accounts service) and the role.
#[derive(Clone)]
pub struct Login {
    pub password_hash: String,
    pub totp_secret: Vec<u8>,
    pub role: Role,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Administrators, API tokens and the web certificate as this node applied them.
#[derive(Debug, Default)]
pub struct AccountsView {
    inner: RwLock<Accounts>,
}

#[derive(Debug, Default)]
struct Accounts {
    admins: BTreeMap<String, AdminAccount>,
    tokens: BTreeMap<String, ApiToken>,
    web_tls: Option<KeyRecord>,
    sealer: Option<Sealer>,
}

/// Why something could not be sealed under the cluster key.
#[derive(Debug, thiserror::Error)]
pub enum SealingError {
    #[error("the cluster key is not loaded yet (the member is starting)")]
    NoClusterKey,
    #[error(transparent)]
    Seal(#[from] SealError),
}

/// Whether a command changes what the accounts view holds.
fn touches_accounts(cmd: &Command) -> bool {
    match cmd {
        Command::PutAdmin { .. }
        | Command::RemoveAdmin { .. }
        | Command::PutApiToken { .. }
        | Command::RemoveApiToken { .. }
        | Command::PutWebTls { .. } => true,
        Command::Batch { commands } => commands.iter().any(touches_accounts),
        _ => false,
    }
}

impl AccountsView {
    /// The whole state is new (start, snapshot): take its accounts and the member's key.
    pub fn restored(&self, state: &State, sealer: Sealer) {
        let mut w = self.inner.write().unwrap_or_else(|e| e.into_inner());
        w.sealer = Some(sealer);
        Self::copy(&mut w, state);
    }

    pub fn update(&self, state: &State) {
        let mut w = self.inner.write().unwrap_or_else(|e| e.into_inner());
        Self::copy(&mut w, state);
    }

    fn copy(w: &mut Accounts, state: &State) {
        w.admins = state.admins.clone();
        w.tokens = state.api_tokens.clone();
        w.web_tls = state.web_tls.clone();
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Accounts> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The administrators (with their sealed secrets) as this node last applied them.
    pub fn admins(&self) -> BTreeMap<String, AdminAccount> {
        self.read().admins.clone()
    }

    pub fn tokens(&self) -> Vec<ApiToken> {
        self.read().tokens.values().cloned().collect()
    }

    pub fn has_admins(&self) -> bool {
        !self.read().admins.is_empty()
    }

    /// Seals `plain` under the cluster key for `purpose`; hex.
    pub fn seal(&self, purpose: &str, plain: &[u8]) -> Result<String, SealingError> {
        let r = self.read();
        let sealer = r.sealer.as_ref().ok_or(SealingError::NoClusterKey)?;
        Ok(hex::encode(sealer.seal(purpose, plain)?))
    }

    fn open(&self, purpose: &str, sealed: &str) -> Option<Vec<u8>> {
        let r = self.read();
        r.sealer
            .as_ref()?
            .open(purpose, &hex::decode(sealed).ok()?)
            .ok()
    }

    /// An administrator as a login needs it (the TOTP secret unsealed).
    pub fn login(&self, name: &str) -> Option<Login> {
        let account = self.read().admins.get(name).cloned()?;
        let totp_secret = self.open(TOTP_PURPOSE, &account.totp_sealed)?;
        Some(Login {
            password_hash: account.password_hash,
            totp_secret,
            role: Role::parse(&account.role)?,
        })
    }

    /// An administrator as a session check needs it: role and credential now.
    pub fn account(&self, name: &str) -> Option<Account> {
        let r = self.read();
        let a = r.admins.get(name)?;
        Some(Account {
            role: Role::parse(&a.role)?,
            credential: credential(&a.password_hash),
        })
    }

    /// The name and role of the API token whose SHA-256 (hex) is `hash`.
    pub fn api_token(&self, hash: &str) -> Option<(String, Role)> {
        let r = self.read();
        let t = r.tokens.get(hash)?;
        Some((t.name.clone(), Role::parse(&t.role)?))
    }

    /// The cluster's web certificate and key (PEM), when one is set.
    pub fn web_tls(&self) -> Option<(String, String)> {
        let rec = self.read().web_tls.clone()?;
        let key = self.open(WEB_KEY_PURPOSE, rec.sealed_private.as_deref()?)?;
        Some((rec.public, String::from_utf8(key).ok()?))
    }
}

/// The readers a member's observer keeps current.
#[derive(Debug, Clone)]
pub struct Readers {
    pub keys: Arc<MemoryKeyStore>,
    pub accounts: Arc<AccountsView>,
    /// The downstream targets (the `relay.downstream` setting moves the default one).
    pub targets: Arc<Targets>,
    pub policy: Arc<SharedPolicy>,
    /// The policy of the configuration file, which settings override.
    pub base_policy: PolicyConfig,
}

impl Readers {
    /// The observer for member `m` (it opens sealed keys with `m`'s cluster key).
    pub fn mirror(&self, m: &Membership) -> StateMirror {
        StateMirror {
            readers: self.clone(),
            sealer: Sealer::new(m.key.bytes()),
        }
    }
}

/// Mirrors one member's state into the daemon's readers.
#[derive(Debug)]
pub struct StateMirror {
    readers: Readers,
    /// The cluster key of the member this mirror serves.
    sealer: Sealer,
}

fn changes_setting(cmd: &Command, settings: &[Setting]) -> bool {
    match cmd {
        Command::PutSetting { key, .. } | Command::RemoveSetting { key } => {
            settings.iter().any(|s| s.key() == key)
        }
        Command::Batch { commands } => commands.iter().any(|c| changes_setting(c, settings)),
        _ => false,
    }
}

impl StateMirror {
    fn set_downstream(&self, state: &State) {
        let wanted = state
            .settings
            .get(Setting::Downstream.key())
            .map(String::as_str);
        if let Err(e) = self.readers.targets.set_default(wanted) {
            tracing::error!(error = %e, "the replicated downstream is unusable; keeping the previous one")
        }
    }

    fn set_policy(&self, state: &State) {
        let next = effective(&self.readers.base_policy, &state.settings);
        self.readers
            .keys
            .set_domain_lead(next.domain_rollover_lead());
        if *self.readers.policy.get() != next {
            tracing::info!(
                internal_domains = ?next.internal_domains,
                always_encrypt = next.always_encrypt,
                policy_header = next.policy_header,
                subject_markers = next.subject_markers,
                "crypto policy from the cluster settings"
            );
            self.readers.policy.set(next);
        }
    }
}

impl Observer for StateMirror {
    fn restored(&self, state: &State) {
        let keys = &self.readers.keys;
        for e in keys.replace(from_cluster(state), Some(self.sealer.clone())) {
            tracing::error!(error = %e, "a replicated key does not open with this node's cluster key");
        }
        self.set_policy(state);
        self.readers.accounts.restored(state, self.sealer.clone());
        self.set_downstream(state);
    }

    fn applied(&self, state: &State, cmd: &Command) {
        let mut changes = Vec::new();
        touched(state, cmd, &mut changes);
        if !changes.is_empty() {
            for e in self.readers.keys.install(&changes) {
                tracing::error!(error = %e, "a replicated key does not open with this node's cluster key");
            }
        }
        if changes_setting(cmd, &Setting::POLICY) || changes_setting(cmd, &Setting::FEDERATION) {
            self.set_policy(state);
        }
        if changes_setting(cmd, &[Setting::Downstream]) {
            self.set_downstream(state);
        }
        if touches_accounts(cmd) {
            self.readers.accounts.update(state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accounts_view_opens_what_it_sealed() {
        let v = AccountsView::default();
        assert!(v.login("root").is_none());
        let mut state = State::default();
        v.restored(&state, Sealer::new([7; 32]));
        let sealed = v.seal(TOTP_PURPOSE, b"secret").expect("sealed");
        state.admins.insert(
            "root".into(),
            AdminAccount {
                password_hash: "h".into(),
                totp_sealed: sealed.clone(),
                role: "readonly".into(),
                created: 1,
            },
        );
        v.update(&state);
        let login = v.login("root").expect("login");
        assert_eq!(login.totp_secret, b"secret");
        assert_eq!(login.role, Role::Readonly);
        assert_eq!(
            v.account("root"),
            Some(Account {
                role: Role::Readonly,
                credential: credential("h")
            })
        );
        // A secret sealed for another purpose does not open as a TOTP secret.
        state.admins.get_mut("root").expect("root").totp_sealed =
            v.seal(WEB_KEY_PURPOSE, b"secret").expect("sealed");
        v.update(&state);
        assert!(v.login("root").is_none());
        // Another cluster key does not open it either.
        state.admins.get_mut("root").expect("root").totp_sealed = sealed;
        v.restored(&state, Sealer::new([8; 32]));
        assert!(v.login("root").is_none());
        state.admins.clear();
        v.update(&state);
        assert_eq!(v.account("root"), None);
    }
}
