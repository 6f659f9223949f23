//! The cluster with each `posternd` in its own network namespace behind a bridge
//! (TESTBED.md): members reach each other only over their own network stacks and advertised
//! addresses. Join two nodes with exported credentials, replicate a user, cut the leader's
//! link (the majority elects a new leader and commits; the cut-off node commits nothing),
//! heal it and see it catch up.

use std::net::SocketAddr;
use std::time::Duration;

use postern_tests::netns::{self, Lab};
use postern_tests::posternd::Posternd;
use postern_tests::wait_for;

use super::{setting, status, users, voters};

fn member(lab: &Lab, i: usize) -> Posternd {
    let ip = Lab::node_ip(i);
    let smtp: SocketAddr = (ip, 2525).into();
    Posternd::start_in(
        &lab.nodes[i],
        smtp,
        "198.18.0.2:25",
        &format!(
            "[crypto]\ninternal_domains = [\"corp.example\"]\n[cluster]\nlisten = \"{ip}:7946\"\n"
        ),
    )
}

#[test]
fn cluster_in_network_namespaces_survives_a_cut_leader() {
    if !netns::available("cluster_netns") {
        return;
    }
    let lab = Lab::new(3);
    let nodes: Vec<Posternd> = (0..3).map(|i| member(&lab, i)).collect();
    let first = format!("{}:7946", Lab::node_ip(0));
    for (i, p) in nodes.iter().enumerate().skip(1) {
        let creds = nodes[0].export_credentials(&format!("n{i}"));
        p.join_cluster(&creds, &first)
            .expect("join across namespaces");
    }
    let all = wait_for(Duration::from_secs(30), || {
        (voters(&nodes[0]) == 3).then_some(())
    });
    assert!(all.is_some(), "{:?}", status(&nodes[0]));
    let members = status(&nodes[2]).expect("status")["members"].clone();
    assert_eq!(
        members["2"],
        format!("{}:7946", Lab::node_ip(1)),
        "{members}"
    );

    nodes[1].ctl(&["user", "enrol", "alice@corp.example"]);
    for p in &nodes {
        assert_eq!(users(p), ["alice@corp.example"]);
    }

    // Cut the leader off: the two others elect a new leader and commit; the cut-off node
    // cannot confirm reads or commit writes.
    let leader = status(&nodes[0]).expect("status")["leader"]
        .as_u64()
        .expect("leader") as usize
        - 1;
    lab.link(&lab.nodes[leader], false);
    let other = (leader + 1) % 3;
    let wrote = wait_for(Duration::from_secs(20), || {
        nodes[other]
            .ctl_json(&["setting", "set", "during", "cut"])
            .ok()
    });
    assert!(
        wrote.is_some(),
        "the majority commits without the cut leader"
    );
    let cut_write = nodes[leader].ctl_json(&["setting", "set", "lost", "write"]);
    assert!(cut_write.is_err(), "a cut-off node acknowledged a write");
    let cut_read = nodes[leader].ctl_json(&["setting", "get", "during"]);
    assert!(cut_read.is_err(), "a cut-off node served a stale read");

    // Heal: it rejoins, follows the new leader and has every committed write.
    lab.link(&lab.nodes[leader], true);
    let healed = wait_for(Duration::from_secs(30), || {
        (setting(&nodes[leader], "during").as_deref() == Some("cut")).then_some(())
    });
    assert!(healed.is_some(), "{}", nodes[leader].log());
    assert_eq!(
        setting(&nodes[other], "lost"),
        None,
        "the unacknowledged write never appears"
    );
}
