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
use serde::{Deserialize, Serialize};

pub const MAGIC: &[u8] = b"POSTERN-UPDATE/1\n";
/// The files of a bundle, in this order.
pub const FILES: [&str; 4] = ["root.erofs", "root.verity", "uki-a.efi", "uki-b.efi"];
/// How many boots an update gets to come up healthy before systemd-boot falls back.
pub const TRIES: u32 = 3;
const MAX_MANIFEST: u32 = 64 * 1024;
/// The largest bundle accepted (the API's limit, too).
pub use postern_api::MAX_UPDATE_BUNDLE as MAX_BUNDLE;

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
mod bundle;
mod install;
mod spool;
#[cfg(test)]
mod tests;

pub use bundle::*;
pub use install::*;
pub use spool::*;

/// Lower-case hex of `b` (digests in manifests and logs).
fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
