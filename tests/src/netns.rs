//! Network namespaces for multi-node tests (TESTBED.md): a "switch" namespace holding a
//! bridge, and one namespace per node (and one for a client) wired to it by a veth pair,
//! with addresses from 198.18.0.0/24 — nothing is added to the host's own interfaces. Names
//! are unique per run; everything is deleted on drop (killing a namespace's processes is
//! the test's job: a process left inside keeps it alive).

use std::net::Ipv4Addr;
use std::process::{Child, Stdio};

use crate::peers::{Peer, exec_in};
use std::sync::atomic::{AtomicU32, Ordering};

/// Whether namespaces can be made here. Without root or `ip`, the test skips with a
/// reason, or fails when `REQUIRE_NETNS=1` (as in CI).
pub fn available(test: &str) -> bool {
    let reason = if !crate::is_root() {
        "needs root for network namespaces"
    } else if Peer::Ip.path().is_none() {
        "needs iproute2 (ip)"
    } else {
        return true;
    };
    crate::skip(&format!("{test}: skipped, {reason}"), "REQUIRE_NETNS")
}

/// The virtual IP the VIP tests and bench use.
pub const VIP: &str = "198.18.0.100/24";

/// Runs `ip ARGS`; panics with its error output when it fails.
pub fn ip(args: &[&str]) {
    let out = Peer::Ip.command().args(args).output().expect("run ip");
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

impl Lab {
    /// Every namespace of the lab: nodes, client, switch.
    pub fn namespaces(&self) -> impl Iterator<Item = &String> {
        self.nodes.iter().chain([&self.client, &self.switch])
    }

    /// The processes running in the lab's namespaces (`ip netns pids`).
    pub fn processes(&self) -> Vec<u32> {
        self.namespaces()
            .flat_map(|ns| {
                let out = Peer::Ip
                    .command()
                    .args(["netns", "pids", ns])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default();
                out.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect()
    }

    /// The kernel's identity of namespace `ns` (`net:[INODE]`), to find every process
    /// still inside it after its name is gone.
    pub fn identity(ns: &str) -> Option<std::path::PathBuf> {
        let meta = std::fs::metadata(format!("/run/netns/{ns}")).ok()?;
        Some(format!("net:[{}]", std::os::unix::fs::MetadataExt::ino(&meta)).into())
    }
}

/// Processes whose network namespace is `identity` (from [`Lab::identity`]).
pub fn processes_in_namespace(identity: &std::path::Path) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            (std::fs::read_link(e.path().join("ns/net")).ok()? == identity).then_some(pid)
        })
        .collect()
}

impl Drop for Lab {
    /// Deletes the namespaces. A process still inside one would keep it alive unseen: the
    /// helpers that started them must have ended them; any left are killed by PID here and
    /// the test fails (unless it is failing already).
    fn drop(&mut self) {
        let left = self.processes();
        for pid in &left {
            crate::signal(*pid, "KILL");
        }
        for ns in self.namespaces() {
            let _ = Peer::Ip.command().args(["netns", "del", ns]).output();
        }
        if !left.is_empty() && !std::thread::panicking() {
            panic!("processes left running in the lab's namespaces (killed now): {left:?}");
        }
    }
}

/// The downstream, in the client namespace (health: every node must reach it).
#[derive(Debug)]
pub struct Downstream(Child);

impl Drop for Downstream {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts smtp-sink on 198.18.0.2:2526 in the client namespace (stopped on drop).
pub fn downstream(lab: &Lab) -> Downstream {
    let child = exec_in(Some(&lab.client), Peer::SmtpSink.path().expect("smtp-sink"))
        .args(["-u", "nobody", "198.18.0.2:2526", "100"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start smtp-sink in the client namespace");
    Downstream(child)
}

/// Which node namespaces hold the VIP now.
pub fn holders(lab: &Lab) -> Vec<usize> {
    holding(&lab.nodes)
}

/// Which of `nodes` (namespace names) hold the VIP on eth0 now.
pub fn holding(nodes: &[String]) -> Vec<usize> {
    let ip = VIP.split('/').next().expect("ip");
    nodes
        .iter()
        .enumerate()
        .filter(|(_, ns)| {
            Peer::Ip
                .command()
                .args(["-n", ns, "-4", "-o", "addr", "show", "dev", "eth0"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("inet {ip}/")))
        })
        .map(|(i, _)| i)
        .collect()
}

/// The client's SMTP greeting on the VIP, if it gets one within `within` (short for
/// timing: a connection to an address nobody answers for waits out the whole time).
pub fn greeting(lab: &Lab, within: std::time::Duration) -> Option<String> {
    let ip = VIP.split('/').next().expect("ip");
    let secs = format!("{:.2}", within.as_secs_f64());
    let out = Peer::Ip
        .command()
        .args(["netns", "exec", &lab.client, "timeout", &secs, "bash", "-c"])
        .arg(format!("exec 3<>/dev/tcp/{ip}/2525; head -n 1 <&3"))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.starts_with("220 ").then_some(text)
}

/// Starts `posternd` in every node namespace (SMTP on port 2525 of every address, the
/// cluster port on the node's address, downstream: [`downstream`]) and joins them all to
/// the first with exported credentials; returns once all are voters.
pub fn cluster(lab: &Lab) -> Vec<crate::posternd::Posternd> {
    let nodes: Vec<crate::posternd::Posternd> = (0..lab.nodes.len())
        .map(|i| {
            let ip = Lab::node_ip(i);
            crate::posternd::Posternd::start_in(
                &lab.nodes[i],
                ([0, 0, 0, 0], 2525).into(),
                "198.18.0.2:2526",
                &format!("[cluster]\nlisten = \"{ip}:7946\"\n"),
            )
        })
        .collect();
    let first = format!("{}:7946", Lab::node_ip(0));
    for (i, p) in nodes.iter().enumerate().skip(1) {
        let creds = nodes[0].export_credentials(&i.to_string());
        p.join_cluster(&creds, &first).expect("join");
    }
    let all = crate::wait_for(std::time::Duration::from_secs(30), || {
        let s = nodes[0].ctl_json(&["cluster", "status"]).ok()?;
        (s["voters"].as_array()?.len() == nodes.len()).then_some(())
    });
    assert!(all.is_some(), "not every node became a voter");
    nodes
}
