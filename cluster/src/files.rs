//! A member's cluster identity on disk (`data_dir/cluster/`, 0700; keys 0600): the cluster
//! CA (certificate and key: every member can answer joins), the cluster key (seals private
//! keys in the state), this node's certificate and key, and `member.json` (cluster id, node id, the cluster port). The Raft store lives next to
//! them in `raft/`.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use openssl::pkey::{PKey, Private};
use serde::{Deserialize, Serialize};

use crate::join::Accepted;
use crate::pki::{ClusterCa, ClusterKey, NodeTls, PkiError};

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} already belongs to a cluster; remove it first to start over")]
    AlreadyMember(PathBuf),
    #[error("{path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error(transparent)]
    Pki(#[from] PkiError),
}

/// Who this node is in which cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    pub cluster_id: String,
    pub node_id: u64,
    /// The cluster port other members reach this node on.
    pub addr: String,
}

/// Everything a member needs to start.
#[derive(Debug, Clone)]
pub struct Membership {
    pub info: MemberInfo,
    pub ca: ClusterCa,
    pub key: ClusterKey,
    pub tls: NodeTls,
}

/// The files of `data_dir/cluster`.
#[derive(Debug, Clone)]
pub struct ClusterFiles {
    dir: PathBuf,
}

impl ClusterFiles {
    pub fn new(data_dir: &Path) -> ClusterFiles {
        ClusterFiles {
            dir: data_dir.join("cluster"),
        }
    }

    /// Where the Raft store goes.
    pub fn raft_dir(&self) -> PathBuf {
        self.dir.join("raft")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn is_member(&self) -> bool {
        self.path("member.json").exists()
    }

    /// `cluster init`: a new cluster with this node as member 1.
    pub fn init(&self, addr: &str, now: SystemTime) -> Result<Membership, FilesError> {
        if self.is_member() {
            return Err(FilesError::AlreadyMember(self.dir.clone()));
        }
        let mut raw = [0u8; 8];
        openssl::rand::rand_bytes(&mut raw).map_err(PkiError::from)?;
        let cluster_id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let ca = ClusterCa::generate(&cluster_id, now)?;
        let tls = NodeTls::issue(&ca, 1, now)?;
        let info = MemberInfo {
            cluster_id,
            node_id: 1,
            addr: addr.to_owned(),
        };
        let key = ClusterKey::generate().map_err(PkiError::from)?;
        let m = Membership { info, ca, key, tls };
        self.write(&m)?;
        Ok(m)
    }

    /// After a successful join: keep what the member sent and this node's own key.
    pub fn joined(
        &self,
        accepted: &Accepted,
        key: &PKey<Private>,
        addr: &str,
    ) -> Result<Membership, FilesError> {
        if self.is_member() {
            return Err(FilesError::AlreadyMember(self.dir.clone()));
        }
        let ca = ClusterCa::from_pem(accepted.ca_cert.as_bytes(), accepted.ca_key.as_bytes())?;
        let tls = NodeTls::from_parts(accepted.id, &accepted.ca_cert, &accepted.cert, key)?;
        let cluster_key =
            ClusterKey::from_hex(&accepted.cluster_key).ok_or_else(|| FilesError::Corrupt {
                path: self.path("cluster.key"),
                reason: "the join reply carried no valid cluster key".into(),
            })?;
        let info = MemberInfo {
            cluster_id: accepted.cluster_id.clone(),
            node_id: accepted.id,
            addr: addr.to_owned(),
        };
        let m = Membership {
            info,
            ca,
            key: cluster_key,
            tls,
        };
        self.write(&m)?;
        Ok(m)
    }

    /// Moves this node's cluster directory aside (to `cluster.left-<secs>`), so it can
    /// found or join another cluster. Returns where it went.
    pub fn retire(&self, now: SystemTime) -> Result<PathBuf, FilesError> {
        let secs = now
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let to = self.dir.with_file_name(format!("cluster.left-{secs}"));
        std::fs::rename(&self.dir, &to).map_err(|source| FilesError::Io {
            path: self.dir.clone(),
            source,
        })?;
        Ok(to)
    }

    /// Undoes [`ClusterFiles::retire`]: whatever a failed join left is removed and the
    /// retired directory comes back.
    pub fn restore(&self, retired: &Path) -> Result<(), FilesError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| FilesError::Io { path, source }
        };
        if self.dir.exists() {
            std::fs::remove_dir_all(&self.dir).map_err(io(&self.dir))?;
        }
        std::fs::rename(retired, &self.dir).map_err(io(retired))
    }

    /// The membership, if this node belongs to a cluster.
    pub fn load(&self) -> Result<Option<Membership>, FilesError> {
        if !self.is_member() {
            return Ok(None);
        }
        let read = |name: &str| {
            let p = self.path(name);
            std::fs::read(&p).map_err(|source| FilesError::Io { path: p, source })
        };
        let info_path = self.path("member.json");
        let info: MemberInfo =
            serde_json::from_slice(&read("member.json")?).map_err(|e| FilesError::Corrupt {
                path: info_path,
                reason: e.to_string(),
            })?;
        let ca = ClusterCa::from_pem(&read("ca.pem")?, &read("ca.key")?)?;
        let ca_pem = String::from_utf8_lossy(&read("ca.pem")?).into_owned();
        let cert_pem = String::from_utf8_lossy(&read("node.pem")?).into_owned();
        let key = PKey::private_key_from_pem(&read("node.key")?).map_err(PkiError::from)?;
        let tls = NodeTls::from_parts(info.node_id, &ca_pem, &cert_pem, &key)?;
        let key_path = self.path("cluster.key");
        let cluster_key = ClusterKey::from_hex(&String::from_utf8_lossy(&read("cluster.key")?))
            .ok_or(FilesError::Corrupt {
                path: key_path,
                reason: "not a cluster key (64 hex digits)".into(),
            })?;
        Ok(Some(Membership {
            info,
            ca,
            key: cluster_key,
            tls,
        }))
    }

    fn write(&self, m: &Membership) -> Result<(), FilesError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| FilesError::Io { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io(&self.dir))?;
        let key = PKey::private_key_from_der(&m.tls.key_der).map_err(PkiError::from)?;
        let cert = openssl::x509::X509::from_der(&m.tls.cert_der).map_err(PkiError::from)?;
        let files: [(&str, Vec<u8>); 6] = [
            ("ca.pem", m.ca.cert.to_pem().map_err(PkiError::from)?),
            ("ca.key", m.ca.key_pem()?),
            ("cluster.key", m.key.to_hex().into_bytes()),
            ("node.pem", cert.to_pem().map_err(PkiError::from)?),
            (
                "node.key",
                key.private_key_to_pem_pkcs8().map_err(PkiError::from)?,
            ),
            // Last: its presence means the rest is complete.
            (
                "member.json",
                serde_json::to_vec_pretty(&m.info).map_err(|e| FilesError::Corrupt {
                    path: self.path("member.json"),
                    reason: e.to_string(),
                })?,
            ),
        ];
        for (name, data) in files {
            let p = self.path(name);
            write_private(&p, &data).map_err(io(&p))?;
        }
        Ok(())
    }
}

/// Writes `data` to `path` (mode 0600) so that a crash leaves the old file or the whole new
/// one, never a part: a temporary file beside it, fsync, rename, fsync of the directory.
pub fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::TempDir;

    #[test]
    fn init_load_and_refuse_twice() {
        let dir = TempDir::new("files");
        let files = ClusterFiles::new(&dir.0);
        assert!(files.load().unwrap().is_none());
        let m = files.init("10.0.0.1:7946", SystemTime::now()).unwrap();
        assert_eq!(m.info.node_id, 1);
        let back = files.load().unwrap().expect("member");
        assert_eq!(back.info, m.info);
        assert_eq!(back.tls.cert_der, m.tls.cert_der);
        assert_eq!(back.key, m.key);
        assert!(!format!("{back:?}").contains(&m.key.to_hex()));
        assert!(matches!(
            files.init("x", SystemTime::now()),
            Err(FilesError::AlreadyMember(_))
        ));
        let mode = std::fs::metadata(dir.0.join("cluster/node.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // A node certificate that is not from the stored CA is refused at load.
        let other = ClusterCa::generate("other", SystemTime::now()).unwrap();
        let foreign = NodeTls::issue(&other, 1, SystemTime::now()).unwrap();
        let pem = openssl::x509::X509::from_der(&foreign.cert_der)
            .unwrap()
            .to_pem()
            .unwrap();
        std::fs::write(dir.0.join("cluster/node.pem"), pem).unwrap();
        assert!(matches!(
            files.load(),
            Err(FilesError::Pki(PkiError::Foreign))
        ));
        std::fs::write(dir.0.join("cluster/member.json"), b"{").unwrap();
        assert!(matches!(files.load(), Err(FilesError::Corrupt { .. })));
    }
}
