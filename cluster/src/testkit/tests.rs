use super::*;

fn assert_converged(c: &TestCluster) {
    let states: Vec<(u64, &crate::state::State)> = c
        .ids()
        .iter()
        .filter_map(|id| c.node(*id).map(|n| (*id, n.state())))
        .collect();
    let first = states[0].1;
    for (id, s) in &states {
        assert_eq!(*s, first, "node {id} diverged");
    }
    for w in &c.acked {
        assert!(
            first.settings.contains_key(&format!("w{w}")),
            "acknowledged write w{w} lost"
        );
    }
}

#[test]
fn elects_a_leader_and_replicates() {
    let mut c = TestCluster::new(3, 1);
    c.run(60);
    let leader = c.leader().expect("a leader");
    for _ in 0..20 {
        assert!(c.write(leader));
    }
    c.run(20);
    assert_eq!(c.acked.len(), 20);
    assert_converged(&c);
}

#[test]
fn minority_partition_cannot_commit_and_heals() {
    let mut c = TestCluster::new(3, 2);
    c.run(60);
    let leader = c.leader().expect("leader");
    // Cut the leader off: its writes cannot commit; the majority elects another leader.
    c.net.partition = Some([leader].into());
    let before = c.acked.len();
    c.write(leader);
    c.run(100);
    assert_eq!(
        c.acked.len(),
        before,
        "a minority leader acknowledged a write"
    );
    let new = c.leader().expect("majority leader");
    assert_ne!(new, leader);
    assert!(c.write(new));
    c.run(30);
    assert_eq!(c.acked.len(), before + 1);
    c.net.partition = None;
    c.run(100);
    assert_converged(&c);
}

#[test]
fn randomized_faults_never_lose_an_acknowledged_write() {
    let seeds: u64 = std::env::var("CLUSTER_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    for seed in 0..seeds {
        let mut c = TestCluster::new(3, 1000 + seed);
        let mut rng = Rng::new(seed);
        c.net.max_delay = 3;
        for _round in 0..40 {
            match rng.below(10) {
                0 => {
                    let side: BTreeSet<u64> = [1 + rng.below(3)].into();
                    c.net.partition = Some(side);
                }
                1 => c.net.partition = None,
                2 => c.net.drop_pct = rng.below(20),
                3 => {
                    let id = 1 + rng.below(3);
                    if c.is_up(id) {
                        c.crash(id)
                    } else {
                        c.restart(id)
                    }
                }
                _ => {}
            }
            for _ in 0..rng.below(5) {
                let at = 1 + rng.below(3);
                c.write(at);
            }
            c.run(10 + rng.below(20));
        }
        // Heal everything and let the cluster settle.
        c.net.partition = None;
        c.net.drop_pct = 0;
        for id in c.ids() {
            if !c.is_up(id) {
                c.restart(id);
            }
        }
        c.run(300);
        let leader = c
            .leader()
            .unwrap_or_else(|| panic!("seed {seed}: no leader after healing"));
        // The healed cluster takes writes again.
        let before = c.acked.len();
        for _ in 0..5 {
            assert!(c.write(leader), "seed {seed}: leader refused a write");
        }
        c.run(50);
        assert_eq!(
            c.acked.len(),
            before + 5,
            "seed {seed}: healed cluster did not commit"
        );
        assert_converged(&c);
        eprintln!(
            "seed {seed}: {} writes acknowledged, all present on every node",
            c.acked.len()
        );
    }
}

#[test]
fn a_node_down_for_long_catches_up_from_a_snapshot() {
    let mut c = TestCluster::new(3, 7);
    c.run(60);
    let leader = c.leader().expect("leader");
    let behind = c
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    c.crash(behind);
    // Enough writes that the others save their state and compact the log past what the
    // crashed node has.
    for _ in 0..30 {
        for _ in 0..50 {
            assert!(c.write(leader));
        }
        c.run(5);
    }
    c.run(20);
    assert_eq!(c.acked.len(), 1500);
    let compacted_to = c.node(leader).expect("leader").first_log_index();
    assert!(
        compacted_to > 100,
        "the leader's log was compacted (first index {compacted_to})"
    );
    c.restart(behind);
    c.run(200);
    let caught_up = c.node(behind).expect("up");
    assert_eq!(caught_up.state().settings.len(), 1500);
    assert!(
        caught_up.first_log_index() > 100,
        "caught up through a snapshot, not the log"
    );
    assert_converged(&c);
}
