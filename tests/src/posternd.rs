//! Runs the real `posternd` binary with a per-test configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::peers::{Peer, exec_in};
use crate::{Scratch, free_port, wait_for};

/// Path of the `posternd` binary, built once per test run so tests never run a stale one.
pub fn binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/e2e-… → target/<profile>/posternd
        let profile_dir = exe
            .parent()
            .and_then(|p| p.parent())
            .expect("target dir")
            .to_owned();
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo); // own binary: cargo builds posternd
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "postern",
            "--bin",
            "posternd",
            "--bin",
            "posternctl",
        ]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build of posternd failed");
        profile_dir.join("posternd")
    })
    .clone()
}

/// A running `posternd`, killed (SIGKILL, by PID) when dropped.
#[derive(Debug)]
pub struct Posternd {
    child: Option<Child>,
    pub addr: SocketAddr,
    /// Where its HTTPS server (GUI, API) listens: beside `addr`, on a port of its own
    /// (unless the test's configuration has a `[web]` section).
    pub web: SocketAddr,
    pub dir: Scratch,
    downstream: String,
    starts: u32,
    /// The network namespace it runs in (None: the test's own).
    netns: Option<String>,
    /// Arguments of setpriv, which it runs under to drop privileges (empty: not under setpriv).
    wrapper: Vec<String>,
}

/// The host name every test instance uses (in its certificate and greeting).
pub const HOSTNAME: &str = "postern.test";

impl Posternd {
    /// Starts `posternd` relaying to `downstream`, with `extra` TOML appended to the
    /// configuration file (sections other than `[server]`; `server_extra` goes inside it).
    pub fn start(downstream: &str, server_extra: &str, extra: &str) -> Posternd {
        // Every posternd is a cluster member: give each its own cluster port unless the
        // test configures one.
        let cluster = if extra.contains("[cluster]") {
            String::new()
        } else {
            format!("[cluster]\nlisten = \"127.0.0.1:{}\"\n", free_port())
        };
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        Posternd::launch(
            None,
            addr,
            downstream,
            &format!("{server_extra}\n{extra}\n{cluster}"),
        )
    }

    /// Starts `posternd` inside network namespace `netns`, accepting SMTP on `addr` (an
    /// address of that namespace); `extra` as in [`Posternd::start`] and it must configure
    /// `[cluster]`. `posternctl` still reaches it through its data directory.
    pub fn start_in(netns: &str, addr: SocketAddr, downstream: &str, extra: &str) -> Posternd {
        Posternd::launch(Some(netns), addr, downstream, extra)
    }

    /// [`Posternd::start_in`] as user `nobody` with only CAP_NET_ADMIN and CAP_NET_RAW
    /// (what the README documents for virtual IPs).
    pub fn start_in_with_net_caps(
        netns: &str,
        addr: SocketAddr,
        downstream: &str,
        extra: &str,
    ) -> Posternd {
        const CAPS: &str = "-all,+net_admin,+net_raw";
        let wrapper = [
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            &format!("--inh-caps={CAPS}"),
            &format!("--ambient-caps={CAPS}"),
            &format!("--bounding-set={CAPS}"),
            "--",
        ]
        .map(str::to_owned)
        .to_vec();
        Posternd::launch_with(Some(netns), addr, downstream, extra, wrapper)
    }

    fn launch(netns: Option<&str>, addr: SocketAddr, downstream: &str, body: &str) -> Posternd {
        Posternd::launch_with(netns, addr, downstream, body, Vec::new())
    }

    fn launch_with(
        netns: Option<&str>,
        addr: SocketAddr,
        downstream: &str,
        body: &str,
        wrapper: Vec<String>,
    ) -> Posternd {
        let dir = Scratch::new("posternd");
        if !wrapper.is_empty() {
            // The unprivileged daemon owns its directory.
            let _ = Peer::Chown
                .command()
                .args(["-R", "65534:65534"])
                .arg(&dir.path)
                .status();
        }
        let web = SocketAddr::new(addr.ip(), free_port());
        let web_section = if body.contains("[web]") {
            String::new()
        } else {
            format!("\n[web]\nlisten = \"{web}\"\n")
        };
        // Tests stay off the network: partner lookups go to a resolver that refuses at
        // once (nothing listens on port 9), unless the test runs one of its own.
        let federation_section = if body.contains("[federation]") {
            ""
        } else {
            "\n[federation]\nresolver = \"127.0.0.1:9\"\n"
        };
        let config =
            format!("[server]\nhostname = \"{HOSTNAME}\"\n{body}{web_section}{federation_section}");
        std::fs::write(dir.join("postern.toml"), config).expect("write config");
        let mut p = Posternd {
            child: None,
            addr,
            web,
            dir,
            downstream: downstream.to_owned(),
            starts: 0,
            netns: netns.map(str::to_owned),
            wrapper,
        };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log = std::fs::File::create(self.dir.join(&format!("posternd.{}.log", self.starts)))
            .expect("log file");
        // `ip netns exec` and setpriv exec what follows: the PID stays posternd's.
        let mut command = match self.wrapper.is_empty() {
            true => exec_in(self.netns.as_deref(), binary()),
            false => {
                let setpriv = Peer::Setpriv.path().expect("setpriv installed");
                let mut c = exec_in(self.netns.as_deref(), setpriv);
                c.args(&self.wrapper).arg(binary());
                c
            }
        };
        let child = command
            .arg("--config")
            .arg(self.dir.join("postern.toml"))
            .arg("--listen")
            .arg(self.addr.to_string())
            .arg("--downstream")
            .arg(&self.downstream)
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .env(
                "POSTERN_LOG",
                std::env::var("POSTERN_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start posternd");
        self.child = Some(child);
        let ready = wait_for(Duration::from_secs(20), || {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("posternd exited at start ({status}):\n{}", self.log());
            }
            self.current_log().contains("posternd ready").then_some(())
        });
        assert!(
            ready.is_some(),
            "posternd did not get ready:\n{}",
            self.log()
        );
    }

    fn current_log(&self) -> String {
        std::fs::read_to_string(self.dir.join(&format!("posternd.{}.log", self.starts)))
            .unwrap_or_default()
    }

    /// All log output of every start so far.
    pub fn log(&self) -> String {
        (1..=self.starts)
            .map(|i| {
                std::fs::read_to_string(self.dir.join(&format!("posternd.{i}.log")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n--- restart ---\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// SIGKILL, like a crash or power loss.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits up to `timeout` for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        crate::signal(child.id(), "TERM");
        wait_for(timeout, || child.try_wait().ok().flatten())
    }

    /// Starts again on the same address and data directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The self-signed certificate generated on first start.
    pub fn certificate_pem(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("data/tls/server.crt")).expect("generated certificate")
    }

    /// The base URL of its GUI and API.
    pub fn web_url(&self) -> String {
        format!("https://{}", self.web)
    }

    /// An HTTPS client of its GUI and API that trusts exactly its self-signed certificate.
    pub fn web_client(&self) -> crate::https::Client {
        let pem = std::fs::read_to_string(self.dir.join("data/web/self-signed.crt"))
            .expect("the web server's self-signed certificate");
        crate::https::Client::pinned(self.web, &pem).expect("HTTPS client")
    }
}

impl Drop for Posternd {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- posternd log ---\n{}", self.log());
        }
    }
}

impl Posternd {
    /// Runs `posternctl` against this instance; panics with its stderr when it fails.
    pub fn ctl(&self, args: &[&str]) -> String {
        let out = self.ctl_output(args);
        assert!(
            out.status.success(),
            "posternctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `posternctl cluster export-credentials` into `creds-NAME.json` in this node's
    /// directory; returns the file.
    pub fn export_credentials(&self, name: &str) -> PathBuf {
        let creds = self.dir.join(&format!("creds-{name}.json"));
        self.ctl(&[
            "cluster",
            "export-credentials",
            "-o",
            creds.to_str().expect("path"),
        ]);
        creds
    }

    /// `posternctl cluster join` with `creds` through the member at `peer`.
    pub fn join_cluster(
        &self,
        creds: &std::path::Path,
        peer: &str,
    ) -> Result<serde_json::Value, String> {
        self.ctl_json(&[
            "cluster",
            "join",
            "--credentials",
            creds.to_str().expect("path"),
            "--peer",
            peer,
        ])
    }

    /// `posternctl --json ARGS`: the data of a successful answer, or its error message.
    pub fn ctl_json(&self, args: &[&str]) -> Result<serde_json::Value, String> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.ctl_output(&all);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|_| String::from_utf8_lossy(&out.stderr).into_owned())?;
        if v["ok"].as_bool() == Some(true) {
            Ok(v["data"].clone())
        } else {
            Err(v["error"].as_str().unwrap_or("?").to_owned())
        }
    }

    /// Runs `posternctl` against this instance and returns whatever happened.
    pub fn ctl_output(&self, args: &[&str]) -> Output {
        let ctl = binary().with_file_name("posternctl");
        Command::new(ctl) // own binary
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .args(args)
            .output()
            .expect("run posternctl")
    }
}

/// Runs `posternd` with arguments to completion (for start-up error tests).
pub fn run(args: &[&str], timeout: Duration) -> Output {
    let mut child = Command::new(binary()) // own binary
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start posternd");
    let pid = child.id();
    let done = wait_for(timeout, || child.try_wait().ok().flatten());
    if done.is_none() {
        crate::signal(pid, "KILL");
        panic!("posternd {args:?} did not exit within {timeout:?}");
    }
    child.wait_with_output().expect("posternd output")
}
