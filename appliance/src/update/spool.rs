//! The daemon's spool folder: a received bundle verified and handed to the root installer, and the installer's side that takes it.

use postern_api::views;

use super::*;

/// Where the appliance image keeps the vendor's update key.
pub const DEFAULT_PUBLIC_KEY: &str = "/usr/share/postern/update-key.pem";

/// What posternd asks of the installer: written last, next to the bundle; its appearance
/// starts `postern-update.service` (a path unit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub reboot: bool,
    /// Who asked (administrator or token name, for the log).
    pub by: String,
}

/// The daemon's side of updates: its spool folder (in data_dir), the key bundles must be
/// signed with, and the running system.
#[derive(Debug, Clone)]
pub struct Spool {
    pub dir: PathBuf,
    pub public_key: Option<PathBuf>,
    pub system: System,
}

/// Why staging an update failed: the request was wrong (a bad bundle), or the node cannot take
/// one now (not an appliance, an install running).
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
}

impl From<Slot> for views::Slot {
    fn from(s: Slot) -> views::Slot {
        match s {
            Slot::A => views::Slot::A,
            Slot::B => views::Slot::B,
        }
    }
}

impl From<Status> for views::UpdateStatus {
    fn from(s: Status) -> views::UpdateStatus {
        views::UpdateStatus {
            state: s.state,
            slot: s.slot.map(Into::into),
            version: s.version,
            message: s.message,
            at: s.at,
        }
    }
}

impl From<Running> for views::Running {
    fn from(r: Running) -> views::Running {
        views::Running {
            slot: r.slot.into(),
            version: r.version,
        }
    }
}

impl Spool {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The running slot and version, the last update's state, whether one is pending.
    pub fn status(&self) -> views::System {
        let running = self.system.running();
        views::System {
            updates: self.public_key.is_some(),
            slot: running.as_ref().ok().map(|r| r.slot.into()),
            version: running.as_ref().ok().map(|r| r.version.clone()),
            appliance: running
                .as_ref()
                .map(|_| String::new())
                .unwrap_or_else(|e| e.to_string()),
            pending: self.path(SPOOL_REQUEST).exists(),
            last_update: Status::read(&self.path(SPOOL_STATUS)).map(Into::into),
        }
    }

    /// Takes the bundle received into `incoming`: verifies it (signature, digests, newer
    /// than what runs) and hands it to the installer with a request.
    pub fn stage(&self, reboot: bool, by: &str) -> Result<views::Staged, StageError> {
        let incoming = self.path(SPOOL_INCOMING);
        let result = self.stage_inner(&incoming, reboot, by);
        if result.is_err() {
            let _ = std::fs::remove_file(&incoming);
        }
        result
    }

    fn stage_inner(
        &self,
        incoming: &Path,
        reboot: bool,
        by: &str,
    ) -> Result<views::Staged, StageError> {
        let Some(key_path) = &self.public_key else {
            return Err(StageError::Conflict(
                "this node takes no update bundles: [update] public_key is not set (the appliance image sets it)".into(),
            ));
        };
        if self.path(SPOOL_REQUEST).exists() {
            return Err(StageError::Conflict(
                "an update is being installed; wait for it to finish (GET /api/v1/system)".into(),
            ));
        }
        let running = self
            .system
            .running()
            .map_err(|e| StageError::Conflict(e.to_string()))?;
        let key = public_key(key_path).map_err(|e| StageError::Conflict(e.to_string()))?;
        let v = verify(incoming, &key, key_path).map_err(|e| StageError::Invalid(e.to_string()))?;
        if compare_versions(&v.manifest.version, &running.version) != Ordering::Greater {
            return Err(StageError::Invalid(
                UpdateError::NotNewer {
                    new: v.manifest.version,
                    running: running.version,
                }
                .to_string(),
            ));
        }
        let bundle = self.path(SPOOL_BUNDLE);
        let io_err = |e: UpdateError| StageError::Conflict(e.to_string());
        std::fs::rename(incoming, &bundle).map_err(|e| io_err(io(&bundle)(e)))?;
        let target = running.slot.other();
        Status::new(
            "staged",
            Some(target),
            &v.manifest.version,
            format!(
                "version {} verified; installing into slot {}",
                v.manifest.version,
                target.as_str()
            ),
        )
        .write(&self.path(SPOOL_STATUS))
        .map_err(io_err)?;
        let req = serde_json::to_vec(&Request {
            reboot,
            by: by.to_owned(),
        })
        .map_err(|e| StageError::Conflict(e.to_string()))?;
        let request = self.path(SPOOL_REQUEST);
        postern_cluster::files::write_private(&request, &req)
            .map_err(|e| io_err(io(&request)(e)))?;
        Ok(views::Staged {
            message: format!(
                "version {} verified; postern-update.service writes it into slot {}{}",
                v.manifest.version,
                target.as_str(),
                if reboot {
                    " and reboots into it"
                } else {
                    "; it runs after the next reboot"
                }
            ),
            version: v.manifest.version,
            slot: target.into(),
            running: running.into(),
            reboot,
        })
    }
}

/// The installer's side (root, `posternctl update apply-staged`): takes the request and the
/// bundle out of the daemon's spool folder, verifies and installs it, and records how it went
/// in status.json. The request is removed first, whatever happens (a path unit starts the
/// installer while it exists). Returns the request when an update was installed.
pub fn apply_staged(
    dir: &Path,
    key_path: &Path,
    sys: &System,
    progress: &mut dyn FnMut(&str),
) -> Result<Option<Request>, UpdateError> {
    let request_path = dir.join(SPOOL_REQUEST);
    let text = match std::fs::read(&request_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&request_path)(e)),
    };
    std::fs::remove_file(&request_path).map_err(io(&request_path))?;
    let req: Request = serde_json::from_slice(&text)
        .map_err(|e| UpdateError::System(format!("{}: {e}", request_path.display())))?;
    progress(&format!("update requested by {}", req.by));
    let status_path = dir.join(SPOOL_STATUS);
    let bundle = dir.join(SPOOL_BUNDLE);
    Status::new("installing", None, "", "writing the inactive slot".into()).write(&status_path)?;
    let result =
        public_key(key_path).and_then(|key| install(&bundle, &key, key_path, sys, progress));
    let _ = std::fs::remove_file(&bundle);
    match result {
        Ok(done) => {
            done.status().write(&status_path)?;
            progress(&format!(
                "version {} installed into slot {}",
                done.version,
                done.slot.as_str()
            ));
            Ok(Some(req))
        }
        Err(e) => {
            Status::new("failed", None, "", e.to_string()).write(&status_path)?;
            Err(e)
        }
    }
}
