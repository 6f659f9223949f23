//! Signed update bundles for the appliance image (DESIGN.md §8, image/README.md "Updates").
//!
//! A bundle is a whole new system: the root file system (erofs), its dm-verity hash tree and
//! one unified kernel image per root slot (the slot and the root hash are on the UKI's command
//! line). `image/build.sh` packs and signs it (Ed25519); the appliance checks the signature
//! against the public key in its own root file system, writes the root and the hash tree into
//! the slot it is not running from, and puts that slot's UKI on the ESP with a boot counter
//! (`postern-b+3.efi`). systemd-boot prefers the newest version, so the next boot tries the
//! update; `postern-healthy` blesses it once posternd serves, and after three boots that do not
//! get there systemd-boot falls back to the old slot, which [`boot_check`] then reports.
//!
//! Layout: `POSTERN-UPDATE/1\n`, the manifest's length (u32, big-endian), the manifest (JSON,
//! [`Manifest`]), the signature's length (u16) and the Ed25519 signature over the manifest, then
//! the files in the manifest's order. The manifest names each file's size and SHA-256, so the
//! signature covers every byte.
//!
//! Who does what: posternd (unprivileged) receives a bundle through the API, verifies it and
//! leaves it with a request in its spool folder; `postern-update.service` (root) runs
//! `posternctl update apply-staged`, which verifies it again (it trusts nothing the
//! unprivileged side wrote) and installs it.

use std::cmp::Ordering;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use openssl::pkey::{PKey, Private, Public};
use openssl::sha::Sha256;
use openssl::sign::{Signer, Verifier};
use postern_webgui::auth::hex;
use serde::{Deserialize, Serialize};

pub const MAGIC: &[u8] = b"POSTERN-UPDATE/1\n";
/// The files of a bundle, in this order.
pub const FILES: [&str; 4] = ["root.erofs", "root.verity", "uki-a.efi", "uki-b.efi"];
/// How many boots an update gets to come up healthy before systemd-boot falls back.
pub const TRIES: u32 = 3;
const MAX_MANIFEST: u32 = 64 * 1024;
/// The largest bundle accepted (the API's limit, too).
pub use postern_webgui::command::MAX_UPDATE_BUNDLE as MAX_BUNDLE;

/// The files the daemon's spool folder holds.
pub const SPOOL_INCOMING: &str = "incoming";
pub const SPOOL_BUNDLE: &str = "bundle";
pub const SPOOL_REQUEST: &str = "request";
pub const SPOOL_STATUS: &str = "status.json";

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("not a Postern update bundle: {0}")]
    Format(String),
    #[error(
        "the bundle's signature does not verify with the update key {key}: it was not signed by this appliance's vendor key, or it was altered"
    )]
    Signature { key: String },
    #[error(
        "{name} in the bundle does not match its signed SHA-256: the bundle is damaged or was altered"
    )]
    Digest { name: String },
    #[error("update key {path}: {why}")]
    Key { path: String, why: String },
    #[error(
        "version {new} is not newer than the running {running}: systemd-boot prefers the newest version and would never start it"
    )]
    NotNewer { new: String, running: String },
    #[error("{0}")]
    System(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> UpdateError + '_ {
    move |source| UpdateError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What a bundle holds, signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// Always "postern" (os-release's IMAGE_ID).
    pub image_id: String,
    /// os-release's IMAGE_VERSION of the new system.
    pub version: String,
    /// The dm-verity root hash of root.erofs (also on both UKIs' command lines).
    pub roothash: String,
    pub files: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// Reads an Ed25519 key from a PEM file with `parse` (private or public).
fn pem_key<T>(
    path: &Path,
    what: &str,
    parse: fn(&[u8]) -> Result<PKey<T>, openssl::error::ErrorStack>,
) -> Result<PKey<T>, UpdateError> {
    let pem = std::fs::read(path).map_err(io(path))?;
    let bad = |why: String| UpdateError::Key {
        path: path.display().to_string(),
        why,
    };
    let key = parse(&pem).map_err(|_| bad(format!("not a PEM {what} key")))?;
    if key.id() != openssl::pkey::Id::ED25519 {
        return Err(bad("not an Ed25519 key".into()));
    }
    Ok(key)
}

/// Reads a PEM private key (Ed25519, as `openssl genpkey -algorithm ed25519` writes it).
pub fn private_key(path: &Path) -> Result<PKey<Private>, UpdateError> {
    pem_key(path, "private", PKey::private_key_from_pem)
}

/// Reads a PEM public key (Ed25519).
pub fn public_key(path: &Path) -> Result<PKey<Public>, UpdateError> {
    pem_key(path, "public", PKey::public_key_from_pem)
}

fn valid_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'+' | b'-' | b'_' | b'~'))
}

/// Compares two image versions the way systemd-boot orders its entries (for what Postern's
/// versions use: digit runs compare as numbers, letters as text, `~` sorts before anything).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    fn segments(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if c == b'~' {
                out.push((false, "~"));
                i += 1;
            } else if c.is_ascii_digit() {
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                out.push((true, &s[start..i]));
            } else if c.is_ascii_alphabetic() {
                let start = i;
                while i < b.len() && b[i].is_ascii_alphabetic() {
                    i += 1;
                }
                out.push((false, &s[start..i]));
            } else {
                i += 1;
            }
        }
        out
    }
    let (x, y) = (segments(a), segments(b));
    for i in 0..x.len().max(y.len()) {
        let ord = match (x.get(i), y.get(i)) {
            (Some((_, "~")), Some((_, "~"))) => Ordering::Equal,
            (Some((_, "~")), _) => Ordering::Less,
            (_, Some((_, "~"))) => Ordering::Greater,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some((true, p)), Some((true, q))) => {
                let (p, q) = (p.trim_start_matches('0'), q.trim_start_matches('0'));
                p.len().cmp(&q.len()).then_with(|| p.cmp(q))
            }
            // A number is newer than letters (1.0.1 > 1.0.rc).
            (Some((true, _)), Some((false, _))) => Ordering::Greater,
            (Some((false, _)), Some((true, _))) => Ordering::Less,
            (Some((false, p)), Some((false, q))) => p.cmp(q),
            (None, None) => Ordering::Equal,
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

/// Hashes `len` bytes of `r` (optionally also writing them to `w`).
fn copy_hashed(
    r: &mut impl Read,
    mut w: Option<&mut dyn Write>,
    len: u64,
    what: &Path,
) -> Result<String, UpdateError> {
    let mut h = Sha256::new();
    let mut left = len;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        r.read_exact(&mut buf[..n]).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                UpdateError::Format("the bundle ends before its last file".into())
            } else {
                io(what)(e)
            }
        })?;
        h.update(&buf[..n]);
        if let Some(w) = w.as_mut() {
            w.write_all(&buf[..n]).map_err(io(what))?;
        }
        left -= n as u64;
    }
    Ok(hex(&h.finish()))
}

/// Packs and signs a bundle: `files` are the paths of [`FILES`], in that order.
pub fn pack(
    out: &Path,
    version: &str,
    roothash: &str,
    files: &[PathBuf; 4],
    key: &PKey<Private>,
) -> Result<Manifest, UpdateError> {
    if !valid_version(version) {
        return Err(UpdateError::Format(format!("bad version {version:?}")));
    }
    let mut entries = Vec::new();
    for (name, path) in FILES.iter().zip(files) {
        let mut f = File::open(path).map_err(io(path))?;
        let size = f.metadata().map_err(io(path))?.len();
        let sha256 = copy_hashed(&mut f, None, size, path)?;
        entries.push(Entry {
            name: (*name).to_owned(),
            size,
            sha256,
        });
    }
    let manifest = Manifest {
        format: 1,
        image_id: "postern".into(),
        version: version.into(),
        roothash: roothash.into(),
        files: entries,
    };
    check_manifest(&manifest)?;
    let text = serde_json::to_vec(&manifest).map_err(|e| UpdateError::Format(e.to_string()))?;
    let mut signer = Signer::new_without_digest(key).map_err(|e| UpdateError::Key {
        path: "(signing key)".into(),
        why: e.to_string(),
    })?;
    let sig = signer
        .sign_oneshot_to_vec(&text)
        .map_err(|e| UpdateError::Key {
            path: "(signing key)".into(),
            why: e.to_string(),
        })?;
    let tmp = out.with_extension("partial");
    let mut w = std::io::BufWriter::new(File::create(&tmp).map_err(io(&tmp))?);
    let header = [
        MAGIC,
        &(text.len() as u32).to_be_bytes(),
        &text,
        &(sig.len() as u16).to_be_bytes(),
        &sig,
    ]
    .concat();
    w.write_all(&header).map_err(io(&tmp))?;
    for path in files {
        let mut f = File::open(path).map_err(io(path))?;
        std::io::copy(&mut f, &mut w).map_err(io(&tmp))?;
    }
    w.into_inner()
        .map_err(|e| io(&tmp)(e.into_error()))?
        .sync_all()
        .map_err(io(&tmp))?;
    std::fs::rename(&tmp, out).map_err(io(out))?;
    Ok(manifest)
}

fn check_manifest(m: &Manifest) -> Result<(), UpdateError> {
    if m.format != 1 {
        return Err(UpdateError::Format(format!(
            "format {} (this posternd reads format 1)",
            m.format
        )));
    }
    if m.image_id != "postern" {
        return Err(UpdateError::Format(format!(
            "it is for image {:?}, not postern",
            m.image_id
        )));
    }
    if !valid_version(&m.version) {
        return Err(UpdateError::Format(format!("bad version {:?}", m.version)));
    }
    if m.roothash.len() != 64
        || !m
            .roothash
            .bytes()
            .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(UpdateError::Format("bad root hash".into()));
    }
    let names: Vec<&str> = m.files.iter().map(|e| e.name.as_str()).collect();
    if names != FILES {
        return Err(UpdateError::Format(format!(
            "files {names:?}, expected {FILES:?}"
        )));
    }
    if m.files.iter().map(|e| e.size).sum::<u64>() > MAX_BUNDLE {
        return Err(UpdateError::Format("larger than 4 GiB".into()));
    }
    Ok(())
}

/// A bundle whose signature and every file's digest were checked.
#[derive(Debug, Clone)]
pub struct Verified {
    pub manifest: Manifest,
    /// Where each file starts in the bundle.
    offsets: Vec<u64>,
}

impl Verified {
    fn entry(&self, name: &str) -> (u64, &Entry) {
        let i = FILES.iter().position(|f| *f == name).unwrap_or(0);
        (self.offsets[i], &self.manifest.files[i])
    }
}

/// Opens a bundle for reading: a regular file, not through a symbolic link (the spool folder
/// belongs to the unprivileged daemon, which could put a link to a device there). The file
/// opened must be the one looked at (same device and inode).
fn open_bundle(path: &Path) -> Result<File, UpdateError> {
    use std::os::unix::fs::MetadataExt;
    let before = std::fs::symlink_metadata(path).map_err(io(path))?;
    if !before.file_type().is_file() {
        return Err(UpdateError::Format(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    let f = File::open(path).map_err(io(path))?;
    let after = f.metadata().map_err(io(path))?;
    if (after.dev(), after.ino()) != (before.dev(), before.ino()) {
        return Err(UpdateError::Format(format!(
            "{} was replaced while it was opened",
            path.display()
        )));
    }
    Ok(f)
}

/// Checks a bundle's signature with `key` and every file against the signed digests.
pub fn verify(path: &Path, key: &PKey<Public>, key_path: &Path) -> Result<Verified, UpdateError> {
    let mut f = open_bundle(path)?;
    let total = f.metadata().map_err(io(path))?.len();
    let mut magic = vec![0u8; MAGIC.len()];
    f.read_exact(&mut magic)
        .map_err(|_| UpdateError::Format("too short".into()))?;
    if magic != MAGIC {
        return Err(UpdateError::Format(
            "it does not start with POSTERN-UPDATE/1".into(),
        ));
    }
    let mut len = [0u8; 4];
    f.read_exact(&mut len)
        .map_err(|_| UpdateError::Format("too short".into()))?;
    let len = u32::from_be_bytes(len);
    if len > MAX_MANIFEST {
        return Err(UpdateError::Format("manifest too large".into()));
    }
    let mut text = vec![0u8; len as usize];
    f.read_exact(&mut text)
        .map_err(|_| UpdateError::Format("the manifest is cut short".into()))?;
    let mut slen = [0u8; 2];
    f.read_exact(&mut slen)
        .map_err(|_| UpdateError::Format("no signature".into()))?;
    let mut sig = vec![0u8; u16::from_be_bytes(slen) as usize];
    f.read_exact(&mut sig)
        .map_err(|_| UpdateError::Format("the signature is cut short".into()))?;
    let good = Verifier::new_without_digest(key)
        .and_then(|mut v| v.verify_oneshot(&sig, &text))
        .unwrap_or(false);
    if !good {
        return Err(UpdateError::Signature {
            key: key_path.display().to_string(),
        });
    }
    // Only now is the manifest worth parsing: it is the vendor's.
    let manifest: Manifest =
        serde_json::from_slice(&text).map_err(|e| UpdateError::Format(format!("manifest: {e}")))?;
    check_manifest(&manifest)?;
    let mut at = (MAGIC.len() + 4 + text.len() + 2 + sig.len()) as u64;
    let expected = at + manifest.files.iter().map(|e| e.size).sum::<u64>();
    if total != expected {
        return Err(UpdateError::Format(format!(
            "{total} bytes, the manifest says {expected}"
        )));
    }
    let mut offsets = Vec::new();
    for e in &manifest.files {
        offsets.push(at);
        if copy_hashed(&mut f, None, e.size, path)? != e.sha256 {
            return Err(UpdateError::Digest {
                name: e.name.clone(),
            });
        }
        at += e.size;
    }
    Ok(Verified { manifest, offsets })
}

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
            at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
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
#[derive(Debug)]
pub enum StageError {
    Invalid(String),
    Conflict(String),
}

impl Spool {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The running slot and version, the last update's state, whether one is pending.
    pub fn status(&self) -> serde_json::Value {
        let running = self.system.running();
        serde_json::json!({
            "updates": self.public_key.is_some(),
            "slot": running.as_ref().ok().map(|r| r.slot),
            "version": running.as_ref().ok().map(|r| r.version.clone()),
            "appliance": running.as_ref().map(|_| String::new()).unwrap_or_else(|e| e.to_string()),
            "pending": self.path(SPOOL_REQUEST).exists(),
            "last_update": Status::read(&self.path(SPOOL_STATUS)),
        })
    }

    /// Takes the bundle received into `incoming`: verifies it (signature, digests, newer
    /// than what runs) and hands it to the installer with a request.
    pub fn stage(&self, reboot: bool, by: &str) -> Result<serde_json::Value, StageError> {
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
    ) -> Result<serde_json::Value, StageError> {
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
        Ok(serde_json::json!({
            "version": v.manifest.version,
            "slot": target,
            "running": running,
            "reboot": reboot,
            "message": format!(
                "version {} verified; postern-update.service writes it into slot {}{}",
                v.manifest.version,
                target.as_str(),
                if reboot { " and reboots into it" } else { "; it runs after the next reboot" }
            ),
        }))
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

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);
    impl Dir {
        fn new(name: &str) -> Dir {
            let p =
                std::env::temp_dir().join(format!("postern-update-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).expect("temp dir");
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn keys() -> (PKey<Private>, PKey<Public>) {
        let k = PKey::generate_ed25519().expect("key");
        let p = PKey::public_key_from_raw_bytes(
            &k.raw_public_key().expect("raw"),
            openssl::pkey::Id::ED25519,
        )
        .expect("public");
        (k, p)
    }

    /// A fake appliance: partitions as files, an ESP folder, slot a running version 1.0.5.
    fn system(d: &Path) -> System {
        std::fs::create_dir_all(d.join("parts")).expect("parts");
        std::fs::create_dir_all(d.join("esp/EFI/Linux")).expect("esp");
        for p in ["root-a", "root-b", "verity-a", "verity-b"] {
            std::fs::write(d.join("parts").join(p), vec![0u8; 64 * 1024]).expect("part");
        }
        std::fs::write(d.join("esp/EFI/Linux/postern-a.efi"), b"old uki a").expect("uki");
        std::fs::write(d.join("esp/EFI/Linux/postern-b+0-3.efi"), b"failed uki b").expect("uki");
        std::fs::write(d.join("cmdline"), "postern.slot=a postern.roothash=00 ro\n").expect("c");
        std::fs::write(d.join("os-release"), "ID=postern\nIMAGE_VERSION=1.0.5\n").expect("o");
        System {
            cmdline: d.join("cmdline"),
            os_release: d.join("os-release"),
            partitions: d.join("parts"),
            esp: d.join("esp"),
        }
    }

    fn bundle(d: &Path, version: &str, key: &PKey<Private>) -> PathBuf {
        let files = FILES.map(|f| {
            let p = d.join(format!("in-{f}"));
            std::fs::write(&p, format!("contents of {f} {version}").repeat(100)).expect("in");
            p
        });
        let out = d.join(format!("{version}.bundle"));
        pack(&out, version, &"ab".repeat(32), &files, key).expect("pack");
        out
    }

    #[test]
    fn versions_order_like_systemd_boot() {
        use Ordering::*;
        assert_eq!(
            compare_versions("0.1.0.20261123", "0.1.0.20261122"),
            Greater
        );
        assert_eq!(compare_versions("0.1.10", "0.1.9"), Greater);
        assert_eq!(compare_versions("1.0", "1.0"), Equal);
        assert_eq!(compare_versions("1.0~rc1", "1.0"), Less);
        assert_eq!(compare_versions("1.0.1", "1.0"), Greater);
        assert_eq!(
            compare_versions("0.1.0.20261123+gabc", "0.1.0.20261123+gabd"),
            Less
        );
    }

    #[test]
    fn a_signed_bundle_installs_into_the_other_slot_with_boot_counting() {
        let d = Dir::new("install");
        let (k, p) = keys();
        let sys = system(&d.0);
        let b = bundle(&d.0, "1.0.6", &k);
        let mut log = Vec::new();
        let got = install(&b, &p, Path::new("key.pem"), &sys, &mut |s| {
            log.push(s.to_owned())
        })
        .expect("install");
        assert_eq!((got.slot, got.version.as_str()), (Slot::B, "1.0.6"));
        let root = std::fs::read(d.0.join("parts/root-b")).expect("root-b");
        let want = "contents of root.erofs 1.0.6".repeat(100);
        assert_eq!(&root[..want.len()], want.as_bytes());
        assert_eq!(root.len(), 64 * 1024, "the partition keeps its size");
        assert_eq!(
            std::fs::read_to_string(d.0.join("esp/EFI/Linux/postern-b+3.efi")).expect("uki"),
            "contents of uki-b.efi 1.0.6".repeat(100)
        );
        assert_eq!(sys.entries(Slot::B).expect("entries"), ["postern-b+3.efi"]);
        assert_eq!(sys.entries(Slot::A).expect("entries"), ["postern-a.efi"]);
        assert!(
            log.iter()
                .any(|l| l.contains("removed the old entry postern-b+0-3.efi"))
        );
        // The running slot is untouched.
        assert!(
            std::fs::read(d.0.join("parts/root-a"))
                .expect("a")
                .iter()
                .all(|b| *b == 0)
        );

        // A boot into b reports it running; one back on a after b ran out of tries, rolled back.
        let status = d.0.join("status.json");
        Status::new("installed", Some(Slot::B), "1.0.6", "x".into())
            .write(&status)
            .expect("status");
        std::fs::write(&sys.cmdline, "postern.slot=b").expect("cmdline");
        assert_eq!(
            boot_check(&sys, &status)
                .expect("check")
                .expect("new")
                .state,
            "running"
        );
        std::fs::write(&sys.cmdline, "postern.slot=a").expect("cmdline");
        assert_eq!(
            boot_check(&sys, &status).expect("check"),
            None,
            "b still has tries"
        );
        std::fs::rename(
            d.0.join("esp/EFI/Linux/postern-b+3.efi"),
            d.0.join("esp/EFI/Linux/postern-b+0-3.efi"),
        )
        .expect("rename");
        let st = boot_check(&sys, &status).expect("check").expect("new");
        assert_eq!(st.state, "rolled-back");
        assert!(
            st.message.contains("back on slot a (version 1.0.5)"),
            "{}",
            st.message
        );
        // An install cut short is reported as failed at the next boot.
        Status::new("installing", None, "", "x".into())
            .write(&status)
            .expect("status");
        let st = boot_check(&sys, &status).expect("check").expect("new");
        assert_eq!(st.state, "failed");
        assert!(st.message.contains("interrupted"), "{}", st.message);
    }

    #[test]
    fn altered_foreign_old_and_truncated_bundles_are_refused() {
        let d = Dir::new("refuse");
        let (k, p) = keys();
        let sys = system(&d.0);
        let good = bundle(&d.0, "1.0.6", &k);
        let bytes = std::fs::read(&good).expect("read");
        let key = Path::new("key.pem");

        // One flipped byte in a file's contents: the signed digest does not match.
        let mut altered = bytes.clone();
        let at = altered.len() - 10;
        altered[at] ^= 1;
        let f = d.0.join("altered");
        std::fs::write(&f, &altered).expect("write");
        let e = verify(&f, &p, key).expect_err("altered");
        assert!(
            matches!(e, UpdateError::Digest { ref name } if name == "uki-b.efi"),
            "{e}"
        );

        // One flipped byte in the manifest: the signature does not verify.
        let mut altered = bytes.clone();
        altered[MAGIC.len() + 10] ^= 1;
        std::fs::write(&f, &altered).expect("write");
        assert!(matches!(
            verify(&f, &p, key),
            Err(UpdateError::Signature { .. })
        ));

        // Signed by another key.
        let (_, other) = keys();
        assert!(matches!(
            verify(&good, &other, key),
            Err(UpdateError::Signature { .. })
        ));

        // Cut short, or not a bundle at all.
        std::fs::write(&f, &bytes[..bytes.len() - 1]).expect("write");
        assert!(matches!(verify(&f, &p, key), Err(UpdateError::Format(_))));
        std::fs::write(&f, b"MZ\x90\x00 a kernel, not a bundle").expect("write");
        assert!(matches!(verify(&f, &p, key), Err(UpdateError::Format(_))));

        // Not newer than what runs: refused before anything is written.
        let old = bundle(&d.0, "1.0.5", &k);
        let e = install(&old, &p, key, &sys, &mut |_| {}).expect_err("same version");
        assert!(matches!(e, UpdateError::NotNewer { .. }), "{e}");
        assert_eq!(
            sys.entries(Slot::B).expect("entries"),
            ["postern-b+0-3.efi"]
        );

        // Not an appliance: no slot on the command line.
        std::fs::write(&sys.cmdline, "ro quiet").expect("cmdline");
        let e = install(&good, &p, key, &sys, &mut |_| {}).expect_err("no slot");
        assert!(e.to_string().contains("no postern.slot="), "{e}");
    }
}
