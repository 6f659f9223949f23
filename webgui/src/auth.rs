//! Who may use the GUI and the API: argon2id password hashes, TOTP as the second factor,
//! sessions, login throttling and account lockout, API tokens. Sessions and failure counts
//! live in the memory of the node that served the login (the VIP keeps a browser on one
//! node); accounts and tokens are in the replicated state.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use ring::rand::{SecureRandom as _, SystemRandom};

use crate::command::Role;

/// Shortest password accepted for an administrator.
pub const MIN_PASSWORD: usize = 10;
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
    #[error("the password must have at least {MIN_PASSWORD} characters")]
    WeakPassword,
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the system random generator failed")]
    Random,
}

/// `n` random bytes from the operating system.
pub fn random_bytes(n: usize) -> Result<Vec<u8>, AuthError> {
    let mut b = vec![0u8; n];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| AuthError::Random)?;
    Ok(b)
}

/// A random token for cookies, CSRF fields and API tokens (256 bits, hex).
pub fn random_token() -> Result<String, AuthError> {
    Ok(hex(&random_bytes(32)?))
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// SHA-256 (hex) of a token: what the state keeps instead of the token.
pub fn sha256_hex(s: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, s.as_bytes()).as_ref())
}

/// Compares two secrets in time independent of where they differ.
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An argon2id hash (PHC string) of an administrator's password.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(AuthError::WeakPassword);
    }
    let salt =
        SaltString::encode_b64(&random_bytes(16)?).map_err(|e| AuthError::Hash(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Whether `password` matches `hash` (false for a malformed hash).
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A logged-in administrator's session.
#[derive(Debug, Clone)]
pub struct Session {
    pub name: String,
    pub role: Role,
    /// The CSRF token every form and cookie-authenticated API write must carry.
    pub csrf: String,
    started: Instant,
    last: Instant,
}

/// The sessions of this node, by the SHA-256 of their cookie.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// A new session; returns the cookie value.
    pub fn create(&self, name: &str, role: Role) -> Result<String, AuthError> {
        let cookie = random_token()?;
        let now = Instant::now();
        let s = Session {
            name: name.to_owned(),
            role,
            csrf: random_token()?,
            started: now,
            last: now,
        };
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| alive(s, now));
        map.insert(sha256_hex(&cookie), s);
        Ok(cookie)
    }

    /// The live session of a cookie (and its idle timer restarted).
    pub fn get(&self, cookie: &str) -> Option<Session> {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let key = sha256_hex(cookie);
        match map.get_mut(&key) {
            Some(s) if alive(s, now) => {
                s.last = now;
                Some(s.clone())
            }
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, cookie: &str) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&sha256_hex(cookie));
    }

    /// Ends every session of an account (removed, or its password changed).
    pub fn remove_account(&self, name: &str) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| s.name != name);
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
    fn passwords() {
        assert!(matches!(
            hash_password("short"),
            Err(AuthError::WeakPassword)
        ));
        let h = hash_password("correct horse battery").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "correct horse batterY"));
        assert!(!verify_password("not a hash", "x"));
    }

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
    fn sessions() {
        let s = Sessions::default();
        let c = s.create("root", Role::Admin).expect("session");
        assert_eq!(s.get(&c).map(|x| x.name), Some("root".into()));
        assert!(s.get("forged").is_none());
        s.remove_account("root");
        assert!(s.get(&c).is_none());
    }
}
