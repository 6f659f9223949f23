//! DATA (RFC 5321 §4.1.1.4): receive the message, refuse it at end-of-data when it broke a
//! limit, otherwise add the trace header and hand it to the downstream. The reply to the
//! upstream's end-of-data is the downstream's verdict: the queue-less contract.

use super::{DownstreamOp, DownstreamOutcome, Event, Pending, Phase, Session};
use crate::smtp::data::{DataEnd, DataReceiver};
use crate::smtp::received;
use crate::smtp::reply::{self, Reply, Stage};

impl Session {
    pub(super) fn data(&mut self) -> Event {
        let Some(tx) = &self.tx else {
            return self.error(reply::NEED_MAIL);
        };
        if let Some(broken) = tx.broken.clone() {
            self.reset_transaction();
            return Event::Reply(broken);
        }
        if tx.recipients.is_empty() {
            return self.error(reply::NO_VALID_RECIPIENTS);
        }
        self.phase = Phase::Data(Box::new(DataReceiver::new(
            self.config.max_message_size,
            self.config.max_line_length,
        )));
        Event::Reply(reply::START_DATA)
    }

    pub(super) fn end_of_data(&mut self, end: DataEnd) -> Event {
        self.phase = Phase::Command;
        let body = match end {
            DataEnd::Message(body) => body,
            DataEnd::Rejected(violation) => {
                self.reset_transaction();
                return Event::Reply(violation.reply());
            }
        };
        if received::count_received(&body) >= self.config.max_received_headers {
            self.reset_transaction();
            return Event::Reply(reply::ROUTING_LOOP);
        }
        let Some(tx) = &self.tx else {
            return Event::Reply(reply::LOCAL_ERROR);
        };
        let trace = received::Trace {
            helo: self.helo.as_deref().unwrap_or("unknown"),
            peer: self.info.peer.ip(),
            hostname: &self.config.hostname,
            esmtp: self.esmtp,
            tls: self.tls,
            smtputf8: tx.sender.smtputf8,
            id: &format!("{}.{}", self.info.id, tx.id),
            single_recipient: match tx.recipients.as_slice() {
                [only] => Some(only.address.as_str()),
                _ => None,
            },
        };
        let header = trace.header(std::time::SystemTime::now());
        let mut message = Vec::with_capacity(header.len() + body.len());
        message.extend_from_slice(header.as_bytes());
        message.extend_from_slice(&body);
        let op = DownstreamOp::Deliver {
            tx: tx.id,
            message,
            treatment: tx.treatment.clone(),
            sender: tx.sender.clone(),
            recipients: tx.recipients.clone(),
        };
        self.phase = Phase::Waiting(Pending::Message);
        Event::Downstream(op)
    }

    pub(super) fn message_outcome(&mut self, outcome: DownstreamOutcome) -> Reply {
        self.reset_transaction();
        match outcome {
            DownstreamOutcome::Accepted { code, text } => {
                self.delivered += 1;
                reply::mirrored(code, &text, Stage::Message)
            }
            DownstreamOutcome::Refused { code, text, .. } => {
                reply::mirrored(code, &text, Stage::Message)
            }
            DownstreamOutcome::Failed(failure) => failure.reply(),
            DownstreamOutcome::Local(r) => r,
        }
    }
}
