//! Cluster figures through real `posternd` processes and `posternctl` (what an operator
//! sees): the time from uploading credentials to being a voter that holds every user,
//! with a state large enough that the new node catches up from a snapshot; and leader
//! failover, from SIGKILL to the next committed admin write on a survivor. Prints a
//! Markdown table on stdout, progress on stderr. Run with `scripts/bench.sh cluster`.

use postern_tests::peers::Peer;
use std::time::{Duration, Instant};

use postern_tests::posternd::Posternd;
use postern_tests::sink::Sink;
use postern_tests::{free_port, wait_for};

const USERS: usize = 40;
const WRITES: usize = 600;
const TRIALS: usize = 5;

fn node(sink: &Sink) -> (Posternd, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let p = Posternd::start(
        &sink.addr(),
        "",
        &format!(
            "[crypto]\ninternal_domains = [\"corp.example\"]\n[cluster]\nlisten = \"{addr}\"\nsnapshot_every = 100\n"
        ),
    );
    (p, addr)
}

fn voters(p: &Posternd) -> usize {
    p.ctl_json(&["cluster", "status"])
        .ok()
        .and_then(|s| s["voters"].as_array().map(Vec::len))
        .unwrap_or(0)
}

fn user_count(p: &Posternd) -> usize {
    p.ctl_json(&["user", "list"])
        .ok()
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(0)
}

/// Credentials uploaded → voter holding every user.
fn join(first: &Posternd, addr: &str, joiner: &Posternd, name: &str, expect: usize) -> Duration {
    let creds = first.export_credentials(name);
    let start = Instant::now();
    joiner.join_cluster(&creds, addr).expect("join");
    let id = joiner.ctl_json(&["cluster", "status"]).expect("status")["node_id"]
        .as_u64()
        .expect("id");
    let done = wait_for(Duration::from_secs(120), || {
        let s = first.ctl_json(&["cluster", "status"]).ok()?;
        let voter = s["voters"]
            .as_array()?
            .iter()
            .any(|v| v.as_u64() == Some(id));
        (voter && user_count(joiner) == expect).then_some(())
    });
    assert!(done.is_some(), "node {name} did not become a full voter");
    start.elapsed()
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    if !postern_tests::peers_available("cluster bench", &[Peer::SmtpSink]) {
        return;
    }
    let sink = Sink::start(&[]);
    let (a, addr_a) = node(&sink);
    eprintln!("cluster bench: enrolling {USERS} users and writing {WRITES} settings on node 1 …");
    for i in 0..USERS {
        a.ctl(&["user", "enrol", &format!("user{i}@corp.example")]);
    }
    for i in 0..WRITES {
        a.ctl(&["setting", "set", "counter", &i.to_string()]);
    }
    let (b, _) = node(&sink);
    let (c, _) = node(&sink);
    eprintln!("cluster bench: joining two nodes …");
    let join_b = join(&a, &addr_a, &b, "b", USERS);
    let join_c = join(&a, &addr_a, &c, "c", USERS);
    assert!(
        b.log().contains("restored a snapshot from the leader"),
        "the join caught up from a snapshot"
    );
    assert_eq!(voters(&a), 3);

    eprintln!("cluster bench: {TRIALS} leader failovers …");
    let mut nodes = [a, b, c];
    let mut failovers = Vec::new();
    for trial in 0..TRIALS {
        let leader_id = nodes
            .iter()
            .find_map(|p| p.ctl_json(&["cluster", "status"]).ok()?["leader"].as_u64())
            .filter(|l| *l > 0)
            .expect("a leader");
        let leader = nodes
            .iter()
            .position(|p| {
                p.ctl_json(&["cluster", "status"])
                    .is_ok_and(|s| s["node_id"].as_u64() == Some(leader_id))
            })
            .expect("the leader's process");
        let survivor = (leader + 1) % 3;
        let start = Instant::now();
        nodes[leader].kill();
        let wrote = wait_for(Duration::from_secs(30), || {
            let out =
                nodes[survivor].ctl_output(&["setting", "set", "failover", &trial.to_string()]);
            out.status.success().then_some(())
        });
        assert!(wrote.is_some(), "no write after the leader was killed");
        failovers.push(start.elapsed());
        nodes[leader].restart();
        let back = wait_for(Duration::from_secs(30), || {
            (nodes[leader]
                .ctl_json(&["setting", "get", "failover"])
                .ok()?
                .as_str()
                .map(str::to_owned)
                == Some(trial.to_string()))
            .then_some(())
        });
        assert!(back.is_some(), "the restarted node did not catch up");
    }
    failovers.sort();
    let median = failovers[failovers.len() / 2];
    let max = failovers[failovers.len() - 1];
    let mut out = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "### Cluster through posternd (3 processes on 127.0.0.1, posternctl; 2 cores)\n"
    );
    let _ = writeln!(out, "| measure | result |\n|---|---|");
    let _ = writeln!(
        out,
        "| join: credentials uploaded → voter holding all {USERS} users (snapshot catch-up after {WRITES} writes), node 2 | {} |",
        ms(join_b)
    );
    let _ = writeln!(out, "| join, node 3 | {} |", ms(join_c));
    let _ = writeln!(
        out,
        "| leader failover: SIGKILL → next committed admin write on a survivor, median of {TRIALS} | {} |",
        ms(median)
    );
    let _ = writeln!(out, "| leader failover, max | {} |", ms(max));
    let _ = writeln!(out, "\nTarget: join ≤ 30 s including the snapshot.");
    use std::io::Write as _;
    std::io::stdout()
        .write_all(out.as_bytes())
        .expect("write report");
}
