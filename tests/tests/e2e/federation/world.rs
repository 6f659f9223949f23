//! The federation world: independent sites in network namespaces on one switch, each as a
//! real company would run it, and a DNSSEC-signed `test.` zone with a validating resolver.
//!
//! - `dns` (198.18.0.11): knot signs `test.`; unbound validates it (AD, or SERVFAIL).
//! - `a.test`: a two-node Postern cluster (198.18.0.12, .13) in front of its own Postfix.
//! - `b.test`: a one-node Postern cluster (198.18.0.14) in front of its own Postfix.
//! - `c.test`: plain Postfix (198.18.0.15) that publishes a domain key only by WKD
//!   (gpg-wks-server's tree served over HTTPS); it is also the MX of every other domain of
//!   the lab (unfederated ones, the hostile tests' partners, and `s.test`, another
//!   vendor's S/MIME gateway played by openssl), and its web server can serve their WKD
//!   trees.
//!
//! A site's Postfix is its mail server and MX: mail its users submit and mail from the
//! internet both pass its content filter, Postern (the after-queue filter pattern), which
//! hands what it accepts back to Postfix's reinjection port; Postfix then delivers the
//! domain's own mail to the site's mailbox (an smtp-sink) and routes the rest to the other
//! sites' MX by a transport table (no MX lookups). A tap keeps a copy of every message as it
//! arrived from the internet, before Postern touched it: what was on the wire.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use postern_tests::dns::Dns;
use postern_tests::netns::Lab;
use postern_tests::peers::{Peer, exec_in};
use postern_tests::pki::{Gpg, OpensslCa};
use postern_tests::posternd::Posternd;
use postern_tests::postfix::{Postfix, PostfixOptions};
use postern_tests::sink::{Sink, SunkMessage};
use postern_tests::{Scratch, wait_for};

/// The lab's namespaces, by index.
pub const DNS: usize = 0;
pub const A0: usize = 1;
pub const A1: usize = 2;
pub const B: usize = 3;
pub const C: usize = 4;

pub fn ip(node: usize) -> Ipv4Addr {
    Lab::node_ip(node)
}

const POSTERN_PORT: u16 = 2525;
const REINJECT_PORT: u16 = 10025;
const MAILBOX_PORT: u16 = 2601;
const TAP_PORT: u16 = 2602;
/// The address the tap copies go to.
const TAP: &str = "wire@tap.test";

/// The domains whose MX is the WKD-only site.
pub const AT_C: &[&str] = &[
    "c.test",
    "else.test",
    "d.test",
    "e.test",
    "huge.test",
    "wrong.test",
    "slow.test",
    "s.test",
];

/// Which site is the MX of each domain of the lab.
fn mx() -> Vec<(&'static str, usize)> {
    let mut mx = vec![("a.test", A0), ("b.test", B)];
    mx.extend(AT_C.iter().map(|d| (*d, C)));
    mx
}

/// One site: Postern nodes, Postfix, the mailboxes and the tap.
#[derive(Debug)]
pub struct Site {
    pub domain: &'static str,
    pub nodes: Vec<Posternd>,
    pub postfix: Postfix,
    pub mailbox: Sink,
    pub tap: Sink,
}

/// The WKD-only domain: Postfix, mailboxes, gpg with the domain key's secret, and the web
/// server publishing its WKD.
#[derive(Debug)]
pub struct WkdSite {
    pub postfix: Postfix,
    pub mailbox: Sink,
    pub gpg: Gpg,
    pub web: Web,
}

/// An HTTPS server (tests/peers/https_files.py) in a namespace, serving `dir/www`; ended
/// by PID on drop.
#[derive(Debug)]
pub struct Web {
    child: Child,
    pub dir: Scratch,
}

impl Web {
    /// Serves `dir/www` over HTTPS on `ip:443` in `netns` with `cert`/`key`, each answer
    /// `delay` seconds late.
    pub fn start(
        netns: &str,
        ip: Ipv4Addr,
        (cert, key): &(PathBuf, PathBuf),
        dir: Scratch,
        delay: f64,
    ) -> Web {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/https_files.py");
        let log = std::fs::File::create(dir.join("https-files.log")).expect("web log");
        let child = exec_in(Some(netns), Peer::Python3.path().expect("python3"))
            .arg(script)
            .arg("--listen")
            .arg(format!("{ip}:443"))
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .arg("--root")
            .arg(dir.join("www"))
            .arg("--delay")
            .arg(delay.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the HTTPS server");
        let web = Web { child, dir };
        wait_for(Duration::from_secs(15), || {
            web.log().contains("serving").then_some(())
        })
        .unwrap_or_else(|| panic!("the HTTPS server did not start: {}", web.log()));
        web
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("https-files.log")).unwrap_or_default()
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The whole world. Fields drop in order: sites and servers first, the namespaces last.
#[derive(Debug)]
pub struct World {
    pub a: Site,
    pub b: Site,
    pub c: WkdSite,
    pub dns: Dns,
    pub ca: OpensslCa,
    pub lab: Lab,
}

/// Postern's configuration on a node of `domain`'s site at `node`.
fn postern_config(node: usize, domain: &str, dns: &Dns, ca: &OpensslCa) -> String {
    let ip = ip(node);
    format!(
        "[cluster]\nlisten = \"{ip}:7946\"\n\
         [web]\nlisten = \"{ip}:443\"\n\
         [crypto]\ninternal_domains = [\"{domain}\"]\n\
         [federation]\nresolver = \"{}\"\nwkd_roots = \"{}\"\nrefresh = \"1s\"\nnegative_ttl = \"1s\"\nlookup_timeout = \"3s\"\nalert_to = \"postmaster@{domain}\"\n",
        dns.resolver(),
        ca.cert.display()
    )
}

/// A site's Postfix at `node`: delivers `local` domains to its mailbox, routes the others
/// to their MX; with `filters` (Postern nodes, first preferred) every message passes
/// Postern and comes back on the reinjection port.
fn site_postfix(lab: &Lab, name: &str, node: usize, local: &[&str], filters: &[usize]) -> Postfix {
    let me = ip(node);
    let mut routes: Vec<String> = mx()
        .into_iter()
        .map(|(d, mx)| match local.contains(&d) {
            true => format!("{d}=smtp:[{me}]:{MAILBOX_PORT}"),
            false => format!("{d}=smtp:[{}]:25", ip(mx)),
        })
        .collect();
    routes.push(format!("tap.test=smtp:[{me}]:{TAP_PORT}"));
    let mut o = PostfixOptions::relay_to(0);
    o.relayhost = String::new();
    o.netns = Some(lab.nodes[node].clone());
    o.listen_ip = Some(me.to_string());
    o.extra = vec![
        "mynetworks = 127.0.0.0/8, 198.18.0.0/24".into(),
        format!("transport_maps = inline:{{{}}}", routes.join(", ")),
    ];
    match filters.first() {
        Some(first) => {
            o.extra.push(format!(
                "content_filter = postern:[{}]:{POSTERN_PORT}",
                ip(*first)
            ));
            let fallback = filters
                .get(1)
                .map(|n| format!(" -o smtp_fallback_relay=[{}]:{POSTERN_PORT}", ip(*n)))
                .unwrap_or_default();
            o.master = vec![
                format!("postern unix - - n - 10 smtp{fallback}"),
                format!("{me}:25 inet n - n - - smtpd -o cleanup_service_name=tapcleanup"),
                format!("tapcleanup unix n - n - 0 cleanup -o always_bcc={TAP}"),
                format!(
                    "{me}:{REINJECT_PORT} inet n - n - - smtpd -o content_filter= -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters,no_address_mappings"
                ),
            ];
        }
        None => o.master = vec![format!("{me}:25 inet n - n - - smtpd")],
    }
    Postfix::start(name, &o)
}

fn site(lab: &Lab, domain: &'static str, nodes: &[usize], dns: &Dns, ca: &OpensslCa) -> Site {
    let first = nodes[0];
    let ns = &lab.nodes[first];
    let mailbox = Sink::start_in(ns, &format!("{}:{MAILBOX_PORT}", ip(first)));
    let tap = Sink::start_in(ns, &format!("{}:{TAP_PORT}", ip(first)));
    let postfix = site_postfix(lab, domain, first, &[domain], nodes);
    let posterns: Vec<Posternd> = nodes
        .iter()
        .map(|&n| {
            Posternd::start_in(
                &lab.nodes[n],
                (ip(n), POSTERN_PORT).into(),
                &format!("{}:{REINJECT_PORT}", ip(first)),
                &postern_config(n, domain, dns, ca),
            )
        })
        .collect();
    let leader = format!("{}:7946", ip(first));
    for (i, p) in posterns.iter().enumerate().skip(1) {
        let creds = posterns[0].export_credentials(&format!("{domain}-{i}"));
        p.join_cluster(&creds, &leader)
            .expect("join the site's cluster");
    }
    let voters = wait_for(Duration::from_secs(30), || {
        let s = posterns[0].ctl_json(&["cluster", "status"]).ok()?;
        (s["voters"].as_array()?.len() == nodes.len()).then_some(())
    });
    assert!(voters.is_some(), "{domain}: the cluster did not form");
    // The web listener presents a certificate of the lab's CA for the WKD host names.
    let (cert, key) = ca.issue_server(&[&format!("openpgpkey.{domain}"), domain]);
    posterns[0].ctl(&[
        "web-tls",
        "--cert",
        cert.to_str().expect("path"),
        "--key",
        key.to_str().expect("path"),
    ]);
    let site = Site {
        domain,
        nodes: posterns,
        postfix,
        mailbox,
        tap,
    };
    wait_for(Duration::from_secs(30), || site.domain_key())
        .unwrap_or_else(|| panic!("{domain} got no domain key"));
    site
}

impl Site {
    /// The site's OpenPGP domain keys as `domain list` shows them.
    fn domain_keys(&self) -> Option<Vec<serde_json::Value>> {
        let list = self.nodes[0].ctl_json(&["domain", "list"]).ok()?;
        let d = list
            .as_array()?
            .iter()
            .find(|d| d["domain"] == self.domain)?;
        d["keys"].as_array().cloned()
    }

    /// The fingerprint of the domain key that signs now, once there is one.
    pub fn domain_key(&self) -> Option<String> {
        let keys = self.domain_keys()?;
        let k = keys.iter().find(|k| k["current"] == true)?;
        k["fingerprint"].as_str().map(str::to_owned)
    }

    /// The fingerprint of the newest domain key (published, perhaps not signing yet).
    pub fn newest_domain_key(&self) -> Option<String> {
        let keys = self.domain_keys()?;
        let k = keys.iter().max_by_key(|k| k["created"].as_u64())?;
        k["fingerprint"].as_str().map(str::to_owned)
    }

    /// What `posternctl domain dns-records` prints for the site's domain.
    pub fn dns_records(&self) -> Vec<String> {
        let r = self.nodes[0]
            .ctl_json(&["domain", "dns-records", self.domain])
            .expect("dns-records");
        r["records"]
            .as_array()
            .expect("records")
            .iter()
            .filter_map(|l| l.as_str().map(str::to_owned))
            .collect()
    }

    /// What is pinned for partner `domain` (as `domain partners` lists it), if anything.
    pub fn pinned(&self, node: usize, domain: &str) -> Option<serde_json::Value> {
        let list = self.nodes[node].ctl_json(&["domain", "partners"]).ok()?;
        list.as_array()?
            .iter()
            .find(|p| p["domain"] == domain)
            .cloned()
    }

    /// Submits a message from `from` (a user of this site) to `to`, with Message-ID
    /// `<ID@DOMAIN>` and `body`.
    pub fn send(&self, from: &str, to: &[&str], id: &str, body: &str) {
        let message = format!(
            "From: <{from}>\r\nTo: {}\r\nSubject: {id}\r\nMessage-ID: <{id}@{}>\r\n\r\n{body}\r\n",
            to.iter()
                .map(|t| format!("<{t}>"))
                .collect::<Vec<_>>()
                .join(", "),
            self.domain
        );
        Postfix::submit_to(&self.postfix.submitter(), from, to, &message);
    }
}

/// The message sent with id `id` among `messages`.
pub fn with_id<'a>(messages: &'a [SunkMessage], id: &str) -> Option<&'a SunkMessage> {
    let needle = format!("<{id}@");
    messages.iter().find(|m| {
        m.header("message-id")
            .is_some_and(|v| v.starts_with(&needle))
    })
}

/// Waits for the message with id `id` in `sink`, flushing `queues` meanwhile.
pub fn arrives(
    sink: &Sink,
    id: &str,
    queues: &[&Postfix],
    within: Duration,
) -> Option<SunkMessage> {
    let mut last_flush = std::time::Instant::now();
    wait_for(within, || {
        if last_flush.elapsed() > Duration::from_secs(1) {
            for q in queues {
                q.flush();
            }
            last_flush = std::time::Instant::now();
        }
        with_id(&sink.messages(), id).cloned()
    })
}

impl World {
    /// Builds the world: DNS (with `children` as extra signed zones), the two Postern sites
    /// and the WKD-only site. The `test.` zone holds only the name server and the WKD host
    /// names of c.test; what the sites publish is each test's to add.
    pub fn new(children: &[&str]) -> World {
        let lab = Lab::new(5);
        let dns = Dns::start(Some(&lab.nodes[DNS]), ip(DNS), children);
        let ca = OpensslCa::new("Federation lab WebPKI");
        let a = site(&lab, "a.test", &[A0, A1], &dns, &ca);
        let b = site(&lab, "b.test", &[B], &dns, &ca);
        let c = wkd_site(&lab, &ca);
        World {
            a,
            b,
            c,
            dns,
            ca,
            lab,
        }
        .published(&[])
    }

    /// The `test.` zone: the WKD-only site's host names plus `records`.
    pub fn zone(&self, records: &[String]) {
        let mut all = vec![
            format!("c.test. A {}", ip(C)),
            format!("openpgpkey.c.test. A {}", ip(C)),
        ];
        all.extend(records.iter().cloned());
        self.dns.set("test.", &all);
    }

    fn published(self, records: &[String]) -> World {
        self.zone(records);
        self
    }

    /// The records that make a site findable: its DNS records and its WKD host names.
    pub fn site_records(site: &Site, node: usize) -> Vec<String> {
        let mut r = site.dns_records();
        r.push(format!("{}. A {}", site.domain, ip(node)));
        r.push(format!("openpgpkey.{}. A {}", site.domain, ip(node)));
        r
    }

    /// Every Postfix of the world (to flush).
    pub fn queues(&self) -> [&Postfix; 3] {
        [&self.a.postfix, &self.b.postfix, &self.c.postfix]
    }
}

impl WkdSite {
    /// The WKD hash of `domainkey` (what gpg-wks-server named c.test's key file).
    pub fn domain_key_hash(&self) -> String {
        let hu = self.web.dir.join("wks/c.test/hu");
        std::fs::read_dir(&hu)
            .expect("hu")
            .flatten()
            .next()
            .and_then(|e| e.file_name().to_str().map(str::to_owned))
            .expect("c.test's key file")
    }

    /// Serves `data` as `domain`'s domain key by WKD (advanced method), from this site's
    /// web server: the hostile partners' answers.
    pub fn serve_wkd_key(&self, domain: &str, data: &[u8]) {
        let dir = self
            .web
            .dir
            .join(&format!("www/.well-known/openpgpkey/{domain}/hu"));
        std::fs::create_dir_all(&dir).expect("hu dir");
        std::fs::write(dir.join(self.domain_key_hash()), data).expect("key file");
    }
}

fn wkd_site(lab: &Lab, ca: &OpensslCa) -> WkdSite {
    let ns = &lab.nodes[C];
    let mailbox = Sink::start_in(ns, &format!("{}:{MAILBOX_PORT}", ip(C)));
    let postfix = site_postfix(lab, "c.test", C, AT_C, &[]);
    // The domain key, made by gpg and installed into a WKD tree by gpg-wks-server.
    let gpg = Gpg::new();
    gpg.generate("domainkey@c.test");
    let key = gpg.home.join("domainkey.pgp");
    std::fs::write(&key, gpg.must(&["--export", "domainkey@c.test"], b"")).expect("key");
    let dir = Scratch::new("wkd-c");
    let wks = dir.join("wks");
    std::fs::create_dir_all(wks.join("c.test")).expect("wks dir");
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&wks, std::fs::Permissions::from_mode(0o750)).expect("chmod");
    }
    let out = Peer::GpgWksServer
        .command()
        .env("GNUPGHOME", &gpg.home.path)
        .arg("-C")
        .arg(&wks)
        .arg("--install-key")
        .arg(&key)
        .arg("domainkey@c.test")
        .output()
        .expect("run gpg-wks-server");
    assert!(
        out.status.success(),
        "gpg-wks-server --install-key: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Advanced (openpgpkey.c.test/.well-known/openpgpkey/c.test/…) and direct
    // (c.test/.well-known/openpgpkey/…) method from the one tree.
    let well_known = dir.join("www/.well-known/openpgpkey");
    std::fs::create_dir_all(&well_known).expect("well-known");
    std::os::unix::fs::symlink(wks.join("c.test"), well_known.join("c.test")).expect("link");
    std::os::unix::fs::symlink(wks.join("c.test/hu"), well_known.join("hu")).expect("link");
    std::os::unix::fs::symlink(wks.join("c.test/policy"), well_known.join("policy")).expect("link");
    // Its certificate names every domain it may serve a WKD for — b.test too: the hostile
    // tests play an attacker with a valid WebPKI certificate for a partner's WKD host.
    let names: Vec<String> = AT_C
        .iter()
        .chain(&["b.test"])
        .flat_map(|d| [format!("openpgpkey.{d}"), d.to_string()])
        .collect();
    let tls = ca.issue_server(&names.iter().map(String::as_str).collect::<Vec<_>>());
    let web = Web::start(ns, ip(C), &tls, dir, 0.0);
    WkdSite {
        postfix,
        mailbox,
        gpg,
        web,
    }
}
