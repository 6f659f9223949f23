//! Connection limits: in total and per client address. A connection over a limit gets
//! `421 4.7.0` and is closed before a session starts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::smtp::reply::{self, Reply};

#[derive(Debug)]
pub struct ConnectionLimits {
    max_total: usize,
    max_per_ip: usize,
    state: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Held for the life of a connection; releases its slot when dropped.
#[derive(Debug)]
pub struct ConnectionPermit {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
}

impl ConnectionLimits {
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(ConnectionLimits {
            max_total,
            max_per_ip,
            state: Mutex::new(Counts::default()),
        })
    }

    /// Takes a slot for a connection from `ip`, or gives the 421 reply to send.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionPermit, Reply> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.total >= self.max_total {
            return Err(reply::TOO_MANY_CONNECTIONS);
        }
        let mine = s.per_ip.entry(ip).or_insert(0);
        if *mine >= self.max_per_ip {
            return Err(reply::TOO_MANY_CONNECTIONS_FROM_YOU);
        }
        *mine += 1;
        s.total += 1;
        Ok(ConnectionPermit {
            limits: Arc::clone(self),
            ip,
        })
    }

    /// Connections currently held.
    pub fn active(&self) -> usize {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut s = self.limits.state.lock().unwrap_or_else(|p| p.into_inner());
        s.total = s.total.saturating_sub(1);
        if let Some(n) = s.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                s.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_and_total_limits_release_on_drop() {
        let l = ConnectionLimits::new(3, 2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let p1 = l.acquire(a).expect("first");
        let _p2 = l.acquire(a).expect("second");
        assert_eq!(
            l.acquire(a).unwrap_err(),
            reply::TOO_MANY_CONNECTIONS_FROM_YOU
        );
        let _p3 = l.acquire(b).expect("other address");
        assert_eq!(l.acquire(b).unwrap_err(), reply::TOO_MANY_CONNECTIONS);
        drop(p1);
        let _p4 = l.acquire(a).expect("slot released");
        assert_eq!(l.active(), 3);
    }
}
