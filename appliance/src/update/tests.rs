use super::*;

struct Dir(PathBuf);
impl Dir {
    fn new(name: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("postern-update-{}-{name}", std::process::id()));
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
