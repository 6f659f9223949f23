//! The cluster through real `posternd` processes and `posternctl` (on distinct ports of
//! 127.0.0.1; the network-namespace variant comes with the VIP work): init, export
//! credentials, join two nodes, replicate a setting, SIGKILL the leader and go on, restart
//! it and see it catch up, and refuse a spent token.

use std::time::Duration;

use postern_tests::posternd::Posternd;
use postern_tests::sink::Sink;
use postern_tests::{free_port, peers_available, wait_for};

fn node(sink: &Sink) -> (Posternd, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let p = Posternd::start(
        &sink.addr(),
        "",
        &format!("[cluster]\nlisten = \"{addr}\"\n"),
    );
    (p, addr)
}

fn status(p: &Posternd) -> Option<serde_json::Value> {
    let out = p.ctl_output(&["--json", "cluster", "status"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v.get("ok")?.as_bool()?.then(|| v["data"].clone())
}

fn setting(p: &Posternd, key: &str) -> Option<String> {
    let out = p.ctl_output(&["--json", "setting", "get", key]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v["data"].as_str().map(str::to_owned)
}

#[test]
fn cluster_three_posternd_nodes_join_replicate_and_survive_the_leader() {
    if !peers_available("cluster_three_nodes", &["smtp-sink"]) {
        return;
    }
    let sink = Sink::start(&[]);
    let (a, addr_a) = node(&sink);
    let (b, _) = node(&sink);
    let (c, _) = node(&sink);
    let out = a.ctl(&["cluster", "init"]);
    assert!(out.contains("\"node_id\": 1"), "{out}");
    for (joiner, name) in [(&b, "b"), (&c, "c")] {
        let creds = a.dir.join(&format!("creds-{name}.json"));
        a.ctl(&[
            "cluster",
            "export-credentials",
            "-o",
            creds.to_str().expect("path"),
        ]);
        let out = joiner.ctl(&[
            "cluster",
            "join",
            "--credentials",
            creds.to_str().expect("path"),
            "--peer",
            &addr_a,
        ]);
        assert!(out.contains("node_id"), "{out}");
    }
    let voters = wait_for(Duration::from_secs(30), || {
        let s = status(&a)?;
        (s["voters"].as_array()?.len() == 3).then_some(s)
    });
    assert!(voters.is_some(), "three voters: {:?}", status(&a));

    // A setting written on one node is read on the others.
    c.ctl(&["setting", "set", "greeting", "hello"]);
    for p in [&a, &b] {
        let got = wait_for(Duration::from_secs(10), || {
            setting(p, "greeting").filter(|v| v == "hello")
        });
        assert!(got.is_some(), "replicated to every node");
    }

    // SIGKILL the leader; the others elect a new one and keep taking writes.
    let mut nodes = [a, b, c];
    let leader_id = status(&nodes[0]).expect("status")["leader"]
        .as_u64()
        .expect("leader");
    let leader_index = nodes
        .iter()
        .position(|p| status(p).is_some_and(|s| s["node_id"].as_u64() == Some(leader_id)))
        .expect("the leader's process");
    nodes[leader_index].kill();
    let survivor = (leader_index + 1) % 3;
    let wrote = wait_for(Duration::from_secs(20), || {
        let out = nodes[survivor].ctl_output(&["setting", "set", "after", "kill"]);
        out.status.success().then_some(())
    });
    assert!(
        wrote.is_some(),
        "the surviving majority commits after the leader was killed"
    );
    // The killed node comes back and catches up.
    nodes[leader_index].restart();
    let caught_up = wait_for(Duration::from_secs(20), || {
        setting(&nodes[leader_index], "after")
    });
    assert_eq!(
        caught_up.as_deref(),
        Some("kill"),
        "{}",
        nodes[leader_index].log()
    );

    // A spent token is refused, clearly.
    let (d, _) = node(&sink);
    let creds = nodes[0].dir.join("creds-b.json");
    let creds = if creds.exists() {
        creds
    } else {
        nodes[1].dir.join("creds-b.json")
    };
    let peer = status(&nodes[survivor]).expect("status")["members"][&leader_id.to_string()]
        .as_str()
        .map(str::to_owned);
    let peer = peer.unwrap_or(addr_a);
    let out = d.ctl_output(&[
        "cluster",
        "join",
        "--credentials",
        creds.to_str().expect("path"),
        "--peer",
        &peer,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("join token already used"), "{err}");
}
