//! The Raft log, hard state, conf state and the applied state machine in RocksDB.
//!
//! Keys: `e` + big-endian index → entry; `hs` → hard state; `cs` → conf state; `tr` → index
//! and term of the last entry compacted away (or covered by a snapshot); `st` → the state
//! machine as of an applied index. Every write that Raft needs durable before a message goes
//! out (entries, hard state) is a synced `WriteBatch`: fsync once per Ready, however many
//! entries it holds (group commit).

use std::path::Path;

use protobuf::Message as _;
use raft::prelude::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, StorageError};
use rocksdb::{DB, IteratorMode, Options, WriteBatch, WriteOptions};

use crate::state::State;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("RocksDB: {0}")]
    Db(#[from] rocksdb::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

const HARD_STATE: &[u8] = b"hs";
const CONF_STATE: &[u8] = b"cs";
const TRUNCATED: &[u8] = b"tr";
const APPLIED: &[u8] = b"st";

fn entry_key(index: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = b'e';
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// The state machine as persisted: the state after applying everything up to `index`, and
/// the membership at that index (a snapshot carries both).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Applied {
    pub index: u64,
    pub term: u64,
    pub state: State,
    #[serde(default)]
    pub voters: Vec<u64>,
    #[serde(default)]
    pub learners: Vec<u64>,
}

/// Raft storage on RocksDB, with the bounds of the log cached in memory.
pub struct RocksStorage {
    db: DB,
    hard: HardState,
    conf: ConfState,
    /// (index, term) of the entry just before the first one in the log.
    truncated: (u64, u64),
    last: u64,
}

impl std::fmt::Debug for RocksStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStorage")
            .field("truncated", &self.truncated)
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

fn synced() -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(true);
    w
}

impl RocksStorage {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<RocksStorage, StoreError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        let db = DB::open(&opts, dir)?;
        let hard = match db.get(HARD_STATE)? {
            Some(b) => HardState::parse_from_bytes(&b).map_err(corrupt)?,
            None => HardState::default(),
        };
        let conf = match db.get(CONF_STATE)? {
            Some(b) => ConfState::parse_from_bytes(&b).map_err(corrupt)?,
            None => ConfState::default(),
        };
        let truncated = match db.get(TRUNCATED)? {
            Some(b) if b.len() == 16 => (
                u64::from_be_bytes(b[..8].try_into().map_err(corrupt)?),
                u64::from_be_bytes(b[8..].try_into().map_err(corrupt)?),
            ),
            Some(_) => return Err(corrupt("truncated state has the wrong length")),
            None => (0, 0),
        };
        let last = {
            let end = entry_key(u64::MAX);
            let mut iter = db.iterator(IteratorMode::From(&end, rocksdb::Direction::Reverse));
            match iter.next() {
                Some(item) => {
                    let (k, _) = item?;
                    if k.len() == 9 && k[0] == b'e' {
                        u64::from_be_bytes(k[1..].try_into().map_err(corrupt)?)
                    } else {
                        truncated.0
                    }
                }
                None => truncated.0,
            }
        };
        Ok(RocksStorage {
            db,
            hard,
            conf,
            truncated,
            last,
        })
    }

    /// Whether this store has ever been part of a cluster.
    pub fn is_initialized(&self) -> bool {
        !self.conf.voters.is_empty() || !self.conf.learners.is_empty() || self.truncated.0 > 0
    }

    pub fn hard_state(&self) -> &HardState {
        &self.hard
    }

    pub fn conf_state(&self) -> &ConfState {
        &self.conf
    }

    /// Makes this store the first member of a new cluster: membership `voters` as of index 1,
    /// term 1, with the log starting after it. A node that joins later therefore always
    /// starts from a snapshot, which carries the membership (the log alone does not).
    pub fn bootstrap(&mut self, voters: &[u64]) -> Result<(), StoreError> {
        let cs = ConfState {
            voters: voters.to_vec(),
            ..Default::default()
        };
        let applied = Applied {
            index: 1,
            term: 1,
            state: State::default(),
            voters: voters.to_vec(),
            learners: Vec::new(),
        };
        let hs = HardState {
            term: 1,
            commit: 1,
            ..Default::default()
        };
        let mut batch = WriteBatch::default();
        batch.put(CONF_STATE, cs.write_to_bytes().map_err(corrupt)?);
        batch.put(APPLIED, serde_json::to_vec(&applied).map_err(corrupt)?);
        batch.put(TRUNCATED, [1u64.to_be_bytes(), 1u64.to_be_bytes()].concat());
        batch.put(HARD_STATE, hs.write_to_bytes().map_err(corrupt)?);
        self.db.write_opt(batch, &synced())?;
        self.conf = cs;
        self.truncated = (1, 1);
        self.last = 1;
        self.hard = hs;
        Ok(())
    }

    /// Appends entries (replacing any conflicting suffix) and fsyncs.
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), StoreError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let mut batch = WriteBatch::default();
        // A new entry at index i replaces i and everything after it.
        for i in first.index..=self.last {
            batch.delete(entry_key(i));
        }
        for e in entries {
            batch.put(entry_key(e.index), e.write_to_bytes().map_err(corrupt)?);
        }
        self.db.write_opt(batch, &synced())?;
        self.last = entries.last().map_or(self.last, |e| e.index);
        Ok(())
    }

    pub fn set_hard_state(&mut self, hs: &HardState) -> Result<(), StoreError> {
        self.db
            .put_opt(HARD_STATE, hs.write_to_bytes().map_err(corrupt)?, &synced())?;
        self.hard = hs.clone();
        Ok(())
    }

    pub fn set_commit(&mut self, commit: u64) -> Result<(), StoreError> {
        let mut hs = self.hard.clone();
        hs.commit = commit;
        self.set_hard_state(&hs)
    }

    pub fn set_conf_state(&mut self, cs: &ConfState) -> Result<(), StoreError> {
        self.db
            .put_opt(CONF_STATE, cs.write_to_bytes().map_err(corrupt)?, &synced())?;
        self.conf = cs.clone();
        Ok(())
    }

    /// The persisted state machine (empty at index 0 when never saved).
    pub fn applied(&self) -> Result<Applied, StoreError> {
        match self.db.get(APPLIED)? {
            Some(b) => serde_json::from_slice(&b).map_err(corrupt),
            None => Ok(Applied::default()),
        }
    }

    /// Saves the state machine as of `applied.index` and drops log entries before
    /// `compact_to` (which must not exceed `applied.index`).
    pub fn save_applied(&mut self, applied: &Applied, compact_to: u64) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.put(APPLIED, serde_json::to_vec(applied).map_err(corrupt)?);
        let compact_to = compact_to.min(applied.index).min(self.last);
        if compact_to > self.truncated.0 + 1 {
            let term = self.entry(compact_to - 1)?.map_or(0, |e| e.term);
            for i in self.truncated.0 + 1..compact_to {
                batch.delete(entry_key(i));
            }
            batch.put(
                TRUNCATED,
                [(compact_to - 1).to_be_bytes(), term.to_be_bytes()].concat(),
            );
            self.db.write_opt(batch, &synced())?;
            self.truncated = (compact_to - 1, term);
        } else {
            self.db.write_opt(batch, &synced())?;
        }
        Ok(())
    }

    /// Installs a snapshot from the leader: the state machine, conf state and log position.
    pub fn apply_snapshot(&mut self, snap: &Snapshot) -> Result<Applied, StoreError> {
        let meta = snap.get_metadata();
        let state: State = serde_json::from_slice(snap.get_data()).map_err(corrupt)?;
        let applied = Applied {
            index: meta.index,
            term: meta.term,
            state,
            voters: meta.get_conf_state().voters.clone(),
            learners: meta.get_conf_state().learners.clone(),
        };
        let mut batch = WriteBatch::default();
        for i in self.truncated.0 + 1..=self.last {
            batch.delete(entry_key(i));
        }
        batch.put(APPLIED, serde_json::to_vec(&applied).map_err(corrupt)?);
        batch.put(
            TRUNCATED,
            [meta.index.to_be_bytes(), meta.term.to_be_bytes()].concat(),
        );
        batch.put(
            CONF_STATE,
            meta.get_conf_state().write_to_bytes().map_err(corrupt)?,
        );
        let mut hs = self.hard.clone();
        hs.commit = hs.commit.max(meta.index);
        hs.term = hs.term.max(meta.term);
        batch.put(HARD_STATE, hs.write_to_bytes().map_err(corrupt)?);
        self.db.write_opt(batch, &synced())?;
        self.truncated = (meta.index, meta.term);
        self.last = meta.index;
        self.conf = meta.get_conf_state().clone();
        self.hard = hs;
        Ok(applied)
    }

    fn entry(&self, index: u64) -> Result<Option<Entry>, StoreError> {
        match self.db.get(entry_key(index))? {
            Some(b) => Ok(Some(Entry::parse_from_bytes(&b).map_err(corrupt)?)),
            None => Ok(None),
        }
    }
}

fn store_err(e: StoreError) -> raft::Error {
    raft::Error::Store(StorageError::Other(Box::new(e)))
}

impl raft::Storage for RocksStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(self.hard.clone(), self.conf.clone()))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low <= self.truncated.0 {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let max = max_size.into().unwrap_or(u64::MAX);
        let mut out = Vec::new();
        let mut size = 0u64;
        for i in low..high {
            let e = self
                .entry(i)
                .map_err(store_err)?
                .ok_or(raft::Error::Store(StorageError::Unavailable))?;
            size += u64::from(e.compute_size());
            // At least one entry, then only while under the limit (raft-rs semantics).
            if !out.is_empty() && size > max {
                break;
            }
            out.push(e);
        }
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx == self.truncated.0 {
            return Ok(self.truncated.1);
        }
        if idx < self.truncated.0 {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx > self.last {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        match self.entry(idx).map_err(store_err)? {
            Some(e) => Ok(e.term),
            None => Err(raft::Error::Store(StorageError::Unavailable)),
        }
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.truncated.0 + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last)
    }

    /// A snapshot of the persisted state machine (the node saves it often enough that a
    /// lagging follower is never far behind it).
    fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let applied = self.applied().map_err(store_err)?;
        let mut snap = Snapshot::default();
        snap.set_data(
            serde_json::to_vec(&applied.state)
                .map_err(|e| store_err(corrupt(e)))?
                .into(),
        );
        let mut meta = SnapshotMetadata {
            index: applied.index,
            term: applied.term,
            ..Default::default()
        };
        meta.set_conf_state(ConfState {
            voters: applied.voters,
            learners: applied.learners,
            ..Default::default()
        });
        snap.set_metadata(meta);
        Ok(snap)
    }
}

#[cfg(test)]
mod tests;
