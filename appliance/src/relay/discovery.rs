//! The port through which the relay has a partner domain's keys and policy looked up while
//! a recipient waits at RCPT: implemented by the federation module (WKD, DNS) on top of the
//! key store, which keeps what is learned. A lookup must return within its own time bound;
//! a cached answer costs microseconds.

use std::future::Future;
use std::pin::Pin;

/// A boxed future that can cross threads.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Looks up a partner domain (or finds it fresh in the cache). What it learns lands in the
/// key store, where the policy finds it.
pub trait Discovery: Send + Sync + std::fmt::Debug {
    fn discover<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, ()>;
}
