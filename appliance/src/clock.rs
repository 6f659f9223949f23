//! Seconds since the epoch: how the replicated state, the audit log, the message trace and
//! the update status keep time. A clock before 1970 counts as 0.

use std::time::{SystemTime, UNIX_EPOCH};

/// `t` in seconds since the epoch.
pub fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// Now, in seconds since the epoch.
pub fn now_secs() -> u64 {
    secs(SystemTime::now())
}
