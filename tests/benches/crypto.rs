//! What signing and encryption cost (issue 8): CPU per signed message against the raw RSA
//! sign time of `openssl speed rsa2048` measured in the same run, and messages/s through
//! `posternd` for sign, sign+encrypt (1 and 5 recipients) and OpenPGP encrypt, against
//! pass-through and a Postfix relay measured side by side.
//!
//! `cargo bench -p postern-tests --bench crypto` (or `scripts/bench.sh crypto`). Needs root,
//! Postfix, openssl and gpg. Progress on stderr, the Markdown report on stdout.

use postern_tests::peers::Peer;
use std::time::{Duration, Instant, SystemTime};

use postern_crypto::keys::ca::Ca;
use postern_crypto::smime;
use postern_tests::load::{CountingSink, Load, Target, median};
use postern_tests::pki::{Gpg, OpensslCa, must};
use postern_tests::posternd::Posternd;
use postern_tests::postfix::{Postfix, PostfixOptions};
use postern_tests::{peers_available, root_available};

const FROM: &str = "from@bench.example";
const TO: &str = "to@partner.example";
const SIZE: usize = 10 * 1024;
const SESSIONS: usize = 4;
const ROUNDS: usize = 3;
const LOAD: Load = Load {
    from: FROM,
    to: TO,
    size: SIZE,
    sessions: SESSIONS,
    pass: Duration::from_secs(5),
};

/// Seconds per RSA-2048 signature, from `openssl speed -mr` (one core).
fn openssl_rsa2048_sign() -> f64 {
    let out = must(
        std::path::Path::new("/tmp"),
        Peer::Openssl,
        &["speed", "-seconds", "3", "-mr", "rsa2048"],
        b"",
    );
    let text = String::from_utf8_lossy(&out);
    // "+F2:<n>:2048:<signs per second>:<verifies per second>"
    let per_second: f64 = text
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&"+F2") && f.get(2) == Some(&"2048"))
                .then(|| f.get(3)?.parse().ok())
                .flatten()
        })
        .expect("openssl speed output has an +F2 line for rsa2048");
    1.0 / per_second
}

/// Seconds per `smime::sign` of a 10 KB entity and per bare RSA-2048 PKCS#1 signature
/// (SHA-256), both in this process, one thread. Batches alternate and the fastest batch of
/// each counts: on a shared 2-core machine that is the least disturbed measurement.
fn postern_sign() -> (f64, f64) {
    use openssl::hash::MessageDigest;
    use openssl::sign::Signer;
    let now = SystemTime::now();
    let ca = Ca::generate("Bench CA", now, Duration::from_secs(86_400)).expect("ca");
    let id = ca
        .issue(FROM, now, now + Duration::from_secs(3600))
        .expect("id");
    let mut entity = b"Content-Type: text/plain\r\n\r\n".to_vec();
    while entity.len() < SIZE {
        entity.extend_from_slice(
            b"0123456789012345678901234567890123456789012345678901234567890123456789012345\r\n",
        );
    }
    let raw = || {
        let mut s = Signer::new(MessageDigest::sha256(), &id.key).expect("signer");
        s.update(&entity[..200]).expect("update");
        s.sign_to_vec().expect("sign");
    };
    let cms = || {
        smime::sign(&entity, &id).expect("sign");
    };
    let batch = |f: &dyn Fn()| {
        let start = Instant::now();
        for _ in 0..100 {
            f();
        }
        start.elapsed().as_secs_f64() / 100.0
    };
    let (mut best_raw, mut best_cms) = (f64::MAX, f64::MAX);
    for _ in 0..30 {
        best_raw = best_raw.min(batch(&raw));
        best_cms = best_cms.min(batch(&cms));
    }
    (best_cms, best_raw)
}

fn posternd(sink: &CountingSink, crypto: bool) -> Posternd {
    let extra = if crypto {
        "[crypto]\ninternal_domains = [\"bench.example\"]\npolicy_header = false\n"
    } else {
        ""
    };
    let p = Posternd::start(&sink.addr(), "max_connections_per_ip = 500", extra);
    if crypto {
        p.ctl(&["user", "enrol", FROM]);
    }
    p
}

/// posternd `p` relaying to `sink`, as a target.
fn postern_target(name: &str, sink: CountingSink, p: Posternd, recipients: usize) -> Target {
    let (addr, pid) = (p.addr, p.pid());
    Target::new(name, sink, addr, Some(pid), recipients, p)
}

/// `writeln!` into a String (cannot fail).
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out, $($arg)*);
    }};
}

fn main() {
    if !peers_available(
        "crypto bench",
        &[
            Peer::SmtpSource,
            Peer::SmtpSink,
            Peer::Postfix,
            Peer::Openssl,
            Peer::Gpg,
        ],
    ) || !root_available("crypto bench")
    {
        return;
    }
    let tick = 100.0;
    // RSA before and after the in-process signing, so drift hits both alike.
    eprintln!("crypto bench: openssl speed rsa2048 …");
    let rsa_before = openssl_rsa2048_sign();
    eprintln!("crypto bench: in-process S/MIME sign …");
    let (sign, raw) = postern_sign();
    eprintln!("crypto bench: openssl speed rsa2048 again …");
    let rsa = (rsa_before + openssl_rsa2048_sign()) / 2.0;

    // POSTERN_BENCH_SIGN_ONLY=1: only the in-process figures (a quick check while tuning).
    let sign_only = std::env::var("POSTERN_BENCH_SIGN_ONLY").is_ok_and(|v| v == "1");
    eprintln!("crypto bench: starting targets …");
    let mut scenarios = Vec::new();
    if !sign_only {
        let partner = OpensslCa::new("Bench Partner CA");
        let gpg = Gpg::new();
        gpg.generate(TO);
        {
            let sink = CountingSink::start();
            let pf = Postfix::start("bench-crypto-relay", &PostfixOptions::relay_to(sink.port));
            let addr = pf.addr();
            scenarios.push(Target::new(
                "Postfix relay (queue, fsync)",
                sink,
                addr,
                None,
                1,
                pf,
            ));
        }
        {
            let sink = CountingSink::start();
            let p = posternd(&sink, false);
            scenarios.push(postern_target("posternd pass-through", sink, p, 1));
        }
        {
            let sink = CountingSink::start();
            let p = posternd(&sink, true);
            scenarios.push(postern_target("posternd S/MIME sign", sink, p, 1));
        }
        for recipients in [1, 5] {
            let sink = CountingSink::start();
            let p = posternd(&sink, true);
            for i in 1..=recipients {
                let address = if i == 1 {
                    TO.to_owned()
                } else {
                    format!("{i}{TO}")
                };
                let files = partner.issue(&address);
                p.ctl(&["partner", "import", files.cert.to_str().expect("path")]);
            }
            let name = if recipients == 1 {
                "posternd S/MIME sign+encrypt, 1 recipient"
            } else {
                "posternd S/MIME sign+encrypt, 5 recipients"
            };
            scenarios.push(postern_target(name, sink, p, recipients));
        }
        {
            let sink = CountingSink::start();
            let p = posternd(&sink, true);
            let key = p.dir.join("to.asc");
            std::fs::write(&key, gpg.export(TO)).expect("key");
            p.ctl(&["partner", "import", key.to_str().expect("path")]);
            scenarios.push(postern_target(
                "posternd OpenPGP sign+encrypt, 1 recipient",
                sink,
                p,
                1,
            ));
        }
    }
    for round in 1..=ROUNDS {
        for s in scenarios.iter_mut() {
            eprintln!("crypto bench: round {round}/{ROUNDS}: {}", s.name);
            s.measure(&LOAD, tick);
        }
    }
    let postfix = scenarios.first().map_or(f64::NAN, |s| median(&s.rates));
    let pass = scenarios.get(1).map_or(f64::NAN, |s| median(&s.rates));
    let glue = sign / raw - 1.0;
    let mut out = String::new();
    outln!(
        out,
        "### Crypto cost ({} KB messages, {SESSIONS} sessions, median of {ROUNDS} rounds)\n",
        SIZE / 1024
    );
    outln!(out, "| Measure | Value |\n|---|---|");
    outln!(
        out,
        "| `openssl speed rsa2048`: one RSA-2048 signature | {:.3} ms |",
        rsa * 1e3
    );
    outln!(
        out,
        "| the same signature in posternd's process (OpenSSL via Rust; fastest of 30 batches) | {:.3} ms |",
        raw * 1e3
    );
    outln!(
        out,
        "| Postern S/MIME sign of a 10 KB entity, in process (fastest of 30 batches) | {:.3} ms |",
        sign * 1e3
    );
    outln!(
        out,
        "| Glue: S/MIME sign over the bare RSA signature (target ≤ 15 %) | {:+.1} % |",
        glue * 100.0
    );
    outln!(
        out,
        "| S/MIME sign over `openssl speed` | {:+.1} % |\n",
        (sign / rsa - 1.0) * 100.0
    );
    outln!(
        out,
        "| Through posternd | msgs/s | × pass-through | × Postfix relay | posternd CPU per message | CPU ÷ RSA sign |"
    );
    outln!(out, "|---|---:|---:|---:|---:|---:|");
    for s in &scenarios {
        let r = median(&s.rates);
        let cpu = median(&s.cpu_per_msg);
        let (cpu_ms, ratio) = if cpu.is_nan() {
            ("–".to_owned(), "–".to_owned())
        } else {
            (format!("{:.2} ms", cpu * 1e3), format!("{:.2}", cpu / rsa))
        };
        outln!(
            out,
            "| {} | {:.0} | {:.2} | {:.2} | {cpu_ms} | {ratio} |",
            s.name,
            r,
            r / pass,
            r / postfix
        );
    }
    use std::io::Write as _;
    std::io::stdout()
        .write_all(out.as_bytes())
        .expect("write report");
}
