//! Keys: the built-in CA, sealing of private keys, and the key store.

pub mod ca;
pub mod seal;
pub mod store;

pub use store::{KeyStore, KeyStoreError, MemoryKeyStore};
