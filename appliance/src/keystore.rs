//! The key store on this node's disk until the cluster state takes over: the sealed state
//! in `data_dir/keys/keystore.json`, the store key in `data_dir/keys/store.key` (both 0600).
//! Written atomically (temporary file, fsync, rename) whenever the store changes.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use postern_crypto::keys::seal::Sealer;
use postern_crypto::keys::{KeyStoreError, MemoryKeyStore};

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: store key must be exactly 32 bytes")]
    BadStoreKey { path: PathBuf },
    #[error("{path}: {source}")]
    Store {
        path: PathBuf,
        source: KeyStoreError,
    },
}

/// Where the key store lives on disk. Clones share one lock: the control socket and the
/// periodic keeper both save, and two writers of the same temporary file would race.
#[derive(Debug, Clone)]
pub struct KeyFiles {
    dir: PathBuf,
    writing: Arc<std::sync::Mutex<()>>,
}

impl KeyFiles {
    pub fn new(data_dir: &Path) -> KeyFiles {
        KeyFiles {
            dir: data_dir.join("keys"),
            writing: Arc::new(std::sync::Mutex::new(())),
        }
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError + '_ {
        move |source| KeyFileError::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// Opens the store, creating key and empty store on first start, and makes sure the
    /// built-in CA exists.
    pub fn open(&self, ca_name: &str) -> Result<Arc<MemoryKeyStore>, KeyFileError> {
        std::fs::create_dir_all(&self.dir).map_err(Self::io(&self.dir))?;
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
            .map_err(Self::io(&self.dir))?;
        let key_path = self.dir.join("store.key");
        let key = match std::fs::read(&key_path) {
            Ok(k) => <[u8; 32]>::try_from(k.as_slice()).map_err(|_| KeyFileError::BadStoreKey {
                path: key_path.clone(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let k = Sealer::generate().map_err(|e| KeyFileError::Store {
                    path: key_path.clone(),
                    source: e.into(),
                })?;
                write_private(&key_path, &k)?;
                k
            }
            Err(e) => return Err(Self::io(&key_path)(e)),
        };
        let state_path = self.state_path();
        let store = match std::fs::read(&state_path) {
            Ok(bytes) => {
                MemoryKeyStore::from_bytes(&bytes, Sealer::new(key)).map_err(|source| {
                    KeyFileError::Store {
                        path: state_path.clone(),
                        source,
                    }
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                MemoryKeyStore::new(Sealer::new(key))
            }
            Err(e) => return Err(Self::io(&state_path)(e)),
        };
        let created = store
            .ensure_ca(ca_name, std::time::SystemTime::now())
            .map_err(|source| KeyFileError::Store {
                path: state_path.clone(),
                source,
            })?;
        if created {
            tracing::info!(ca = ca_name, "built-in certificate authority created");
        }
        let store = Arc::new(store);
        self.save(&store)?;
        Ok(store)
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("keystore.json")
    }

    pub fn save(&self, store: &MemoryKeyStore) -> Result<(), KeyFileError> {
        let _one_writer = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        write_private(&self.state_path(), &store.to_bytes())
    }
}

/// Writes `data` to `path` atomically with mode 0600.
fn write_private(path: &Path, data: &[u8]) -> Result<(), KeyFileError> {
    let tmp = path.with_extension("tmp");
    let io = |source| KeyFileError::Io {
        path: tmp.clone(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(data).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The control socket and the keeper save at the same time; every save must succeed.
    #[test]
    fn concurrent_saves_do_not_race() {
        let dir = std::env::temp_dir().join(format!("postern-keyfiles-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let files = KeyFiles::new(&dir);
        let store = files.open("Test CA").expect("open");
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let files = files.clone();
                let store = Arc::clone(&store);
                std::thread::spawn(move || (0..25).all(|_| files.save(&store).is_ok()))
            })
            .collect();
        for t in threads {
            assert!(t.join().expect("thread"), "a save failed");
        }
        let reopened = KeyFiles::new(&dir).open("Test CA").expect("reopen");
        assert_eq!(reopened.ca_pem(), store.ca_pem());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
