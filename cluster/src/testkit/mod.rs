//! In-process test kit: N real [`Node`]s (each on its own RocksDB directory) connected by a
//! simulated network that can partition, drop, delay and reorder messages, driven in
//! discrete steps from a seed so every run can be repeated exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use raft::prelude::Message;

use crate::node::{Node, Timing};
use crate::state::Command;

/// xorshift64*: small, seedable, good enough to schedule faults.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// 0..n
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// true with probability `pct` percent.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

/// The simulated network.
#[derive(Debug)]
pub struct Net {
    rng: Rng,
    in_flight: Vec<(u64, Message)>,
    /// Nodes that can only talk among themselves (the rest form the other side).
    pub partition: Option<BTreeSet<u64>>,
    /// Percent of messages lost.
    pub drop_pct: u64,
    /// Messages arrive 0..=max_delay steps late, so they also overtake each other.
    pub max_delay: u64,
}

impl Net {
    fn blocked(&self, from: u64, to: u64) -> bool {
        self.partition
            .as_ref()
            .is_some_and(|side| side.contains(&from) != side.contains(&to))
    }

    fn send(&mut self, now: u64, msgs: Vec<Message>) {
        for m in msgs {
            if self.blocked(m.from, m.to) || self.rng.chance(self.drop_pct) {
                continue;
            }
            let at = now + self.rng.below(self.max_delay + 1);
            self.in_flight.push((at, m));
        }
    }

    fn due(&mut self, now: u64) -> Vec<Message> {
        let (due, later): (Vec<_>, Vec<_>) = self.in_flight.drain(..).partition(|(t, _)| *t <= now);
        self.in_flight = later;
        let mut due: Vec<Message> = due.into_iter().map(|(_, m)| m).collect();
        // Shuffle: same-step messages arrive in any order.
        for i in (1..due.len()).rev() {
            let j = self.rng.below(i as u64 + 1) as usize;
            due.swap(i, j);
        }
        due.retain(|m| !self.blocked(m.from, m.to));
        due
    }
}

const DETERMINISTIC: Timing = Timing {
    fixed_election: true,
};

/// A directory removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("postern-cluster-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// N members on a simulated network.
#[derive(Debug)]
pub struct TestCluster {
    pub net: Net,
    dirs: BTreeMap<u64, TempDir>,
    /// `None`: crashed.
    nodes: BTreeMap<u64, Option<Node>>,
    voters: Vec<u64>,
    pub now: u64,
    /// Write ids whose proposer saw them applied: these must never be lost.
    pub acked: BTreeSet<u64>,
    next_write: u64,
}

impl TestCluster {
    pub fn new(n: u64, seed: u64) -> TestCluster {
        let voters: Vec<u64> = (1..=n).collect();
        let mut dirs = BTreeMap::new();
        let mut nodes = BTreeMap::new();
        for id in &voters {
            let dir = TempDir::new(&format!("node{id}"));
            let node = Node::open_with(*id, &dir.0, &voters, DETERMINISTIC).expect("open node");
            dirs.insert(*id, dir);
            nodes.insert(*id, Some(node));
        }
        TestCluster {
            net: Net {
                rng: Rng::new(seed),
                in_flight: Vec::new(),
                partition: None,
                drop_pct: 0,
                max_delay: 0,
            },
            dirs,
            nodes,
            voters,
            now: 0,
            acked: BTreeSet::new(),
            next_write: 0,
        }
    }

    pub fn ids(&self) -> Vec<u64> {
        self.voters.clone()
    }

    pub fn node(&self, id: u64) -> Option<&Node> {
        self.nodes.get(&id).and_then(Option::as_ref)
    }

    /// The leader, if exactly one live node believes it leads at the highest term.
    pub fn leader(&self) -> Option<u64> {
        let live: Vec<&Node> = self.nodes.values().flatten().collect();
        let top = live.iter().map(|n| n.term()).max()?;
        let leaders: Vec<u64> = live
            .iter()
            .filter(|n| n.is_leader() && n.term() == top)
            .map(|n| n.id())
            .collect();
        (leaders.len() == 1).then(|| leaders[0])
    }

    /// Runs `steps` steps: tick every live node, deliver due messages, run each Ready loop.
    pub fn run(&mut self, steps: u64) {
        for _ in 0..steps {
            self.now += 1;
            for n in self.nodes.values_mut().flatten() {
                n.tick();
            }
            for m in self.net.due(self.now) {
                if let Some(Some(n)) = self.nodes.get_mut(&m.to) {
                    let (from, to) = (m.from, m.to);
                    if let Err(e) = n.step(m) {
                        panic!("node {to} refused a message from {from}: {e}");
                    }
                }
            }
            let mut outgoing = Vec::new();
            for n in self.nodes.values_mut().flatten() {
                let out = n.process_ready().expect("ready");
                outgoing.extend(out.messages);
                self.acked.extend(out.applied.into_iter().map(|(id, _)| id));
            }
            self.net.send(self.now, outgoing);
        }
    }

    /// Proposes write number N (key `wN`) at `at`; false if the node could not take it.
    pub fn write(&mut self, at: u64) -> bool {
        self.next_write += 1;
        let id = self.next_write;
        let cmd = Command::PutSetting {
            key: format!("w{id}"),
            value: format!("from {at}"),
        };
        match self.nodes.get_mut(&at) {
            Some(Some(n)) => n.propose(id, &cmd).is_ok(),
            _ => false,
        }
    }

    /// Stops a node as a crash would: nothing more is written or sent.
    pub fn crash(&mut self, id: u64) {
        if let Some(slot) = self.nodes.get_mut(&id) {
            *slot = None;
        }
    }

    /// Starts a crashed node again from its directory.
    pub fn restart(&mut self, id: u64) {
        let dir = &self.dirs[&id].0;
        let node = Node::open_with(id, dir, &self.voters, DETERMINISTIC).expect("reopen node");
        self.nodes.insert(id, Some(node));
    }

    pub fn is_up(&self, id: u64) -> bool {
        self.node(id).is_some()
    }
}

#[cfg(test)]
mod tests;
