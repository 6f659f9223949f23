//! Network namespaces for multi-node tests (TESTBED.md): a "switch" namespace holding a
//! bridge, and one namespace per node (and one for a client) wired to it by a veth pair,
//! with addresses from 198.18.0.0/24 — nothing is added to the host's own interfaces. Names
//! are unique per run; everything is deleted on drop (killing a namespace's processes is
//! the test's job: a process left inside keeps it alive).

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Whether namespaces can be made here. Without root or `ip`, the test skips with a
/// reason, or fails when `REQUIRE_NETNS=1` (as in CI).
pub fn available(test: &str) -> bool {
    let reason = if !crate::is_root() {
        "needs root for network namespaces"
    } else if crate::which("ip").is_none() {
        "needs iproute2 (ip)"
    } else {
        return true;
    };
    crate::skip(&format!("{test}: skipped, {reason}"), "REQUIRE_NETNS")
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A switch with nodes and a client.
#[derive(Debug)]
pub struct Lab {
    switch: String,
    /// Node namespaces, in order; node `i` has address `node_ip(i)`.
    pub nodes: Vec<String>,
    pub client: String,
}

impl Lab {
    /// A switch, `n` node namespaces (198.18.0.11, .12, …) and a client (198.18.0.2).
    pub fn new(n: usize) -> Lab {
        static RUN: AtomicU32 = AtomicU32::new(0);
        let prefix = format!(
            "pt{}{}",
            std::process::id() % 100_000,
            (b'a' + (RUN.fetch_add(1, Ordering::Relaxed) % 26) as u8) as char
        );
        let switch = format!("{prefix}sw");
        ip(&["netns", "add", &switch]);
        let mut lab = Lab {
            switch: switch.clone(),
            nodes: Vec::new(),
            client: format!("{prefix}cl"),
        };
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &switch, "link", "set", "br0", "up"]);
        let client = lab.client.clone();
        lab.attach(&client, Ipv4Addr::new(198, 18, 0, 2));
        for i in 0..n {
            let ns = format!("{prefix}n{i}");
            lab.attach(&ns, Lab::node_ip(i));
            lab.nodes.push(ns);
        }
        lab
    }

    /// Node `i`'s address.
    pub fn node_ip(i: usize) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, 0, 11 + i as u8)
    }

    fn attach(&mut self, ns: &str, addr: Ipv4Addr) {
        ip(&["netns", "add", ns]);
        let (inner, outer) = (format!("{ns}a"), format!("{ns}b"));
        ip(&[
            "link", "add", &inner, "type", "veth", "peer", "name", &outer,
        ]);
        ip(&["link", "set", &inner, "netns", ns]);
        ip(&["link", "set", &outer, "netns", &self.switch]);
        ip(&["-n", ns, "link", "set", &inner, "name", "eth0"]);
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", ns, "link", "set", "eth0", "up"]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
        ip(&["-n", &self.switch, "link", "set", &outer, "master", "br0"]);
        ip(&["-n", &self.switch, "link", "set", &outer, "up"]);
    }

    /// Cuts (`false`) or restores (`true`) the link of namespace `ns` at the switch.
    pub fn link(&self, ns: &str, up: bool) {
        ip(&[
            "-n",
            &self.switch,
            "link",
            "set",
            &format!("{ns}b"),
            if up { "up" } else { "down" },
        ]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.nodes.iter().chain([&self.client, &self.switch]) {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}
