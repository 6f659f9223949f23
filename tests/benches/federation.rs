//! What federation costs (issue 16): messages/s through `posternd` domain-encrypting to a
//! pinned partner domain key (OpenPGP, signed by our domain key), next to S/MIME
//! sign+encrypt to one recipient and pass-through, measured side by side; and what a partner
//! lookup adds to one RCPT: answered from the cache (target < 50 µs) and cold, against a
//! local validating resolver (unbound over a knot-signed zone on 127.0.0.1).
//!
//! `cargo bench -p postern-tests --bench federation` (or `scripts/bench.sh federation`).
//! Needs root, Postfix's smtp-source/smtp-sink, openssl, gpg, knot and unbound. Progress on
//! stderr, the Markdown report on stdout.
//!
//! RCPT cost: one session, blocks of 20 RCPTs (each block its own transaction, RSET between)
//! alternating between the measured kind and internal recipients (no lookup at all); the
//! cost is the difference of the medians. Cold recipients are in a new domain each, which
//! does not exist: the common case of mail to a domain that publishes nothing (NXDOMAIN,
//! DNSSEC-authenticated), four DNS questions (OPENPGPKEY, the policy TXT, the two WKD hosts).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use postern_tests::client::Client;
use postern_tests::dns::Dns;
use postern_tests::load::{CountingSink, Load, Target, median};
use postern_tests::peers::Peer;
use postern_tests::pki::{Gpg, OpensslCa};
use postern_tests::posternd::Posternd;
use postern_tests::{peers_available, root_available, wait_for};

const FROM: &str = "from@bench.test";
const TO: &str = "to@partner.test";
const ROUNDS: usize = 3;
const LOAD: Load = Load {
    from: FROM,
    to: TO,
    size: 10 * 1024,
    sessions: 4,
    pass: Duration::from_secs(5),
};
/// RCPTs per block, and blocks per kind.
const BLOCK: usize = 20;
const BLOCKS: usize = 25;

/// `writeln!` into a String (cannot fail).
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out, $($arg)*);
    }};
}

/// A posternd for bench.test relaying to `sink`, asking `dns` for partners.
fn posternd(sink: &CountingSink, dns: &Dns, crypto: bool) -> Posternd {
    let crypto = if crypto {
        "[crypto]\ninternal_domains = [\"bench.test\"]\npolicy_header = false\n"
    } else {
        ""
    };
    let extra = format!("{crypto}[federation]\nresolver = \"{}\"\n", dns.resolver());
    Posternd::start(&sink.addr(), "max_connections_per_ip = 500", &extra)
}

fn target(name: &str, sink: CountingSink, p: Posternd) -> Target {
    let (addr, pid) = (p.addr, p.pid());
    Target::new(name, sink, addr, Some(pid), 1, p)
}

/// Waits until posternd `p` holds a domain key for bench.test (made by its leader task).
fn domain_key(p: &Posternd) {
    let made = wait_for(Duration::from_secs(30), || {
        let l = p.ctl_json(&["domain", "list"]).ok()?;
        (!l[0]["keys"].as_array()?.is_empty()).then_some(())
    });
    assert!(made.is_some(), "no domain key for bench.test");
}

/// Round-trip times (µs) of `BLOCKS` blocks of `BLOCK` RCPTs to `rcpt(i)` and as many to
/// internal recipients, interleaved; (measured, internal).
fn rcpt_times(addr: SocketAddr, rcpt: &dyn Fn(usize) -> String) -> (Vec<f64>, Vec<f64>) {
    let mut c = Client::ready(addr);
    let (mut measured, mut internal) = (Vec::new(), Vec::new());
    let mut n = 0;
    for _ in 0..BLOCKS {
        for kind in [0, 1] {
            c.cmd(&format!("MAIL FROM:<{FROM}>"), 250);
            for _ in 0..BLOCK {
                let to = match kind {
                    0 => rcpt(n),
                    _ => format!("user{n}@bench.test"),
                };
                n += 1;
                let t = Instant::now();
                c.cmd(&format!("RCPT TO:<{to}>"), 250);
                let us = t.elapsed().as_secs_f64() * 1e6;
                if kind == 0 {
                    measured.push(us);
                } else {
                    internal.push(us);
                }
            }
            c.cmd("RSET", 250);
        }
    }
    c.cmd("QUIT", 221);
    (measured, internal)
}

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(((v.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

fn main() {
    let peers = [
        Peer::SmtpSource,
        Peer::SmtpSink,
        Peer::Openssl,
        Peer::Gpg,
        Peer::Knotd,
        Peer::Knotc,
        Peer::Keymgr,
        Peer::Unbound,
    ];
    if !peers_available("federation bench", &peers) || !root_available("federation bench") {
        return;
    }
    let tick = 100.0;
    eprintln!("federation bench: knot and unbound on 127.0.0.1 …");
    let dns = Dns::start(None, std::net::Ipv4Addr::LOCALHOST, &[]);
    dns.set("test.", &[]);

    eprintln!("federation bench: starting targets …");
    let mut targets = Vec::new();
    {
        let sink = CountingSink::start();
        let p = posternd(&sink, &dns, false);
        targets.push(target("posternd pass-through", sink, p));
    }
    {
        let partner = OpensslCa::new("Bench Partner CA");
        let sink = CountingSink::start();
        let p = posternd(&sink, &dns, true);
        p.ctl(&["user", "enrol", FROM]);
        let files = partner.issue(TO);
        p.ctl(&["partner", "import", files.cert.to_str().expect("path")]);
        targets.push(target("posternd S/MIME sign+encrypt, 1 recipient", sink, p));
    }
    let domain_encrypting = {
        let gpg = Gpg::new();
        gpg.generate("domainkey@partner.test");
        let sink = CountingSink::start();
        let p = posternd(&sink, &dns, true);
        domain_key(&p);
        let key = p.dir.join("partner.asc");
        std::fs::write(&key, gpg.export("domainkey@partner.test")).expect("key");
        p.ctl(&[
            "domain",
            "import",
            "partner.test",
            key.to_str().expect("path"),
        ]);
        let addr = p.addr;
        targets.push(target(
            "posternd domain-encrypted (OpenPGP, signed by the domain key)",
            sink,
            p,
        ));
        (addr, gpg)
    };
    for round in 1..=ROUNDS {
        for t in targets.iter_mut() {
            eprintln!("federation bench: round {round}/{ROUNDS}: {}", t.name);
            t.measure(&LOAD, tick);
        }
    }

    eprintln!("federation bench: RCPT cost, cached and cold …");
    let addr = domain_encrypting.0;
    let (cached, base_cached) = rcpt_times(addr, &|i| format!("user{i}@partner.test"));
    let run = std::process::id();
    let (cold, base_cold) = rcpt_times(addr, &|i| format!("user@cold{run}x{i}.test"));

    let pass = median(&targets[0].rates);
    let smime = median(&targets[1].rates);
    let mut out = String::new();
    outln!(
        out,
        "### Federation ({} KB messages, {} sessions, median of {ROUNDS} rounds)\n",
        LOAD.size / 1024,
        LOAD.sessions
    );
    outln!(
        out,
        "| Through posternd | msgs/s | × pass-through | × S/MIME sign+encrypt | CPU per message |"
    );
    outln!(out, "|---|---:|---:|---:|---:|");
    for t in &targets {
        let r = median(&t.rates);
        outln!(
            out,
            "| {} | {r:.0} | {:.2} | {:.2} | {:.2} ms |",
            t.name,
            r / pass,
            r / smime,
            median(&t.cpu_per_msg) * 1e3
        );
    }
    let row = |out: &mut String, what: &str, m: &[f64], base: &[f64]| {
        outln!(
            out,
            "| {what} | {:.0} µs | {:.0} µs | {:.0} µs | {:+.0} µs |",
            median(m),
            percentile(m, 0.95),
            median(base),
            median(m) - median(base)
        );
    };
    outln!(
        out,
        "\n| RCPT ({} each) | median | p95 | internal RCPT, same run | lookup cost |",
        BLOCK * BLOCKS
    );
    outln!(out, "|---|---:|---:|---:|---:|");
    row(
        &mut out,
        "partner domain, lookup cached (target < 50 µs)",
        &cached,
        &base_cached,
    );
    row(
        &mut out,
        "new domain each time, cold lookup (local unbound, NXDOMAIN)",
        &cold,
        &base_cold,
    );
    drop(domain_encrypting.1);
    use std::io::Write as _;
    std::io::stdout()
        .write_all(out.as_bytes())
        .expect("write report");
}
