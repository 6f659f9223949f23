//! MAIL FROM (RFC 5321 §4.1.1.2): opens a transaction. The sender goes downstream together
//! with the first recipient, when the route is known.

use super::{Event, Session, Transaction};
use crate::smtp::envelope::MailFrom;
use crate::smtp::reply;

impl Session {
    pub(super) fn mail(&mut self, from: MailFrom) -> Event {
        if self.helo.is_none() {
            return self.error(reply::NEED_HELO);
        }
        if self.tx.is_some() {
            return self.error(reply::NESTED_MAIL);
        }
        // RFC 1870: refuse a declared size over the limit before any data is sent.
        if from.size.is_some_and(|s| s > self.config.max_message_size) {
            return Event::Reply(reply::MESSAGE_TOO_BIG);
        }
        self.transactions += 1;
        self.tx = Some(Transaction {
            id: self.transactions,
            sender: from,
            recipients: Vec::new(),
            treatment: None,
            broken: None,
            looked_up: Vec::new(),
        });
        Event::Reply(reply::SENDER_OK)
    }
}
