//! The cluster through real `posternd` processes and `posternctl`, on distinct ports of
//! 127.0.0.1 (`netns` runs the same story with each node in its own network namespace):
//! every node founds its own single-member cluster at first start; two join the first with
//! exported credentials; users and keys enrolled on one node sign mail on another; admin
//! reads are linearizable; the leader is SIGKILLed and writes go on; a node down for long
//! catches up from a snapshot; a dead node is removed and replaced; credential misuse is
//! refused with clear messages.

mod netns;

use postern_tests::peers::Peer;
use std::time::Duration;

use postern_tests::client::Client;
use postern_tests::pki::cms_verify;
use postern_tests::posternd::Posternd;
use postern_tests::sink::Sink;
use postern_tests::{free_port, peers_available, wait_for};

/// A member's configuration: small snapshots so "down for long" is a few hundred writes.
fn config(cluster_addr: &str) -> String {
    format!(
        "[crypto]\ninternal_domains = [\"corp.example\"]\n[cluster]\nlisten = \"{cluster_addr}\"\nsnapshot_every = 20\n"
    )
}

fn node(sink: &Sink) -> (Posternd, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let p = Posternd::start(&sink.addr(), "", &config(&addr));
    (p, addr)
}

fn status(p: &Posternd) -> Option<serde_json::Value> {
    p.ctl_json(&["cluster", "status"]).ok()
}

fn setting(p: &Posternd, key: &str) -> Option<String> {
    p.ctl_json(&["setting", "get", key])
        .ok()?
        .as_str()
        .map(str::to_owned)
}

fn users(p: &Posternd) -> Vec<String> {
    p.ctl_json(&["user", "list"])
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|u| u["address"].as_str().map(str::to_owned))
        .collect()
}

fn voters(p: &Posternd) -> usize {
    status(p)
        .and_then(|s| s["voters"].as_array().map(Vec::len))
        .unwrap_or(0)
}

/// Sends a message from alice through `p`; returns what arrived downstream.
fn send_from_alice(p: &Posternd, sink: &Sink, id: &str) -> postern_tests::sink::SunkMessage {
    let before = sink.messages().len();
    let message = format!(
        "From: alice@corp.example\r\nTo: bob@partner.example\r\nSubject: numbers\r\nMessage-ID: <{id}@test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nThe numbers.\r\n"
    );
    let r =
        Client::ready(p.addr).send_mail("alice@corp.example", &["bob@partner.example"], &message);
    assert_eq!(r.code, 250, "{r}\n{}", p.log());
    let all = sink.wait_for_messages(before + 1, Duration::from_secs(10));
    all.into_iter()
        .find(|m| m.header("message-id").is_some_and(|h| h.contains(id)))
        .expect("the message downstream")
}

#[test]
fn cluster_three_posternd_nodes_join_replicate_and_survive_the_leader() {
    if !peers_available("cluster_three_nodes", &[Peer::SmtpSink, Peer::Openssl]) {
        return;
    }
    let sink = Sink::start(&[]);
    let (a, addr_a) = node(&sink);
    let (b, _) = node(&sink);
    let (c, _) = node(&sink);

    // Every node runs a single-member cluster of its own out of the box.
    for p in [&a, &b, &c] {
        let s = status(p).expect("status");
        assert_eq!(s["voters"].as_array().map(Vec::len), Some(1), "{s}");
        assert_eq!(s["leader"], s["node_id"], "{s}");
    }
    let init = a.ctl_json(&["cluster", "init"]).expect("init");
    assert_eq!(init["node_id"], 1, "{init}");
    let cluster_id = init["cluster_id"].as_str().expect("id").to_owned();
    let ca = a.ctl(&["ca", "cert"]);

    // A node that has users of its own refuses to join (they would be lost).
    b.ctl(&["user", "enrol", "early@corp.example"]);
    let creds_b = a.export_credentials("b");
    let refused = b
        .join_cluster(&creds_b, &addr_a)
        .expect_err("join with local users");
    assert!(refused.contains("1 users"), "{refused}");
    b.ctl(&["user", "remove", "early@corp.example"]);

    for (joiner, creds) in [(&b, creds_b), (&c, a.export_credentials("c"))] {
        let out = joiner.join_cluster(&creds, &addr_a).expect("join");
        assert_eq!(out["cluster_id"], cluster_id.as_str(), "{out}");
    }
    let all = wait_for(Duration::from_secs(30), || (voters(&a) == 3).then_some(()));
    assert!(all.is_some(), "three voters: {:?}", status(&a));
    // Joined nodes now share the cluster's CA.
    assert_eq!(c.ctl(&["ca", "cert"]), ca);

    // A user enrolled on one node is on every node (linearizable reads: no waiting), and
    // another node's mail path signs with that user's key.
    b.ctl(&["user", "enrol", "alice@corp.example"]);
    for p in [&a, &c] {
        assert_eq!(users(p), ["alice@corp.example"], "{}", p.log());
    }
    let m = send_from_alice(&c, &sink, "signed-on-c");
    let policy = m.header("x-postern-policy").unwrap_or_default();
    assert!(policy.starts_with("S/MIME signed"), "{policy}\n{}", c.log());
    cms_verify(&c.dir.join(""), ca.as_bytes(), &m.wire()).expect("openssl verifies c's signature");
    assert_eq!(
        a.ctl(&["user", "cert", "alice@corp.example"]),
        c.ctl(&["user", "cert", "alice@corp.example"])
    );

    // A setting written on one node is read on the others at once.
    c.ctl(&["setting", "set", "greeting", "hello"]);
    for p in [&a, &b] {
        assert_eq!(setting(p, "greeting").as_deref(), Some("hello"));
    }

    // The crypto policy is cluster-wide: set on one node, in force on another at once;
    // a malformed policy setting is refused before it is proposed.
    let bad = b.ctl_json(&["setting", "set", "crypto.policy_header", "sometimes"]);
    assert!(bad.is_err_and(|e| e.contains("is not true or false")));
    b.ctl(&["setting", "set", "crypto.policy_header", "false"]);
    let m = send_from_alice(&c, &sink, "no-policy-header");
    assert_eq!(m.header("x-postern-policy"), None, "{}", c.log());
    b.ctl(&["setting", "unset", "crypto.policy_header"]);
    let m = send_from_alice(&a, &sink, "policy-header-again");
    assert!(m.header("x-postern-policy").is_some());

    // SIGKILL the leader; the others elect a new one and keep taking writes.
    let mut nodes = [a, b, c];
    let leader_id = status(&nodes[0]).expect("status")["leader"]
        .as_u64()
        .expect("leader");
    let leader = nodes
        .iter()
        .position(|p| status(p).is_some_and(|s| s["node_id"].as_u64() == Some(leader_id)))
        .expect("the leader's process");
    nodes[leader].kill();
    let survivor = (leader + 1) % 3;
    let wrote = wait_for(Duration::from_secs(20), || {
        let out = nodes[survivor].ctl_output(&["user", "enrol", "bob@corp.example"]);
        out.status.success().then_some(())
    });
    assert!(
        wrote.is_some(),
        "the surviving majority commits after the leader was killed"
    );
    // The killed node comes back and catches up.
    nodes[leader].restart();
    let caught_up = wait_for(Duration::from_secs(20), || {
        users(&nodes[leader])
            .contains(&"bob@corp.example".to_owned())
            .then_some(())
    });
    assert!(caught_up.is_some(), "{}", nodes[leader].log());

    // A node down for long catches up from a snapshot: the others write far more than
    // they keep in their logs (snapshot_every = 20) while it is away.
    let down = (survivor + 1) % 3;
    let writer = (down + 1) % 3;
    nodes[down].kill();
    for i in 0..120 {
        let out = nodes[writer].ctl_output(&["setting", "set", "counter", &i.to_string()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    nodes[down].restart();
    let restored = wait_for(Duration::from_secs(30), || {
        (setting(&nodes[down], "counter").as_deref() == Some("119")).then_some(())
    });
    assert!(restored.is_some(), "{}", nodes[down].log());
    assert!(
        nodes[down]
            .log()
            .contains("restored a snapshot from the leader"),
        "caught up by snapshot:\n{}",
        nodes[down].log()
    );
    // And it still signs for alice with the replicated key after the restore.
    let m = send_from_alice(&nodes[down], &sink, "signed-after-restore");
    cms_verify(&nodes[down].dir.join(""), ca.as_bytes(), &m.wire())
        .expect("signature after snapshot restore");

    // Credential misuse is refused, clearly.
    let (d, _) = node(&sink);
    let peer = status(&nodes[writer]).expect("status")["members"]
        [&status(&nodes[writer]).expect("status")["node_id"].to_string()]
        .as_str()
        .expect("writer's address")
        .to_owned();
    let spent = nodes[0].dir.join("creds-b.json");
    let err = d.join_cluster(&spent, &peer).expect_err("spent token");
    assert!(err.contains("join token already used"), "{err}");
    let mut tampered: serde_json::Value = serde_json::from_slice(
        &std::fs::read(nodes[writer].export_credentials("t")).expect("creds"),
    )
    .expect("json");
    tampered["token"] = serde_json::json!("AAAA".repeat(11));
    let tampered_path = d.dir.join("tampered.json");
    std::fs::write(&tampered_path, tampered.to_string()).expect("write");
    let err = d
        .join_cluster(&tampered_path, &peer)
        .expect_err("tampered token");
    assert!(err.contains("unknown join token"), "{err}");
    let (e, _) = node(&sink);
    let foreign = e.export_credentials("foreign");
    let err = d
        .join_cluster(&foreign, &peer)
        .expect_err("foreign credentials");
    assert!(err.contains("from another cluster"), "{err}");
    // A refused join leaves the node working in its own cluster.
    assert_eq!(voters(&d), 1);

    // A dead node is removed and replaced by a new one.
    let dead_id = status(&nodes[down]).expect("status")["node_id"]
        .as_u64()
        .expect("id");
    nodes[down].kill();
    let out = nodes[writer]
        .ctl_json(&["cluster", "remove", &dead_id.to_string()])
        .expect("remove the dead node");
    assert_eq!(out["removed"], dead_id);
    let s = status(&nodes[writer]).expect("status");
    assert_eq!(s["voters"].as_array().map(Vec::len), Some(2), "{s}");
    assert!(s["members"].get(dead_id.to_string()).is_none(), "{s}");
    let out = d
        .join_cluster(&nodes[writer].export_credentials("d"), &peer)
        .expect("replacement joins");
    assert_eq!(out["cluster_id"], cluster_id.as_str());
    let all = wait_for(Duration::from_secs(30), || {
        (voters(&nodes[writer]) == 3).then_some(())
    });
    assert!(all.is_some(), "{:?}", status(&nodes[writer]));
    assert!(users(&d).contains(&"alice@corp.example".to_owned()));
    let lag = status(&nodes[writer])
        .map(|s| s["lag"].clone())
        .unwrap_or_default();
    assert!(lag.is_object(), "{lag}");
}

/// A join token's lifetime is what the admin asked for, or refused with the allowed range:
/// never silently changed (`--ttl 1` once became 60 s without a word).
#[test]
fn cluster_credentials_ttl_is_honoured_or_refused() {
    if !peers_available("cluster_credentials_ttl", &[Peer::SmtpSink]) {
        return;
    }
    let sink = Sink::start(&[]);
    let (p, _) = node(&sink);
    let file = p.dir.join("creds.json");
    let path = file.to_str().expect("path");
    for ttl in ["1", "59", "604801"] {
        let out = p.ctl_output(&["cluster", "export-credentials", "-o", path, "--ttl", ttl]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--ttl {ttl} accepted");
        assert!(err.contains("60..=604800"), "--ttl {ttl}: {err}");
        assert!(!file.exists(), "--ttl {ttl} wrote credentials");
    }
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    p.ctl(&["cluster", "export-credentials", "-o", path, "--ttl", "60"]);
    let creds: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).expect("credentials")).expect("json");
    let expires = creds["expires"].as_u64().expect("expires");
    assert!(
        (before + 60..=before + 62).contains(&expires),
        "expires {expires}, exported at {before} with --ttl 60"
    );
}
