//! Load tools shared by the benchmarks: a counting `smtp-sink`, `smtp-source` runs and
//! per-process CPU time.

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Child, Stdio};

use crate::peers::Peer;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{free_port, wait_for};
/// `smtp-sink` without dump files; its `-c` counter (`sess=… quit=… mesg=N\r` on stdout,
/// flushed per update) is followed by a thread. Killed by PID on drop.
#[derive(Debug)]
pub struct CountingSink {
    child: Child,
    pub port: u16,
    delivered: Arc<AtomicU64>,
}

impl CountingSink {
    pub fn start() -> CountingSink {
        let port = free_port();
        let mut child = Peer::SmtpSink
            .command()
            .args(["-u", "nobody", "-c"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("1024")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start smtp-sink");
        let mut out = child.stdout.take().expect("smtp-sink stdout");
        let delivered = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&delivered);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut line = Vec::new();
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                for &b in &buf[..n] {
                    if b == b'\r' || b == b'\n' {
                        if let Some(m) = parse_mesg(&line) {
                            counter.store(m, Ordering::Relaxed);
                        }
                        line.clear();
                    } else {
                        line.push(b);
                    }
                }
            }
        });
        wait_for(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        })
        .expect("smtp-sink did not start listening");
        CountingSink {
            child,
            port,
            delivered,
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }
}

fn parse_mesg(line: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(line).ok()?;
    text.split_whitespace()
        .find_map(|f| f.strip_prefix("mesg="))
        .and_then(|v| v.parse().ok())
}

impl Drop for CountingSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time of a process (user + system), from /proc/PID/stat.
pub fn process_cpu(pid: u32, tick: f64) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // fields after the ")" of comm: state is field 3, utime 14, stime 15
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| f.get(i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    Duration::from_secs_f64(ticks / tick)
}

/// Runs `smtp-source -d`; returns the wall clock or an error with its output.
/// `recipients` > 1 adds `-r`: smtp-source then also sends to `2<to>`, `3<to>`, ….
pub fn smtp_source(
    addr: SocketAddr,
    sessions: usize,
    count: u64,
    size: usize,
    (from, to, recipients): (&str, &str, usize),
) -> Result<f64, String> {
    let start = Instant::now();
    let mut child = Peer::SmtpSource
        .command()
        .arg("-d")
        .args(["-s", &sessions.to_string()])
        .args(["-m", &count.to_string()])
        .args(["-l", &size.to_string()])
        .args(["-f", from, "-t", to])
        .args(["-r", &recipients.to_string()])
        .arg(addr.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start smtp-source");
    let pid = child.id();
    let done = wait_for(Duration::from_secs(600), || child.try_wait().ok().flatten());
    let elapsed = start.elapsed().as_secs_f64();
    if done.is_none() {
        crate::signal(pid, "KILL");
        let _ = child.wait();
        return Err(format!("smtp-source to {addr} did not finish in 600 s"));
    }
    let out = child.wait_with_output().expect("smtp-source output");
    if !out.status.success() {
        return Err(format!(
            "smtp-source to {addr} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(elapsed)
}

/// What every measured pass sends: envelope, message size, parallel sessions, and how long
/// a pass should last (its message count is sized by a warm-up).
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub from: &'static str,
    pub to: &'static str,
    pub size: usize,
    pub sessions: usize,
    pub pass: Duration,
}

/// A system under test: where load goes, the sink that counts what it delivered, its PID
/// (for CPU time), and the figures of its passes so far. `keep` holds what must run while
/// it is measured (a posternd, a Postfix).
pub struct Target {
    pub name: String,
    pub addr: SocketAddr,
    pub sink: CountingSink,
    pub pid: Option<u32>,
    /// Recipients per message (smtp-source `-r`).
    pub recipients: usize,
    sent: u64,
    /// msgs/s of each pass.
    pub rates: Vec<f64>,
    /// CPU seconds of `pid` per message, each pass.
    pub cpu_per_msg: Vec<f64>,
    _keep: Box<dyn std::any::Any>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("addr", &self.addr)
            .field("rates", &self.rates)
            .finish_non_exhaustive()
    }
}

impl Target {
    pub fn new(
        name: &str,
        sink: CountingSink,
        addr: SocketAddr,
        pid: Option<u32>,
        recipients: usize,
        keep: impl std::any::Any,
    ) -> Target {
        Target {
            name: name.to_owned(),
            addr,
            sink,
            pid,
            recipients,
            sent: 0,
            rates: Vec::new(),
            cpu_per_msg: Vec::new(),
            _keep: Box::new(keep),
        }
    }

    /// Waits until the sink has counted everything sent (Postfix queues drain).
    fn settle(&self) {
        let ok = wait_for(Duration::from_secs(180), || {
            (self.sink.delivered() >= self.sent).then_some(())
        });
        assert!(
            ok.is_some(),
            "{}: {} of {} delivered",
            self.name,
            self.sink.delivered(),
            self.sent
        );
    }

    /// One pass: a warm-up of 20 messages sizes the count so the pass lasts `load.pass`;
    /// records msgs/s and CPU per message (`tick`: clock ticks per second).
    pub fn measure(&mut self, load: &Load, tick: f64) {
        let envelope = (load.from, load.to, self.recipients);
        let warm = 20;
        let secs =
            smtp_source(self.addr, load.sessions, warm, load.size, envelope).expect("warm-up");
        self.sent += warm;
        self.settle();
        let count = ((warm as f64 / secs) * load.pass.as_secs_f64()).clamp(50.0, 20_000.0) as u64;
        let cpu0 = self.pid.map(|p| process_cpu(p, tick));
        let secs = smtp_source(self.addr, load.sessions, count, load.size, envelope).expect("pass");
        self.sent += count;
        self.settle();
        let cpu1 = self.pid.map(|p| process_cpu(p, tick));
        self.rates.push(count as f64 / secs);
        if let (Some(a), Some(b)) = (cpu0, cpu1) {
            self.cpu_per_msg.push((b - a).as_secs_f64() / count as f64);
        }
    }
}

/// The median (NaN for none).
pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}
