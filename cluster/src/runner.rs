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
/// How long a retrying proposer waits for an election before it tries again.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Where a proposal's outcome goes: an async caller or a blocking one.
enum Reply {
    Async(oneshot::Sender<Result<Outcome, ProposeError>>),
    Blocking(std_mpsc::Sender<Result<Outcome, ProposeError>>),
}

impl Reply {
    fn send(self, r: Result<Outcome, ProposeError>) {
        match self {
            Reply::Async(tx) => {
                let _ = tx.send(r);
            }
            Reply::Blocking(tx) => {
                let _ = tx.send(r);
            }
        }
    }
}

enum Event {
    Message(Message),
    Propose(Command, Reply),
    AddLearner(u64, oneshot::Sender<Result<(), ProposeError>>),
    Remove(u64, oneshot::Sender<Result<(), ProposeError>>),
    ReadIndex(oneshot::Sender<Result<(), ProposeError>>),
    Status(oneshot::Sender<Status>),
    Leader(oneshot::Sender<(u64, u64)>),
    Vips(oneshot::Sender<VipView>),
    Stop(Option<oneshot::Sender<()>>),
}

/// Sees the state change on the node's thread, in log order, before any proposer hears
/// that its command was applied: what `posternd` uses to keep the key store it reads on
/// the mail path equal to the replicated state.
pub trait Observer: Send + Sync {
    /// The whole state is (newly) this: at start and after a snapshot from the leader.
    fn restored(&self, state: &State);
    /// `cmd` was applied. `state` is the state after the round of entries `cmd` came in
    /// (it may already include later commands of the same round; each is reported).
    fn applied(&self, state: &State, cmd: &Command);
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
    /// On the leader: how far each member's log matches (its lag is `last_index - matched`).
    pub matched: std::collections::BTreeMap<u64, u64>,
    /// On the leader: its last log index.
    pub last_index: u64,
    pub state: State,
}

/// What the VIP agent needs, without copying the whole state.
#[derive(Debug, Clone)]
pub struct VipView {
    pub id: u64,
    pub leader: u64,
    /// Members this node heard from within [`LIVE_WITHIN`], itself included (meaningful
    /// on the leader, which hears from every live member at each heartbeat).
    pub live: std::collections::BTreeSet<u64>,
    /// The state's members, VIP configuration, assignments and health reports only.
    pub state: State,
}

/// A member not heard from for this long counts as gone (heartbeats go every 200 ms).
pub const LIVE_WITHIN: Duration = Duration::from_millis(600);

/// The daemon's side of a running node.
#[derive(Debug, Clone)]
pub struct Handle {
    events: std_mpsc::Sender<Event>,
    /// The member's listening socket, closed by [`Handle::shutdown`].
    listener: Arc<std::sync::Mutex<Option<tokio::task::AbortHandle>>>,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Event::Message(_) => "Message",
            Event::Propose(..) => "Propose",
            Event::AddLearner(..) => "AddLearner",
            Event::Remove(..) => "Remove",
            Event::ReadIndex(_) => "ReadIndex",
            Event::Status(_) => "Status",
            Event::Leader(_) => "Leader",
            Event::Vips(_) => "Vips",
            Event::Stop(_) => "Stop",
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
            .send(Event::Propose(cmd, Reply::Async(tx)))
            .map_err(|_| ProposeError::Dropped("the node is stopped".into()))?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(ProposeError::Dropped("the node stopped".into())),
            Err(_) => Err(ProposeError::Dropped(format!(
                "not committed within {timeout:?}"
            ))),
        }
    }

    /// Proposes a command that may safely be applied twice (every state command but
    /// `UseJoinToken`), trying again while there is no leader or the leader changed, until
    /// `timeout`: what admin writes use, so a failover costs them an election, not a timeout.
    pub async fn propose_retrying(
        &self,
        cmd: Command,
        timeout: Duration,
    ) -> Result<Outcome, ProposeError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.propose(cmd.clone(), left).await {
                Err(ProposeError::NoLeader | ProposeError::LeaderChanged)
                    if tokio::time::Instant::now() + RETRY_PAUSE < deadline =>
                {
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                other => return other,
            }
        }
    }

    /// [`Handle::propose`] (`retry`: [`Handle::propose_retrying`]) for threads that may
    /// block (never on an async task).
    pub fn propose_blocking(
        &self,
        cmd: Command,
        timeout: Duration,
        retry: bool,
    ) -> Result<Outcome, ProposeError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (tx, rx) = std_mpsc::channel();
            self.events
                .send(Event::Propose(cmd.clone(), Reply::Blocking(tx)))
                .map_err(|_| ProposeError::Dropped("the node is stopped".into()))?;
            let r = match rx.recv_timeout(left) {
                Ok(r) => r,
                Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                    Err(ProposeError::Dropped("the node stopped".into()))
                }
                Err(std_mpsc::RecvTimeoutError::Timeout) => Err(ProposeError::Dropped(format!(
                    "not committed within {timeout:?}"
                ))),
            };
            match r {
                Err(ProposeError::NoLeader | ProposeError::LeaderChanged)
                    if retry && Instant::now() + RETRY_PAUSE < deadline =>
                {
                    std::thread::sleep(RETRY_PAUSE);
                }
                other => return other,
            }
        }
    }

    /// Waits until this node has applied everything the cluster had committed when the
    /// call was made, confirmed by the leader with a quorum (ReadIndex): a read of the
    /// local state after it returns is linearizable.
    pub async fn read_barrier(&self, timeout: Duration) -> Result<(), ProposeError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (tx, rx) = oneshot::channel();
            self.events
                .send(Event::ReadIndex(tx))
                .map_err(|_| ProposeError::Dropped("the node is stopped".into()))?;
            // A leader that has not committed in its term yet drops reads: ask again.
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left.min(Duration::from_millis(500)), rx).await {
                Ok(Ok(r)) => return r,
                Ok(Err(_)) => return Err(ProposeError::Dropped("the node stopped".into())),
                Err(_) if tokio::time::Instant::now() >= deadline => {
                    return Err(ProposeError::Dropped(format!(
                        "no quorum confirmed the read within {timeout:?}"
                    )));
                }
                Err(_) => {}
            }
        }
    }

    /// Proposes removing `node` from the cluster configuration.
    pub async fn remove_node(&self, node: u64) -> Result<(), ProposeError> {
        let (tx, rx) = oneshot::channel();
        self.events
            .send(Event::Remove(node, tx))
            .map_err(|_| ProposeError::Dropped("the node is stopped".into()))?;
        rx.await
            .map_err(|_| ProposeError::Dropped("the node stopped".into()))?
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

    /// (this node's id, the leader it knows of; 0: none), without copying the state.
    pub async fn leadership(&self) -> Option<(u64, u64)> {
        let (tx, rx) = oneshot::channel();
        self.events.send(Event::Leader(tx)).ok()?;
        rx.await.ok()
    }

    /// The VIP part of this member's view (local read).
    pub async fn vips(&self) -> Option<VipView> {
        let (tx, rx) = oneshot::channel();
        self.events.send(Event::Vips(tx)).ok()?;
        rx.await.ok()
    }

    /// This member's status and its copy of the state (local read).
    pub async fn status(&self) -> Option<Status> {
        let (tx, rx) = oneshot::channel();
        self.events.send(Event::Status(tx)).ok()?;
        rx.await.ok()
    }

    /// Stops the node thread (its state is on disk).
    pub fn stop(&self) {
        let _ = self.events.send(Event::Stop(None));
    }

    /// Ties the member's listening socket to this node: [`Handle::shutdown`] closes it.
    pub fn attach_listener(&self, listener: tokio::task::AbortHandle) {
        let mut slot = self.listener.lock().unwrap_or_else(|p| p.into_inner());
        *slot = Some(listener);
    }

    /// Stops the node thread and its listener, and waits until the store is closed (the
    /// directory can then be moved and the port bound again).
    pub async fn shutdown(&self) {
        let listener = self
            .listener
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(l) = listener {
            l.abort();
        }
        let (tx, rx) = oneshot::channel();
        if self.events.send(Event::Stop(Some(tx))).is_ok() {
            let _ = rx.await;
        }
    }
}

/// Starts `node`'s thread. `inbound` carries messages from the transport; `outbound` sends.
/// Must be called inside a tokio runtime (the transport's tasks run there).
pub fn start(
    node: Node,
    mut inbound: mpsc::Receiver<Message>,
    outbound: Arc<Outbound>,
    observer: Option<Arc<dyn Observer>>,
) -> Handle {
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
            let stopped = run(node, rx, &outbound, observer.as_deref());
            // The node (and its RocksDB handle) is closed by now.
            if let Some(tx) = stopped {
                let _ = tx.send(());
            }
        })
        .map(|_| ())
        .unwrap_or_else(|e| tracing::error!(error = %e, "cannot start the raft thread"));
    Handle {
        events,
        listener: Arc::default(),
    }
}

fn run(
    mut node: Node,
    events: std_mpsc::Receiver<Event>,
    outbound: &Outbound,
    observer: Option<&dyn Observer>,
) -> Option<oneshot::Sender<()>> {
    // Proposal ids start at a random point: an entry proposed before a restart that
    // commits late must not answer a new proposal with the same id.
    let mut next_id: u64 = {
        let mut b = [0u8; 8];
        openssl::rand::rand_bytes(&mut b)
            .map(|()| u64::from_be_bytes(b) >> 1)
            .unwrap_or_else(|_| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0)
            })
    };
    // Proposals waiting to be applied, with the term they were made in.
    let mut waiting: HashMap<u64, (Reply, u64)> = HashMap::new();
    let mut reads: HashMap<u64, oneshot::Sender<Result<(), ProposeError>>> = HashMap::new();
    // When each member was last heard from.
    let mut heard: HashMap<u64, Instant> = HashMap::new();
    // Confirmed reads waiting for this node to apply up to their index.
    let mut confirmed: Vec<(u64, oneshot::Sender<Result<(), ProposeError>>)> = Vec::new();
    if let Some(o) = observer {
        o.restored(node.state());
    }
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
                heard.insert(m.from, Instant::now());
                if let Err(e) = node.step(m) {
                    tracing::warn!(error = %e, "raft refused a message");
                }
            }
            Ok(Event::Propose(cmd, reply)) => {
                next_id += 1;
                match node.propose(next_id, &cmd) {
                    Ok(()) => {
                        waiting.insert(next_id, (reply, node.term()));
                    }
                    Err(e) => reply.send(Err(e)),
                }
            }
            Ok(Event::AddLearner(id, reply)) => {
                let _ = reply.send(node.add_learner(id));
            }
            Ok(Event::Remove(id, reply)) => {
                let _ = reply.send(node.remove(id));
            }
            Ok(Event::ReadIndex(reply)) => {
                next_id += 1;
                match node.read_index(next_id) {
                    Ok(()) => {
                        reads.insert(next_id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Ok(Event::Status(reply)) => {
                let (voters, learners) = node.members();
                let (matched, last_index) = node.progress();
                let _ = reply.send(Status {
                    matched,
                    last_index,
                    id: node.id(),
                    leader: node.leader(),
                    term: node.term(),
                    applied: node.applied_index(),
                    voters,
                    learners,
                    state: node.state().clone(),
                });
            }
            Ok(Event::Vips(reply)) => {
                let s = node.state();
                let mut live: std::collections::BTreeSet<u64> = heard
                    .iter()
                    .filter(|(_, t)| t.elapsed() < LIVE_WITHIN)
                    .map(|(id, _)| *id)
                    .collect();
                live.insert(node.id());
                let _ = reply.send(VipView {
                    id: node.id(),
                    leader: node.leader(),
                    live,
                    state: State {
                        members: s.members.clone(),
                        vip_config: s.vip_config.clone(),
                        vips: s.vips.clone(),
                        unhealthy: s.unhealthy.clone(),
                        ..State::default()
                    },
                });
            }
            Ok(Event::Leader(reply)) => {
                let _ = reply.send((node.id(), node.leader()));
            }
            Ok(Event::Stop(ack)) => return ack,
            Err(std_mpsc::RecvTimeoutError::Disconnected) => return None,
            Err(std_mpsc::RecvTimeoutError::Timeout) => {}
        }
        if Instant::now() >= next_tick {
            // Reads whose caller gave up (a dropped request is asked again) are forgotten.
            reads.retain(|_, tx| !tx.is_closed());
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
                if out.restored {
                    tracing::info!(
                        index = node.applied_index(),
                        "restored a snapshot from the leader"
                    );
                }
                if let Some(o) = observer {
                    if out.restored {
                        o.restored(node.state());
                    }
                    // The observer sees the state after the whole round; commands are
                    // still reported one by one, in order.
                    for cmd in &out.commands {
                        o.applied(node.state(), cmd);
                    }
                }
                if node.state().members != known_members && !node.state().members.is_empty() {
                    known_members = node.state().members.clone();
                    outbound.set_addresses(&known_members);
                }
                for m in out.messages {
                    outbound.send(m);
                }
                for (id, outcome) in out.applied {
                    if let Some((reply, _)) = waiting.remove(&id) {
                        reply.send(Ok(outcome));
                    }
                }
                for (id, index) in out.reads {
                    if let Some(reply) = reads.remove(&id) {
                        confirmed.push((index, reply));
                    }
                }
                let applied = node.applied_index();
                for (_, reply) in confirmed.extract_if(.., |(index, _)| *index <= applied) {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(e) => {
                // Storage failed: stop rather than acknowledge anything not on disk.
                tracing::error!(error = %e, "raft storage failed; this node stops");
                return None;
            }
        }
        if node.leader() != leader {
            leader = node.leader();
            tracing::info!(leader, term = node.term(), "leader changed");
            // A proposal forwarded to a leader that is gone is lost; one that reached the
            // new leader's log will still apply. The proposer cannot tell: tell it now
            // instead of letting it wait out its timeout (state commands can be repeated).
            if leader != 0 {
                let term = node.term();
                for (_, (reply, _)) in waiting.extract_if(|_, (_, t)| *t < term) {
                    reply.send(Err(ProposeError::LeaderChanged));
                }
            }
        }
    }
}
