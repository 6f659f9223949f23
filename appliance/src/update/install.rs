//! Writing a verified bundle into the inactive slot, boot counting and the boot check.

use super::*;

/// A root slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    A,
    B,
}

impl Slot {
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Slot::A => "a",
            Slot::B => "b",
        }
    }
}

/// Where the running system keeps what an update touches (the real paths, or a test's).
#[derive(Debug, Clone)]
pub struct System {
    pub cmdline: PathBuf,
    pub os_release: PathBuf,
    /// Partitions by GPT name (`root-b`, `verity-b`).
    pub partitions: PathBuf,
    /// The ESP's mount point.
    pub esp: PathBuf,
}

impl Default for System {
    fn default() -> System {
        System {
            cmdline: "/proc/cmdline".into(),
            os_release: "/usr/lib/os-release".into(),
            partitions: "/dev/disk/by-partlabel".into(),
            esp: "/boot".into(),
        }
    }
}

/// The slot and version this system runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Running {
    pub slot: Slot,
    pub version: String,
}

impl System {
    /// The running slot (`postern.slot=` on the kernel command line) and version (os-release's
    /// IMAGE_VERSION).
    pub fn running(&self) -> Result<Running, UpdateError> {
        let cmdline = std::fs::read_to_string(&self.cmdline).map_err(io(&self.cmdline))?;
        let slot = match cmdline
            .split_whitespace()
            .find_map(|a| a.strip_prefix("postern.slot="))
        {
            Some("a") => Slot::A,
            Some("b") => Slot::B,
            _ => {
                return Err(UpdateError::System(
                    "not running from a Postern appliance image (no postern.slot= on the kernel command line)".into(),
                ));
            }
        };
        let osr = std::fs::read_to_string(&self.os_release).map_err(io(&self.os_release))?;
        let version = osr
            .lines()
            .find_map(|l| l.strip_prefix("IMAGE_VERSION="))
            .map(|v| v.trim_matches('"').to_owned())
            .ok_or_else(|| {
                UpdateError::System(format!("{}: no IMAGE_VERSION", self.os_release.display()))
            })?;
        Ok(Running { slot, version })
    }

    fn linux_dir(&self) -> PathBuf {
        self.esp.join("EFI/Linux")
    }

    /// The ESP entries of `slot` (file names), e.g. `postern-b+2-1.efi`.
    pub fn entries(&self, slot: Slot) -> Result<Vec<String>, UpdateError> {
        let dir = self.linux_dir();
        let prefix = format!("postern-{}", slot.as_str());
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let name = e
                .map_err(io(&dir))?
                .file_name()
                .to_string_lossy()
                .into_owned();
            let lower = name.to_ascii_lowercase();
            let rest = lower.strip_prefix(&prefix);
            if rest.is_some_and(|r| r == ".efi" || r.starts_with('+')) {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Whether an entry's boot counter ran out (`postern-b+0-3.efi`): systemd-boot tries it last.
pub fn entry_is_bad(name: &str) -> bool {
    name.contains("+0-") || name.to_ascii_lowercase().ends_with("+0.efi")
}

/// What was installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Installed {
    pub slot: Slot,
    pub version: String,
    pub previous: Running,
}

impl Installed {
    /// The state to record: installed, tried at the next boot.
    pub fn status(&self) -> Status {
        Status::new(
            "installed",
            Some(self.slot),
            &self.version,
            format!(
                "version {} is in slot {}; the next boot tries it ({TRIES} boots to come up healthy, else back to slot {})",
                self.version,
                self.slot.as_str(),
                self.previous.slot.as_str()
            ),
        )
    }
}

/// Writes `len` bytes at `offset` of the bundle to `dest` (a partition or a file), hashing
/// as it goes: the bundle was verified before, but its folder belongs to another user, so
/// what is written must be what was signed.
fn write_checked(
    bundle: &mut File,
    bundle_path: &Path,
    offset: u64,
    entry: &Entry,
    dest: &Path,
    create: bool,
) -> Result<(), UpdateError> {
    let mut out = OpenOptions::new()
        .write(true)
        .create(create)
        .truncate(create)
        .open(dest)
        .map_err(io(dest))?;
    if !create {
        let room = out.seek(SeekFrom::End(0)).map_err(io(dest))?;
        if room < entry.size {
            return Err(UpdateError::System(format!(
                "{} has {room} bytes, {} needs {}",
                dest.display(),
                entry.name,
                entry.size
            )));
        }
        out.seek(SeekFrom::Start(0)).map_err(io(dest))?;
    }
    bundle
        .seek(SeekFrom::Start(offset))
        .map_err(io(bundle_path))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, &mut out);
    let got = copy_hashed(bundle, Some(&mut w), entry.size, dest)?;
    w.flush().map_err(io(dest))?;
    drop(w);
    out.sync_all().map_err(io(dest))?;
    if got != entry.sha256 {
        return Err(UpdateError::Digest {
            name: entry.name.clone(),
        });
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), UpdateError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Installs a verified bundle into the slot this system does not run from. The slot's old
/// ESP entry goes first, the new one (with [`TRIES`] boots to prove itself) last: an install
/// cut short leaves nothing bootable behind in that slot, and the running slot untouched.
pub fn install(
    path: &Path,
    key: &PKey<Public>,
    key_path: &Path,
    sys: &System,
    progress: &mut dyn FnMut(&str),
) -> Result<Installed, UpdateError> {
    let running = sys.running()?;
    progress(&format!(
        "running slot {}, version {}",
        running.slot.as_str(),
        running.version
    ));
    progress("checking the signature and the digests");
    let v = verify(path, key, key_path)?;
    let version = v.manifest.version.clone();
    if compare_versions(&version, &running.version) != Ordering::Greater {
        return Err(UpdateError::NotNewer {
            new: version,
            running: running.version,
        });
    }
    let target = running.slot.other();
    let t = target.as_str();
    let linux = sys.linux_dir();
    for old in sys.entries(target)? {
        let p = linux.join(&old);
        std::fs::remove_file(&p).map_err(io(&p))?;
        progress(&format!("removed the old entry {old}"));
    }
    sync_dir(&linux)?;
    let mut bundle = open_bundle(path)?;
    for (name, part) in [
        ("root.erofs", format!("root-{t}")),
        ("root.verity", format!("verity-{t}")),
    ] {
        let (offset, entry) = v.entry(name);
        let dest = sys.partitions.join(&part);
        progress(&format!(
            "writing {name} ({} MiB) to {part}",
            entry.size.div_ceil(1 << 20)
        ));
        write_checked(&mut bundle, path, offset, entry, &dest, false)?;
    }
    let (offset, entry) = v.entry(if target == Slot::A {
        "uki-a.efi"
    } else {
        "uki-b.efi"
    });
    let tmp = linux.join(format!(".postern-{t}.efi.tmp"));
    let name = format!("postern-{t}+{TRIES}.efi");
    progress(&format!("writing the kernel image {name}"));
    write_checked(&mut bundle, path, offset, entry, &tmp, true)?;
    std::fs::rename(&tmp, linux.join(&name)).map_err(io(&tmp))?;
    sync_dir(&linux)?;
    Ok(Installed {
        slot: target,
        version,
        previous: running,
    })
}

/// The state of the last update, kept in the spool folder (status.json).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// installing, installed, failed, running, rolled-back
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<Slot>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    pub message: String,
    /// Seconds since the epoch.
    pub at: u64,
}

impl Status {
    pub fn new(state: &str, slot: Option<Slot>, version: &str, message: String) -> Status {
        Status {
            state: state.into(),
            slot,
            version: version.into(),
            message,
            at: crate::clock::now_secs(),
        }
    }

    pub fn read(path: &Path) -> Option<Status> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    /// Written whole (temporary file + rename): readers never see half of it, and a link
    /// put in its place is replaced, not followed.
    pub fn write(&self, path: &Path) -> Result<(), UpdateError> {
        use std::os::unix::fs::PermissionsExt;
        let tmp = path.with_extension("tmp");
        let _ = std::fs::remove_file(&tmp);
        let text =
            serde_json::to_vec_pretty(self).map_err(|e| UpdateError::System(e.to_string()))?;
        std::fs::write(&tmp, text).map_err(io(&tmp))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).map_err(io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io(path))
    }
}

/// Once per boot: what became of the last update. The slot it went to runs (`running`), or
/// systemd-boot gave up on it and this is the old slot again (`rolled-back`).
pub fn boot_check(sys: &System, status_path: &Path) -> Result<Option<Status>, UpdateError> {
    let Some(st) = Status::read(status_path) else {
        return Ok(None);
    };
    // An install that a power cut or a reset stopped: its slot has no ESP entry (that is
    // written last), so nothing boots it; say so instead of "installing" forever. (A request
    // still waiting is installed after this boot.)
    let pending = status_path.with_file_name(SPOOL_REQUEST).exists();
    if st.state == "installing" || (st.state == "staged" && !pending) {
        let new = Status::new(
            "failed",
            st.slot,
            &st.version,
            "the install was interrupted (reset or power cut); the running slot is unchanged: send the update again".into(),
        );
        new.write(status_path)?;
        return Ok(Some(new));
    }
    let Some(slot) = st.slot else {
        return Ok(None);
    };
    if st.state != "installed" && st.state != "running" {
        return Ok(None);
    }
    let running = sys.running()?;
    let new = if running.slot == slot {
        if st.state == "running" {
            return Ok(None);
        }
        Status::new(
            "running",
            Some(slot),
            &st.version,
            format!(
                "slot {} runs version {} (on trial until posternd serves; {TRIES} boots)",
                slot.as_str(),
                st.version
            ),
        )
    } else {
        let entries = sys.entries(slot)?;
        if !entries.is_empty() && !entries.iter().all(|e| entry_is_bad(e)) {
            return Ok(None);
        }
        Status::new(
            "rolled-back",
            Some(slot),
            &st.version,
            format!(
                "version {} in slot {} did not come up healthy in {TRIES} boots; back on slot {} (version {})",
                st.version,
                slot.as_str(),
                running.slot.as_str(),
                running.version
            ),
        )
    };
    new.write(status_path)?;
    Ok(Some(new))
}
