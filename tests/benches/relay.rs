//! Throughput and end-of-DATA latency of `posternd` in pass-through against Postfix baselines.
//!
//! `cargo bench -p postern-tests --bench relay` (or `scripts/bench.sh`). Needs root and
//! Postfix (`postfix`, `smtp-source`, `smtp-sink`). For every cell of the matrix (message
//! size × parallel sessions) it measures five targets, interleaved so that drift on a shared
//! machine hits them alike:
//!
//! - `smtp-sink` directly;
//! - a private Postfix relay (queue, fsync) with `relayhost` = a sink;
//! - a private Postfix before-queue proxy, `smtpd_proxy_filter` = a sink. Postfix never
//!   queues in this mode (it logs `NOQUEUE … proxy-accept`): the filter is meant to re-inject
//!   the mail into a second smtpd, so this is Postfix smtpd as a queue-less proxy;
//! - "proxy+queue", the documented before-queue topology with a no-op filter: the front smtpd
//!   proxies to an after-filter smtpd of the same instance, which queues (fsync) before it
//!   answers; the instance then delivers with `default_transport = discard`;
//! - `posternd` (release build, default configuration) relaying to a sink.
//!
//! msgs/s is the wall clock of `smtp-source -d` sending a fixed count (sized by a warm-up run
//! so each pass takes a few seconds); the sinks' counters (`smtp-sink -c`, no dump files) and
//! the Postfix queues are checked afterwards. End-of-DATA latency is a separate pass with a
//! small blocking client (one thread per session): time from writing the final `CRLF.CRLF`
//! to reading the reply. Progress goes to stderr, the Markdown report to stdout.

use postern_tests::peers::Peer;
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use postern_tests::client::Client;
use postern_tests::load::{CountingSink, process_cpu, smtp_source};
use postern_tests::posternd::Posternd;
use postern_tests::postfix::{Postfix, PostfixOptions};
use postern_tests::{free_port, peers_available, root_available, wait_for};

const FROM: &str = "from@bench.example";
const TO: &str = "to@bench.example";
const SIZES: [usize; 2] = [10 * 1024, 100 * 1024];
const SESSIONS: [usize; 2] = [1, 20];
/// How long the delivered counts may lag behind the senders (Postfix queues drain).
const SETTLE: Duration = Duration::from_secs(180);

#[derive(Debug)]
enum Kind {
    Direct,
    Relay(Postfix),
    Proxy(Postfix),
    /// Proxy to an after-filter smtpd that queues; delivered by `discard` (no sink).
    ProxyQueue(Postfix),
    Postern(Posternd),
}

/// One system under test and what it must have delivered so far.
#[derive(Debug)]
struct Target {
    name: &'static str,
    addr: SocketAddr,
    sink: Option<CountingSink>,
    kind: Kind,
    /// Messages sent to it so far (all passes); the sink must count as many.
    sent: u64,
}

impl Target {
    /// Waits until everything sent so far was delivered (counted by the sink, or for the
    /// queueing proxy by discard's `status=sent` log lines) and any Postfix queue is empty.
    /// Returns how long that took.
    fn settle(&self) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            let queued = match &self.kind {
                Kind::Relay(pf) | Kind::Proxy(pf) | Kind::ProxyQueue(pf) => pf.queued(),
                Kind::Direct | Kind::Postern(_) => 0,
            };
            let delivered = match (&self.sink, &self.kind) {
                (Some(sink), _) => sink.delivered(),
                // the log is only read once the queue is empty
                (None, Kind::ProxyQueue(pf)) if queued == 0 => {
                    pf.log().matches("status=sent").count() as u64
                }
                (None, _) => 0,
            };
            if delivered == self.sent && queued == 0 {
                return Ok(start.elapsed());
            }
            if delivered > self.sent {
                return Err(format!(
                    "{}: sink counted {delivered} messages, only {} were sent",
                    self.name, self.sent
                ));
            }
            if start.elapsed() > SETTLE {
                return Err(format!(
                    "{}: after {SETTLE:?} {delivered} of {} messages delivered, {queued} still queued",
                    self.name, self.sent
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Busy and total jiffies of the whole machine, from /proc/stat.
fn host_cpu() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

fn proc_status(pid: u32, key: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_owned()))
        .unwrap_or_else(|| "?".into())
}

/// A message like smtp-source's: a few headers, then `size` bytes of 80-byte lines.
fn message(size: usize) -> Vec<u8> {
    let mut m = format!(
        "From: <{FROM}>\r\nTo: <{TO}>\r\nSubject: bench\r\nMessage-Id: <bench@bench.example>\r\n\r\n"
    )
    .into_bytes();
    let mut body = 0;
    let mut n = 0usize;
    while body < size {
        let len = (size - body).min(80);
        let mut line = format!("{}", n % 10).into_bytes();
        line.resize(len.saturating_sub(2).max(1), b'X');
        line.extend_from_slice(b"\r\n");
        body += line.len();
        m.extend_from_slice(&line);
        n += 1;
    }
    m
}

/// End-of-DATA latency pass: `sessions` threads, `per_session` messages each. Returns the
/// sorted latencies in milliseconds.
fn latency_pass(
    addr: SocketAddr,
    sessions: usize,
    per_session: u64,
    body: &[u8],
) -> Result<Vec<f64>, String> {
    let results: Vec<Result<Vec<f64>, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..sessions)
            .map(|_| {
                s.spawn(move || -> Result<Vec<f64>, String> {
                    let mut c = Client::ready(addr);
                    let mut lat = Vec::with_capacity(per_session as usize);
                    for _ in 0..per_session {
                        c.cmd(&format!("MAIL FROM:<{FROM}>"), 250);
                        c.cmd(&format!("RCPT TO:<{TO}>"), 250);
                        c.cmd("DATA", 354);
                        c.raw(body);
                        let t0 = Instant::now();
                        c.raw(b".\r\n");
                        let r = c.read_reply().ok_or("no end-of-data reply")?;
                        lat.push(t0.elapsed().as_secs_f64() * 1000.0);
                        if r.code != 250 {
                            return Err(format!("end of data: {r}"));
                        }
                    }
                    c.cmd("QUIT", 221);
                    Ok(lat)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("latency client panicked".into()))
            })
            .collect()
    });
    let mut all = Vec::new();
    for r in results {
        all.extend(r?);
    }
    all.sort_by(f64::total_cmp);
    Ok(all)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[derive(Debug, Clone)]
struct Cell {
    size: usize,
    sessions: usize,
    target: &'static str,
    count: u64,
    secs: f64,
    rate: f64,
    p50: f64,
    p99: f64,
    samples: usize,
    host_busy: f64,
    /// posternd CPU per message (µs), Postern only.
    cpu_per_msg_us: Option<f64>,
    /// Time the delivered count lagged behind smtp-source's end (queue drain).
    drain: Duration,
}

fn kb(size: usize) -> String {
    format!("{} KB", size / 1024)
}

fn measure(
    t: &mut Target,
    size: usize,
    sessions: usize,
    pass_secs: f64,
    tick: f64,
) -> Result<Cell, String> {
    let label = format!("[{}, {sessions} sess] {}", kb(size), t.name);
    // Warm-up, also sizing the measured run.
    let warm = (sessions as u64 * 10).max(50);
    let warm_secs = smtp_source(t.addr, sessions, warm, size, (FROM, TO, 1))?;
    t.sent += warm;
    t.settle()?;
    let per = sessions as u64;
    let size_for = |rate: f64| (((rate * pass_secs) as u64).clamp(per * 20, 100_000) / per) * per;
    let mut count = size_for(warm as f64 / warm_secs);

    let pid = match &t.kind {
        Kind::Postern(p) => Some(p.pid()),
        _ => None,
    };
    // A cold warm-up underestimates the rate: a pass much shorter than asked is rerun
    // with a count sized from it (and so counts as more warm-up).
    let mut attempt = 0;
    let (secs, drain, host_busy, cpu_per_msg_us) = loop {
        attempt += 1;
        let cpu0 = pid.map(|p| process_cpu(p, tick));
        let host0 = host_cpu();
        let secs = smtp_source(t.addr, sessions, count, size, (FROM, TO, 1))?;
        let host1 = host_cpu();
        let cpu1 = pid.map(|p| process_cpu(p, tick));
        t.sent += count;
        let drain = t.settle()?;
        if secs < pass_secs * 0.6 && attempt < 3 {
            count = size_for(count as f64 / secs);
            continue;
        }
        let host_busy = 100.0 * (host1.0 - host0.0) as f64 / (host1.1 - host0.1).max(1) as f64
            * std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let cpu_per_msg_us = match (cpu0, cpu1) {
            (Some(a), Some(b)) => Some((b - a).as_secs_f64() * 1e6 / count as f64),
            _ => None,
        };
        break (secs, drain, host_busy, cpu_per_msg_us);
    };
    let rate = count as f64 / secs;

    let lat_total = ((rate * pass_secs * 0.7) as u64).clamp(300, 20_000);
    let per_session = lat_total.div_ceil(per);
    let body = message(size);
    let lat = latency_pass(t.addr, sessions, per_session, &body)?;
    t.sent += per_session * per;
    t.settle()?;
    let cell = Cell {
        size,
        sessions,
        target: t.name,
        count,
        secs,
        rate,
        p50: percentile(&lat, 50.0),
        p99: percentile(&lat, 99.0),
        samples: lat.len(),
        host_busy,
        cpu_per_msg_us,
        drain,
    };
    eprintln!(
        "{label}: {:.0} msg/s ({count} in {secs:.2} s, host CPU {:.0}%{}), drain {:.2} s; \
         end-of-DATA p50 {:.2} ms p99 {:.2} ms ({} samples)",
        cell.rate,
        cell.host_busy,
        cell.cpu_per_msg_us
            .map(|c| format!(", posternd {c:.0} µs CPU/msg"))
            .unwrap_or_default(),
        drain.as_secs_f64(),
        cell.p50,
        cell.p99,
        cell.samples
    );
    Ok(cell)
}

fn command_output(program: Peer, args: &[&str]) -> String {
    program
        .command()
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "?".into())
}

fn main() {
    let started = Instant::now();
    if !root_available("bench relay")
        || !peers_available(
            "bench relay",
            &[Peer::Postfix, Peer::SmtpSource, Peer::SmtpSink],
        )
    {
        return;
    }
    let pass_secs: f64 = std::env::var("POSTERN_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3.0);
    let tick: f64 = command_output(Peer::Getconf, &["CLK_TCK"])
        .parse()
        .unwrap_or(100.0);

    eprintln!("building posternd (release) …");
    let bin = postern_tests::posternd::binary();
    eprintln!("posternd: {}", bin.display());

    let direct_sink = CountingSink::start();
    let relay_sink = CountingSink::start();
    let proxy_sink = CountingSink::start();
    let postern_sink = CountingSink::start();

    let relay = Postfix::start("bench-relay", &PostfixOptions::relay_to(relay_sink.port));
    let mut proxy_opts = PostfixOptions::relay_to(proxy_sink.port);
    proxy_opts.extra = vec![format!("smtpd_proxy_filter = {}", proxy_sink.addr())];
    let proxy = Postfix::start("bench-proxy", &proxy_opts);
    let proxy_queue = start_queueing_proxy();
    let postern = Posternd::start(&postern_sink.addr(), "", "");
    let postern_pid = postern.pid();

    let mut targets = vec![
        Target {
            name: "smtp-sink direct",
            addr: SocketAddr::from(([127, 0, 0, 1], direct_sink.port)),
            sink: Some(direct_sink),
            kind: Kind::Direct,
            sent: 0,
        },
        Target {
            name: "Postfix relay",
            addr: relay.addr(),
            sink: Some(relay_sink),
            kind: Kind::Relay(relay),
            sent: 0,
        },
        Target {
            name: "Postfix proxy",
            addr: proxy.addr(),
            sink: Some(proxy_sink),
            kind: Kind::Proxy(proxy),
            sent: 0,
        },
        Target {
            name: "Postfix proxy+queue",
            addr: proxy_queue.addr(),
            sink: None,
            kind: Kind::ProxyQueue(proxy_queue),
            sent: 0,
        },
        Target {
            name: "posternd",
            addr: postern.addr,
            sink: Some(postern_sink),
            kind: Kind::Postern(postern),
            sent: 0,
        },
    ];

    let mut cells = Vec::new();
    let mut errors = Vec::new();
    for &size in &SIZES {
        for &sessions in &SESSIONS {
            for t in targets.iter_mut() {
                match measure(t, size, sessions, pass_secs, tick) {
                    Ok(c) => cells.push(c),
                    Err(e) => {
                        eprintln!("[{}, {sessions} sess] {}: FAILED: {e}", kb(size), t.name);
                        errors.push(format!(
                            "{}, {sessions} sessions, {}: {e}",
                            kb(size),
                            t.name
                        ));
                    }
                }
            }
        }
    }
    let hwm = proc_status(postern_pid, "VmHWM:");
    let rss = proc_status(postern_pid, "VmRSS:");
    let postern_cpu = process_cpu(postern_pid, tick);
    let total: Vec<String> = targets
        .iter()
        .map(|t| format!("{} {}", t.name, t.sent))
        .collect();
    let elapsed = started.elapsed();

    let report = render(
        &cells,
        &errors,
        &hwm,
        &rss,
        postern_cpu,
        &total,
        elapsed,
        pass_secs,
    );
    std::io::stdout()
        .write_all(report.as_bytes())
        .expect("write report");
    eprintln!("bench done in {:.0} s", elapsed.as_secs_f64());
    drop(targets);
    if !errors.is_empty() {
        std::process::exit(1);
    }
}

/// Postfix's documented before-queue layout with a no-op filter: the front smtpd proxies
/// to an after-filter smtpd of the same instance (`-o smtpd_proxy_filter=`, XFORWARD allowed,
/// SMTPD_PROXY_README's `receive_override_options`), which queues; delivery is `discard`.
fn start_queueing_proxy() -> Postfix {
    let after = free_port();
    let mut opts = PostfixOptions::relay_to(after);
    opts.extra = vec![
        format!("smtpd_proxy_filter = 127.0.0.1:{after}"),
        "default_transport = discard:bench".into(),
    ];
    let pf = Postfix::start("bench-proxyq", &opts);
    let master = pf.dir.join("master.cf");
    let mut text = std::fs::read_to_string(&master).expect("read master.cf");
    text.push_str(&format!(
        "127.0.0.1:{after} inet n - n - - smtpd\n  -o smtpd_proxy_filter=\n  \
         -o smtpd_authorized_xforward_hosts=127.0.0.0/8\n  \
         -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks\n"
    ));
    std::fs::write(&master, text).expect("write master.cf");
    let out = Peer::Postfix
        .command()
        .arg("-c")
        .arg(&pf.dir.path)
        .arg("reload")
        .output()
        .expect("postfix reload");
    assert!(
        out.status.success(),
        "postfix reload failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", after)).ok()
    })
    .unwrap_or_else(|| panic!("after-filter smtpd not listening\n{}", pf.log()));
    pf
}

#[allow(clippy::too_many_arguments)]
fn render(
    cells: &[Cell],
    errors: &[String],
    hwm: &str,
    rss: &str,
    postern_cpu: Duration,
    totals: &[String],
    elapsed: Duration,
    pass_secs: f64,
) -> String {
    let mut o = String::new();
    let mut line = |s: String| {
        o.push_str(&s);
        o.push('\n');
    };
    line("# Postern relay benchmark".into());
    line(String::new());
    line(format!(
        "Host: {} cores, {}; Postfix {}; posternd {} (release); run took {:.0} s.",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        command_output(Peer::Uname, &["-sr"]),
        command_output(Peer::Postconf, &["-dh", "mail_version"]),
        command_output(Peer::Git, &["describe", "--always", "--dirty"]),
        elapsed.as_secs_f64()
    ));
    line(String::new());
    line(
        "Targets: **smtp-sink direct**; **Postfix relay** (private instance, queue + fsync, \
         relayhost = smtp-sink); **Postfix proxy** (private instance, `smtpd_proxy_filter` = \
         smtp-sink; in this mode Postfix itself never queues — it logs `NOQUEUE … \
         proxy-accept` and expects the filter to re-inject — so this is Postfix smtpd as a \
         queue-less proxy, the like-for-like comparison); **Postfix proxy+queue** \
         (SMTPD_PROXY_README's layout with a no-op filter: the front smtpd proxies to an \
         after-filter smtpd of the same instance, which queues with fsync before answering; \
         the instance then delivers with `default_transport = discard`); **posternd** \
         (pass-through, default configuration, relaying to smtp-sink). Sinks run \
         `smtp-sink -c` without `-d`."
            .into(),
    );
    line(format!(
        "msgs/s: wall clock of `smtp-source -d -s SESSIONS -m COUNT -l SIZE` after a warm-up \
         run that sized COUNT for ~{pass_secs} s (a pass under 60% of that is rerun, larger); \
         delivered counts checked and Postfix queues empty after every pass; drain = time \
         from smtp-source's end until then. Latency: separate pass, own client, one thread per \
         session, from writing the final CRLF.CRLF to reading the reply. Host CPU: busy % \
         during the msgs/s pass (100% = one core)."
    ));
    line(String::new());
    line("| size | sessions | target | msgs/s | p50 ms | p99 ms | sent (wall s) | latency samples | host CPU % | drain s |".into());
    line("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|".into());
    for c in cells {
        line(format!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {} ({:.1}) | {} | {:.0} | {:.2} |",
            kb(c.size),
            c.sessions,
            c.target,
            c.rate,
            c.p50,
            c.p99,
            c.count,
            c.secs,
            c.samples,
            c.host_busy,
            c.drain.as_secs_f64()
        ));
    }
    line(String::new());
    line("Ratios (goal from the issue: posternd msgs/s ≥ 0.6 × direct and ≥ 2 × Postfix proxy, checked against **Postfix proxy**; for p50 a ratio above 1 means posternd is slower):".into());
    line(String::new());
    line("| size | sessions | msgs/s posternd/direct | msgs/s posternd/proxy | msgs/s posternd/proxy+queue | p50 posternd/direct | p50 posternd/proxy | p50 posternd/proxy+queue | goal met |".into());
    line("|---|---:|---:|---:|---:|---:|---:|---:|---|".into());
    for &size in &SIZES {
        for &sessions in &SESSIONS {
            let find = |name: &str| {
                cells
                    .iter()
                    .find(|c| c.size == size && c.sessions == sessions && c.target == name)
            };
            let (Some(d), Some(x), Some(p)) = (
                find("smtp-sink direct"),
                find("Postfix proxy"),
                find("posternd"),
            ) else {
                line(format!(
                    "| {} | {sessions} | – | – | – | – | – | – | incomplete |",
                    kb(size)
                ));
                continue;
            };
            let (q_rate, q_p50) = find("Postfix proxy+queue").map_or_else(
                || ("–".to_owned(), "–".to_owned()),
                |q| {
                    (
                        format!("{:.2}", p.rate / q.rate),
                        format!("{:.2}", p.p50 / q.p50),
                    )
                },
            );
            let rd = p.rate / d.rate;
            let rx = p.rate / x.rate;
            let goal = match (rd >= 0.6, rx >= 2.0) {
                (true, true) => "yes".to_owned(),
                (a, b) => format!(
                    "no ({})",
                    [
                        (!a).then_some("< 0.6 × direct"),
                        (!b).then_some("< 2 × proxy")
                    ]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(", ")
                ),
            };
            line(format!(
                "| {} | {sessions} | {rd:.2} | {rx:.2} | {q_rate} | {:.2} | {:.2} | {q_p50} | {goal} |",
                kb(size),
                p.p50 / d.p50,
                p.p50 / x.p50
            ));
        }
    }
    line(String::new());
    let per_msg: Vec<String> = cells
        .iter()
        .filter_map(|c| {
            c.cpu_per_msg_us
                .map(|u| format!("{} × {}: {u:.0} µs", kb(c.size), c.sessions))
        })
        .collect();
    line(format!(
        "posternd: peak RSS (VmHWM) {hwm}, RSS at end {rss}, CPU {:.1} s over the run; \
         CPU per message in the msgs/s pass: {}.",
        postern_cpu.as_secs_f64(),
        per_msg.join("; ")
    ));
    line(format!(
        "Messages per target over the run (warm-up + msgs/s + latency passes), all counted as delivered (sinks; discard log for proxy+queue): {}.",
        totals.join(", ")
    ));
    if !errors.is_empty() {
        line(String::new());
        line("**Failures:**".into());
        for e in errors {
            line(format!("- {e}"));
        }
    }
    o
}
