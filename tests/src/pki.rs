//! The checked-in tool that makes test keys: partner CAs and S/MIME certificates with the
//! `openssl` command line, OpenPGP keys with `gpg` in a private home. Nothing is pasted: every
//! run generates fresh keys, and the reference tools that made them also judge Postern.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use crate::Scratch;
use crate::peers::Peer;

/// Runs a program in `dir` with `stdin`; returns its output whatever the exit status.
pub fn run_in(dir: &Path, program: Peer, args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write as _;
    let mut child = program
        .command()
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.program()));
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    let _ = writer.join();
    out
}

/// Like [`run_in`], panicking with stderr when the program fails.
pub fn must(dir: &Path, program: Peer, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let out = run_in(dir, program, args, stdin);
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}",
        program.program(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A certificate authority made with `openssl req`, issuing S/MIME certificates.
#[derive(Debug)]
pub struct OpensslCa {
    pub dir: Scratch,
    pub cert: PathBuf,
    key: PathBuf,
}

/// An S/MIME identity as files.
#[derive(Debug, Clone)]
pub struct SmimeFiles {
    pub email: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl OpensslCa {
    pub fn new(name: &str) -> OpensslCa {
        let dir = Scratch::new("pki");
        let subj = format!("/O=Test/CN={name}");
        must(
            &dir.join(""),
            Peer::Openssl,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "30",
                "-subj",
                &subj,
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
            b"",
        );
        OpensslCa {
            cert: dir.join("ca.pem"),
            key: dir.join("ca.key"),
            dir,
        }
    }

    /// Issues an S/MIME certificate (emailProtection, email SAN) for `email`.
    pub fn issue(&self, email: &str) -> SmimeFiles {
        let base = email.replace(['@', '.'], "_");
        let (cert, key) = self.sign(
            &base,
            email,
            &format!(
                "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=emailProtection\nsubjectAltName=email:{email}\n"
            ),
        );
        SmimeFiles {
            email: email.to_owned(),
            cert,
            key,
        }
    }

    /// Issues a TLS server certificate for the DNS names `names` (the first is the CN):
    /// certificate and key files.
    pub fn issue_server(&self, names: &[&str]) -> (PathBuf, PathBuf) {
        let sans: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
        self.sign(
            &names[0].replace('.', "_"),
            names[0],
            &format!(
                "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName={}\n",
                sans.join(",")
            ),
        )
    }

    /// A new key and a certificate for it with CN `cn` and extensions `ext`, signed by
    /// the CA: certificate and key files named after `base`.
    fn sign(&self, base: &str, cn: &str, ext: &str) -> (PathBuf, PathBuf) {
        let d = self.dir.join("");
        std::fs::write(
            d.join(format!("{base}.ext")),
            format!("basicConstraints=CA:FALSE\n{ext}"),
        )
        .expect("ext file");
        must(
            &d,
            Peer::Openssl,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{base}.key"),
                "-out",
                &format!("{base}.csr"),
                "-subj",
                &format!("/CN={cn}"),
            ],
            b"",
        );
        must(
            &d,
            Peer::Openssl,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{base}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "30",
                "-out",
                &format!("{base}.pem"),
                "-extfile",
                &format!("{base}.ext"),
            ],
            b"",
        );
        let _ = &self.key;
        (d.join(format!("{base}.pem")), d.join(format!("{base}.key")))
    }
}

impl SmimeFiles {
    /// `openssl cms -decrypt -binary` of `message` with this identity, in `dir`.
    pub fn decrypt(&self, dir: &Path, message: &[u8]) -> Vec<u8> {
        std::fs::write(dir.join("cms-decrypt.eml"), message).expect("write message");
        let (cert, key) = (
            self.cert.to_str().expect("path"),
            self.key.to_str().expect("path"),
        );
        must(
            dir,
            Peer::Openssl,
            &[
                "cms",
                "-decrypt",
                "-binary",
                "-recip",
                cert,
                "-inkey",
                key,
                "-in",
                "cms-decrypt.eml",
            ],
            b"",
        )
    }
}

/// `openssl cms -verify -crlfeol` of `message` against the CA certificate `ca_pem`, in `dir`:
/// the signed content with CRLF line ends, or openssl's complaint.
pub fn cms_verify(dir: &Path, ca_pem: &[u8], message: &[u8]) -> Result<Vec<u8>, String> {
    std::fs::write(dir.join("cms-ca.pem"), ca_pem).expect("write CA");
    std::fs::write(dir.join("cms-verify.eml"), message).expect("write message");
    let out = run_in(
        dir,
        Peer::Openssl,
        &[
            "cms",
            "-verify",
            "-crlfeol",
            "-CAfile",
            "cms-ca.pem",
            "-in",
            "cms-verify.eml",
        ],
        b"",
    );
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A private GnuPG home.
#[derive(Debug)]
pub struct Gpg {
    pub home: Scratch,
}

impl Drop for Gpg {
    /// gpg starts a gpg-agent per home; end it with the home.
    fn drop(&mut self) {
        let home = self.home.join("");
        let _ = Peer::Gpgconf
            .command()
            .arg("--homedir")
            .arg(&home)
            .args(["--kill", "gpg-agent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Default for Gpg {
    fn default() -> Self {
        Self::new()
    }
}

impl Gpg {
    pub fn new() -> Gpg {
        let home = Scratch::new("gnupg");
        let mut perms = std::fs::metadata(home.join(""))
            .expect("home")
            .permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o700);
        std::fs::set_permissions(home.join(""), perms).expect("chmod");
        Gpg { home }
    }

    /// Runs gpg in batch mode on this home.
    pub fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        let home = self.home.join("");
        let home = home.to_str().expect("utf-8 path");
        let mut all = vec![
            "--homedir",
            home,
            "--batch",
            "--yes",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--trust-model",
            "always",
        ];
        all.extend_from_slice(args);
        run_in(&self.home.join(""), Peer::Gpg, &all, stdin)
    }

    pub fn must(&self, args: &[&str], stdin: &[u8]) -> Vec<u8> {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "gpg {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// A new key without passphrase for `email` (gpg's defaults: what users have).
    pub fn generate(&self, email: &str) {
        self.must(
            &[
                "--quick-generate-key",
                &format!("<{email}>"),
                "default",
                "default",
                "30d",
            ],
            b"",
        );
    }

    pub fn export(&self, email: &str) -> Vec<u8> {
        self.must(&["--armor", "--export", email], b"")
    }

    pub fn import(&self, key: &[u8]) {
        self.must(&["--import"], key);
    }
}
