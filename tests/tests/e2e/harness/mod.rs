//! The harness itself: every peer it starts is gone when its handle drops. A Postfix
//! instance inside a network namespace is the case that once leaked (its control commands
//! ran outside the namespace and failed unseen): after the drop, no process works in its
//! directory, and once the lab is dropped no process is left in any of its namespaces —
//! checked by the kernel's namespace identity, since a deleted namespace has no name.

use std::time::Duration;

use postern_tests::netns::{self, Lab};
use postern_tests::peers::Peer;
use postern_tests::postfix::{Postfix, PostfixOptions};
use postern_tests::sink::Sink;
use postern_tests::{alive, peers_available, processes_in, wait_for};

#[test]
fn harness_peers_in_a_namespace_leave_nothing_running() {
    if !netns::available("harness_namespaced_peers")
        || !peers_available(
            "harness_namespaced_peers",
            &[Peer::Postfix, Peer::SmtpSink, Peer::Ip],
        )
    {
        return;
    }
    let lab = Lab::new(1);
    let identities: Vec<_> = lab
        .namespaces()
        .map(|ns| Lab::identity(ns).expect("namespace identity"))
        .collect();

    // A Postfix listening on the client's address: outside the namespace, `postfix abort`
    // fails with "no local interface found".
    let mut opts = PostfixOptions::relay_to(2526);
    opts.relayhost = "[198.18.0.11]:2525".into();
    opts.netns = Some(lab.client.clone());
    opts.listen_ip = Some("198.18.0.2".into());
    let postfix = Postfix::start("harness", &opts);
    let dir = postfix.dir.path.clone();
    let master = postfix.master_pid().expect("master.pid");
    assert!(alive(master), "the master runs");
    assert!(
        !processes_in(&dir).is_empty(),
        "the instance's processes work in its directory"
    );
    postfix.flush();
    let sink = Sink::start_in(&lab.nodes[0], "198.18.0.11:2526");
    let downstream = netns::downstream(&lab);
    assert!(
        lab.processes().len() >= 3,
        "master, smtp-sink ×2 in the lab: {:?}",
        lab.processes()
    );

    drop(postfix);
    assert_eq!(
        processes_in(&dir),
        vec![],
        "Postfix processes left in {dir:?}"
    );
    assert!(!alive(master), "the master {master} still runs");
    drop(sink);
    drop(downstream);
    assert_eq!(
        lab.processes(),
        Vec::<u32>::new(),
        "processes left in the lab"
    );

    drop(lab);
    for id in &identities {
        let left = wait_for(Duration::from_secs(5), || {
            netns::processes_in_namespace(id).is_empty().then_some(())
        });
        assert!(
            left.is_some(),
            "processes keep deleted namespace {} alive: {:?}",
            id.display(),
            netns::processes_in_namespace(id)
        );
    }
}
