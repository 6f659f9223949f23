//! One Raft member: tikv `raft`'s `RawNode` on [`RocksStorage`], the state machine, and the
//! Ready loop. I/O-free towards the network: the caller delivers incoming messages
//! ([`Node::step`]), calls [`Node::tick`] on a timer, and sends what [`Node::process_ready`]
//! returns. Disk writes happen inside `process_ready`, batched per Ready (group commit): any
//! number of proposals accepted since the last Ready cost one fsync.

use std::collections::HashMap;
use std::path::Path;

use raft::prelude::{ConfChange, ConfChangeType, ConfChangeV2, Entry, EntryType, Message};
use raft::{Config, RawNode, StateRole};

use crate::state::{Command, Outcome, State, apply};
use crate::storage::{Applied, RocksStorage, StoreError};

/// Save the state machine (and compact the log) after this many applied entries.
const SAVE_EVERY: u64 = 1000;
/// Entries kept in the log behind the saved state, so briefly lagging followers need no
/// snapshot.
const KEEP_BEHIND: u64 = 200;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    #[error("a committed entry is unreadable: {0}")]
    BadEntry(String),
}

/// Why a proposal was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    #[error("no leader known: the cluster has no quorum right now")]
    NoLeader,
    #[error("proposal dropped: {0}")]
    Dropped(String),
    /// A new leader was elected while the proposal waited: it may or may not be applied.
    #[error("the leader changed while the proposal waited; it may or may not have been applied")]
    LeaderChanged,
}

/// What one round of the Ready loop produced.
#[derive(Debug, Default)]
pub struct Output {
    /// Messages to send to other members.
    pub messages: Vec<Message>,
    /// Proposals of this node that were committed and applied: (proposal id, outcome).
    pub applied: Vec<(u64, Outcome)>,
    /// Every command applied in this round, in log order (for observers of the state).
    pub commands: Vec<Command>,
    /// The state was replaced by a snapshot from the leader in this round.
    pub restored: bool,
    /// Linearizable reads confirmed by the leader: (read id, the index to wait for).
    pub reads: Vec<(u64, u64)>,
}

/// A Raft member with its state machine.
pub struct Node {
    raw: RawNode<RocksStorage>,
    applied: Applied,
    /// Proposal ids waiting to be applied, by the id carried in the entry's context.
    pending: HashMap<u64, ()>,
    last_saved: u64,
    save_every: u64,
    /// Save at the end of this Ready (after a membership change: a snapshot sent to a new
    /// learner must already name it, or Raft refuses to restore it).
    save_now: bool,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id())
            .field("applied", &self.applied.index)
            .finish_non_exhaustive()
    }
}

/// Timing in ticks. Raft randomises each node's election timeout with its own unseeded RNG;
/// `fixed_election` pins it per node instead (10 + id ticks), which makes in-process test
/// runs repeatable from their seed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timing {
    pub fixed_election: bool,
}

fn config(id: u64, applied: u64, timing: Timing) -> Config {
    let (min, max) = if timing.fixed_election {
        let t = 10 + usize::try_from(id % 64).unwrap_or(0);
        (t, t + 1)
    } else {
        (10, 20)
    };
    Config {
        id,
        election_tick: 10,
        min_election_tick: min,
        max_election_tick: max,
        heartbeat_tick: 2,
        applied,
        max_size_per_msg: 1024 * 1024,
        max_inflight_msgs: 256,
        check_quorum: true,
        pre_vote: true,
        ..Default::default()
    }
}

fn logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

impl Node {
    /// Opens member `id` in `dir`. A store that was never part of a cluster is bootstrapped
    /// with `voters` (pass the same list to every founding member; a joining node passes an
    /// empty list and learns the configuration from the leader).
    pub fn open(id: u64, dir: &Path, voters: &[u64]) -> Result<Node, NodeError> {
        Node::open_with(id, dir, voters, Timing::default())
    }

    /// [`Node::open`] with explicit timing.
    pub fn open_with(
        id: u64,
        dir: &Path,
        voters: &[u64],
        timing: Timing,
    ) -> Result<Node, NodeError> {
        let mut store = RocksStorage::open(dir)?;
        if !store.is_initialized() && !voters.is_empty() {
            store.bootstrap(voters)?;
        }
        let mut applied = store.applied()?;
        // Replay what was committed after the last saved state.
        let commit = store.hard_state().commit;
        let mut next = applied.index + 1;
        while next <= commit {
            let batch = raft::Storage::entries(
                &store,
                next,
                commit + 1,
                4 * 1024 * 1024,
                raft::GetEntriesContext::empty(false),
            )?;
            for e in &batch {
                apply_entry(&mut applied, e)?;
                next = e.index + 1;
            }
        }
        let last_saved = applied.index;
        let sole_voter =
            store.conf_state().voters == [id] && store.conf_state().learners.is_empty();
        let mut raw = RawNode::new(&config(id, applied.index, timing), store, &logger())?;
        if sole_voter {
            // A single-member cluster need not wait out an election timeout.
            raw.campaign()?;
        }
        Ok(Node {
            raw,
            applied,
            pending: HashMap::new(),
            last_saved,
            save_every: SAVE_EVERY,
            save_now: false,
        })
    }

    /// Saves the state machine (and compacts the log behind it) every `entries` applied
    /// entries instead of every 1,000; a follower further behind than that catches up from
    /// a snapshot.
    pub fn set_snapshot_every(&mut self, entries: u64) {
        self.save_every = entries.max(1);
    }

    pub fn id(&self) -> u64 {
        self.raw.raft.id
    }

    pub fn state(&self) -> &State {
        &self.applied.state
    }

    pub fn applied_index(&self) -> u64 {
        self.applied.index
    }

    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    /// The leader this node knows of (0: none).
    pub fn leader(&self) -> u64 {
        self.raw.raft.leader_id
    }

    pub fn term(&self) -> u64 {
        self.raw.raft.term
    }

    /// Advances the logical clock (election and heartbeat timeouts count ticks).
    pub fn tick(&mut self) {
        self.raw.tick();
    }

    /// Hands a message from another member to Raft.
    pub fn step(&mut self, msg: Message) -> Result<(), NodeError> {
        match self.raw.step(msg) {
            // Messages from removed or unknown peers are not our problem; a proposal forwarded
            // to a node that is no longer leader is dropped (its proposer never sees it
            // applied and retries).
            Ok(())
            | Err(raft::Error::StepPeerNotFound)
            | Err(raft::Error::StepLocalMsg)
            | Err(raft::Error::ProposalDropped) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Proposes `cmd` under `id` (unique per node); its outcome appears in
    /// [`Output::applied`] once committed. Followers forward proposals to the leader.
    pub fn propose(&mut self, id: u64, cmd: &Command) -> Result<(), ProposeError> {
        if self.leader() == 0 {
            return Err(ProposeError::NoLeader);
        }
        let data = serde_json::to_vec(cmd).map_err(|e| ProposeError::Dropped(e.to_string()))?;
        let context = [self.id().to_be_bytes(), id.to_be_bytes()].concat();
        self.raw
            .propose(context, data)
            .map_err(|e| ProposeError::Dropped(e.to_string()))?;
        self.pending.insert(id, ());
        Ok(())
    }

    /// Asks the leader to confirm it still leads (ReadIndex): the read `id` appears in
    /// [`Output::reads`] with the commit index a linearizable read must wait for.
    pub fn read_index(&mut self, id: u64) -> Result<(), ProposeError> {
        if self.leader() == 0 {
            return Err(ProposeError::NoLeader);
        }
        self.raw.read_index(id.to_be_bytes().to_vec());
        Ok(())
    }

    /// How far each member's log matches the leader's (leader only; empty elsewhere), and
    /// the leader's last index.
    pub fn progress(&self) -> (std::collections::BTreeMap<u64, u64>, u64) {
        let raft = &self.raw.raft;
        if raft.state != StateRole::Leader {
            return (Default::default(), 0);
        }
        let matched = raft.prs().iter().map(|(id, p)| (*id, p.matched)).collect();
        (matched, raft.raft_log.last_index())
    }

    /// Proposes adding `node` as a learner (it catches up without counting for quorum).
    pub fn add_learner(&mut self, node: u64) -> Result<(), ProposeError> {
        if self.leader() == 0 {
            return Err(ProposeError::NoLeader);
        }
        self.conf_change(node, ConfChangeType::AddLearnerNode)
    }

    /// Proposes promoting `node` to a voter.
    pub fn promote(&mut self, node: u64) -> Result<(), ProposeError> {
        self.conf_change(node, ConfChangeType::AddNode)
    }

    /// Proposes removing `node` from the configuration.
    pub fn remove(&mut self, node: u64) -> Result<(), ProposeError> {
        if self.leader() == 0 {
            return Err(ProposeError::NoLeader);
        }
        self.conf_change(node, ConfChangeType::RemoveNode)
    }

    fn conf_change(&mut self, node: u64, change_type: ConfChangeType) -> Result<(), ProposeError> {
        let cc = ConfChange {
            change_type,
            node_id: node,
            ..Default::default()
        };
        self.raw
            .propose_conf_change(Vec::new(), cc)
            .map_err(|e| ProposeError::Dropped(e.to_string()))
    }

    /// Learners whose log matches the leader's closely enough to vote (leader only).
    pub fn caught_up_learners(&self) -> Vec<u64> {
        let raft = &self.raw.raft;
        if raft.state != StateRole::Leader || raft.has_pending_conf() {
            return Vec::new();
        }
        // Caught up: it holds everything committed so far.
        let committed = raft.raft_log.committed;
        let learners = raft.prs().conf().learners();
        learners
            .iter()
            .filter(|id| raft.prs().get(**id).is_some_and(|p| p.matched >= committed))
            .copied()
            .collect()
    }

    /// The first index still in this node's log (earlier ones are covered by its snapshot).
    pub fn first_log_index(&self) -> u64 {
        raft::Storage::first_index(self.raw.store()).unwrap_or(1)
    }

    /// Voters and learners as this node knows them.
    pub fn members(&self) -> (Vec<u64>, Vec<u64>) {
        let cs = self.raw.store().conf_state();
        (cs.voters.clone(), cs.learners.clone())
    }

    /// One round of the Ready loop: persist, apply, and hand back what must be sent.
    pub fn process_ready(&mut self) -> Result<Output, NodeError> {
        let mut out = Output::default();
        if !self.raw.has_ready() {
            return Ok(out);
        }
        let mut ready = self.raw.ready();
        out.messages.extend(ready.take_messages());
        for rs in ready.take_read_states() {
            if let Ok(id) = <[u8; 8]>::try_from(rs.request_ctx.as_slice()) {
                out.reads.push((u64::from_be_bytes(id), rs.index));
            }
        }
        if !ready.snapshot().is_empty() {
            let snap = ready.snapshot().clone();
            self.applied = self.raw.mut_store().apply_snapshot(&snap)?;
            self.last_saved = self.applied.index;
            out.restored = true;
        }
        self.apply_committed(ready.take_committed_entries(), &mut out)?;
        if !ready.entries().is_empty() {
            let entries = ready.entries().clone();
            self.raw.mut_store().append(&entries)?;
        }
        if let Some(hs) = ready.hs() {
            let hs = hs.clone();
            self.raw.mut_store().set_hard_state(&hs)?;
        }
        out.messages.extend(ready.take_persisted_messages());
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.raw.mut_store().set_commit(commit)?;
        }
        out.messages.extend(light.take_messages());
        self.apply_committed(light.take_committed_entries(), &mut out)?;
        self.raw.advance_apply();
        if self.save_now || self.applied.index >= self.last_saved + self.save_every {
            self.save_now = false;
            let (voters, learners) = self.members();
            self.applied.voters = voters;
            self.applied.learners = learners;
            let keep_from = self
                .applied
                .index
                .saturating_sub(KEEP_BEHIND.min(self.save_every));
            self.raw
                .mut_store()
                .save_applied(&self.applied, keep_from)?;
            self.last_saved = self.applied.index;
        }
        Ok(out)
    }

    fn apply_committed(&mut self, entries: Vec<Entry>, out: &mut Output) -> Result<(), NodeError> {
        for e in entries {
            if e.index <= self.applied.index {
                continue;
            }
            match e.get_entry_type() {
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    let cs = if e.get_entry_type() == EntryType::EntryConfChange {
                        let cc: ConfChange = protobuf::Message::parse_from_bytes(&e.data)
                            .map_err(|err| NodeError::BadEntry(err.to_string()))?;
                        self.raw.apply_conf_change(&cc)?
                    } else {
                        let cc: ConfChangeV2 = protobuf::Message::parse_from_bytes(&e.data)
                            .map_err(|err| NodeError::BadEntry(err.to_string()))?;
                        self.raw.apply_conf_change(&cc)?
                    };
                    self.raw.mut_store().set_conf_state(&cs)?;
                    self.applied.index = e.index;
                    self.applied.term = e.term;
                    self.save_now = true;
                }
                EntryType::EntryNormal => {
                    let (outcome, cmd) = apply_entry(&mut self.applied, &e)?;
                    out.commands.extend(cmd);
                    if let (Some(outcome), Some((node, id))) = (outcome, proposal_of(&e))
                        && node == self.id()
                        && self.pending.remove(&id).is_some()
                    {
                        out.applied.push((id, outcome));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Applies a normal entry (empty ones are a new leader's no-op) to the state machine.
fn apply_entry(
    applied: &mut Applied,
    e: &Entry,
) -> Result<(Option<Outcome>, Option<Command>), NodeError> {
    let done = if e.get_entry_type() == EntryType::EntryNormal && !e.data.is_empty() {
        let cmd: Command =
            serde_json::from_slice(&e.data).map_err(|err| NodeError::BadEntry(err.to_string()))?;
        (Some(apply(&mut applied.state, &cmd)), Some(cmd))
    } else {
        (None, None)
    };
    applied.index = e.index;
    applied.term = e.term;
    Ok(done)
}

/// (proposing node, proposal id) from an entry's context.
fn proposal_of(e: &Entry) -> Option<(u64, u64)> {
    let c: &[u8] = &e.context;
    if c.len() != 16 {
        return None;
    }
    let node = u64::from_be_bytes(c[..8].try_into().ok()?);
    let id = u64::from_be_bytes(c[8..].try_into().ok()?);
    Some((node, id))
}
