//! Packing, reading and verifying a signed bundle.

use super::*;

/// Hashes `len` bytes of `r` (optionally also writing them to `w`).
pub(super) fn copy_hashed(
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
    pub(super) fn entry(&self, name: &str) -> (u64, &Entry) {
        let i = FILES.iter().position(|f| *f == name).unwrap_or(0);
        (self.offsets[i], &self.manifest.files[i])
    }
}

/// Opens a bundle for reading: a regular file, not through a symbolic link (the spool folder
/// belongs to the unprivileged daemon, which could put a link to a device there). The file
/// opened must be the one looked at (same device and inode).
pub(super) fn open_bundle(path: &Path) -> Result<File, UpdateError> {
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
