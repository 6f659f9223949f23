//! Runs a [`Node`] for a daemon: one dedicated thread owns the node (RocksDB writes block, so
//! they stay off the async runtime), ticks it, feeds it the transport's messages and the
//! caller's proposals, and hands its outgoing messages to the transport. The [`Handle`] is
//! what the rest of the process uses: propose a command and wait for its outcome, read the
//! state, see who leads.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use raft::prelude::Message;
use tokio::sync::{mpsc, oneshot};

use crate::node::{Node, ProposeError};
use crate::state::{Command, Outcome, State};
use crate::transport::Outbound;

/// One Raft tick (election after 10–20 ticks, heartbeat every 2).
pub const TICK: Duration = Duration::from_millis(100);

enum Event {
    Message(Message),
    Propose(Command, oneshot::Sender<Result<Outcome, ProposeError>>),
    AddLearner(u64, oneshot::Sender<Result<(), ProposeError>>),
    Status(oneshot::Sender<Status>),
    Stop,
}

/// A member's view of the cluster.
#[derive(Debug, Clone)]
pub struct Status {
    pub id: u64,
    pub leader: u64,
    pub term: u64,
    pub applied: u64,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    pub state: State,
}

/// The daemon's side of a running node.
#[derive(Debug, Clone)]
pub struct Handle {
    events: std_mpsc::Sender<Event>,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Event::Message(_) => "Message",
            Event::Propose(..) => "Propose",
            Event::AddLearner(..) => "AddLearner",
            Event::Status(_) => "Status",
            Event::Stop => "Stop",
        })
    }
}

impl Handle {
    /// Proposes `cmd` and waits until this node applied it (then it is committed on a
    /// majority and will never be lost), or `timeout` passes (outcome unknown: the command
    /// may still commit; commands are written so that repeating them is harmless).
    pub async fn propose(&self, cmd: Command, timeout: Duration) -> Result<Outcome, ProposeError> {
        let (tx, rx) = oneshot::channel();
        self.events
            .send(Event::Propose(cmd, tx))
            .map_err(|_| ProposeError::Dropped("the node is stopped".into()))?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(ProposeError::Dropped("the node stopped".into())),
            Err(_) => Err(ProposeError::Dropped(format!(
                "not committed within {timeout:?}"
            ))),
        }
    }

    /// Proposes adding `node` as a learner; the leader promotes it once it caught up.
    pub async fn add_learner(&self, node: u64) -> Result<(), ProposeError> {
        let (tx, rx) = oneshot::channel();
        self.events
            .send(Event::AddLearner(node, tx))
            .map_err(|_| ProposeError::Dropped("the node is stopped".into()))?;
        rx.await
            .map_err(|_| ProposeError::Dropped("the node stopped".into()))?
    }

    /// This member's status and its copy of the state (local read).
    pub async fn status(&self) -> Option<Status> {
        let (tx, rx) = oneshot::channel();
        self.events.send(Event::Status(tx)).ok()?;
        rx.await.ok()
    }

    /// Stops the node thread (its state is on disk).
    pub fn stop(&self) {
        let _ = self.events.send(Event::Stop);
    }
}

/// Starts `node`'s thread. `inbound` carries messages from the transport; `outbound` sends.
/// Must be called inside a tokio runtime (the transport's tasks run there).
pub fn start(node: Node, mut inbound: mpsc::Receiver<Message>, outbound: Arc<Outbound>) -> Handle {
    let (events, rx) = std_mpsc::channel();
    let forward = events.clone();
    tokio::spawn(async move {
        while let Some(m) = inbound.recv().await {
            if forward.send(Event::Message(m)).is_err() {
                break;
            }
        }
    });
    let id = node.id();
    std::thread::Builder::new()
        .name(format!("raft-{id}"))
        .spawn(move || {
            let span = tracing::info_span!("raft", node = id);
            let _enter = span.enter();
            run(node, rx, &outbound);
        })
        .map(|_| ())
        .unwrap_or_else(|e| tracing::error!(error = %e, "cannot start the raft thread"));
    Handle { events }
}

fn run(mut node: Node, events: std_mpsc::Receiver<Event>, outbound: &Outbound) {
    let mut next_id: u64 = 0;
    let mut waiting: HashMap<u64, oneshot::Sender<Result<Outcome, ProposeError>>> = HashMap::new();
    let mut next_tick = Instant::now() + TICK;
    let mut leader = 0;
    let mut known_members = node.state().members.clone();
    if !known_members.is_empty() {
        outbound.set_addresses(&known_members);
    }
    loop {
        let wait = next_tick.saturating_duration_since(Instant::now());
        match events.recv_timeout(wait) {
            Ok(Event::Message(m)) => {
                if let Err(e) = node.step(m) {
                    tracing::warn!(error = %e, "raft refused a message");
                }
            }
            Ok(Event::Propose(cmd, reply)) => {
                next_id += 1;
                match node.propose(next_id, &cmd) {
                    Ok(()) => {
                        waiting.insert(next_id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Ok(Event::AddLearner(id, reply)) => {
                let _ = reply.send(node.add_learner(id));
            }
            Ok(Event::Status(reply)) => {
                let (voters, learners) = node.members();
                let _ = reply.send(Status {
                    id: node.id(),
                    leader: node.leader(),
                    term: node.term(),
                    applied: node.applied_index(),
                    voters,
                    learners,
                    state: node.state().clone(),
                });
            }
            Ok(Event::Stop) | Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
            Err(std_mpsc::RecvTimeoutError::Timeout) => {}
        }
        if Instant::now() >= next_tick {
            // Learners that caught up become voters (one change at a time).
            if node.is_leader()
                && let Some(id) = node.caught_up_learners().first()
            {
                match node.promote(*id) {
                    Ok(()) => tracing::info!(node = id, "learner caught up: promoting to voter"),
                    Err(e) => tracing::debug!(node = id, error = %e, "promotion not proposed yet"),
                }
            }
            node.tick();
            next_tick += TICK;
            if next_tick < Instant::now() {
                next_tick = Instant::now() + TICK;
            }
        }
        match node.process_ready() {
            Ok(out) => {
                if node.state().members != known_members && !node.state().members.is_empty() {
                    known_members = node.state().members.clone();
                    outbound.set_addresses(&known_members);
                }
                for m in out.messages {
                    outbound.send(m);
                }
                for (id, outcome) in out.applied {
                    if let Some(reply) = waiting.remove(&id) {
                        let _ = reply.send(Ok(outcome));
                    }
                }
            }
            Err(e) => {
                // Storage failed: stop rather than acknowledge anything not on disk.
                tracing::error!(error = %e, "raft storage failed; this node stops");
                return;
            }
        }
        if node.leader() != leader {
            leader = node.leader();
            tracing::info!(leader, term = node.term(), "leader changed");
        }
    }
}
