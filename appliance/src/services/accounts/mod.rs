//! Administrators and API tokens: first-boot setup, accounts (argon2id password + TOTP
//! secret sealed under the cluster key), tokens (kept as their SHA-256), login checks for
//! the web server, the web GUI's certificate and the audit log. Changes are committed
//! through the cluster; reads come from the accounts view after a read barrier.

pub mod secrets;
pub mod totp;

use std::collections::BTreeMap;
use std::sync::Arc;

use postern_api::views::{self, AuditEntry};
use postern_api::{Role, Setting};
use postern_cluster::state::{
    AdminAccount, ApiToken, AuditEntry as StateAuditEntry, Command, KeyRecord,
};

use crate::member::{Member, MemberError};
use crate::services::now_secs;
use crate::views::{AccountsView, SealingError, TOTP_PURPOSE, WEB_KEY_PURPOSE};
use secrets::SecretError;

/// Why an account change or read was not done.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{what} {name:?}: use 1 to 64 letters, digits and . _ @ -")]
    BadName { what: &'static str, name: String },
    #[error("role {0:?}: use admin or readonly")]
    BadRole(String),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("administrator {0} already exists")]
    AdminExists(String),
    #[error("administrator {0} does not exist")]
    NoSuchAdmin(String),
    #[error("a token named {0} already exists")]
    TokenExists(String),
    #[error("this cluster has already been set up")]
    AlreadySetUp,
    #[error("{0}")]
    Setting(String),
    #[error(transparent)]
    Sealing(#[from] SealingError),
    #[error("the certificate and key do not make a usable TLS identity: {0}")]
    Certificate(String),
    #[error(transparent)]
    Member(#[from] MemberError),
}

/// A login that passed: the account's role, the credential a session keeps, and the TOTP
/// step the code matched (each code works once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub role: Role,
    pub credential: String,
    pub step: u64,
}

/// The accounts service.
#[derive(Debug, Clone)]
pub struct Accounts {
    pub member: Arc<Member>,
    pub view: Arc<AccountsView>,
    /// The TOTP issuer shown in authenticator apps: "Postern <node name>".
    pub node_name: String,
}

/// A name for an administrator or a token: 1-64 of letters, digits and `._@-`.
fn check_name(what: &'static str, name: &str) -> Result<(), AccountError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'));
    if ok {
        Ok(())
    } else {
        Err(AccountError::BadName {
            what,
            name: name.to_owned(),
        })
    }
}

fn role(r: &str) -> Result<Role, AccountError> {
    Role::parse(r).ok_or_else(|| AccountError::BadRole(r.to_owned()))
}

/// A role as the state keeps it (validated when written).
fn stored_role(r: &str) -> Role {
    Role::parse(r).unwrap_or(Role::Readonly)
}

/// An argon2id hash of `password`, on the blocking pool (it is slow by design).
async fn hash(password: &str) -> Result<String, AccountError> {
    let pw = password.to_owned();
    tokio::task::spawn_blocking(move || secrets::hash_password(&pw))
        .await
        .map_err(|e| SecretError::Hash(e.to_string()))?
        .map_err(AccountError::from)
}

impl Accounts {
    pub fn setup_status(&self) -> views::SetupStatus {
        views::SetupStatus {
            setup_done: self.view.has_admins(),
        }
    }

    /// Administrators after a read barrier (from the accounts view: no copy of the whole
    /// state with every key).
    async fn admins(&self) -> Result<BTreeMap<String, AdminAccount>, AccountError> {
        self.member.read_barrier().await?;
        Ok(self.view.admins())
    }

    /// A new account: argon2 hash, a fresh TOTP secret sealed under the cluster key. The
    /// reply carries the secret for the authenticator app, once.
    async fn account(
        &self,
        name: &str,
        password: &str,
        r: &str,
    ) -> Result<(AdminAccount, views::AdminCreated), AccountError> {
        check_name("administrator", name)?;
        let role = role(r)?;
        let hash = hash(password).await?;
        let secret = secrets::random_bytes(totp::SECRET_LEN)?;
        let totp_sealed = self.view.seal(TOTP_PURPOSE, &secret)?;
        let issuer = format!("Postern {}", self.node_name);
        let shown = views::AdminCreated {
            admin: name.to_owned(),
            role,
            totp_secret: totp::base32(&secret),
            totp_uri: totp::uri(&issuer, name, &secret),
        };
        let account = AdminAccount {
            password_hash: hash,
            totp_sealed,
            role: role.as_str().to_owned(),
            created: now_secs(),
        };
        Ok((account, shown))
    }

    /// First-boot setup: the first administrator, the internal domains and the downstream,
    /// committed as one batch that a second browser racing this one cannot also win.
    pub async fn setup(
        &self,
        admin: &str,
        password: &str,
        domains: &[String],
        downstream: &str,
    ) -> Result<views::AdminCreated, AccountError> {
        if self.view.has_admins() {
            return Err(AccountError::AlreadySetUp);
        }
        let mut commands = Vec::new();
        for (setting, value) in [
            (Setting::InternalDomains, domains.join(",")),
            (Setting::Downstream, downstream.to_owned()),
        ] {
            if value.is_empty() {
                continue;
            }
            setting.check(&value).map_err(AccountError::Setting)?;
            commands.push(Command::PutSetting {
                key: setting.key().into(),
                value,
            });
        }
        let (account, shown) = self.account(admin, password, "admin").await?;
        // The account first: a refused account refuses the whole batch.
        commands.insert(
            0,
            Command::PutAdmin {
                name: admin.to_owned(),
                account,
                first: true,
            },
        );
        match self.member.propose(Command::Batch { commands }).await {
            Err(MemberError::Refused(_)) => return Err(AccountError::AlreadySetUp),
            other => other?,
        }
        tracing::info!(
            admin,
            "first-boot setup done: the cluster has its first administrator"
        );
        Ok(shown)
    }

    pub async fn admin_add(
        &self,
        name: &str,
        password: &str,
        r: &str,
    ) -> Result<views::AdminCreated, AccountError> {
        if self.admins().await?.contains_key(name) {
            return Err(AccountError::AdminExists(name.to_owned()));
        }
        let (account, shown) = self.account(name, password, r).await?;
        self.member
            .propose(Command::PutAdmin {
                name: name.to_owned(),
                account,
                first: false,
            })
            .await?;
        Ok(shown)
    }

    pub async fn admin_list(&self) -> Result<Vec<views::Admin>, AccountError> {
        Ok(self
            .admins()
            .await?
            .into_iter()
            .map(|(name, a)| views::Admin {
                name,
                role: stored_role(&a.role),
                created: a.created,
            })
            .collect())
    }

    pub async fn admin_remove(&self, name: &str) -> Result<(), AccountError> {
        self.member
            .propose(Command::RemoveAdmin {
                name: name.to_owned(),
            })
            .await?;
        Ok(())
    }

    /// A new password (the TOTP secret stays); every session opened with the old one ends.
    pub async fn admin_password(&self, name: &str, password: &str) -> Result<(), AccountError> {
        let hash = hash(password).await?;
        self.change_admin(name, |a| a.password_hash = hash).await
    }

    /// Another role for an administrator; the state refuses to demote the last admin.
    pub async fn admin_role(&self, name: &str, r: &str) -> Result<(), AccountError> {
        let role = role(r)?;
        self.change_admin(name, |a| a.role = role.as_str().to_owned())
            .await
    }

    /// Changes an existing administrator's account as `change` says and commits it.
    async fn change_admin(
        &self,
        name: &str,
        change: impl FnOnce(&mut AdminAccount),
    ) -> Result<(), AccountError> {
        let Some(mut account) = self.admins().await?.remove(name) else {
            return Err(AccountError::NoSuchAdmin(name.to_owned()));
        };
        change(&mut account);
        self.member
            .propose(Command::PutAdmin {
                name: name.to_owned(),
                account,
                first: false,
            })
            .await?;
        Ok(())
    }

    pub async fn token_create(
        &self,
        name: &str,
        r: &str,
    ) -> Result<views::TokenCreated, AccountError> {
        check_name("token", name)?;
        let role = role(r)?;
        self.member.read_barrier().await?;
        if self.view.tokens().iter().any(|t| t.name == name) {
            return Err(AccountError::TokenExists(name.to_owned()));
        }
        let token = secrets::random_token()?;
        self.member
            .propose(Command::PutApiToken {
                hash: secrets::sha256_hex(&token),
                token: ApiToken {
                    name: name.to_owned(),
                    role: role.as_str().to_owned(),
                    created: now_secs(),
                },
            })
            .await?;
        Ok(views::TokenCreated {
            name: name.to_owned(),
            role,
            token,
        })
    }

    pub async fn token_list(&self) -> Result<Vec<views::Token>, AccountError> {
        self.member.read_barrier().await?;
        Ok(self
            .view
            .tokens()
            .into_iter()
            .map(|t| views::Token {
                role: stored_role(&t.role),
                name: t.name,
                created: t.created,
            })
            .collect())
    }

    pub async fn token_revoke(&self, name: &str) -> Result<(), AccountError> {
        self.member
            .propose(Command::RemoveApiToken {
                name: name.to_owned(),
            })
            .await?;
        Ok(())
    }

    /// The web GUI's certificate for every node: checked as the web server will use it,
    /// the key sealed under the cluster key.
    pub async fn web_tls_set(&self, cert: &str, key: &str) -> Result<(), AccountError> {
        postern_webgui::tls::certified_key(cert, key)
            .map_err(|e| AccountError::Certificate(e.to_string()))?;
        let sealed = self.view.seal(WEB_KEY_PURPOSE, key.as_bytes())?;
        self.member
            .propose(Command::PutWebTls {
                key: KeyRecord {
                    kind: "web".into(),
                    public: cert.to_owned(),
                    sealed_private: Some(sealed),
                    not_after: 0,
                    meta: BTreeMap::new(),
                },
            })
            .await?;
        Ok(())
    }

    /// Checks a login against this node's copy of the accounts (logins work without quorum):
    /// the password (argon2, on the blocking pool) and the TOTP code. The TOTP secret never
    /// leaves this service.
    pub async fn verify_login(&self, name: &str, password: &str, code: &str) -> Option<Verified> {
        let login = self.view.login(name)?;
        let (password, code) = (password.to_owned(), code.to_owned());
        tokio::task::spawn_blocking(move || {
            if !secrets::verify_password(&login.password_hash, &password) {
                return None;
            }
            let step = totp::verify(&login.totp_secret, &code, now_secs())?;
            Some(Verified {
                role: login.role,
                credential: crate::views::credential(&login.password_hash),
                step,
            })
        })
        .await
        .ok()
        .flatten()
    }

    /// Appends an entry to the replicated audit log.
    pub async fn audit(&self, entry: AuditEntry) -> Result<(), AccountError> {
        let AuditEntry {
            time,
            actor,
            via,
            action,
            detail,
            result,
            node,
        } = entry;
        let entry = StateAuditEntry {
            time,
            actor,
            via,
            action,
            detail,
            result,
            node,
        };
        self.member.propose(Command::Audit { entry }).await?;
        Ok(())
    }

    /// The latest `limit` administrative actions, newest first.
    pub async fn audit_list(&self, limit: usize) -> Result<Vec<AuditEntry>, AccountError> {
        let state = self.member.read().await?;
        Ok(state
            .audit
            .into_iter()
            .rev()
            .take(limit)
            .map(|e| AuditEntry {
                time: e.time,
                actor: e.actor,
                via: e.via,
                action: e.action,
                detail: e.detail,
                result: e.result,
                node: e.node,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_roles() {
        assert!(check_name("x", "ops-1@site.example").is_ok());
        assert!(check_name("x", "").is_err());
        assert!(check_name("x", "a b").is_err());
        assert!(check_name("x", &"a".repeat(65)).is_err());
        assert_eq!(role("admin").ok(), Some(Role::Admin));
        assert!(matches!(role("root"), Err(AccountError::BadRole(_))));
    }
}
