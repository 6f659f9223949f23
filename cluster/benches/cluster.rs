//! Cluster figures (cluster issue, item 7): committed writes/s with group commit, the time
//! from uploading credentials to being a voter, and leader failover time. Three members in
//! this process over the real mutual-TLS transport on 127.0.0.1, RocksDB with fsync.
//!
//! `cargo bench -p postern-cluster --bench cluster`. Progress on stderr, Markdown on stdout.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use postern_cluster::files::{ClusterFiles, Membership};
use postern_cluster::member::{self, Options};
use postern_cluster::runner::Handle;
use postern_cluster::state::{Command, Outcome};

fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

async fn until<F: Fn(&postern_cluster::runner::Status) -> bool>(h: &Handle, f: F) -> Duration {
    let start = Instant::now();
    loop {
        if let Some(s) = h.status().await
            && f(&s)
        {
            return start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(60), "timed out");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Joins a node through `peer`; returns its handle and the time from request to voter.
async fn join_one(
    h1: &Handle,
    m1: &Membership,
    peer: SocketAddr,
    dir: std::path::PathBuf,
) -> (u64, Handle, Duration) {
    let creds = member::export_credentials(h1, m1, Duration::from_secs(600), SystemTime::now())
        .await
        .expect("export");
    let start = Instant::now();
    let listen = free_addr();
    let addr = listen.to_string();
    let (h, m) = member::join(
        &ClusterFiles::new(&dir),
        &creds,
        peer,
        listen,
        &addr,
        SystemTime::now(),
        &Options::default(),
    )
    .await
    .expect("join");
    let id = m.info.node_id;
    until(h1, |s| s.voters.contains(&id)).await;
    (id, h, start.elapsed())
}

/// Commits `n` writes from `writers` concurrent proposers; returns writes/s.
async fn writes(h: &Handle, n: usize, writers: usize, tag: &str) -> f64 {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let h = h.clone();
        let tag = tag.to_owned();
        tasks.push(tokio::spawn(async move {
            for i in (w..n).step_by(writers) {
                let cmd = Command::PutSetting {
                    key: format!("{tag}-{i}"),
                    value: "x".repeat(200),
                };
                assert_eq!(
                    h.propose(cmd, Duration::from_secs(10)).await,
                    Ok(Outcome::Done)
                );
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    n as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let base = std::env::temp_dir().join(format!("postern-cluster-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let addr1 = free_addr();
    let (h1, m1) = member::found(
        &ClusterFiles::new(&base.join("1")),
        addr1,
        &addr1.to_string(),
        SystemTime::now(),
        &Options::default(),
    )
    .await
    .expect("member 1");
    eprintln!("cluster bench: 1-node writes …");
    let single_1 = writes(&h1, 300, 1, "s1").await;
    let single_32 = writes(&h1, 3000, 32, "s32").await;
    eprintln!("cluster bench: joining two nodes …");
    // Give the join a real snapshot to carry: a few thousand entries of state.
    let (_, h2, join2) = join_one(&h1, &m1, addr1, base.join("2")).await;
    let (_, h3, join3) = join_one(&h1, &m1, addr1, base.join("3")).await;
    eprintln!("cluster bench: 3-node writes …");
    let three_1 = writes(&h1, 300, 1, "t1").await;
    let three_32 = writes(&h1, 3000, 32, "t32").await;
    eprintln!("cluster bench: leader failover …");
    let mut failovers = Vec::new();
    let mut handles: BTreeMap<u64, Handle> = [(1, h1), (2, h2), (3, h3)].into();
    let mut stopped: Vec<u64> = Vec::new();
    for _ in 0..1 {
        let leader = handles
            .values()
            .next()
            .expect("h")
            .status()
            .await
            .expect("s")
            .leader;
        let start = Instant::now();
        handles[&leader].stop();
        handles.remove(&leader);
        stopped.push(leader);
        let any = handles.values().next().expect("survivor").clone();
        until(&any, |s| s.leader != 0 && s.leader != leader).await;
        failovers.push(start.elapsed());
    }
    let size: u64 = walk(&base);
    let mut out = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "### Cluster (3 members in one process, mutual TLS on 127.0.0.1, RocksDB with fsync; 2 cores)\n"
    );
    let _ = writeln!(out, "| Measure | Value |\n|---|---|");
    let _ = writeln!(
        out,
        "| committed writes/s, 1 member, 1 proposer | {single_1:.0} |"
    );
    let _ = writeln!(
        out,
        "| committed writes/s, 1 member, 32 concurrent proposers (group commit) | {single_32:.0} |"
    );
    let _ = writeln!(
        out,
        "| committed writes/s, 3 members, 1 proposer | {three_1:.0} |"
    );
    let _ = writeln!(
        out,
        "| committed writes/s, 3 members, 32 concurrent proposers (group commit) | {three_32:.0} |"
    );
    let _ = writeln!(
        out,
        "| join: credentials presented → voter (2nd member; state of {} entries) | {:.2} s |",
        3300,
        join2.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| join: credentials presented → voter (3rd member) | {:.2} s |",
        join3.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| leader stopped → new leader elected (tick 100 ms, election 10–20 ticks) | {:.2} s |",
        failovers[0].as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| disk used by the three stores | {:.1} MB |",
        size as f64 / 1e6
    );
    std::io::stdout().write_all(out.as_bytes()).expect("report");
    for h in handles.values() {
        h.stop();
    }
    let _ = std::fs::remove_dir_all(&base);
}

fn walk(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let m = e.metadata().ok();
                    if m.as_ref().is_some_and(|m| m.is_dir()) {
                        walk(&e.path())
                    } else {
                        m.map_or(0, |m| m.len())
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
