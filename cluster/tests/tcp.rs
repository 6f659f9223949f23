//! Three members on 127.0.0.1 over the real mutual-TLS transport: election, replication, a
//! stopped leader replaced, and the survivors keep taking writes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use postern_cluster::node::Node;
use postern_cluster::pki::{ClusterCa, NodeTls};
use postern_cluster::runner::{self, Handle};
use postern_cluster::state::{Command, Outcome};
use postern_cluster::transport::{self, Outbound};
use tokio::sync::mpsc;

async fn leader_of(handles: &BTreeMap<u64, Handle>) -> Option<u64> {
    for _ in 0..100 {
        for h in handles.values() {
            if let Some(s) = h.status().await
                && s.leader != 0
                && handles.contains_key(&s.leader)
            {
                return Some(s.leader);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_over_mutual_tls() {
    let now = SystemTime::now();
    let ca = ClusterCa::generate("tcp-test", now).expect("ca");
    let base = std::env::temp_dir().join(format!("postern-cluster-tcp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let ids = [1u64, 2, 3];
    let mut inboxes = BTreeMap::new();
    let mut addrs: BTreeMap<u64, SocketAddr> = BTreeMap::new();
    let mut tls = BTreeMap::new();
    for id in ids {
        let t = NodeTls::issue(&ca, id, now).expect("node tls");
        let (tx, rx) = mpsc::channel(1024);
        let addr = transport::listen("127.0.0.1:0".parse().expect("addr"), &t, tx, None)
            .await
            .expect("listen")
            .0;
        addrs.insert(id, addr);
        inboxes.insert(id, rx);
        tls.insert(id, t);
    }
    let mut handles = BTreeMap::new();
    for id in ids {
        let node = Node::open(id, &base.join(id.to_string()), &ids).expect("node");
        let out = Arc::new(Outbound::new(&tls[&id], addrs.clone()).expect("outbound"));
        let rx = inboxes.remove(&id).expect("inbox");
        handles.insert(id, runner::start(node, rx, out, None));
    }
    let leader = leader_of(&handles).await.expect("a leader within 10 s");
    // Writes through a follower are forwarded to the leader.
    let follower = ids.into_iter().find(|i| *i != leader).expect("follower");
    for i in 0..20 {
        let cmd = Command::PutSetting {
            key: format!("k{i}"),
            value: "v".into(),
        };
        let r = handles[&follower]
            .propose(cmd, Duration::from_secs(5))
            .await;
        assert_eq!(r, Ok(Outcome::Done));
    }
    // Stop the leader; the other two elect a new one and keep committing. A write made
    // right away on a survivor (which still believes in the old leader) rides out the
    // election instead of waiting for its timeout.
    handles[&leader].stop();
    handles.remove(&leader);
    let survivor = *handles.keys().next().expect("survivor");
    let cmd = Command::PutSetting {
        key: "after".into(),
        value: "v".into(),
    };
    let started = std::time::Instant::now();
    let r = handles[&survivor]
        .propose_retrying(cmd, Duration::from_secs(10))
        .await;
    let took = started.elapsed();
    let ok = r == Ok(Outcome::Done);
    assert!(
        took < Duration::from_secs(5),
        "a write across the failover took {took:?}"
    );
    let new = leader_of(&handles).await.expect("a new leader");
    assert_ne!(new, leader);
    assert!(ok, "the surviving majority commits");
    tokio::time::sleep(Duration::from_millis(500)).await;
    for h in handles.values() {
        let s = h.status().await.expect("status");
        assert_eq!(s.state.settings.len(), 21, "node {} has all writes", s.id);
    }
    for h in handles.values() {
        h.stop();
    }
    let _ = std::fs::remove_dir_all(&base);
}
