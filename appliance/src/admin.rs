//! Administrators, API tokens, the audit log, the message trace and the web GUI's
//! certificate on the daemon's side, and the daemon's [`Backend`] for the web server: what
//! the GUI, the API and `posternctl` ask all ends in [`Handler::run`].

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::time::SystemTime;

use postern_cluster::state::{
    AdminAccount, ApiToken, AuditEntry, Command as ClusterCommand, KeyRecord, State,
};
use postern_crypto::keys::seal::Sealer;
use postern_webgui::command::{Actor, Command, ErrorKind, Response, Role};
use postern_webgui::{Backend, BoxFuture, Login, auth, totp};
use serde_json::{Value, json};

use crate::control::Handler;

/// Purposes the cluster key seals under (authenticated data of the AEAD).
const TOTP_PURPOSE: &str = "admin-totp";
const WEB_KEY_PURPOSE: &str = "web-tls-key";

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The part of the replicated state the web server reads on every request (logins, API
/// tokens, its certificate), kept current by the state mirror on the Raft thread.
#[derive(Debug, Default)]
pub struct WebView {
    inner: RwLock<WebState>,
}

#[derive(Debug, Default)]
struct WebState {
    admins: BTreeMap<String, AdminAccount>,
    tokens: BTreeMap<String, ApiToken>,
    web_tls: Option<KeyRecord>,
    sealer: Option<Sealer>,
}

/// Whether a command changes what the web view holds.
pub fn touches_web(cmd: &ClusterCommand) -> bool {
    match cmd {
        ClusterCommand::PutAdmin { .. }
        | ClusterCommand::RemoveAdmin { .. }
        | ClusterCommand::PutApiToken { .. }
        | ClusterCommand::RemoveApiToken { .. }
        | ClusterCommand::PutWebTls { .. } => true,
        ClusterCommand::Batch { commands } => commands.iter().any(touches_web),
        _ => false,
    }
}

impl WebView {
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

    fn copy(w: &mut WebState, state: &State) {
        w.admins = state.admins.clone();
        w.tokens = state.api_tokens.clone();
        w.web_tls = state.web_tls.clone();
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, WebState> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The administrators (with their sealed secrets) as this node last applied them.
    fn admins(&self) -> BTreeMap<String, AdminAccount> {
        self.read().admins.clone()
    }

    fn tokens(&self) -> Vec<ApiToken> {
        self.read().tokens.values().cloned().collect()
    }

    pub fn has_admins(&self) -> bool {
        !self.read().admins.is_empty()
    }

    fn seal(&self, purpose: &str, plain: &[u8]) -> Result<String, String> {
        let r = self.read();
        let sealer = r
            .sealer
            .as_ref()
            .ok_or("the cluster key is not loaded yet")?;
        sealer
            .seal(purpose, plain)
            .map(|s| auth::hex(&s))
            .map_err(|e| e.to_string())
    }

    fn open(&self, purpose: &str, sealed: &str) -> Option<Vec<u8>> {
        let r = self.read();
        r.sealer.as_ref()?.open(purpose, &unhex(sealed)?).ok()
    }

    pub fn login(&self, name: &str) -> Option<Login> {
        let account = self.read().admins.get(name).cloned()?;
        let totp_secret = self.open(TOTP_PURPOSE, &account.totp_sealed)?;
        Some(Login {
            password_hash: account.password_hash,
            totp_secret,
            role: Role::parse(&account.role)?,
        })
    }

    pub fn api_token(&self, hash: &str) -> Option<(String, Role)> {
        let r = self.read();
        let t = r.tokens.get(hash)?;
        Some((t.name.clone(), Role::parse(&t.role)?))
    }

    pub fn web_tls(&self) -> Option<(String, String)> {
        let rec = self.read().web_tls.clone()?;
        let key = self.open(WEB_KEY_PURPOSE, rec.sealed_private.as_deref()?)?;
        Some((rec.public, String::from_utf8(key).ok()?))
    }
}

/// A name for an administrator or a token: 1-64 of letters, digits and `._@-`.
fn check_name(what: &str, name: &str) -> Result<(), (ErrorKind, String)> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'));
    if ok {
        Ok(())
    } else {
        Err((
            ErrorKind::Invalid,
            format!("{what} {name:?}: use 1 to 64 letters, digits and . _ @ -"),
        ))
    }
}

fn role(r: &str) -> Result<Role, (ErrorKind, String)> {
    Role::parse(r).ok_or_else(|| {
        (
            ErrorKind::Invalid,
            format!("role {r:?}: use admin or readonly"),
        )
    })
}

/// Classifies a plain error message of the cluster or key store layer.
pub fn kind_of(msg: &str) -> ErrorKind {
    let m = msg.to_ascii_lowercase();
    if m.contains("does not exist")
        || m.contains("is not enrolled")
        || m.contains("has no openpgp key")
        || m.starts_with("no setting")
    {
        ErrorKind::NotFound
    } else if m.contains("cannot confirm")
        || m.contains("timed out")
        || m.contains("no leader")
        || m.contains("member stopped")
        || m.contains("not in a cluster")
    {
        ErrorKind::Unavailable
    } else if m.contains("already") {
        ErrorKind::Conflict
    } else {
        ErrorKind::Invalid
    }
}

type Outcome = Result<Value, (ErrorKind, String)>;

/// An argon2id hash of `password`, computed on the blocking pool (it is slow by design).
async fn hash(password: &str) -> Result<String, (ErrorKind, String)> {
    let pw = password.to_owned();
    tokio::task::spawn_blocking(move || auth::hash_password(&pw))
        .await
        .map_err(|e| (ErrorKind::Invalid, e.to_string()))?
        .map_err(|e| (ErrorKind::Invalid, e.to_string()))
}

fn plain(r: Result<Value, String>) -> Outcome {
    r.map_err(|e| (kind_of(&e), e))
}

impl Handler {
    /// Executes `cmd` for `actor`: the role check, the command, and for changes (and reads
    /// that hand out secrets) an entry in the replicated audit log.
    pub async fn run(&self, cmd: Command, actor: Actor) -> Response {
        let name = cmd.name();
        if actor.role < cmd.role() {
            return Response::err(
                ErrorKind::Forbidden,
                format!(
                    "{name} needs the admin role; {} is {}",
                    actor.name,
                    actor.role.as_str()
                ),
            );
        }
        let audited = cmd.role() == Role::Admin;
        let subject = cmd.subject();
        tracing::info!(command = name, actor = %actor.name, via = actor.via.as_str(), "admin command");
        let r = if let Command::UpdateStage { reboot } = cmd {
            self.update_stage(reboot, &actor.name).await
        } else {
            match self.admin_command(&cmd).await {
                Some(r) => r,
                None => match self.execute_cluster(cmd.clone()).await {
                    Some(r) => plain(r),
                    None => self.key_command(cmd).await,
                },
            }
        };
        if audited {
            let result = match &r {
                Ok(_) => "ok".to_owned(),
                Err((_, e)) => e.clone(),
            };
            self.audit(&actor, name, subject, result).await;
        }
        match r {
            Ok(d) => Response::ok(d),
            Err((kind, e)) => Response::err(kind, e),
        }
    }

    async fn audit(&self, actor: &Actor, action: &str, detail: String, result: String) {
        let entry = AuditEntry {
            time: now_secs(),
            actor: actor.name.clone(),
            via: actor.via.as_str().to_owned(),
            action: action.to_owned(),
            detail,
            result,
            node: self.cluster.node_id().await.unwrap_or(0),
        };
        if let Err(e) = self
            .cluster
            .propose_admin(ClusterCommand::Audit { entry })
            .await
        {
            tracing::warn!(error = %e, action, "the audit log entry could not be committed");
        }
    }

    /// Key store commands: after a read barrier, on the blocking pool.
    async fn key_command(&self, cmd: Command) -> Outcome {
        if let Err(e) = self.cluster.read_barrier().await {
            return Err((ErrorKind::Unavailable, e));
        }
        let handler = self.clone();
        let r = tokio::task::spawn_blocking(move || handler.execute(cmd))
            .await
            .unwrap_or_else(|e| Response::err(ErrorKind::Invalid, format!("command failed: {e}")));
        if r.ok {
            Ok(r.data)
        } else {
            let e = r.error.unwrap_or_default();
            Err((r.kind.unwrap_or_else(|| kind_of(&e)), e))
        }
    }

    /// Administrators, tokens, setup, audit, trace, stats, settings list, web certificate.
    async fn admin_command(&self, cmd: &Command) -> Option<Outcome> {
        Some(match cmd {
            Command::SetupStatus => Ok(json!({ "setup_done": self.web.has_admins() })),
            Command::Setup {
                admin,
                password,
                domains,
                downstream,
            } => self.setup(admin, password, domains, downstream).await,
            Command::AdminAdd {
                name,
                password,
                role: r,
            } => self.admin_add(name, password, r).await,
            Command::AdminList => self.admin_list().await,
            Command::AdminRemove { name } => {
                self.propose(ClusterCommand::RemoveAdmin { name: name.clone() })
                    .await
            }
            Command::AdminPassword { name, password } => self.admin_password(name, password).await,
            Command::TokenCreate { name, role: r } => self.token_create(name, r).await,
            Command::TokenList => self.token_list().await,
            Command::TokenRevoke { name } => {
                self.propose(ClusterCommand::RemoveApiToken { name: name.clone() })
                    .await
            }
            Command::AuditList { limit } => self
                .state()
                .await
                .map(|s| json!(s.audit.iter().rev().take(*limit).collect::<Vec<_>>())),
            Command::SettingList => self.state().await.map(|s| json!(s.settings)),
            Command::TraceList { limit } => Ok(json!(
                self.trace.latest((*limit).min(crate::relay::trace::KEEP))
            )),
            Command::Stats => {
                let mut c = self.trace.counters();
                c["node_id"] = json!(self.cluster.node_id().await.unwrap_or(0));
                Ok(c)
            }
            Command::WebTlsSet { cert, key } => self.web_tls_set(cert, key).await,
            Command::Hardware => self.hardware_json().await,
            Command::System => Ok(self.spool.status()),
            Command::NetworkGet => plain(self.network.get()),
            Command::NetworkSet { settings } => plain(self.network.set(settings)),
            _ => return None,
        })
    }

    /// Verifies the bundle the web server received (reading a few hundred MiB: on the
    /// blocking pool) and hands it to the privileged installer.
    async fn update_stage(&self, reboot: bool, by: &str) -> Outcome {
        let spool = self.spool.clone();
        let by = by.to_owned();
        tokio::task::spawn_blocking(move || spool.stage(reboot, &by))
            .await
            .map_err(|e| (ErrorKind::Invalid, e.to_string()))?
            .map_err(|e| match e {
                crate::update::StageError::Invalid(m) => (ErrorKind::Invalid, m),
                crate::update::StageError::Conflict(m) => (ErrorKind::Conflict, m),
            })
    }

    /// This node's hardware and every node's summary from the cluster state.
    async fn hardware_json(&self) -> Outcome {
        let mut v = self.hardware.json();
        v["cluster"] = json!(self.state().await?.hardware);
        Ok(v)
    }

    /// Administrators after a read barrier (from the mirrored view: no copy of the whole
    /// state with every key).
    async fn admins(&self) -> Result<BTreeMap<String, AdminAccount>, (ErrorKind, String)> {
        self.barrier().await?;
        Ok(self.web.admins())
    }

    async fn tokens(&self) -> Result<Vec<ApiToken>, (ErrorKind, String)> {
        self.barrier().await?;
        Ok(self.web.tokens())
    }

    async fn barrier(&self) -> Result<(), (ErrorKind, String)> {
        self.cluster
            .read_barrier()
            .await
            .map_err(|e| (ErrorKind::Unavailable, e))
    }

    /// The state after a read barrier (admin reads are linearizable).
    async fn state(&self) -> Result<State, (ErrorKind, String)> {
        self.barrier().await?;
        self.cluster.state().await.map_err(|e| (kind_of(&e), e))
    }

    async fn propose(&self, cmd: ClusterCommand) -> Outcome {
        self.cluster.propose_admin(cmd).await.map_err(|e| {
            let kind = if e.contains("last account") || e.contains("already been set up") {
                ErrorKind::Conflict
            } else {
                kind_of(&e)
            };
            (kind, e)
        })
    }

    /// A new account: argon2 hash (on the blocking pool), a fresh TOTP secret sealed under
    /// the cluster key. The reply carries the secret for the authenticator app, once.
    async fn account(
        &self,
        name: &str,
        password: &str,
        r: &str,
    ) -> Result<(AdminAccount, Value), (ErrorKind, String)> {
        check_name("administrator", name)?;
        role(r)?;
        let hash = hash(password).await?;
        let secret = auth::random_bytes(totp::SECRET_LEN)
            .map_err(|e| (ErrorKind::Invalid, e.to_string()))?;
        let totp_sealed = self
            .web
            .seal(TOTP_PURPOSE, &secret)
            .map_err(|e| (ErrorKind::Unavailable, e))?;
        let issuer = format!("Postern {}", self.node_name);
        let shown = json!({
            "admin": name,
            "role": r,
            "totp_secret": totp::base32(&secret),
            "totp_uri": totp::uri(&issuer, name, &secret),
        });
        Ok((
            AdminAccount {
                password_hash: hash,
                totp_sealed,
                role: r.to_owned(),
                created: now_secs(),
            },
            shown,
        ))
    }

    async fn setup(
        &self,
        admin: &str,
        password: &str,
        domains: &[String],
        downstream: &str,
    ) -> Outcome {
        if self.web.has_admins() {
            return Err((
                ErrorKind::Conflict,
                "this cluster has already been set up".into(),
            ));
        }
        let mut commands = Vec::new();
        if !domains.is_empty() {
            let value = domains.join(",");
            crate::settings::check("crypto.internal_domains", &value)
                .map_err(|e| (ErrorKind::Invalid, e))?;
            commands.push(ClusterCommand::PutSetting {
                key: "crypto.internal_domains".into(),
                value,
            });
        }
        if !downstream.is_empty() {
            crate::settings::check(crate::settings::DOWNSTREAM, downstream)
                .map_err(|e| (ErrorKind::Invalid, e))?;
            commands.push(ClusterCommand::PutSetting {
                key: crate::settings::DOWNSTREAM.into(),
                value: downstream.to_owned(),
            });
        }
        let (account, shown) = self.account(admin, password, "admin").await?;
        // The account first: a second browser racing this one is refused as a whole.
        commands.insert(
            0,
            ClusterCommand::PutAdmin {
                name: admin.to_owned(),
                account,
                first: true,
            },
        );
        self.propose(ClusterCommand::Batch { commands }).await?;
        tracing::info!(
            admin,
            "first-boot setup done: the cluster has its first administrator"
        );
        Ok(shown)
    }

    async fn admin_add(&self, name: &str, password: &str, r: &str) -> Outcome {
        if self.admins().await?.contains_key(name) {
            return Err((
                ErrorKind::Conflict,
                format!("administrator {name} already exists"),
            ));
        }
        let (account, shown) = self.account(name, password, r).await?;
        self.propose(ClusterCommand::PutAdmin {
            name: name.to_owned(),
            account,
            first: false,
        })
        .await?;
        Ok(shown)
    }

    async fn admin_list(&self) -> Outcome {
        Ok(json!(
            self.admins()
                .await?
                .iter()
                .map(|(name, a)| json!({ "name": name, "role": a.role, "created": a.created }))
                .collect::<Vec<_>>()
        ))
    }

    async fn admin_password(&self, name: &str, password: &str) -> Outcome {
        let Some(mut account) = self.admins().await?.remove(name) else {
            return Err((
                ErrorKind::NotFound,
                format!("administrator {name} does not exist"),
            ));
        };
        account.password_hash = hash(password).await?;
        self.propose(ClusterCommand::PutAdmin {
            name: name.to_owned(),
            account,
            first: false,
        })
        .await
    }

    async fn token_create(&self, name: &str, r: &str) -> Outcome {
        check_name("token", name)?;
        role(r)?;
        if self.tokens().await?.iter().any(|t| t.name == name) {
            return Err((
                ErrorKind::Conflict,
                format!("a token named {name} already exists"),
            ));
        }
        let token = auth::random_token().map_err(|e| (ErrorKind::Invalid, e.to_string()))?;
        self.propose(ClusterCommand::PutApiToken {
            hash: auth::sha256_hex(&token),
            token: ApiToken {
                name: name.to_owned(),
                role: r.to_owned(),
                created: now_secs(),
            },
        })
        .await?;
        Ok(json!({ "name": name, "role": r, "token": token }))
    }

    async fn token_list(&self) -> Outcome {
        Ok(json!(
            self.tokens()
                .await?
                .iter()
                .map(|t| json!({ "name": t.name, "role": t.role, "created": t.created }))
                .collect::<Vec<_>>()
        ))
    }

    async fn web_tls_set(&self, cert: &str, key: &str) -> Outcome {
        postern_webgui::tls::certified_key(cert, key)
            .map_err(|e| (ErrorKind::Invalid, e.to_string()))?;
        let sealed = self
            .web
            .seal(WEB_KEY_PURPOSE, key.as_bytes())
            .map_err(|e| (ErrorKind::Unavailable, e))?;
        self.propose(ClusterCommand::PutWebTls {
            key: KeyRecord {
                kind: "web".into(),
                public: cert.to_owned(),
                sealed_private: Some(sealed),
                not_after: 0,
                meta: BTreeMap::new(),
            },
        })
        .await
    }
}

/// The web server's view of the daemon.
#[derive(Debug, Clone)]
pub struct GuiBackend {
    pub handler: Handler,
}

impl Backend for GuiBackend {
    fn execute(&self, cmd: Command, actor: Actor) -> BoxFuture<'_, Response> {
        Box::pin(self.handler.run(cmd, actor))
    }

    fn login(&self, name: &str) -> Option<Login> {
        self.handler.web.login(name)
    }

    fn api_token(&self, hash: &str) -> Option<(String, Role)> {
        self.handler.web.api_token(hash)
    }

    fn setup_done(&self) -> bool {
        self.handler.web.has_admins()
    }

    fn metrics(&self) -> BoxFuture<'_, String> {
        Box::pin(async move { self.handler.metrics().await })
    }

    fn web_tls(&self) -> Option<(String, String)> {
        self.handler.web.web_tls()
    }

    fn node_name(&self) -> String {
        self.handler.node_name.clone()
    }

    fn update_spool(&self) -> Option<std::path::PathBuf> {
        let spool = &self.handler.spool;
        spool.public_key.as_ref().map(|_| spool.dir.clone())
    }
}

impl Handler {
    /// Prometheus text exposition: the mail counters and this member's view of the cluster.
    pub async fn metrics(&self) -> String {
        use std::fmt::Write as _;
        use std::sync::atomic::Ordering::Relaxed;
        let t = &self.trace;
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        metric(
            "postern_smtp_sessions_total",
            "counter",
            "SMTP sessions accepted.",
            t.sessions.load(Relaxed),
        );
        metric(
            "postern_messages_delivered_total",
            "counter",
            "Messages the downstream accepted.",
            t.delivered.load(Relaxed),
        );
        metric(
            "postern_messages_refused_total",
            "counter",
            "Messages refused or failed at end of data.",
            t.refused.load(Relaxed),
        );
        metric(
            "postern_received_bytes_total",
            "counter",
            "Message bytes received from upstreams.",
            t.bytes_in.load(Relaxed),
        );
        if let Some(s) = self.cluster.local_status().await {
            metric(
                "postern_cluster_node_id",
                "gauge",
                "This member's node id.",
                s.id,
            );
            metric(
                "postern_cluster_leader",
                "gauge",
                "The leader's node id as this member knows it (0: none).",
                s.leader,
            );
            metric(
                "postern_cluster_is_leader",
                "gauge",
                "1 when this member leads.",
                u64::from(s.id == s.leader),
            );
            metric("postern_cluster_term", "gauge", "Raft term.", s.term);
            metric(
                "postern_cluster_applied_index",
                "counter",
                "Raft entries applied.",
                s.applied,
            );
            metric(
                "postern_cluster_members",
                "gauge",
                "Members in the cluster state.",
                s.state.members.len() as u64,
            );
            metric(
                "postern_users",
                "gauge",
                "Enrolled users.",
                s.state.users.len() as u64,
            );
            metric(
                "postern_partners",
                "gauge",
                "Partners with keys.",
                s.state.partner_keys.len() as u64,
            );
            let held = s.state.vips.values().filter(|a| a.node == s.id).count() as u64;
            metric(
                "postern_vips_held",
                "gauge",
                "Virtual IPs this node holds.",
                held,
            );
        }
        self.hardware.metrics(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_kinds() {
        assert!(check_name("x", "ops-1@site.example").is_ok());
        assert!(check_name("x", "").is_err());
        assert!(check_name("x", "a b").is_err());
        assert!(check_name("x", &"a".repeat(65)).is_err());
        assert_eq!(kind_of("user x does not exist"), ErrorKind::NotFound);
        assert_eq!(
            kind_of("the cluster cannot confirm a consistent read"),
            ErrorKind::Unavailable
        );
        assert_eq!(kind_of("join token already used"), ErrorKind::Conflict);
        assert_eq!(kind_of("bad base64"), ErrorKind::Invalid);
        assert_eq!(unhex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn web_view_opens_what_it_sealed() {
        let v = WebView::default();
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
        // A secret sealed for another purpose does not open as a TOTP secret.
        state.admins.get_mut("root").expect("root").totp_sealed =
            v.seal(WEB_KEY_PURPOSE, b"secret").expect("sealed");
        v.update(&state);
        assert!(v.login("root").is_none());
        // Another cluster key does not open it either.
        state.admins.get_mut("root").expect("root").totp_sealed = sealed;
        v.restored(&state, Sealer::new([8; 32]));
        assert!(v.login("root").is_none());
    }
}
