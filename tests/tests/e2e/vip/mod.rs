//! Virtual-IP failover in network namespaces (TESTBED.md): three `posternd` members behind
//! a bridge, a client namespace with the downstream. The VIP's holder is SIGKILLed, hung
//! with SIGSTOP, partitioned from the other members, and cut off by its link: each time
//! the address moves, the client gets an SMTP greeting on it, and a sampler looking every
//! few milliseconds never sees two nodes holding it.

use postern_tests::peers::Peer;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use postern_tests::netns::{self, Lab, downstream, greeting, holders, holding, ip};
use postern_tests::postfix::{Postfix, PostfixOptions};
use postern_tests::sink::Sink;
use postern_tests::{peers_available, signal, wait_for};

const VIP: &str = netns::VIP;

/// Samples the holders until stopped; counts samples and the worst overlap.
struct Sampler {
    stop: Arc<AtomicBool>,
    samples: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start(lab: &Lab) -> Sampler {
        let (stop, samples, most) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let nodes = lab.nodes.clone();
        let (s, n, m) = (stop.clone(), samples.clone(), most.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let count = holding(&nodes).len();
                m.fetch_max(count, Ordering::Relaxed);
                n.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Sampler {
            stop,
            samples,
            most,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        (
            self.samples.load(Ordering::Relaxed),
            self.most.load(Ordering::Relaxed),
        )
    }
}

/// Waits for a new holder other than `old` and the client's greeting on the VIP;
/// returns the holder and how long it took.
fn moved(lab: &Lab, old: usize, since: Instant) -> (usize, Duration) {
    let new = wait_for(Duration::from_secs(15), || {
        let h = holders(lab);
        (h.len() == 1 && h[0] != old).then(|| h[0])
    })
    .expect("the VIP moved to another node");
    let greeted = wait_for(Duration::from_secs(10), || {
        greeting(lab, Duration::from_secs(1))
    });
    assert!(greeted.is_some(), "the client reaches the new holder");
    (new, since.elapsed())
}

#[test]
fn vip_moves_when_the_holder_is_killed_hung_partitioned_or_cut_and_never_has_two_holders() {
    if !netns::available("vip_failover") || !peers_available("vip_failover", &[Peer::SmtpSink]) {
        return;
    }
    let lab = Lab::new(3);
    let _down = downstream(&lab);
    let mut nodes = netns::cluster(&lab);
    nodes[0].ctl(&["vip", "add", VIP, "--interface", "eth0"]);
    let holder = wait_for(Duration::from_secs(15), || {
        let h = holders(&lab);
        (h.len() == 1).then(|| h[0])
    })
    .expect("one node takes the VIP");
    assert!(
        greeting(&lab, Duration::from_secs(1)).is_some(),
        "the client reaches the holder"
    );
    let listed = nodes[(holder + 1) % 3]
        .ctl_json(&["vip", "list"])
        .expect("list");
    assert_eq!(listed[0]["holder"], holder as u64 + 1, "{listed}");

    // The admin moves it to a follower (the leader renews the follower's lease over the
    // network from now on); it moves once the current lease ends, and stays.
    let leader = nodes[0].ctl_json(&["cluster", "status"]).expect("status")["leader"]
        .as_u64()
        .expect("leader") as usize
        - 1;
    let follower = (0..3)
        .find(|i| *i != leader && *i != holder)
        .expect("a follower");
    nodes[leader].ctl(&["vip", "move", VIP, "--to", &(follower + 1).to_string()]);
    let moved_to = wait_for(Duration::from_secs(10), || {
        (holders(&lab) == [follower]).then_some(())
    });
    assert!(moved_to.is_some(), "vip move: {:?}", holders(&lab));
    let holder = follower;
    // Steady state: the holder keeps the address through its lease renewals, no gaps.
    let steady = Instant::now();
    while steady.elapsed() < Duration::from_secs(3) {
        assert_eq!(
            holders(&lab),
            [holder],
            "the VIP flapped while its holder was fine"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let sampler = Sampler::start(&lab);
    // SIGKILL the holder.
    let t = Instant::now();
    nodes[holder].kill();
    let (holder2, took) = moved(&lab, holder, t);
    eprintln!("vip: SIGKILL failover {took:?}");
    nodes[holder].restart();

    // SIGSTOP the new holder: it keeps running in the kernel's eyes, but its address
    // lifetime runs out and another node takes over.
    let t = Instant::now();
    signal(nodes[holder2].pid(), "STOP");
    let (_, took) = moved(&lab, holder2, t);
    eprintln!("vip: SIGSTOP failover {took:?}");
    signal(nodes[holder2].pid(), "CONT");
    std::thread::sleep(Duration::from_secs(1));

    // Partition the holder from the other members (it still reaches the client): it
    // cannot renew, drops the address when its lease ends, and the majority moves it.
    let h = holders(&lab)[0];
    let peers: Vec<String> = (0..3)
        .filter(|i| *i != h)
        .map(|i| format!("{}/32", Lab::node_ip(i)))
        .collect();
    for p in &peers {
        ip(&["-n", &lab.nodes[h], "route", "add", "blackhole", p]);
    }
    let t = Instant::now();
    let (h2, took) = moved(&lab, h, t);
    eprintln!("vip: minority partition failover {took:?}");
    for p in &peers {
        ip(&["-n", &lab.nodes[h], "route", "del", "blackhole", p]);
    }
    std::thread::sleep(Duration::from_secs(2));

    // Cut the holder's link: the same, and after healing it does not take it back.
    let t = Instant::now();
    lab.link(&lab.nodes[h2], false);
    let (_, took) = moved(&lab, h2, t);
    eprintln!("vip: cut link failover {took:?}");
    lab.link(&lab.nodes[h2], true);
    std::thread::sleep(Duration::from_secs(2));

    let (samples, most) = sampler.finish();
    assert!(samples > 100, "the sampler ran ({samples} samples)");
    assert_eq!(most, 1, "two nodes held the VIP at once");
    assert_eq!(holders(&lab).len(), 1);
}

/// Mail keeps flowing through the VIP while its holder is killed again and again: a real
/// Postfix upstream in the client namespace sends a steady stream to the VIP; every message
/// reaches the downstream (duplicates are counted and reported, never a loss).
#[test]
fn vip_mail_continuity_while_the_holder_is_killed_repeatedly() {
    if !netns::available("vip_mail_continuity")
        || !peers_available(
            "vip_mail_continuity",
            &[Peer::SmtpSink, Peer::Postfix, Peer::Sendmail],
        )
    {
        return;
    }
    const MESSAGES: usize = 200;
    const KILLS: usize = 3;
    let lab = Lab::new(3);
    let sink = Sink::start_in(&lab.client, "198.18.0.2:2526");
    let mut nodes = netns::cluster(&lab);
    nodes[0].ctl(&["vip", "add", VIP, "--interface", "eth0"]);
    let ip = VIP.split('/').next().expect("ip");
    let mut opts = PostfixOptions::relay_to(2525);
    opts.relayhost = format!("[{ip}]:2525");
    opts.netns = Some(lab.client.clone());
    opts.listen_ip = Some("198.18.0.2".into());
    let upstream = Postfix::start("vip-upstream", &opts);
    wait_for(Duration::from_secs(15), || {
        (holders(&lab).len() == 1).then_some(())
    })
    .expect("a holder");

    // A steady stream (about 20 messages/s) while the holder is killed KILLS times.
    let submitter = {
        let target = upstream.submitter();
        std::thread::spawn(move || {
            for i in 0..MESSAGES {
                let body = format!(
                    "From: sender@corp.example\r\nTo: rcpt@else.example\r\nSubject: vip {i}\r\nX-Seq: {i}\r\nMessage-ID: <vip-{i}@test>\r\n\r\nmessage {i}\r\n"
                );
                Postfix::submit_with(&target, "sender@corp.example", "rcpt@else.example", &body);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    for _ in 0..KILLS {
        std::thread::sleep(Duration::from_millis(2_000));
        let Some(&holder) = holders(&lab).first() else {
            continue;
        };
        nodes[holder].kill();
        let t = Instant::now();
        let _ = moved(&lab, holder, t);
        nodes[holder].restart();
    }
    submitter.join().expect("submitter");

    // Everything the upstream holds arrives in the end.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen: HashMap<usize, usize> = HashMap::new();
    while Instant::now() < deadline {
        upstream.flush();
        seen = HashMap::new();
        for m in sink.messages() {
            if let Some(seq) = m.header("x-seq").and_then(|s| s.trim().parse().ok()) {
                *seen.entry(seq).or_default() += 1;
            }
        }
        if seen.len() == MESSAGES && upstream.queued() == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let missing: Vec<usize> = (0..MESSAGES).filter(|i| !seen.contains_key(i)).collect();
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    eprintln!(
        "vip_mail_continuity: {} of {MESSAGES} delivered through {KILLS} holder kills, {} missing, {duplicates} duplicate(s)",
        seen.len(),
        missing.len()
    );
    assert!(missing.is_empty(), "lost messages: {missing:?}");
    assert_eq!(upstream.queued(), 0, "the upstream still holds mail");
}

/// The documented privileges suffice: posternd as user nobody with only CAP_NET_ADMIN and
/// CAP_NET_RAW takes the VIP, announces it, and the client is greeted on it.
#[test]
fn vip_works_with_only_net_admin_and_net_raw() {
    if !netns::available("vip_capabilities")
        || !peers_available("vip_capabilities", &[Peer::SmtpSink, Peer::Setpriv])
    {
        return;
    }
    let lab = Lab::new(1);
    let _down = downstream(&lab);
    let ip = Lab::node_ip(0);
    let node = postern_tests::posternd::Posternd::start_in_with_net_caps(
        &lab.nodes[0],
        ([0, 0, 0, 0], 2525).into(),
        "198.18.0.2:2526",
        &format!("[cluster]\nlisten = \"{ip}:7946\"\n"),
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", node.pid())).expect("status");
    assert!(status.contains("CapEff:\t0000000000003000"), "{status}");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains("65534")),
        "{status}"
    );
    node.ctl(&["vip", "add", VIP, "--interface", "eth0"]);
    let held = wait_for(Duration::from_secs(15), || {
        (holders(&lab) == [0]).then_some(())
    });
    assert!(held.is_some(), "{}", node.log());
    assert!(
        greeting(&lab, Duration::from_secs(1)).is_some(),
        "{}",
        node.log()
    );
    let log = node.log();
    assert!(log.contains("took the virtual IP"), "{log}");
    assert!(!log.contains("gratuitous ARP not sent"), "{log}");
}
