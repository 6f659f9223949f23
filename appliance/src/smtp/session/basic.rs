//! RSET and QUIT (RFC 5321 §4.1.1.5, §4.1.1.10). NOOP, VRFY and HELP answer from the
//! catalogue directly in `dispatch`.

use super::{Event, Phase, Session};
use crate::smtp::reply;

impl Session {
    pub(super) fn rset(&mut self) -> Event {
        self.reset_transaction();
        Event::Reply(reply::RESET_OK)
    }

    pub(super) fn quit(&mut self) -> Event {
        self.reset_transaction();
        self.phase = Phase::Closed;
        Event::Close(reply::BYE)
    }
}
