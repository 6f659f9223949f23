//! The management plane of one node: a command enum (what `posternctl`, and later the REST
//! API, can ask) and a Unix socket (`data_dir/control.sock`, mode 0600: root or the postern
//! user only) that speaks one JSON request and one JSON response per connection.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use postern_crypto::keys::MemoryKeyStore;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::UnixListener;

/// Largest request accepted (a PKCS#12 bundle or a keyring, base64).
const MAX_REQUEST: usize = 4 * 1024 * 1024;

/// Every management action. Any member takes any of them: writes go through the leader and
/// are committed before the reply; admin reads are linearizable (ReadIndex).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Command {
    /// Create S/MIME and OpenPGP keys for an internal user.
    UserEnrol {
        address: String,
    },
    UserList,
    UserRemove {
        address: String,
    },
    /// Public certificates (PEM) of a user.
    UserCert {
        address: String,
    },
    /// Public OpenPGP keys (armored) of a user.
    UserPgp {
        address: String,
    },
    /// The user's current S/MIME identity as PKCS#12 (base64) under `password`.
    UserPkcs12 {
        address: String,
        password: String,
    },
    /// Import a PKCS#12 bundle (base64) as a user's S/MIME identity.
    ImportPkcs12 {
        data: String,
        password: String,
    },
    /// Import an OpenPGP secret key (base64 of the file) as a user's key.
    ImportPgpSecret {
        data: String,
    },
    /// Import partner certificates (PEM) or OpenPGP public keys (base64 of the file).
    ImportPublic {
        data: String,
    },
    PartnerList,
    /// Add S/MIME trust anchors (base64 of a PEM file).
    TrustAdd {
        data: String,
    },
    /// The built-in CA certificate (PEM), for partners' trust stores.
    CaCert,
    /// Run the key rollover check now.
    Rollover,
    /// The single-member cluster this node founded at first start.
    ClusterInit,
    /// Credentials (JSON) with a one-time join token valid for `ttl_secs` (member only).
    ClusterExportCredentials {
        ttl_secs: u64,
    },
    /// Leave this node's own single-member cluster and join the one the credentials name,
    /// through the member at `peer`.
    ClusterJoin {
        credentials: String,
        peer: String,
    },
    /// Take member `id` out of the cluster.
    ClusterRemove {
        id: u64,
    },
    /// Members, leader, term, applied index of this node.
    ClusterStatus,
    /// A replicated setting (member only; committed through the leader).
    SettingSet {
        key: String,
        value: String,
    },
    /// Remove a replicated setting (policy settings: back to the file's value).
    SettingUnset {
        key: String,
    },
    /// Configure a virtual IP (`address/prefix`) on `interface`, preferring `preferred`.
    VipAdd {
        address: String,
        interface: String,
        #[serde(default)]
        preferred: Vec<u64>,
    },
    /// Virtual IPs, holders and leases.
    VipList,
    /// Move a virtual IP to node `to`.
    VipMove {
        address: String,
        to: u64,
    },
    VipRemove {
        address: String,
    },
    /// A replicated setting (linearizable read).
    SettingGet {
        key: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub data: serde_json::Value,
}

impl Response {
    fn ok(data: serde_json::Value) -> Response {
        Response {
            ok: true,
            error: None,
            data,
        }
    }

    fn err(e: impl std::fmt::Display) -> Response {
        Response {
            ok: false,
            error: Some(e.to_string()),
            data: serde_json::Value::Null,
        }
    }
}

/// Executes commands against the node's state.
#[derive(Debug, Clone)]
pub struct Handler {
    pub cluster: Arc<crate::cluster::Cluster>,
    pub keys: Arc<MemoryKeyStore>,
    pub key_validity: Duration,
}

fn b64d(s: &str) -> Result<Vec<u8>, String> {
    postern_crypto::mime::base64_decode(s.as_bytes()).map_err(|e| e.to_string())
}

impl Handler {
    /// Executes `cmd`: a change is committed by the cluster (on a majority's disks) before
    /// the response says it is done; a read first waits for everything committed so far.
    /// Blocks: run it off the async runtime.
    pub fn execute(&self, cmd: Command) -> Response {
        self.apply(cmd)
    }

    /// Cluster commands wait on Raft; they run on the async side.
    pub async fn execute_cluster(&self, cmd: Command) -> Option<Response> {
        let c = &self.cluster;
        let r = match cmd {
            Command::ClusterInit => c.init().await,
            Command::ClusterExportCredentials { ttl_secs } => {
                c.export(Duration::from_secs(ttl_secs.max(60))).await
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
        Some(match r {
            Ok(d) => Response::ok(d),
            Err(e) => Response::err(e),
        })
    }

    fn apply(&self, cmd: Command) -> Response {
        let now = SystemTime::now();
        let keys = &self.keys;
        let json = |v: Result<serde_json::Value, String>| match v {
            Ok(d) => Response::ok(d),
            Err(e) => Response::err(e),
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
            Command::ClusterInit
            | Command::ClusterExportCredentials { .. }
            | Command::ClusterJoin { .. }
            | Command::ClusterRemove { .. }
            | Command::ClusterStatus
            | Command::SettingSet { .. }
            | Command::SettingGet { .. }
            | Command::SettingUnset { .. }
            | Command::VipAdd { .. }
            | Command::VipList
            | Command::VipMove { .. }
            | Command::VipRemove { .. } => Response::err("a cluster command reached the key store"),
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
                    Ok(cmd) => {
                        let name = command_name(&cmd);
                        tracing::info!(command = name, "control command");
                        match handler.execute_cluster(cmd.clone()).await {
                            Some(r) => r,
                            None => {
                                // Reads and writes alike start from everything committed
                                // so far: a write computed from a stale copy would undo
                                // another node's change.
                                match handler.cluster.read_barrier().await {
                                    Err(e) => Response::err(e),
                                    Ok(()) => {
                                        tokio::task::spawn_blocking(move || handler.execute(cmd))
                                            .await
                                            .unwrap_or_else(|e| {
                                                Response::err(format!("command failed: {e}"))
                                            })
                                    }
                                }
                            }
                        }
                    }
                    Err(e) => Response::err(format!("bad request: {e}")),
                },
                Ok(Err(e)) => Response::err(format!("read error: {e}")),
                Err(_) => Response::err("request timed out"),
            };
            let mut out = serde_json::to_vec(&response).unwrap_or_default();
            out.push(b'\n');
            let _ = w.write_all(&out).await;
        });
    }
}

/// The command's name for the log (never its arguments: they may hold passwords or keys).
fn command_name(cmd: &Command) -> &'static str {
    match cmd {
        Command::UserEnrol { .. } => "user-enrol",
        Command::UserList => "user-list",
        Command::UserRemove { .. } => "user-remove",
        Command::UserCert { .. } => "user-cert",
        Command::UserPgp { .. } => "user-pgp",
        Command::UserPkcs12 { .. } => "user-pkcs12",
        Command::ImportPkcs12 { .. } => "import-pkcs12",
        Command::ImportPgpSecret { .. } => "import-pgp-secret",
        Command::ImportPublic { .. } => "import-public",
        Command::PartnerList => "partner-list",
        Command::TrustAdd { .. } => "trust-add",
        Command::CaCert => "ca-cert",
        Command::Rollover => "rollover",
        Command::ClusterInit => "cluster-init",
        Command::ClusterRemove { .. } => "cluster-remove",
        Command::ClusterExportCredentials { .. } => "cluster-export-credentials",
        Command::ClusterJoin { .. } => "cluster-join",
        Command::ClusterStatus => "cluster-status",
        Command::SettingSet { .. } => "setting-set",
        Command::SettingGet { .. } => "setting-get",
        Command::SettingUnset { .. } => "setting-unset",
        Command::VipAdd { .. } => "vip-add",
        Command::VipList => "vip-list",
        Command::VipMove { .. } => "vip-move",
        Command::VipRemove { .. } => "vip-remove",
    }
}
