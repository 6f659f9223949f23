//! Joining with exported credentials, over the real transport on 127.0.0.1: a founding
//! member, two nodes joining as learners and promoted to voters, writes seen everywhere, and
//! every kind of credential misuse refused with a clear error.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use postern_cluster::files::{ClusterFiles, Membership};
use postern_cluster::join::{Credentials, JoinError};
use postern_cluster::member::{self, Options, StartError};
use postern_cluster::pki::ClusterCa;
use postern_cluster::runner::Handle;
use postern_cluster::state::{Command, Outcome, User};

fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

async fn wait_for<F: Fn(&postern_cluster::runner::Status) -> bool>(h: &Handle, what: &str, f: F) {
    for _ in 0..300 {
        if let Some(s) = h.status().await
            && f(&s)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "timed out waiting for {what}: {:?}",
        h.status().await.map(|s| (s.leader, s.voters, s.learners))
    );
}

async fn export(h: &Handle, m: &Membership, ttl: Duration) -> Credentials {
    member::export_credentials(h, m, ttl, SystemTime::now())
        .await
        .expect("export")
}

async fn join_node(
    creds: &Credentials,
    peer: SocketAddr,
    dir: PathBuf,
) -> Result<(u64, Handle), JoinError> {
    let files = ClusterFiles::new(&dir);
    let listen = free_addr();
    let addr = listen.to_string();
    match member::join(
        &files,
        creds,
        peer,
        listen,
        &addr,
        SystemTime::now(),
        &Options::default(),
    )
    .await
    {
        Ok((h, m)) => Ok((m.info.node_id, h)),
        Err(StartError::Join(e)) => Err(e),
        Err(other) => panic!("start after join: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_join_with_exported_credentials() {
    let base = std::env::temp_dir().join(format!("postern-cluster-join-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let now = SystemTime::now();
    let addr1 = free_addr();
    let (h1, m1) = member::found(
        &ClusterFiles::new(&base.join("1")),
        addr1,
        &addr1.to_string(),
        now,
        &Options::default(),
    )
    .await
    .expect("founding member");
    assert_eq!(h1.status().await.expect("status").leader, 1);

    let creds2 = export(&h1, &m1, Duration::from_secs(3600)).await;
    let (id2, h2) = join_node(&creds2, addr1, base.join("2"))
        .await
        .expect("node 2 joins");
    assert_eq!(id2, 2);
    wait_for(&h1, "node 2 to be promoted", |s| s.voters.contains(&2)).await;
    let creds3 = export(&h1, &m1, Duration::from_secs(3600)).await;
    let (id3, h3) = join_node(&creds3, addr1, base.join("3"))
        .await
        .expect("node 3 joins");
    assert_eq!(id3, 3);
    wait_for(&h1, "node 3 to be promoted", |s| {
        s.voters.len() == 3 && s.learners.is_empty()
    })
    .await;

    // A write on the newest member is seen on all.
    let put = Command::PutUser {
        address: "alice@example.com".into(),
        user: User::default(),
    };
    assert_eq!(
        h3.propose(put, Duration::from_secs(5)).await,
        Ok(Outcome::Done)
    );
    for h in [&h1, &h2, &h3] {
        wait_for(h, "the user everywhere", |s| {
            s.state.users.contains_key("alice@example.com")
        })
        .await;
    }

    // Misuse: a spent token, expired credentials, a tampered token, another cluster's CA.
    let again = join_node(&creds2, addr1, base.join("x1")).await;
    assert!(
        matches!(&again, Err(JoinError::Refused(r)) if r == "join token already used"),
        "{again:?}"
    );
    let expired = export(&h1, &m1, Duration::ZERO).await;
    assert!(matches!(
        join_node(&expired, addr1, base.join("x2")).await,
        Err(JoinError::Expired(_))
    ));
    let mut tampered = export(&h1, &m1, Duration::from_secs(3600)).await;
    tampered.token.replace_range(
        0..1,
        if tampered.token.starts_with('0') {
            "1"
        } else {
            "0"
        },
    );
    let r = join_node(&tampered, addr1, base.join("x3")).await;
    assert!(
        matches!(&r, Err(JoinError::Refused(m)) if m.contains("unknown join token")),
        "{r:?}"
    );
    let other = ClusterCa::generate("c2", now).expect("ca");
    let mut foreign = export(&h1, &m1, Duration::from_secs(3600)).await;
    foreign.ca_cert = String::from_utf8(other.cert.to_pem().expect("pem")).expect("utf8");
    assert!(matches!(
        join_node(&foreign, addr1, base.join("x4")).await,
        Err(JoinError::Untrusted { .. })
    ));
    // None of that added a member.
    let s = h1.status().await.expect("status");
    assert_eq!(s.state.members.len(), 3);
    assert_eq!(s.voters, vec![1, 2, 3]);

    for h in [&h1, &h2, &h3] {
        h.stop();
    }
    let _ = std::fs::remove_dir_all(&base);
}
