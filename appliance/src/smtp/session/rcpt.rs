//! RCPT TO (RFC 5321 §4.1.1.3): the policy decides the recipient's treatment; a recipient
//! whose treatment differs from the first accepted one is deferred with `452 4.5.3`, the
//! others are asked of the downstream, whose verdict is mirrored.

use super::port::Treatment;
use super::{DownstreamOp, DownstreamOutcome, Event, Pending, Phase, Session};
use crate::smtp::envelope::RcptTo;
use crate::smtp::reply::{self, Reply, Stage};

impl Session {
    pub(super) fn rcpt(&mut self, to: RcptTo) -> Event {
        let Some(tx) = &self.tx else {
            return self.error(reply::NEED_MAIL);
        };
        if let Some(broken) = &tx.broken {
            return Event::Reply(broken.clone());
        }
        if tx.recipients.len() >= self.config.max_recipients {
            return Event::Reply(reply::TOO_MANY_RECIPIENTS);
        }
        if !tx.sender.smtputf8 && !to.address.is_ascii() {
            return Event::Reply(reply::NEED_SMTPUTF8);
        }
        if let Some(domain) = self.policy.lookup(&tx.sender, &to)
            && !tx.looked_up.contains(&domain)
            && let Some(tx) = &mut self.tx
        {
            tx.looked_up.push(domain.clone());
            self.phase = Phase::Waiting(Pending::Lookup(to));
            return Event::Lookup(domain);
        }
        let Some(tx) = &self.tx else {
            return self.error(reply::NEED_MAIL);
        };
        let treatment = self.policy.treatment(&tx.sender, &to);
        if let Some(r) = &treatment.refusal {
            tracing::info!(recipient = %to.address, treatment = %treatment.explanation, "recipient refused by the policy");
            return Event::Reply(r.clone());
        }
        if let Some(first) = &tx.treatment
            && !first.compatible(&treatment)
        {
            tracing::debug!(recipient = %to.address, treatment = %treatment.explanation,
                first = %first.explanation, "recipient deferred to its own transaction");
            return Event::Reply(reply::DIFFERENT_TREATMENT);
        }
        let op = DownstreamOp::AddRecipient {
            tx: tx.id,
            route: treatment.route,
            sender: tx.sender.clone(),
            recipient: to.clone(),
        };
        self.phase = Phase::Waiting(Pending::Recipient(to, treatment));
        Event::Downstream(op)
    }

    pub(super) fn recipient_outcome(
        &mut self,
        rcpt: RcptTo,
        treatment: Treatment,
        outcome: DownstreamOutcome,
    ) -> Reply {
        let Some(tx) = &mut self.tx else {
            return reply::LOCAL_ERROR;
        };
        match outcome {
            DownstreamOutcome::Accepted { code, text } => {
                tracing::debug!(recipient = %rcpt.address, treatment = %treatment.explanation,
                    "recipient accepted downstream");
                tx.treatment.get_or_insert(treatment);
                tx.recipients.push(rcpt);
                reply::mirrored(code, &text, Stage::Recipient)
            }
            DownstreamOutcome::Refused { stage, code, text } => reply::mirrored(code, &text, stage),
            DownstreamOutcome::Local(r) => r,
            DownstreamOutcome::Failed(failure) => {
                let r = failure.reply();
                // Recipients accepted before are gone with the downstream transaction: the
                // upstream must retry the whole transaction, so DATA gets this reply too.
                if !tx.recipients.is_empty() && r.class() == 4 {
                    tx.broken = Some(r.clone());
                }
                r
            }
        }
    }
}
