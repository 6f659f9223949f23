//! Harness for Postern's end-to-end tests: real `posternd` processes, real Postfix
//! instances, `smtp-sink` downstreams and a small SMTP client with TLS.
//!
//! Everything listens on 127.0.0.1 ports picked per test. Processes are started by the
//! harness and ended by PID when their handle drops. Tests that need a peer which is not
//! installed skip with a printed reason, unless `REQUIRE_PEERS=1` (set by `.ci/run`), which
//! turns the skip into a failure.

pub mod browser;
pub mod client;
pub mod dns;
pub mod https;
pub mod layers;
pub mod load;
pub mod netns;
pub mod peers;
pub mod pki;
pub mod posternd;
pub mod postfix;
pub mod qemu;
pub mod sink;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Whether the programs a test needs are here. Prints the reason and returns false to skip;
/// panics instead when `REQUIRE_PEERS=1`.
pub fn peers_available(test: &str, peers: &[peers::Peer]) -> bool {
    let missing = peers::missing(peers);
    if missing.is_empty() {
        return true;
    }
    skip(
        &format!("{test}: skipped: {}", missing.join("; ")),
        "REQUIRE_PEERS",
    )
}

/// Prints why a test skips and returns false, or panics when the environment variable
/// `require` is 1 (CI sets it: there, a skip is a failure).
pub fn skip(reason: &str, require: &str) -> bool {
    if std::env::var(require).is_ok_and(|v| v == "1") {
        panic!("{reason}; {require}=1 makes this a failure");
    }
    eprintln!("{reason}");
    false
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Whether the test runs as root (Postfix instances need it).
pub fn root_available(test: &str) -> bool {
    is_root()
        || skip(
            &format!("{test}: skipped, needs root to run private Postfix instances"),
            "REQUIRE_PEERS",
        )
}

/// Finds a program in PATH or in the sbin directories Postfix uses.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().expect("local addr").port();
        // Avoid handing out the same port twice in one run.
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        if port != 0 && n < u32::MAX {
            return port;
        }
    }
}

/// A directory for one test, removed when dropped (kept when `KEEP_SCRATCH=1`).
#[derive(Debug)]
pub struct Scratch {
    pub path: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let base =
            std::env::var("POSTERN_TEST_DIR").unwrap_or_else(|_| "/tmp/postern-tests".into());
        let path = Path::new(&base).join(format!(
            "{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create scratch dir");
        Scratch { path }
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.path.join(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var("KEEP_SCRATCH").is_err_and(|_| !std::thread::panicking()) {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// LF → CRLF where a line ends in a bare LF (what an MTA does to a file it submits).
pub fn crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 30);
    for (i, b) in data.iter().enumerate() {
        if *b == b'\n' && (i == 0 || data[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(*b);
    }
    out
}

/// Polls `check` until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// chmod 777: a directory a peer that drops privileges (smtp-sink as nobody) writes into.
pub fn make_world_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))
        .unwrap_or_else(|e| panic!("chmod 777 {}: {e}", dir.display()));
}

/// Processes whose working directory is `dir` or below it (also when `dir` was deleted
/// meanwhile): PID and command name. How the harness finds what a peer left running.
pub fn processes_in(dir: &Path) -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cwd = std::fs::read_link(e.path().join("cwd")).ok()?;
            let cwd = cwd.to_str()?;
            let cwd = Path::new(cwd.strip_suffix(" (deleted)").unwrap_or(cwd));
            if !cwd.starts_with(dir) {
                return None;
            }
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            Some((pid, comm.trim().to_owned()))
        })
        .collect()
}

/// Whether process `pid` runs (a zombie, ended but not yet reaped by its parent, does not).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // The state follows the command name in parentheses.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// Sends a signal to a process we started, by PID.
pub fn signal(pid: u32, sig: &str) {
    let _ = peers::Peer::Kill
        .command()
        .args([format!("-{sig}"), pid.to_string()])
        .status();
}
