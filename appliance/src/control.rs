//! The management plane of one node: the shared command layer ([`Command`], defined with
//! the web server in `postern-webgui`, executed by [`Handler::run`] in [`crate::admin`]) and
//! a Unix socket (`data_dir/control.sock`, mode 0600: root or the postern user only) that
//! speaks one JSON request and one JSON response per connection for `posternctl`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use postern_crypto::keys::MemoryKeyStore;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::UnixListener;

/// Largest request accepted (a PKCS#12 bundle or a keyring, base64).
const MAX_REQUEST: usize = 4 * 1024 * 1024;

pub use postern_webgui::command::{Actor, Command, ErrorKind, Response};

/// Executes commands against the node's state.
#[derive(Debug, Clone)]
pub struct Handler {
    pub cluster: Arc<crate::cluster::Cluster>,
    pub keys: Arc<MemoryKeyStore>,
    pub key_validity: Duration,
    /// Administrators, tokens and the web certificate as the web server reads them.
    pub web: Arc<crate::admin::WebView>,
    /// This node's message trace and counters.
    pub trace: Arc<crate::relay::trace::Trace>,
    /// This node's name (the TOTP issuer, page titles).
    pub node_name: String,
    /// This node's hardware health.
    pub hardware: Arc<crate::hardware::Monitor>,
    /// System updates: the spool folder the web server receives bundles into.
    pub spool: crate::update::Spool,
    /// This node's network settings (network.conf in the data directory).
    pub network: crate::network::NetworkFile,
}

fn b64d(s: &str) -> Result<Vec<u8>, String> {
    postern_crypto::mime::base64_decode(s.as_bytes()).map_err(|e| e.to_string())
}

impl Handler {
    /// Executes a key store command: a change is committed by the cluster (on a majority's
    /// disks) before the response says it is done. Blocks: run it off the async runtime,
    /// after a read barrier ([`Handler::run`] does both).
    pub fn execute(&self, cmd: Command) -> Response {
        self.apply(cmd)
    }

    /// Cluster commands wait on Raft; they run on the async side.
    pub async fn execute_cluster(&self, cmd: Command) -> Option<Result<serde_json::Value, String>> {
        let c = &self.cluster;
        let r = match cmd {
            Command::ClusterInit => c.init().await,
            Command::ClusterExportCredentials { ttl_secs } => {
                let range = postern_cluster::join::TOKEN_TTL_SECS;
                if !range.contains(&ttl_secs) {
                    return Some(Err(format!(
                        "a join token lives {} to {} seconds; {ttl_secs} is out of range",
                        range.start(),
                        range.end()
                    )));
                }
                c.export(Duration::from_secs(ttl_secs)).await
            }
            Command::ClusterJoin { credentials, peer } => c.join(&credentials, &peer).await,
            Command::ClusterRemove { id } => c.remove(id).await,
            Command::ClusterStatus => c.status().await,
            Command::SettingSet { key, value } => c.set(key, value).await,
            Command::SettingGet { key } => c.get(&key).await,
            Command::SettingUnset { key } => c.unset(key).await,
            Command::VipAdd {
                address,
                interface,
                preferred,
            } => c.vip_add(address, interface, preferred).await,
            Command::VipList => c.vip_list().await,
            Command::VipMove { address, to } => c.vip_move(address, to).await,
            Command::VipRemove { address } => c.vip_remove(address).await,
            _ => return None,
        };
        Some(r)
    }

    fn apply(&self, cmd: Command) -> Response {
        let now = SystemTime::now();
        let keys = &self.keys;
        let json = |v: Result<serde_json::Value, String>| match v {
            Ok(d) => Response::ok(d),
            Err(e) => Response::err(crate::admin::kind_of(&e), e),
        };
        let to = |v: &dyn erased::ToJson| v.to_json();
        match cmd {
            Command::UserEnrol { address } => json(
                keys.enrol(&address, now, self.key_validity)
                    .map(|u| to(&u))
                    .map_err(|e| e.to_string()),
            ),
            Command::UserList => Response::ok(to(&keys.users())),
            Command::UserRemove { address } => json(
                keys.remove_user(&address)
                    .map(|()| serde_json::Value::Null)
                    .map_err(|e| e.to_string()),
            ),
            Command::UserCert { address } => json(
                keys.export_user_certs(&address)
                    .map(serde_json::Value::String)
                    .ok_or_else(|| format!("{address} is not enrolled")),
            ),
            Command::UserPgp { address } => json(
                keys.export_user_pgp(&address)
                    .filter(|s| !s.is_empty())
                    .map(serde_json::Value::String)
                    .ok_or_else(|| format!("{address} has no OpenPGP key")),
            ),
            Command::UserPkcs12 { address, password } => json(
                keys.export_pkcs12(&address, &password)
                    .map(|der| serde_json::Value::String(openssl_b64(&der)))
                    .map_err(|e| e.to_string()),
            ),
            Command::ImportPkcs12 { data, password } => json(b64d(&data).and_then(|d| {
                keys.import_pkcs12(&d, &password)
                    .map(|u| to(&u))
                    .map_err(|e| e.to_string())
            })),
            Command::ImportPgpSecret { data } => json(b64d(&data).and_then(|d| {
                keys.import_pgp_secret(&d, now)
                    .map(|u| to(&u))
                    .map_err(|e| e.to_string())
            })),
            Command::ImportPublic { data } => json(b64d(&data).and_then(|d| {
                keys.import_public(&d, now)
                    .map(|a| to(&a))
                    .map_err(|e| e.to_string())
            })),
            Command::PartnerList => Response::ok(to(&keys.partners())),
            Command::TrustAdd { data } => json(b64d(&data).and_then(|d| {
                keys.add_trust_anchors(&d)
                    .map(|n| serde_json::json!(n))
                    .map_err(|e| e.to_string())
            })),
            Command::CaCert => json(
                keys.ca_pem()
                    .map(serde_json::Value::String)
                    .ok_or_else(|| "no CA".to_owned()),
            ),
            Command::Rollover => json(
                keys.rollover(now, self.key_validity)
                    .map(|r| to(&r))
                    .map_err(|e| e.to_string()),
            ),
            other => Response::err(
                ErrorKind::Invalid,
                format!("{} is not a key store command", other.name()),
            ),
        }
    }
}

fn openssl_b64(d: &[u8]) -> String {
    openssl::base64::encode_block(d)
}

mod erased {
    pub trait ToJson {
        fn to_json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> ToJson for T {
        fn to_json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }
    }
}

/// The socket path inside a data directory.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("control.sock")
}

/// Binds the control socket (replacing a stale one) with mode 0600.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt as _;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let l = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// Serves the control socket until the task is dropped.
pub async fn serve(listener: UnixListener, handler: Handler) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut line = Vec::new();
            let mut reader = BufReader::new(r).take(MAX_REQUEST as u64);
            let read =
                tokio::time::timeout(Duration::from_secs(30), reader.read_until(b'\n', &mut line))
                    .await;
            let response = match read {
                Ok(Ok(_)) => match serde_json::from_slice::<Command>(&line) {
                    Ok(cmd) => handler.run(cmd, Actor::local()).await,
                    Err(e) => Response::err(ErrorKind::Invalid, format!("bad request: {e}")),
                },
                Ok(Err(e)) => Response::err(ErrorKind::Invalid, format!("read error: {e}")),
                Err(_) => Response::err(ErrorKind::Invalid, "request timed out"),
            };
            let mut out = serde_json::to_vec(&response).unwrap_or_default();
            out.push(b'\n');
            let _ = w.write_all(&out).await;
        });
    }
}
