//! The port the SMTP session calls to learn a recipient's treatment and to have the message
//! processed at end of data. The session defines it; the gateway's policy (`crate::policy`)
//! implements it, so the protocol code imports nothing above it.

use postern_crypto::policy::Class;

use crate::smtp::envelope::{MailFrom, RcptTo};
use crate::smtp::reply::Reply;

/// Index of a route in the configuration; 0 is the default downstream.
pub type RouteId = usize;

/// What must be equal for all recipients of one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Treatment {
    pub route: RouteId,
    pub class: Class,
    /// One line for the log and the message trace: why this treatment.
    pub explanation: String,
    /// The recipient cannot be accepted now: this reply, and no downstream operation.
    pub refusal: Option<Reply>,
}

impl Treatment {
    /// Whether two recipients can share one downstream transaction.
    pub fn compatible(&self, other: &Treatment) -> bool {
        self.route == other.route && self.class == other.class
    }
}

/// A message ready for the downstream, and what was done to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    pub message: Vec<u8>,
    pub explanation: String,
}

/// Decides the treatment of each recipient and applies it to the message.
pub trait Policy: Send + Sync + std::fmt::Debug {
    fn treatment(&self, sender: &MailFrom, recipient: &RcptTo) -> Treatment;

    /// A partner domain whose keys and policy should be looked up (or found fresh in the
    /// cache) before this recipient's treatment is decided; the session asks the driver to
    /// do it ([`super::Event::Lookup`]) once per domain and transaction.
    fn lookup(&self, _sender: &MailFrom, _recipient: &RcptTo) -> Option<String> {
        None
    }

    /// Applies `treatment` to the message of a transaction (CPU work: the relay runs it off
    /// the I/O threads). An error is the reply for the upstream's end of data.
    fn process(
        &self,
        _treatment: &Treatment,
        _sender: &MailFrom,
        _recipients: &[RcptTo],
        message: Vec<u8>,
    ) -> Result<Processed, Reply> {
        Ok(Processed {
            message,
            explanation: "relayed unchanged".into(),
        })
    }
}
