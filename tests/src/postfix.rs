//! Private Postfix instances (TESTBED.md recipe): own config, queue and log directories,
//! smtpd on a 127.0.0.1 port, no chroot, relaying everything to one next hop. Used as the
//! upstream MTA (which queues and retries, like a company's mail server) and as a downstream.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::{Scratch, free_port, wait_for, which};

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
        }
    }
}

#[derive(Debug)]
pub struct Postfix {
    pub dir: Scratch,
    pub port: u16,
    config_dir: PathBuf,
    netns: Option<String>,
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
        let _ = Command::new("chown")
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
        let master = format!("{ip}:{port} inet n - n - - smtpd\n{SERVICES}");
        std::fs::write(dir.join("master.cf"), master).expect("master.cf");
        let config_dir = dir.path.clone();
        let postfix = which("postfix").expect("postfix installed");
        let mut command = match &options.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(postfix);
                c
            }
            None => Command::new(postfix),
        };
        let out = command
            .arg("-c")
            .arg(&config_dir)
            .arg("start")
            .output()
            .expect("run postfix start");
        let pf = Postfix {
            dir,
            port,
            config_dir,
            netns: options.netns.clone(),
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
    pub fn submit_with(
        (config_dir, netns): &(PathBuf, Option<String>),
        from: &str,
        to: &str,
        message: &str,
    ) {
        use std::io::Write as _;
        let sendmail = which("sendmail").expect("sendmail");
        let mut command = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(sendmail);
                c
            }
            None => Command::new(sendmail),
        };
        let mut child = command
            .arg("-C")
            .arg(config_dir)
            .args(["-f", from, "--", to])
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
        let _ = Command::new(which("postqueue").expect("postqueue"))
            .arg("-c")
            .arg(&self.config_dir)
            .arg("-f")
            .output();
    }
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
        let _ = Command::new(which("postfix").unwrap_or_else(|| "postfix".into()))
            .arg("-c")
            .arg(&self.config_dir)
            .arg("abort")
            .output();
    }
}
