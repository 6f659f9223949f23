//! The Thunderbird peer corpora (../shared/interop/): Postern's inbound verdicts must equal
//! the reference tools' on every message — decrypt what they decrypt, accept what they
//! accept, mark invalid what they reject — and every message must arrive, once.

use postern_tests::peers::Peer;
use std::path::{Path, PathBuf};

use postern_crypto::mime::{self, ContentType, Header};
use postern_tests::pki::{Gpg, run_in};
use postern_tests::posternd::Posternd;
use postern_tests::sink::{Sink, SunkMessage};

use super::{gateway_for, have_tools, relay};

/// Where the corpora are: `POSTERN_INTEROP`, else next to the repository.
fn corpus_dir(test: &str) -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("POSTERN_INTEROP").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/interop")),
        Some(PathBuf::from("/work/shared/interop")),
    ];
    let found = candidates
        .into_iter()
        .flatten()
        .find(|p| p.join("README.md").exists());
    if found.is_none() {
        let reason = format!("{test}: skipped, peer corpora not found (set POSTERN_INTEROP)");
        if std::env::var("REQUIRE_PEERS").is_ok_and(|v| v == "1") {
            panic!("{reason}; REQUIRE_PEERS=1 makes this a failure");
        }
        eprintln!("{reason}");
    }
    found
}

fn eml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("corpus dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    v.sort();
    v
}

/// LF → CRLF, as an MTA submits a file (lossy for the rare non-UTF-8 byte: the corpora are
/// 7-bit).
fn crlf(data: &[u8]) -> String {
    String::from_utf8_lossy(&postern_tests::crlf(data)).into_owned()
}

/// Postern's verdicts, read from the delivered message.
#[derive(Debug, PartialEq, Eq)]
struct Verdicts {
    decrypted: bool,
    /// `Some(valid)` when a signature was checked.
    signature: Option<bool>,
}

fn verdicts_of(m: &SunkMessage) -> Verdicts {
    Verdicts {
        decrypted: m
            .header("x-postern-encrypted")
            .is_some_and(|v| v.starts_with("decrypted")),
        signature: m
            .header("x-postern-signature")
            .map(|v| v.starts_with("valid")),
    }
}

fn content_type(entity: &[u8]) -> ContentType {
    ContentType::of(&Header::parse(mime::split(entity).header))
}

fn is_smime_signed(entity: &[u8]) -> bool {
    let ct = content_type(entity);
    (ct.is("multipart", "signed") && ct.param("protocol").is_some_and(|p| p.contains("pkcs7")))
        || (ct.subtype.ends_with("pkcs7-mime")
            && ct
                .param("smime-type")
                .is_some_and(|t| t.eq_ignore_ascii_case("signed-data")))
}

fn send(p: &Posternd, sink: &Sink, to: &str, file: &Path, n: usize) -> SunkMessage {
    let text = crlf(&std::fs::read(file).expect("corpus file"));
    // A unique Message-ID in the outer header so the harness can find this delivery; the
    // body (signed bytes, protected headers) stays exactly as it is.
    let split = text.find("\r\n\r\n").map_or(text.len(), |i| i + 2);
    let (header, body) = text.split_at(split);
    let header: String = header
        .split_inclusive("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("message-id:"))
        .collect();
    let message = format!("Message-ID: <corpus-{n}@test>\r\n{header}{body}");
    relay(p, sink, "corpus@outside.test", &[to], &message)
}

#[test]
fn crypto_corpus_smime_verdicts_match_openssl() {
    if !have_tools("crypto_corpus_smime") {
        return;
    }
    let Some(root) = corpus_dir("crypto_corpus_smime") else {
        return;
    };
    let dir = root.join("thunderbird-smime");
    let (p, sink) = gateway_for("example.com", "");
    p.ctl(&[
        "trust",
        "add",
        dir.join("TestCA.pem").to_str().expect("path"),
    ]);
    let pw = p.dir.join("p12.pw");
    std::fs::write(&pw, "nss\n").expect("password file");
    let out = p.ctl(&[
        "user",
        "import-pkcs12",
        dir.join("Bob.p12").to_str().expect("path"),
        "--password-file",
        pw.to_str().expect("path"),
    ]);
    assert!(out.contains("bob@example.com"), "{out}");
    // The reference: openssl with Bob's key, from the same PKCS#12.
    let work = p.dir.join("");
    let p12 = dir.join("Bob.p12");
    let p12 = p12.to_str().expect("path");
    for (what, out) in [("-clcerts", "bobcert.pem"), ("-nocerts", "bobkey.pem")] {
        let pem = run_in(
            &work,
            Peer::Openssl,
            &[
                "pkcs12", "-legacy", "-in", p12, "-passin", "pass:nss", "-nodes", what, "-out", out,
            ],
            b"",
        );
        assert!(
            pem.status.success(),
            "{}",
            String::from_utf8_lossy(&pem.stderr)
        );
    }
    let ca = dir.join("TestCA.pem");
    let ca = ca.to_str().expect("path");
    let mut mismatches = Vec::new();
    let files = eml_files(&dir);
    for (n, file) in files.iter().enumerate() {
        let raw = std::fs::read(file).expect("read");
        let name = file
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        // openssl's verdict: decrypt when enveloped, then verify what is signed.
        let mut expected = Verdicts {
            decrypted: false,
            signature: None,
        };
        let mut entity = crlf(&raw).into_bytes();
        let ct = content_type(&entity);
        if ct.subtype.ends_with("pkcs7-mime") && !is_smime_signed(&entity) {
            let f = file.to_str().expect("path");
            let d = run_in(
                &work,
                Peer::Openssl,
                &[
                    "cms",
                    "-decrypt",
                    "-recip",
                    "bobcert.pem",
                    "-inkey",
                    "bobkey.pem",
                    "-in",
                    f,
                ],
                b"",
            );
            if d.status.success() {
                expected.decrypted = true;
                entity = crlf(&d.stdout).into_bytes();
            }
        }
        if is_smime_signed(&entity) {
            std::fs::write(work.join("check.eml"), &entity).expect("write");
            let v = run_in(
                &work,
                Peer::Openssl,
                &[
                    "cms",
                    "-verify",
                    "-CAfile",
                    ca,
                    "-in",
                    "check.eml",
                    "-out",
                    "/dev/null",
                ],
                b"",
            );
            expected.signature = Some(v.status.success());
        }
        let m = send(&p, &sink, "bob@example.com", file, n);
        let got = verdicts_of(&m);
        if got != expected {
            mismatches.push(format!(
                "{name}: openssl {expected:?}, postern {got:?} ({:?})",
                m.header("x-postern-policy")
            ));
        }
    }
    assert!(
        files.len() >= 60,
        "corpus incomplete: {} messages",
        files.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} of {} verdicts differ:\n{}",
        mismatches.len(),
        files.len(),
        mismatches.join("\n")
    );
}

/// (shape, data, detached signature) of a top-level OpenPGP entity.
type PgpShape = (&'static str, Vec<u8>, Option<Vec<u8>>);

/// The OpenPGP structure of an entity when the whole entity is one: PGP/MIME encrypted or
/// signed, or a body that is only an armored block.
fn top_level_pgp(entity: &[u8]) -> Option<PgpShape> {
    let parts = mime::split(entity);
    let header = Header::parse(parts.header);
    let ct = content_type(entity);
    let decode = |h: &Header, body: &[u8]| match h
        .get("content-transfer-encoding")
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        Some("base64") => mime::base64_decode(body).unwrap_or_default(),
        Some("quoted-printable") => mime::qp_decode(body),
        _ => body.to_vec(),
    };
    let children = |b: &str| mime::multipart_parts(parts.body, b);
    if ct.is("multipart", "encrypted") {
        let kids = children(ct.param("boundary")?)?;
        let p = mime::split(kids.get(1)?);
        return Some(("encrypted", decode(&Header::parse(p.header), p.body), None));
    }
    if ct.is("multipart", "signed") && ct.param("protocol") == Some("application/pgp-signature") {
        let kids = children(ct.param("boundary")?)?;
        let sig = mime::split(kids.get(1)?);
        return Some((
            "detached",
            kids[0].to_vec(),
            Some(decode(&Header::parse(sig.header), sig.body)),
        ));
    }
    if ct.is("text", "plain") {
        let body = decode(&header, parts.body);
        let t = body.trim_ascii();
        if t.starts_with(b"-----BEGIN PGP MESSAGE-----")
            && t.ends_with(b"-----END PGP MESSAGE-----")
        {
            return Some(("encrypted", t.to_vec(), None));
        }
        if t.starts_with(b"-----BEGIN PGP SIGNED MESSAGE-----") {
            return Some(("inline-signed", t.to_vec(), None));
        }
    }
    None
}

/// gpg's verdict on a signed top-level entity (PGP/MIME detached or inline signed).
fn reference_signature(gpg: &Gpg, work: &Path, entity: &[u8]) -> Option<bool> {
    let good = |out: std::process::Output| {
        let status = String::from_utf8_lossy(&out.stderr);
        status.contains("[GNUPG:] GOODSIG") && !status.contains("[GNUPG:] BADSIG")
    };
    match top_level_pgp(entity)? {
        ("detached", content, Some(sig)) => {
            std::fs::write(work.join("sig.asc"), &sig).expect("write");
            std::fs::write(work.join("content"), &content).expect("write");
            Some(good(gpg.run(
                &["--status-fd", "2", "--verify", "sig.asc", "content"],
                b"",
            )))
        }
        ("inline-signed", block, _) => {
            Some(good(gpg.run(&["--status-fd", "2", "--verify"], &block)))
        }
        _ => None,
    }
}

#[test]
fn crypto_corpus_openpgp_verdicts_match_gpg() {
    if !have_tools("crypto_corpus_openpgp") {
        return;
    }
    let Some(root) = corpus_dir("crypto_corpus_openpgp") else {
        return;
    };
    let dir = root.join("thunderbird-openpgp");
    let (p, sink) = gateway_for("openpgp.example", "");
    let gpg = Gpg::new();
    let secret = dir.join("keys/alice@openpgp.example-0xf231550c4f47e38e-secret.asc");
    p.ctl(&["user", "import-pgp", secret.to_str().expect("path")]);
    gpg.import(&std::fs::read(&secret).expect("key"));
    let mut keys: Vec<PathBuf> = std::fs::read_dir(dir.join("keys"))
        .expect("keys")
        .flatten()
        .map(|e| e.path())
        .collect();
    keys.sort();
    for k in &keys {
        let name = k.file_name().expect("name").to_string_lossy().into_owned();
        if name.contains("secret") || name.contains("-rev") || name.contains("-sec") {
            continue;
        }
        // Keys Postern cannot parse (v5 drafts, broken files) are refused with a message;
        // gpg gets the same set only when Postern took the key.
        if p.ctl_output(&["partner", "import", k.to_str().expect("path")])
            .status
            .success()
        {
            gpg.run(&["--import"], &std::fs::read(k).expect("key"));
        }
    }
    let work = gpg.home.join("");
    let mut mismatches = Vec::new();
    let mut compared = 0;
    let files = eml_files(&dir.join("eml"));
    for (n, file) in files.iter().enumerate() {
        let name = file
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let entity = crlf(&std::fs::read(file).expect("read")).into_bytes();
        let m = send(&p, &sink, "alice@openpgp.example", file, 1000 + n);
        let got = verdicts_of(&m);
        let expected = match top_level_pgp(&entity) {
            Some(("encrypted", armored, _)) => {
                let out = gpg.run(&["--status-fd", "2", "--decrypt"], &armored);
                let status = String::from_utf8_lossy(&out.stderr).into_owned();
                let decrypted = out.status.success() || status.contains("[GNUPG:] DECRYPTION_OKAY");
                let inner = crlf(&out.stdout).into_bytes();
                let nested = if decrypted {
                    reference_signature(&gpg, &work, &inner)
                } else {
                    None
                };
                let signature = if nested.is_some() {
                    nested
                } else if status.contains("[GNUPG:] BADSIG") {
                    Some(false)
                } else if status.contains("[GNUPG:] GOODSIG") {
                    Some(true)
                } else if status.contains("[GNUPG:] ERRSIG") || status.contains("[GNUPG:] NEWSIG") {
                    Some(false)
                } else {
                    None
                };
                Some(Verdicts {
                    decrypted,
                    signature: if decrypted { signature } else { None },
                })
            }
            Some(_) => Some(Verdicts {
                decrypted: false,
                signature: reference_signature(&gpg, &work, &entity),
            }),
            None => None,
        };
        match expected {
            Some(e) => {
                compared += 1;
                if got != e {
                    mismatches.push(format!(
                        "{name}: gpg {e:?}, postern {got:?} ({:?})",
                        m.header("x-postern-policy")
                    ));
                }
            }
            // Not a top-level OpenPGP structure (S/MIME outside, partial encryption inside
            // other parts): Postern must not have decrypted anything.
            None => {
                if got.decrypted {
                    mismatches.push(format!("{name}: nested encryption was decrypted"));
                }
            }
        }
    }
    eprintln!(
        "openpgp corpus: {} messages, {compared} compared with gpg",
        files.len()
    );
    assert!(compared >= 20, "too few comparable messages: {compared}");
    assert!(
        mismatches.is_empty(),
        "{} verdicts differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
