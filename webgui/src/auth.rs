//! Who may use the GUI and the API, on the web server's side: sessions (checked against the
//! replicated account on every request), login throttling and account lockout, CSRF and
//! cookie tokens, the hash under which API tokens are looked up. Password hashes and TOTP
//! secrets stay with the daemon, which checks logins ([`crate::Backend::verify_login`]).
//! Sessions and failure counts live in the memory of the node that served the login (the
//! VIP keeps a browser on one node); accounts and tokens are in the replicated state.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ring::rand::{SecureRandom as _, SystemRandom};

use postern_api::Role;

/// Shortest password accepted for an administrator (the daemon checks it; the forms say it).
pub use postern_api::MIN_PASSWORD;
/// Consecutive failed logins after which an account is locked …
pub const LOCK_AFTER: u32 = 5;
/// … for this long.
pub const LOCK_FOR: Duration = Duration::from_secs(15 * 60);
/// Login attempts one client address may make per [`IP_WINDOW`].
pub const IP_ATTEMPTS: usize = 20;
pub const IP_WINDOW: Duration = Duration::from_secs(5 * 60);
/// A session ends after this long without a request …
pub const SESSION_IDLE: Duration = Duration::from_secs(30 * 60);
/// … and after this long in any case.
pub const SESSION_MAX: Duration = Duration::from_secs(12 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the system random generator failed")]
    Random,
}

/// `n` random bytes from the operating system.
fn random_bytes(n: usize) -> Result<Vec<u8>, AuthError> {
    let mut b = vec![0u8; n];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| AuthError::Random)?;
    Ok(b)
}

/// A random token for cookies and CSRF fields (256 bits, hex).
pub fn random_token() -> Result<String, AuthError> {
    Ok(hex::encode(random_bytes(32)?))
}

/// SHA-256 (hex) of a token: how a session cookie is kept, and how an API token is looked
/// up (the state keeps the same hash).
pub fn sha256_hex(s: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, s.as_bytes()))
}

/// Compares two secrets in time independent of where they differ.
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A logged-in administrator's session, as this node keeps it.
#[derive(Debug, Clone)]
struct Session {
    name: String,
    /// The account's credential when the session was opened ([`crate::Account`]).
    credential: String,
    /// The CSRF token every form and cookie-authenticated API write must carry.
    csrf: String,
    started: Instant,
    last: Instant,
}

/// A session that is still good: its account exists with the credential it was opened
/// with, and acts with the role the account has now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSession {
    pub name: String,
    pub role: Role,
    pub csrf: String,
}

/// The sessions of this node, by the SHA-256 of their cookie.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// A new session for `name`, whose credential is now `credential`; returns the cookie.
    pub fn create(&self, name: &str, credential: &str) -> Result<String, AuthError> {
        let cookie = random_token()?;
        let now = Instant::now();
        let s = Session {
            name: name.to_owned(),
            credential: credential.to_owned(),
            csrf: random_token()?,
            started: now,
            last: now,
        };
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| alive(s, now));
        map.insert(sha256_hex(&cookie), s);
        Ok(cookie)
    }

    /// The live session of a cookie (its idle timer restarted), checked against the account
    /// as `account` reports it now: a removed account or a changed password ends the session
    /// here and now; a changed role applies to this very request.
    pub fn get(
        &self,
        cookie: &str,
        account: impl FnOnce(&str) -> Option<crate::Account>,
    ) -> Option<LiveSession> {
        let now = Instant::now();
        let key = sha256_hex(cookie);
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let s = map.get_mut(&key)?;
        let current = account(&s.name).filter(|a| same(&a.credential, &s.credential));
        match current {
            Some(a) if alive(s, now) => {
                s.last = now;
                Some(LiveSession {
                    name: s.name.clone(),
                    role: a.role,
                    csrf: s.csrf.clone(),
                })
            }
            _ => {
                map.remove(&key);
                None
            }
        }
    }

    pub fn remove(&self, cookie: &str) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&sha256_hex(cookie));
    }
}

fn alive(s: &Session, now: Instant) -> bool {
    now.duration_since(s.last) < SESSION_IDLE && now.duration_since(s.started) < SESSION_MAX
}

/// Why a login attempt is not even checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Throttled {
    /// The account is locked for this long after repeated failures.
    Locked(Duration),
    /// This client address tried too often.
    TooManyAttempts,
}

#[derive(Debug, Default)]
struct Failures {
    count: u32,
    locked_until: Option<Instant>,
    /// TOTP steps already used (a code works once).
    last_step: u64,
}

/// Login throttling: per account (lockout after [`LOCK_AFTER`] failures in a row) and per
/// client address (at most [`IP_ATTEMPTS`] attempts per [`IP_WINDOW`]).
#[derive(Debug, Default)]
pub struct Guard {
    accounts: Mutex<HashMap<String, Failures>>,
    addresses: Mutex<HashMap<IpAddr, Vec<Instant>>>,
}

impl Guard {
    /// Counts an attempt from `ip` for `name`; refuses it while throttled.
    pub fn admit(&self, name: &str, ip: IpAddr) -> Result<(), Throttled> {
        let now = Instant::now();
        {
            let accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(until) = accounts.get(name).and_then(|f| f.locked_until)
                && until > now
            {
                return Err(Throttled::Locked(until - now));
            }
        }
        let mut addresses = self.addresses.lock().unwrap_or_else(|e| e.into_inner());
        if addresses.len() > 10_000 {
            addresses.retain(|_, v| v.iter().any(|t| now.duration_since(*t) < IP_WINDOW));
        }
        let seen = addresses.entry(ip).or_default();
        seen.retain(|t| now.duration_since(*t) < IP_WINDOW);
        if seen.len() >= IP_ATTEMPTS {
            return Err(Throttled::TooManyAttempts);
        }
        seen.push(now);
        Ok(())
    }

    /// A failed attempt; returns true when it locked the account.
    pub fn failed(&self, name: &str) -> bool {
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        let f = accounts.entry(name.to_owned()).or_default();
        f.count += 1;
        if f.count >= LOCK_AFTER {
            f.count = 0;
            f.locked_until = Some(Instant::now() + LOCK_FOR);
            return true;
        }
        false
    }

    /// A successful login with TOTP step `step`: false when that code was used already.
    pub fn succeeded(&self, name: &str, step: u64) -> bool {
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        let f = accounts.entry(name.to_owned()).or_default();
        if step <= f.last_step {
            return false;
        }
        f.last_step = step;
        f.count = 0;
        f.locked_until = None;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_after_repeated_failures() {
        let g = Guard::default();
        let ip: IpAddr = [127, 0, 0, 1].into();
        for i in 0..LOCK_AFTER {
            assert_eq!(g.admit("root", ip), Ok(()));
            assert_eq!(g.failed("root"), i + 1 == LOCK_AFTER);
        }
        assert!(matches!(g.admit("root", ip), Err(Throttled::Locked(_))));
        // Another account is not affected.
        assert_eq!(g.admit("ops", ip), Ok(()));
        // A TOTP code works once.
        assert!(g.succeeded("ops", 7));
        assert!(!g.succeeded("ops", 7));
    }

    #[test]
    fn address_throttle() {
        let g = Guard::default();
        let ip: IpAddr = [192, 0, 2, 1].into();
        for i in 0..IP_ATTEMPTS {
            assert_eq!(g.admit(&format!("u{i}"), ip), Ok(()));
        }
        assert_eq!(g.admit("other", ip), Err(Throttled::TooManyAttempts));
        assert_eq!(g.admit("other", [192, 0, 2, 2].into()), Ok(()));
    }

    #[test]
    fn sessions_follow_their_account() {
        let s = Sessions::default();
        let account = |role, credential: &'static str| {
            move |_: &str| {
                Some(crate::Account {
                    role,
                    credential: credential.to_owned(),
                })
            }
        };
        let c = s.create("root", "cred-1").expect("session");
        let live = s.get(&c, account(Role::Admin, "cred-1")).expect("live");
        assert_eq!((live.name.as_str(), live.role), ("root", Role::Admin));
        assert!(s.get("forged", account(Role::Admin, "cred-1")).is_none());
        // Demoted: the next request acts as readonly.
        let live = s.get(&c, account(Role::Readonly, "cred-1")).expect("live");
        assert_eq!(live.role, Role::Readonly);
        // A new password (another credential) ends it for good.
        assert!(s.get(&c, account(Role::Admin, "cred-2")).is_none());
        assert!(s.get(&c, account(Role::Admin, "cred-1")).is_none());
        // So does a removed account.
        let c = s.create("ops", "cred-1").expect("session");
        assert!(s.get(&c, |_| None).is_none());
        assert!(s.get(&c, account(Role::Admin, "cred-1")).is_none());
    }
}
