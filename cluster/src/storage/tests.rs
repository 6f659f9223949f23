use raft::Storage as _;

use super::*;
use crate::state::{Command, apply};
use crate::testkit::TempDir;

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: format!("{index}/{term}").into_bytes().into(),
        ..Default::default()
    }
}

fn terms(s: &RocksStorage, low: u64, high: u64) -> Vec<u64> {
    s.entries(low, high, None, GetEntriesContext::empty(false))
        .unwrap()
        .iter()
        .map(|e| e.term)
        .collect()
}

#[test]
fn entries_survive_reopen_and_conflicts_are_replaced() {
    let dir = TempDir::new("append");
    {
        let mut s = RocksStorage::open(&dir.0).unwrap();
        assert!(!s.is_initialized());
        s.append(&[entry(1, 1), entry(2, 1), entry(3, 1)]).unwrap();
        // A new leader overwrites index 2 onwards.
        s.append(&[entry(2, 2)]).unwrap();
        let hs = HardState {
            term: 2,
            vote: 7,
            commit: 2,
            ..Default::default()
        };
        s.set_hard_state(&hs).unwrap();
        let cs = ConfState {
            voters: vec![1, 2, 3],
            ..Default::default()
        };
        s.set_conf_state(&cs).unwrap();
    }
    let s = RocksStorage::open(&dir.0).unwrap();
    assert!(s.is_initialized());
    assert_eq!((s.first_index().unwrap(), s.last_index().unwrap()), (1, 2));
    assert_eq!(terms(&s, 1, 3), [1, 2]);
    assert_eq!(s.term(2).unwrap(), 2);
    assert!(matches!(
        s.term(3),
        Err(raft::Error::Store(StorageError::Unavailable))
    ));
    let st = s.initial_state().unwrap();
    assert_eq!(
        (st.hard_state.term, st.hard_state.vote, st.hard_state.commit),
        (2, 7, 2)
    );
    assert_eq!(st.conf_state.voters, [1, 2, 3]);
    // Size limits still return at least one entry.
    assert_eq!(
        s.entries(1, 3, 1, GetEntriesContext::empty(false))
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn compaction_and_snapshot_install() {
    let dir = TempDir::new("compact");
    let mut s = RocksStorage::open(&dir.0).unwrap();
    let cs = ConfState {
        voters: vec![1],
        ..Default::default()
    };
    s.set_conf_state(&cs).unwrap();
    s.append(&(1..=10).map(|i| entry(i, 1 + i / 5)).collect::<Vec<_>>())
        .unwrap();
    let mut state = State::default();
    apply(
        &mut state,
        &Command::PutSetting {
            key: "a".into(),
            value: "1".into(),
        },
    );
    let applied = Applied {
        index: 8,
        term: s.term(8).unwrap(),
        state: state.clone(),
        voters: vec![1],
        learners: Vec::new(),
    };
    s.save_applied(&applied, 6).unwrap();
    assert_eq!(s.first_index().unwrap(), 6);
    assert_eq!(
        s.term(5).unwrap(),
        2,
        "the term just before the log stays known"
    );
    assert!(matches!(
        s.entries(3, 7, None, GetEntriesContext::empty(false)),
        Err(raft::Error::Store(StorageError::Compacted))
    ));
    assert_eq!(terms(&s, 6, 11), [2, 2, 2, 2, 3]);
    // The snapshot carries the saved state; another store installs it.
    let snap = s.snapshot(0, 2).unwrap();
    assert_eq!(
        (snap.get_metadata().index, snap.get_metadata().term),
        (8, 2)
    );
    let dir2 = TempDir::new("install");
    let mut t = RocksStorage::open(&dir2.0).unwrap();
    t.append(&[entry(1, 1)]).unwrap();
    let got = t.apply_snapshot(&snap).unwrap();
    assert_eq!(got.state, state);
    assert_eq!((t.first_index().unwrap(), t.last_index().unwrap()), (9, 8));
    assert_eq!(t.term(8).unwrap(), 2);
    assert_eq!(t.conf_state().voters, [1]);
    drop(t);
    let t = RocksStorage::open(&dir2.0).unwrap();
    assert_eq!((t.first_index().unwrap(), t.last_index().unwrap()), (9, 8));
    assert_eq!(t.applied().unwrap().state, state);
}
