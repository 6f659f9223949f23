//! VIP failover time (issue: p99 ≤ 3 s over at least 20 trials; VRRP/CARP defaults take
//! 3–4 s): three posternd members in network namespaces, the VIP's holder SIGKILLed, and
//! the time from the kill to the client's first SMTP greeting on the VIP (from a client
//! namespace). The killed node is restarted between trials. Prints a Markdown table on
//! stdout, progress on stderr. Run with `scripts/bench.sh vip` (as root).

use postern_tests::peers::Peer;
use std::time::{Duration, Instant};

use postern_tests::netns::{self, Lab, VIP, downstream, greeting, holders};
use postern_tests::wait_for;

const TRIALS: usize = 20;

fn main() {
    if !netns::available("vip bench")
        || !postern_tests::peers_available("vip bench", &[Peer::SmtpSink])
    {
        return;
    }
    let lab = Lab::new(3);
    let _down = downstream(&lab);
    let mut nodes = netns::cluster(&lab);
    nodes[0].ctl(&["vip", "add", VIP, "--interface", "eth0"]);
    let mut times = Vec::new();
    for trial in 0..TRIALS {
        let holder = wait_for(Duration::from_secs(15), || {
            let h = holders(&lab);
            (h.len() == 1 && greeting(&lab, Duration::from_millis(200)).is_some()).then(|| h[0])
        })
        .expect("a holder that answers");
        let t = Instant::now();
        nodes[holder].kill();
        let greeted = wait_for(Duration::from_secs(20), || {
            greeting(&lab, Duration::from_millis(200)).filter(|_| !holders(&lab).contains(&holder))
        });
        assert!(greeted.is_some(), "trial {trial}: no failover");
        let took = t.elapsed();
        eprintln!("vip bench: trial {trial}: {took:?}");
        times.push(took);
        nodes[holder].restart();
        // Let the restarted node rejoin before the next kill.
        std::thread::sleep(Duration::from_secs(2));
    }
    times.sort();
    let pct = |p: f64| {
        let i = ((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1;
        times[i].as_secs_f64()
    };
    let out = format!(
        "### VIP failover (3 posternd in network namespaces, SIGKILL of the holder → the client's first SMTP greeting on the VIP; {TRIALS} trials; 2 cores)\n\n| p50 | p99 | max |\n|---:|---:|---:|\n| {:.2} s | {:.2} s | {:.2} s |\n\nTarget: p99 ≤ 3 s (VRRP/CARP defaults take 3–4 s).\n",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    use std::io::Write as _;
    std::io::stdout()
        .write_all(out.as_bytes())
        .expect("write report");
}
