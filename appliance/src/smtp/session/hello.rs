//! EHLO and HELO (RFC 5321 §4.1.1.1): identify the client, reset any transaction, and list
//! the extensions Postern offers.

use super::{Event, Session};
use crate::smtp::reply;

impl Session {
    pub(super) fn ehlo(&mut self, host: String) -> Event {
        self.reset_transaction();
        self.helo = Some(host);
        self.esmtp = true;
        Event::Reply(reply::ehlo(&self.config.hostname, &self.extensions()))
    }

    pub(super) fn helo(&mut self, host: String) -> Event {
        self.reset_transaction();
        self.helo = Some(host);
        self.esmtp = false;
        Event::Reply(reply::helo(&self.config.hostname))
    }

    fn extensions(&self) -> Vec<String> {
        let mut ext = vec![
            "PIPELINING".to_owned(),
            format!("SIZE {}", self.config.max_message_size),
            "8BITMIME".to_owned(),
            "SMTPUTF8".to_owned(),
            "ENHANCEDSTATUSCODES".to_owned(),
            "DSN".to_owned(),
        ];
        if self.config.tls_available && !self.tls {
            ext.push("STARTTLS".to_owned());
        }
        ext
    }
}
