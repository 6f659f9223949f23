//! Transcript tests: lines in, reply codes out, with a scripted downstream standing in for
//! the network (the real one is exercised end to end in `tests/`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use super::*;

/// The session's policy port in miniature: recipients at partner.example take route 1,
/// everyone else the default route, all passed through unchanged.
#[derive(Debug)]
struct PartnerRoute;

impl Policy for PartnerRoute {
    fn treatment(&self, _: &MailFrom, recipient: &RcptTo) -> Treatment {
        let route = usize::from(recipient.domain() == "partner.example");
        Treatment {
            route,
            class: postern_crypto::policy::Class::Pass,
            explanation: format!("route {route}"),
            // A partner that enforces encryption and whose keys cannot be used.
            refusal: (recipient.domain() == "enforced.example")
                .then_some(reply::DOMAIN_KEY_UNAVAILABLE),
        }
    }

    fn lookup(&self, _: &MailFrom, recipient: &RcptTo) -> Option<String> {
        let d = recipient.domain();
        d.ends_with("lookup.example").then_some(d)
    }
}

struct Harness {
    session: Session,
    input: Vec<u8>,
    /// Outcomes the downstream will give, in order.
    downstream: VecDeque<DownstreamOutcome>,
    /// Operations the session asked for.
    ops: Vec<DownstreamOp>,
    starttls: bool,
    closed: bool,
    /// Partner domains the session asked to look up.
    lookups: Vec<String>,
}

fn ok(code: u16) -> DownstreamOutcome {
    DownstreamOutcome::Accepted {
        code,
        text: "2.0.0 fine".into(),
    }
}

impl Harness {
    fn new() -> Self {
        Self::with(|_| {})
    }

    fn with(tweak: impl FnOnce(&mut SessionConfig)) -> Self {
        let mut config = SessionConfig {
            hostname: "gw.example".into(),
            max_message_size: 10_000,
            max_line_length: 1000,
            max_recipients: 100,
            max_errors: 5,
            max_received_headers: 100,
            tls_available: true,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(180),
        };
        tweak(&mut config);
        let policy = PartnerRoute;
        let info = ConnectionInfo {
            id: "t".into(),
            peer: "192.0.2.1:4000".parse().expect("addr"),
        };
        Harness {
            session: Session::new(Arc::new(config), Arc::new(policy), info),
            input: Vec::new(),
            downstream: VecDeque::new(),
            ops: Vec::new(),
            starttls: false,
            closed: false,
            lookups: Vec::new(),
        }
    }

    /// Sends bytes and returns the reply lines produced until more input is needed.
    fn send(&mut self, bytes: &[u8]) -> Vec<String> {
        self.input.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            match self.session.advance(&mut self.input) {
                Event::Reply(r) => out.push(r.to_string()),
                Event::Close(r) => {
                    out.push(r.to_string());
                    self.closed = true;
                    return out;
                }
                Event::StartTls => {
                    out.push(reply::READY_FOR_TLS.to_string());
                    self.starttls = true;
                    self.input.clear();
                    return out;
                }
                Event::Downstream(op) => {
                    self.ops.push(op);
                    let outcome = self
                        .downstream
                        .pop_front()
                        .expect("unscripted downstream call");
                    out.push(self.session.downstream_done(outcome).to_string());
                }
                Event::Lookup(domain) => {
                    self.lookups.push(domain);
                    self.session.lookup_done();
                }
                Event::NeedInput => return out,
            }
        }
    }

    /// Sends one line and returns the code of the single reply.
    fn code(&mut self, line: &str) -> u16 {
        let replies = self.send(format!("{line}\r\n").as_bytes());
        assert_eq!(replies.len(), 1, "{line}: {replies:?}");
        replies[0][..3].parse().expect("code")
    }

    fn expect(&mut self, line: &str, code: u16) {
        let got = self.send(format!("{line}\r\n").as_bytes());
        assert!(
            got.len() == 1 && got[0].starts_with(&code.to_string()),
            "{line}: expected {code}, got {got:?}"
        );
    }
}

#[test]
fn a_plain_transaction_is_relayed_and_answered_with_the_downstream_verdict() {
    let mut h = Harness::new();
    let ehlo = h.send(b"EHLO client.example\r\n");
    assert_eq!(
        ehlo,
        vec![
            "250 gw.example\nPIPELINING\nSIZE 10000\n8BITMIME\nSMTPUTF8\nENHANCEDSTATUSCODES\nDSN\nSTARTTLS"
        ]
    );
    h.expect("MAIL FROM:<a@corp.example>", 250);
    h.downstream.push_back(ok(250));
    h.expect("RCPT TO:<b@else.example>", 250);
    h.expect("DATA", 354);
    h.downstream.push_back(ok(250));
    let end = h.send(b"Subject: hi\r\n\r\nbody\r\n.\r\n");
    assert_eq!(end, vec!["250 2.0.0 Queued downstream: fine"]);
    let Some(DownstreamOp::Deliver { message, .. }) = h.ops.last() else {
        panic!("no delivery")
    };
    let text = String::from_utf8_lossy(message);
    assert!(text.starts_with("Received: from client.example ([192.0.2.1])\r\n\tby gw.example (Postern) with ESMTP id t.1\r\n\tfor <b@else.example>;"));
    assert!(text.ends_with("\r\nSubject: hi\r\n\r\nbody\r\n"));
    // the session is ready for the next transaction
    h.expect("MAIL FROM:<>", 250);
}

#[test]
fn downstream_refusals_are_mirrored_with_their_text() {
    let mut h = Harness::new();
    h.expect("EHLO c", 250);
    h.expect("MAIL FROM:<a@corp.example>", 250);
    h.downstream.push_back(DownstreamOutcome::Refused {
        stage: Stage::Recipient,
        code: 550,
        text: "5.1.1 <b@x>: Recipient address rejected".into(),
    });
    let r = h.send(b"RCPT TO:<b@x.example>\r\n");
    assert_eq!(
        r,
        vec!["550 5.1.1 Downstream refused the recipient: <b@x>: Recipient address rejected"]
    );
    h.expect("DATA", 554);
    h.downstream.push_back(ok(250));
    h.expect("RCPT TO:<c@x.example>", 250);
    h.expect("DATA", 354);
    h.downstream.push_back(DownstreamOutcome::Refused {
        stage: Stage::Message,
        code: 452,
        text: "4.3.1 Insufficient system storage".into(),
    });
    let r = h.send(b"x\r\n.\r\n");
    assert_eq!(
        r,
        vec!["452 4.3.1 Downstream refused the message: Insufficient system storage"]
    );
    // state reset after the 4xx at end-of-data: RSET and a new transaction work
    h.expect("RSET", 250);
    h.expect("MAIL FROM:<a@corp.example>", 250);
    h.expect("QUIT", 221);
    assert!(h.closed);
}

#[test]
fn downstream_failures_give_451_and_break_the_transaction() {
    let mut h = Harness::new();
    h.expect("EHLO c", 250);
    h.expect("MAIL FROM:<a@corp.example>", 250);
    h.downstream.push_back(ok(250));
    h.expect("RCPT TO:<b@x.example>", 250);
    h.downstream
        .push_back(DownstreamOutcome::Failed(DownstreamFailure::ConnectionLost));
    assert_eq!(
        h.send(b"RCPT TO:<c@x.example>\r\n"),
        vec![reply::DOWNSTREAM_LOST.to_string()]
    );
    // the downstream transaction is gone with b: the whole transaction must be retried
    assert_eq!(h.code("RCPT TO:<d@x.example>"), 451);
    assert_eq!(h.code("DATA"), 451);
    h.expect("MAIL FROM:<a@corp.example>", 250);
    h.downstream.push_back(ok(250));
    h.expect("RCPT TO:<b@x.example>", 250);
    h.expect("DATA", 354);
    h.downstream
        .push_back(DownstreamOutcome::Failed(DownstreamFailure::Timeout));
    assert_eq!(
        h.send(b"x\r\n.\r\n"),
        vec![reply::DOWNSTREAM_TIMEOUT.to_string()]
    );
}

#[test]
fn recipients_of_another_treatment_are_deferred_with_452_4_5_3() {
    let mut h = Harness::new();
    h.expect("EHLO c", 250);
    h.expect("MAIL FROM:<a@corp.example>", 250);
    h.downstream.push_back(ok(250));
    h.expect("RCPT TO:<one@else.example>", 250);
    let r = h.send(b"RCPT TO:<two@partner.example>\r\n");
    assert_eq!(r, vec![reply::DIFFERENT_TREATMENT.to_string()]);
    h.downstream.push_back(ok(250));
    h.expect("RCPT TO:<three@else.example>", 250);
    let routes: Vec<_> = h
        .ops
        .iter()
        .map(|op| match op {
            DownstreamOp::AddRecipient {
                route, recipient, ..
            } => (*route, recipient.address.clone()),
            DownstreamOp::Deliver { .. } => (99, String::new()),
        })
        .collect();
    assert_eq!(
        routes,
        vec![
            (0, "one@else.example".into()),
            (0, "three@else.example".into())
        ]
    );
}

#[test]
fn a_refused_first_recipient_does_not_fix_the_treatment() {
    let mut h = Harness::new();
    h.expect("EHLO c", 250);
    h.expect("MAIL FROM:<a@corp.example>", 250);
    h.downstream.push_back(DownstreamOutcome::Refused {
        stage: Stage::Recipient,
        code: 550,
        text: "no".into(),
    });
    h.expect("RCPT TO:<one@else.example>", 550);
    h.downstream.push_back(ok(250));
    h.expect("RCPT TO:<two@partner.example>", 250);
}

#[test]
fn command_sequence_is_enforced() {
    let mut h = Harness::with(|c| c.max_errors = 50);
    h.expect("MAIL FROM:<a@b.example>", 503);
    h.expect("HELO c", 250);
    h.expect("RCPT TO:<a@b.example>", 503);
    h.expect("DATA", 503);
    h.expect("MAIL FROM:<a@b.example>", 250);
    h.expect("MAIL FROM:<a@b.example>", 503);
    h.expect("DATA", 554);
    h.expect("STARTTLS", 503);
    h.expect("RSET", 250);
    h.expect("NOOP", 250);
    h.expect("VRFY x", 252);
    h.expect("HELP", 214);
    h.expect("AUTH PLAIN", 502);
}

#[test]
fn declared_size_over_the_limit_is_refused_at_mail() {
    let mut h = Harness::new();
    h.expect("EHLO c", 250);
    assert_eq!(
        h.send(b"MAIL FROM:<a@b.example> SIZE=10001\r\n"),
        vec![reply::MESSAGE_TOO_BIG.to_string()]
    );
    h.expect("MAIL FROM:<a@b.example> SIZE=9999", 250);
}

#[test]
fn oversized_data_is_refused_without_a_downstream_call() {
    let mut h = Harness::new();
    h.expect("EHLO c", 250);
    h.expect("MAIL FROM:<a@b.example>", 250);
    h.downstream.push_back(ok(250));
    h.expect("RCPT TO:<x@y.example>", 250);
    h.expect("DATA", 354);
    let line = format!("{}\r\n", "x".repeat(998));
    let mut replies = Vec::new();
    for _ in 0..20 {
        replies.extend(h.send(line.as_bytes()));
    }
    replies.extend(h.send(b".\r\n"));
    assert_eq!(replies, vec![reply::MESSAGE_TOO_BIG.to_string()]);
    assert_eq!(h.ops.len(), 1, "only the recipient went downstream");
    h.expect("MAIL FROM:<a@b.example>", 250);
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    let mut h = Harness::new();
    h.downstream.push_back(ok(250));
    h.downstream.push_back(ok(250));
    let r = h.send(b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@y.example>\r\nRCPT TO:<z@y.example>\r\nDATA\r\n");
    let codes: Vec<&str> = r.iter().map(|l| &l[..3]).collect();
    assert_eq!(codes, vec!["250", "250", "250", "250", "354"]);
}

#[test]
fn long_and_garbage_lines_count_as_errors_and_end_the_session() {
    let mut h = Harness::new();
    let long = format!("NOOP {}\r\n", "x".repeat(5000));
    assert_eq!(
        h.send(long.as_bytes()),
        vec![reply::LINE_TOO_LONG.to_string()]
    );
    h.expect("NOOP", 250);
    for _ in 0..4 {
        h.expect("BLAH", 500);
    }
    assert_eq!(
        h.send(b"BLAH\r\n"),
        vec![reply::TOO_MANY_ERRORS.to_string()]
    );
    assert!(h.closed);
}

#[test]
fn starttls_discards_knowledge_and_is_offered_once() {
    let mut h = Harness::new();
    h.expect("EHLO c", 250);
    h.send(b"STARTTLS\r\n");
    assert!(h.starttls);
    h.session.tls_started();
    h.expect("MAIL FROM:<a@b.example>", 503);
    let ehlo = h.send(b"EHLO c\r\n");
    assert!(!ehlo[0].contains("STARTTLS"));
    h.expect("STARTTLS", 503);
}

#[test]
fn mail_loops_are_refused() {
    let mut h = Harness::with(|c| c.max_received_headers = 3);
    h.expect("EHLO c", 250);
    h.expect("MAIL FROM:<a@b.example>", 250);
    h.downstream.push_back(ok(250));
    h.expect("RCPT TO:<x@y.example>", 250);
    h.expect("DATA", 354);
    let r = h.send(b"Received: a\r\nReceived: b\r\nReceived: c\r\n\r\nx\r\n.\r\n");
    assert_eq!(r, vec![reply::ROUTING_LOOP.to_string()]);
}

#[test]
fn smuggled_transaction_inside_data_never_reaches_the_downstream() {
    let mut h = Harness::new();
    h.expect("EHLO c", 250);
    h.expect("MAIL FROM:<a@b.example>", 250);
    h.downstream.push_back(ok(250));
    h.expect("RCPT TO:<x@y.example>", 250);
    h.expect("DATA", 354);
    let r = h.send(
        b"first\n.\nMAIL FROM:<evil@x>\r\nRCPT TO:<victim@y>\r\nDATA\r\nsmuggled\r\n.\r\nQUIT\r\n",
    );
    assert_eq!(
        r,
        vec![reply::BARE_LINE_ENDING.to_string(), reply::BYE.to_string()]
    );
    assert!(
        h.ops
            .iter()
            .all(|op| matches!(op, DownstreamOp::AddRecipient { .. }))
    );
}

/// Random mixes of valid commands, garbage, smuggling sequences and random downstream
/// outcomes, fed in random chunks: the session never panics, every reply encodes to
/// well-formed lines, and the input it keeps stays bounded.
#[test]
fn random_input_never_panics_and_memory_stays_bounded() {
    let pieces: [&[u8]; 16] = [
        b"EHLO x\r\n",
        b"MAIL FROM:<a@b.example>\r\n",
        b"RCPT TO:<c@partner.example>\r\n",
        b"RCPT TO:<d@else.example> NOTIFY=NEVER\r\n",
        b"DATA\r\n",
        b"line\r\n",
        b".\r\n",
        b"\n.\n",
        b"\r\n\x00.\r\n",
        b"RSET\r\n",
        b"STARTTLS\r\n",
        b"\xff\xfe\r\n",
        b"\r",
        b"\n",
        b"MAIL FROM:<> SIZE=99999999999999999999\r\n",
        b"BDAT 5 LAST\r\n",
    ];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _round in 0..300 {
        let mut h = Harness::with(|c| c.max_errors = 1000);
        let mut stream = Vec::new();
        for _ in 0..200 {
            match next() % 10 {
                0 => stream.extend((0..next() % 3000).map(|_| (next() % 256) as u8)),
                _ => stream.extend_from_slice(pieces[(next() % pieces.len() as u64) as usize]),
            }
        }
        let mut pos = 0;
        while pos < stream.len() && !h.closed {
            let n = ((next() % 700) as usize + 1).min(stream.len() - pos);
            h.input.extend_from_slice(&stream[pos..pos + n]);
            pos += n;
            loop {
                match h.session.advance(&mut h.input) {
                    Event::Reply(r) => assert_well_formed(&r),
                    Event::Close(r) => {
                        assert_well_formed(&r);
                        h.closed = true;
                        break;
                    }
                    Event::StartTls => {
                        h.input.clear();
                        h.session.tls_started();
                    }
                    Event::Lookup(_) => h.session.lookup_done(),
                    Event::Downstream(_) => {
                        let outcome = match next() % 4 {
                            0 => ok(250),
                            1 => DownstreamOutcome::Refused {
                                stage: Stage::Recipient,
                                code: 550,
                                text: "no".into(),
                            },
                            2 => DownstreamOutcome::Failed(DownstreamFailure::ConnectionLost),
                            _ => DownstreamOutcome::Accepted {
                                code: 250,
                                text: String::new(),
                            },
                        };
                        assert_well_formed(&h.session.downstream_done(outcome));
                    }
                    Event::NeedInput => break,
                }
            }
            assert!(
                h.input.len() <= 2000,
                "session keeps {} bytes of input",
                h.input.len()
            );
        }
    }
}

fn assert_well_formed(r: &Reply) {
    let wire = r.encode();
    assert!((200..600).contains(&r.code), "{r}");
    for line in wire.split_inclusive(|&b| b == b'\n') {
        assert!(
            line.ends_with(b"\r\n") && line.len() <= 512,
            "{:?}",
            String::from_utf8_lossy(line)
        );
        assert_eq!(
            line.iter().filter(|&&b| b == b'\r' || b == b'\n').count(),
            2
        );
    }
}

#[test]
fn partner_domains_are_looked_up_once_and_an_enforced_one_is_refused_for_now() {
    let mut h = Harness::new();
    h.send(b"EHLO client.example\r\n");
    assert_eq!(h.code("MAIL FROM:<a@corp.example>"), 250);
    h.downstream.push_back(ok(250));
    assert_eq!(h.code("RCPT TO:<x@lookup.example>"), 250);
    h.downstream.push_back(ok(250));
    assert_eq!(h.code("RCPT TO:<y@lookup.example>"), 250);
    assert_eq!(
        h.lookups,
        ["lookup.example"],
        "one lookup per domain and transaction"
    );
    let ops = h.ops.len();
    assert_eq!(h.code("RCPT TO:<z@enforced.example>"), 451);
    assert_eq!(
        h.ops.len(),
        ops,
        "a refused recipient never reaches the downstream"
    );
    assert_eq!(h.code("RSET"), 250);
    assert_eq!(h.code("MAIL FROM:<a@corp.example>"), 250);
    h.downstream.push_back(ok(250));
    assert_eq!(h.code("RCPT TO:<x@lookup.example>"), 250);
    assert_eq!(h.lookups.len(), 2, "a new transaction looks up again");
}
