//! A DNSSEC world for the federation tests: knot signs the lab's zones (`test.` and the
//! child zones a test asks for) and serves them; unbound validates them with the `test.` key
//! as its trust anchor and answers with AD, or with SERVFAIL when a chain does not validate
//! — the validating resolver of a real site. In a network namespace they take ports 5300
//! (knot) and 53 (unbound) of an address there; on the host's 127.0.0.1 (benchmarks), free
//! ports. Records live one second and unbound caches nothing longer, so a zone change is
//! seen within a second or two.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Output, Stdio};
use std::time::Duration;

use crate::peers::{Peer, exec_in};
use crate::{Scratch, wait_for};

/// The lab's DNS: knotd and unbound, ended by PID when dropped.
#[derive(Debug)]
pub struct Dns {
    pub dir: Scratch,
    pub ip: Ipv4Addr,
    /// unbound's port.
    resolver_port: u16,
    knot: Option<Child>,
    unbound: Option<Child>,
}

impl Dns {
    /// Starts knotd for `test.` and `children` (zone names with the final dot, each its own
    /// signed zone; their delegation and DS records in `test.` are the test's to publish)
    /// and unbound, both in namespace `netns` on `ip` — or, without a namespace, on
    /// 127.0.0.1 at free ports.
    pub fn start(netns: Option<&str>, ip: Ipv4Addr, children: &[&str]) -> Dns {
        let (knot_port, resolver_port) = match netns {
            Some(_) => (5300, 53),
            None => (crate::free_port(), crate::free_port()),
        };
        let dir = Scratch::new("dns");
        let d = dir.path.display().to_string();
        for sub in ["knot/db", "knot/kasp", "knot/zones", "unbound"] {
            std::fs::create_dir_all(dir.join(sub)).expect("dns dirs");
        }
        let mut zones = vec!["test.".to_owned()];
        zones.extend(children.iter().map(|z| z.to_string()));
        let zone_list: String = zones.iter().map(|z| format!("  - domain: {z}\n")).collect();
        let conf = format!(
            "server:\n    rundir: \"{d}/knot\"\n    listen: {ip}@{knot_port}\n\
             database:\n    storage: \"{d}/knot/db\"\n    kasp-db: \"{d}/knot/kasp\"\n\
             log:\n  - target: stderr\n    any: info\n\
             policy:\n  - id: lab\n    algorithm: ecdsap256sha256\n    ksk-lifetime: 0\n    zsk-lifetime: 0\n    single-type-signing: on\n    nsec3: off\n\
             template:\n  - id: default\n    storage: \"{d}/knot/zones\"\n    dnssec-signing: on\n    dnssec-policy: lab\n    zonefile-sync: -1\n    zonefile-load: difference-no-serial\n    journal-content: all\n    semantic-checks: on\n\
             zone:\n{zone_list}"
        );
        std::fs::write(dir.join("knot/knot.conf"), conf).expect("knot.conf");
        let mut dns = Dns {
            dir,
            ip,
            resolver_port,
            knot: None,
            unbound: None,
        };
        for z in &zones {
            dns.write_zone(z, &[]);
        }
        let log = std::fs::File::create(dns.dir.join("knot/knotd.log")).expect("knot log");
        dns.knot = Some(
            exec_in(netns, Peer::Knotd.path().expect("knotd installed"))
                .arg("-c")
                .arg(dns.dir.join("knot/knot.conf"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start knotd"),
        );
        for z in &zones {
            wait_for(Duration::from_secs(20), || {
                let out = dns.knotc(&["zone-status", z]);
                String::from_utf8_lossy(&out.stdout)
                    .contains("serial:")
                    .then_some(())
            })
            .unwrap_or_else(|| panic!("knotd did not load {z}:\n{}", dns.log()));
        }
        let anchor = dns.ds("test.").into_iter().next().expect("a DS for test.");
        let unbound_conf = format!(
            "server:\n    interface: {ip}@{resolver_port}\n    access-control: 0.0.0.0/0 allow\n    do-not-query-localhost: no\n\
             username: \"\"\n    chroot: \"\"\n    directory: \"{d}/unbound\"\n    pidfile: \"\"\n\
             use-syslog: no\n    logfile: \"\"\n    do-daemonize: no\n    verbosity: 1\n    val-log-level: 2\n\
             cache-max-ttl: 1\n    cache-max-negative-ttl: 1\n    infra-host-ttl: 1\n\
             module-config: \"validator iterator\"\n    local-zone: \"test.\" nodefault\n\
             trust-anchor: \"{anchor}\"\n\
             stub-zone:\n    name: \"test.\"\n    stub-addr: {ip}@{knot_port}\n\
             remote-control:\n    control-enable: no\n"
        );
        std::fs::write(dns.dir.join("unbound/unbound.conf"), unbound_conf).expect("unbound.conf");
        let log = std::fs::File::create(dns.dir.join("unbound/unbound.log")).expect("log");
        dns.unbound = Some(
            exec_in(netns, Peer::Unbound.path().expect("unbound installed"))
                .arg("-d")
                .arg("-c")
                .arg(dns.dir.join("unbound/unbound.conf"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start unbound"),
        );
        wait_for(Duration::from_secs(20), || {
            dns.log().contains("start of service").then_some(())
        })
        .unwrap_or_else(|| panic!("unbound did not start:\n{}", dns.log()));
        dns
    }

    /// Where Postern asks: unbound.
    pub fn resolver(&self) -> SocketAddr {
        SocketAddr::from((self.ip, self.resolver_port))
    }

    fn write_zone(&self, zone: &str, records: &[String]) {
        let mut text = format!(
            "$ORIGIN {zone}\n$TTL 1\n@ SOA ns.test. hostmaster.test. 1 60 60 3600 1\n@ NS ns.test.\n"
        );
        if zone == "test." {
            text.push_str(&format!("ns.test. A {}\n", self.ip));
        }
        for r in records {
            text.push_str(r);
            text.push('\n');
        }
        std::fs::write(self.dir.join(&format!("knot/zones/{zone}zone")), text).expect("zone");
    }

    /// Replaces what `zone` holds besides its SOA and NS (zone-file lines, owner names
    /// absolute) and returns once knotd serves it signed.
    pub fn set(&self, zone: &str, records: &[String]) {
        self.write_zone(zone, records);
        let out = self.knotc(&["-b", "zone-reload", zone]);
        assert!(
            out.status.success(),
            "knotc zone-reload {zone}: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        // unbound's cache holds an answer at most a second.
        std::thread::sleep(Duration::from_millis(1_100));
    }

    /// `zone`'s DS records, as knot's keymgr prints them (`NAME DS TAG ALG TYPE DIGEST`).
    pub fn ds(&self, zone: &str) -> Vec<String> {
        let out = Peer::Keymgr
            .command()
            .arg("-c")
            .arg(self.dir.join("knot/knot.conf"))
            .args([zone, "ds"])
            .output()
            .expect("run keymgr");
        assert!(
            out.status.success(),
            "keymgr {zone} ds: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(" DS "))
            .map(str::to_owned)
            .collect()
    }

    fn knotc(&self, args: &[&str]) -> Output {
        Peer::Knotc
            .command()
            .arg("-c")
            .arg(self.dir.join("knot/knot.conf"))
            .args(args)
            .output()
            .expect("run knotc")
    }

    /// What knotd and unbound logged.
    pub fn log(&self) -> String {
        let read = |p: &str| std::fs::read_to_string(self.dir.join(p)).unwrap_or_default();
        format!(
            "--- knotd ---\n{}\n--- unbound ---\n{}",
            read("knot/knotd.log"),
            read("unbound/unbound.log")
        )
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log());
        }
        for child in [self.unbound.as_mut(), self.knot.as_mut()]
            .into_iter()
            .flatten()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
