//! Postern's secure-mail core, sans-IO: bytes and key material in, bytes and decisions out.
//!
//! - [`mime`]: split, read and rebuild MIME entities;
//! - [`smime`]: S/MIME with OpenSSL's CMS;
//! - [`pgp`]: OpenPGP with sequoia;
//! - [`keys`]: the built-in CA, sealed private keys and the key store;
//! - [`policy`]: who gets which treatment, with a one-line explanation;
//! - [`engine`]: runs a message through the policy outbound or inbound;
//! - [`federation`]: domain keys published and discovered, and the pins that keep them;
//! - [`portal`]: the recipient portal's envelope, opened with the recipient's secret and a
//!   share the cluster releases.

pub mod engine;
pub mod federation;
pub mod keys;
pub mod mime;
pub mod pgp;
pub mod policy;
pub mod portal;
pub mod smime;
