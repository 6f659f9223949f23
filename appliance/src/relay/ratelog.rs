//! Rate limiting for log lines a client can trigger (bad commands, refused connections), so a
//! hostile peer cannot flood the log. Each limiter lets `burst` lines through per second and
//! counts the rest; the next line that passes says how many were suppressed.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct RateLimitedLog {
    burst: u32,
    state: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    start: Option<Instant>,
    passed: u32,
    suppressed: u64,
}

impl RateLimitedLog {
    pub const fn new(burst: u32) -> Self {
        RateLimitedLog {
            burst,
            state: Mutex::new(Window {
                start: None,
                passed: 0,
                suppressed: 0,
            }),
        }
    }

    /// `Some(n)` when a line may be logged now (`n` lines were suppressed before it),
    /// `None` when it must be dropped.
    pub fn check(&self, now: Instant) -> Option<u64> {
        let mut w = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if w.start
            .is_none_or(|s| now.duration_since(s) >= Duration::from_secs(1))
        {
            w.start = Some(now);
            w.passed = 0;
        }
        if w.passed < self.burst {
            w.passed += 1;
            Some(std::mem::take(&mut w.suppressed))
        } else {
            w.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lets_a_burst_through_per_second_and_counts_the_rest() {
        let log = RateLimitedLog::new(2);
        let t0 = Instant::now();
        assert_eq!(log.check(t0), Some(0));
        assert_eq!(log.check(t0), Some(0));
        assert_eq!(log.check(t0), None);
        assert_eq!(log.check(t0 + Duration::from_millis(500)), None);
        assert_eq!(log.check(t0 + Duration::from_secs(1)), Some(2));
    }
}
