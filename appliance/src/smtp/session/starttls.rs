//! STARTTLS (RFC 3207): only outside a transaction and only once. After the upgrade the
//! session forgets the client's identity, which must say EHLO again.

use super::{Event, Session};
use crate::smtp::reply;

impl Session {
    pub(super) fn starttls(&mut self) -> Event {
        if self.tls {
            return self.error(reply::TLS_ALREADY_ACTIVE);
        }
        if !self.config.tls_available {
            return Event::Reply(reply::TLS_UNAVAILABLE);
        }
        if self.tx.is_some() {
            return self.error(reply::TLS_IN_TRANSACTION);
        }
        Event::StartTls
    }

    /// The TLS handshake succeeded.
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.helo = None;
        self.esmtp = false;
        self.reset_transaction();
    }
}
