//! Private Postfix instances (TESTBED.md recipe): own config, queue and log directories,
//! smtpd on a 127.0.0.1 port, no chroot, relaying everything to one next hop. Used as the
//! upstream MTA (which queues and retries, like a company's mail server) and as a downstream.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::peers::{Peer, exec_in};
use crate::{Scratch, free_port, wait_for};

/// Settings of one instance.
#[derive(Debug, Clone)]
pub struct PostfixOptions {
    /// Where all mail goes: `[127.0.0.1]:PORT`.
    pub relayhost: String,
    /// `smtp_tls_security_level` for its SMTP client (`none`, `may`, `encrypt`).
    pub client_tls: String,
    /// Server certificate and key files for STARTTLS on its smtpd.
    pub server_tls: Option<(PathBuf, PathBuf)>,
    /// More `main.cf` lines.
    pub extra: Vec<String>,
    /// Run inside this network namespace, smtpd on `listen_ip` (else 127.0.0.1).
    pub netns: Option<String>,
    pub listen_ip: Option<String>,
    /// More `master.cf` lines (services).
    pub master: Vec<String>,
}

impl PostfixOptions {
    pub fn relay_to(port: u16) -> PostfixOptions {
        PostfixOptions {
            relayhost: format!("[127.0.0.1]:{port}"),
            client_tls: "none".into(),
            server_tls: None,
            extra: Vec::new(),
            netns: None,
            listen_ip: None,
            master: Vec::new(),
        }
    }
}

#[derive(Debug)]
pub struct Postfix {
    pub dir: Scratch,
    pub port: u16,
    config_dir: PathBuf,
    netns: Option<String>,
    stopped: bool,
}

const SERVICES: &str = "\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
";

impl Postfix {
    /// Writes the configuration and starts the instance; its smtpd listens on `self.port`.
    pub fn start(name: &str, options: &PostfixOptions) -> Postfix {
        let dir = Scratch::new(&format!("postfix-{name}"));
        let d = dir.path.display().to_string();
        for sub in ["queue", "data"] {
            std::fs::create_dir_all(dir.join(sub)).expect("postfix dirs");
        }
        let _ = Peer::Chown
            .command()
            .arg("postfix")
            .arg(dir.join("data"))
            .status();
        let port = free_port();
        let ip = options
            .listen_ip
            .clone()
            .unwrap_or_else(|| "127.0.0.1".into());
        let mut main = vec![
            "compatibility_level = 3.6".to_owned(),
            format!("queue_directory = {d}/queue"),
            format!("data_directory = {d}/data"),
            "mail_owner = postfix".into(),
            "setgid_group = postdrop".into(),
            format!("inet_interfaces = {ip}"),
            "inet_protocols = ipv4".into(),
            format!("myhostname = {name}.test"),
            "mydestination =".into(),
            "local_recipient_maps =".into(),
            "local_transport = error:local delivery disabled".into(),
            format!("relayhost = {}", options.relayhost),
            "mynetworks = 127.0.0.0/8".into(),
            "smtpd_relay_restrictions = permit_mynetworks, reject".into(),
            "smtp_dns_support_level = disabled".into(),
            "alias_maps =".into(),
            "alias_database =".into(),
            "biff = no".into(),
            format!("maillog_file = {d}/maillog"),
            format!("maillog_file_prefixes = {d}"),
            // Retry quickly: tests wait for deferred mail.
            "queue_run_delay = 1s".into(),
            "minimal_backoff_time = 1s".into(),
            "maximal_backoff_time = 2s".into(),
            "smtp_connect_timeout = 5s".into(),
            format!("smtp_tls_security_level = {}", options.client_tls),
            "smtpd_forbid_bare_newline = reject".into(),
        ];
        if let Some((cert, key)) = &options.server_tls {
            main.push(format!("smtpd_tls_cert_file = {}", cert.display()));
            main.push(format!("smtpd_tls_key_file = {}", key.display()));
            main.push("smtpd_tls_security_level = may".into());
        }
        main.extend(options.extra.iter().cloned());
        std::fs::write(dir.join("main.cf"), main.join("\n") + "\n").expect("main.cf");
        let mut master = format!("{ip}:{port} inet n - n - - smtpd\n{SERVICES}");
        for line in &options.master {
            master.push_str(line);
            master.push('\n');
        }
        std::fs::write(dir.join("master.cf"), master).expect("master.cf");
        let config_dir = dir.path.clone();
        let out = control(
            options.netns.as_deref(),
            Peer::Postfix,
            &config_dir,
            &["start"],
        );
        let pf = Postfix {
            dir,
            port,
            config_dir,
            netns: options.netns.clone(),
            stopped: false,
        };
        assert!(
            out.status.success(),
            "postfix start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            pf.log()
        );
        if options.netns.is_none() {
            wait_for(Duration::from_secs(20), || {
                std::net::TcpStream::connect(("127.0.0.1", port)).ok()
            })
            .unwrap_or_else(|| panic!("postfix {name} smtpd not listening\n{}", pf.log()));
        } else {
            wait_for(Duration::from_secs(20), || {
                pf.dir.join("queue/pid/master.pid").exists().then_some(())
            })
            .unwrap_or_else(|| panic!("postfix {name} did not start\n{}", pf.log()));
        }
        pf
    }

    /// What [`Postfix::submit_with`] needs: configuration directory and namespace.
    pub fn submitter(&self) -> (PathBuf, Option<String>) {
        (self.config_dir.clone(), self.netns.clone())
    }

    /// Queues a message through the sendmail of the instance [`Postfix::submitter`] names
    /// (no network involved; from any thread).
    pub fn submit_with(target: &(PathBuf, Option<String>), from: &str, to: &str, message: &str) {
        Postfix::submit_to(target, from, &[to], message)
    }

    /// [`Postfix::submit_with`] for several recipients (one message, one queue file).
    pub fn submit_to(
        (config_dir, netns): &(PathBuf, Option<String>),
        from: &str,
        to: &[&str],
        message: &str,
    ) {
        use std::io::Write as _;
        let mut command = exec_in(netns.as_deref(), peer_path(Peer::Sendmail));
        let mut child = command
            .arg("-C")
            .arg(config_dir)
            .args(["-f", from, "--"])
            .args(to)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("run sendmail");
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(message.as_bytes())
                .expect("write to sendmail");
        }
        let status = child.wait().expect("sendmail");
        assert!(status.success(), "sendmail refused the message");
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("maillog")).unwrap_or_default()
    }

    /// Messages still in the queue (incoming, active, deferred, hold, maildrop).
    pub fn queued(&self) -> usize {
        ["incoming", "active", "deferred", "hold", "maildrop"]
            .iter()
            .map(|q| count_files(&self.dir.join("queue").join(q)))
            .sum()
    }

    /// Asks the queue manager to retry deferred mail now.
    pub fn flush(&self) {
        let out = control(
            self.netns.as_deref(),
            Peer::Postqueue,
            &self.config_dir,
            &["-f"],
        );
        assert!(
            out.status.success(),
            "postqueue -f: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The PID of the instance's master process, from its pid file.
    pub fn master_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("queue/pid/master.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// Stops the instance: `postfix abort` inside its namespace; if that fails or the master
    /// outlives it, the master is killed by the PID in its pid file (never by name). Returns
    /// once no process works in the instance's directory, or why not.
    pub fn stop(&mut self) -> Result<(), String> {
        if std::mem::replace(&mut self.stopped, true) {
            return Ok(());
        }
        let master = self.master_pid();
        let out = control(
            self.netns.as_deref(),
            Peer::Postfix,
            &self.config_dir,
            &["abort"],
        );
        let mut problem = (!out.status.success()).then(|| {
            format!(
                "postfix -c {} abort: {}",
                self.config_dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )
        });
        let gone = || crate::processes_in(&self.dir.path).is_empty().then_some(());
        if wait_for(Duration::from_secs(10), gone).is_none() {
            // The master's own process group holds its children: kill the master, then any
            // straggler still working in this instance's directory.
            if let Some(pid) = master {
                crate::signal(pid, "KILL");
            }
            if wait_for(Duration::from_secs(2), gone).is_none() {
                for (pid, _) in crate::processes_in(&self.dir.path) {
                    crate::signal(pid, "KILL");
                }
            }
            problem.get_or_insert_with(|| "postfix abort left processes".into());
        }
        match wait_for(Duration::from_secs(5), gone) {
            Some(()) => problem.map_or(Ok(()), |p| {
                eprintln!("postfix: {p}; ended by PID");
                Ok(())
            }),
            None => Err(format!(
                "{}: processes left after stopping: {:?}",
                problem.unwrap_or_default(),
                crate::processes_in(&self.dir.path)
            )),
        }
    }
}

/// Where a Postfix program is (panics with what installs it when it is not).
fn peer_path(peer: Peer) -> PathBuf {
    peer.path().unwrap_or_else(|| panic!("{}", peer.missing()))
}

/// Runs a Postfix control program (`postfix`, `postqueue`) for the instance configured in
/// `config_dir`, inside its namespace: Postfix checks `inet_interfaces` against the local
/// interfaces, so outside the namespace it refuses to act.
fn control(netns: Option<&str>, program: Peer, config_dir: &Path, args: &[&str]) -> Output {
    exec_in(netns, peer_path(program))
        .arg("-c")
        .arg(config_dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.program()))
}

fn count_files(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            Ok(_) => 1,
            Err(_) => 0,
        })
        .sum()
}

impl Drop for Postfix {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- postfix log ({}) ---\n{}",
                self.config_dir.display(),
                self.log()
            );
        }
        if let Err(e) = self.stop() {
            if std::thread::panicking() {
                eprintln!("postfix: {e}");
            } else {
                panic!("postfix: {e}");
            }
        }
    }
}
