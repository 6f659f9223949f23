//! DESIGN.md §3 invariant 4: a real Postfix upstream sends 1,000 messages through Postern
//! to smtp-sink while `posternd` is killed with SIGKILL and restarted at random instants.
//! Every message must arrive; duplicates (possible only between the downstream's 250 and
//! ours) are counted and reported.

use postern_tests::peers::Peer;
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use postern_tests::client::Client;
use postern_tests::posternd::Posternd;
use postern_tests::postfix::{Postfix, PostfixOptions};
use postern_tests::sink::Sink;
use postern_tests::{peers_available, root_available};

const MESSAGES: usize = 1000;
const SENDERS: usize = 4;

/// xorshift64*: repeatable with the printed seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

#[test]
fn relay_crash_safety_sigkill_loses_no_message() {
    if !peers_available("relay_crash_safety", &[Peer::Postfix, Peer::SmtpSink])
        || !root_available("relay_crash_safety")
    {
        return;
    }
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    eprintln!("relay_crash_safety: seed {seed} (CRASH_SEED={seed} repeats the kill schedule)");
    let mut rng = Rng(seed);

    let sink = Sink::start(&[]);
    let mut postern = Posternd::start(&sink.addr(), "", "");
    let mut opts = PostfixOptions::relay_to(postern.addr.port());
    opts.client_tls = "may".into();
    let upstream = Postfix::start("upstream", &opts);

    // Inject the messages into the upstream's queue from several connections.
    let upstream_addr = upstream.addr();
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            std::thread::spawn(move || {
                let mut c = Client::ready(upstream_addr);
                for i in (s..MESSAGES).step_by(SENDERS) {
                    let body = format!("Subject: crash {i}\r\nX-Seq: {i}\r\nMessage-ID: <crash-{i}@test>\r\n\r\nmessage {i}\r\n");
                    let r = c.send_mail("sender@corp.example", &["rcpt@else.example"], &body);
                    assert_eq!(r.code, 250, "upstream refused message {i}: {r}");
                }
                c.cmd("QUIT", 221);
            })
        })
        .collect();

    // Kill posternd at random instants while mail flows.
    let start = Instant::now();
    let mut kills = 0;
    while kills < 6 || !senders.iter().all(|s| s.is_finished()) {
        std::thread::sleep(Duration::from_millis(rng.range(150, 1200)));
        postern.kill();
        kills += 1;
        std::thread::sleep(Duration::from_millis(rng.range(0, 400)));
        postern.restart();
        if start.elapsed() > Duration::from_secs(120) {
            break;
        }
    }
    for s in senders {
        s.join().expect("sender thread");
    }
    eprintln!(
        "relay_crash_safety: {kills} SIGKILLs in {:?}",
        start.elapsed()
    );

    // Wait for the upstream to deliver everything it holds.
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut seen: HashMap<usize, usize> = HashMap::new();
    while Instant::now() < deadline {
        upstream.flush();
        seen = count(&sink);
        if seen.len() == MESSAGES && upstream.queued() == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    let missing: Vec<usize> = (0..MESSAGES).filter(|i| !seen.contains_key(i)).collect();
    let mut twice: Vec<usize> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(i, _)| *i)
        .collect();
    twice.sort_unstable();
    twice.truncate(10);
    if !twice.is_empty() {
        eprintln!("relay_crash_safety: delivered more than once (first 10): {twice:?}");
    }
    eprintln!(
        "relay_crash_safety: {} of {MESSAGES} delivered, {} missing, {duplicates} duplicate(s), upstream queue {}",
        seen.len(),
        missing.len(),
        upstream.queued()
    );
    assert!(missing.is_empty(), "lost messages: {missing:?}");
    assert_eq!(upstream.queued(), 0, "upstream still holds mail");
}

fn count(sink: &Sink) -> HashMap<usize, usize> {
    let mut seen = HashMap::new();
    for m in sink.messages() {
        if let Some(seq) = m.header("X-Seq").and_then(|s| s.parse::<usize>().ok()) {
            *seen.entry(seq).or_insert(0) += 1;
        }
    }
    seen
}
