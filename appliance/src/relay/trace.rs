//! The message trace and mail counters of this node: the last transactions (envelope,
//! treatment, the reply the upstream got — never bodies) for the GUI's trace page, and
//! counters for the dashboard and Prometheus.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Transactions kept.
pub const KEEP: usize = 1000;

/// One transaction as the trace shows it (the command language's view of it).
pub use postern_api::views::TraceRecord as Record;

/// The ring of records and the counters.
#[derive(Debug, Default)]
pub struct Trace {
    records: Mutex<VecDeque<Record>>,
    pub sessions: AtomicU64,
    pub delivered: AtomicU64,
    /// Refused by the downstream or the policy, or failed (4xx/5xx at end of data).
    pub refused: AtomicU64,
    pub bytes_in: AtomicU64,
    /// Recipients deferred (451 4.7.5) because an enforcing partner had no usable key.
    pub enforced: AtomicU64,
}

impl Trace {
    pub fn record(&self, r: Record) {
        if r.code < 400 {
            self.delivered.fetch_add(1, Ordering::Relaxed);
        } else {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        self.bytes_in.fetch_add(r.size as u64, Ordering::Relaxed);
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if records.len() >= KEEP {
            records.pop_front();
        }
        records.push_back(r);
    }

    /// The newest `limit` records, newest first.
    pub fn latest(&self, limit: usize) -> Vec<Record> {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records.iter().rev().take(limit).cloned().collect()
    }

    /// The counters (`node_id` is the caller's to fill in).
    pub fn counters(&self) -> postern_api::views::Stats {
        postern_api::views::Stats {
            sessions: self.sessions.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            node_id: 0,
            federation: postern_api::views::FederationCounters {
                enforced: self.enforced.load(Ordering::Relaxed),
                ..Default::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(code: u16) -> Record {
        Record {
            time: 1,
            session: "s".into(),
            peer: "192.0.2.1:1".into(),
            sender: "a@x".into(),
            recipients: vec!["b@y".into()],
            size: 10,
            treatment: "pass".into(),
            code,
            reply: String::new(),
        }
    }

    #[test]
    fn ring_keeps_the_newest() {
        let t = Trace::default();
        for i in 0..(KEEP + 3) {
            t.record(rec(if i % 2 == 0 { 250 } else { 451 }));
        }
        assert_eq!(t.latest(usize::MAX).len(), KEEP);
        assert_eq!(t.counters().delivered, 502);
        assert_eq!(t.counters().refused, 501);
    }
}
