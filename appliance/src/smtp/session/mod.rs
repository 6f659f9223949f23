//! The SMTP server session as an explicit state machine, without I/O.
//!
//! The driver (`relay::server`) owns the socket. It appends what it reads to an input buffer
//! and calls [`Session::advance`], which consumes what it can and says what to do next: send
//! a reply, wait for input, upgrade to TLS, close, or ask the downstream something. Downstream
//! answers come back through [`Session::downstream_done`], which turns them into the reply
//! for the upstream. Every decision of the protocol is here, so the tests drive a session
//! from transcripts without sockets.
//!
//! One module per verb: `hello` (EHLO/HELO), `mail`, `rcpt`, `data`, `starttls`, `basic`
//! (RSET, NOOP, QUIT, VRFY, HELP).

mod basic;
mod data;
mod hello;
mod mail;
pub mod port;
mod rcpt;
mod starttls;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::command::{self, Command, Framing};
use super::data::DataReceiver;
use super::envelope::{MailFrom, RcptTo};
use super::reply::{self, Reply, Stage};
use port::{Policy, RouteId, Treatment};

/// Limits and identity of the SMTP service, shared by all sessions.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub hostname: String,
    pub max_message_size: usize,
    pub max_line_length: usize,
    pub max_recipients: usize,
    pub max_errors: u32,
    pub max_received_headers: usize,
    pub tls_available: bool,
    pub command_timeout: Duration,
    pub data_timeout: Duration,
}

/// Who is connected.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub id: String,
    pub peer: SocketAddr,
}

/// What the driver must do next.
#[derive(Debug)]
pub enum Event {
    /// Send this reply, then call `advance` again.
    Reply(Reply),
    /// Send this reply and close the connection.
    Close(Reply),
    /// Send `220 Ready to start TLS`, drop every byte already received (RFC 3207 §4.2:
    /// pipelined plaintext must not survive the upgrade), run the TLS handshake, then call
    /// [`Session::tls_started`].
    StartTls,
    /// Perform this downstream operation and pass its outcome to
    /// [`Session::downstream_done`].
    Downstream(DownstreamOp),
    /// Look up (or find fresh in the cache) this partner domain's keys and policy, within
    /// the driver's time bound, then call [`Session::lookup_done`] and `advance` again.
    Lookup(String),
    /// Flush pending replies and read more input (timeout: [`Session::read_timeout`]).
    NeedInput,
}

/// A request to the downstream side of the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownstreamOp {
    /// Add a recipient to downstream transaction `tx` on `route`, sending `MAIL FROM` first
    /// if this transaction is not open downstream yet (and `RSET` for any older one).
    AddRecipient {
        tx: u64,
        route: RouteId,
        sender: MailFrom,
        recipient: RcptTo,
    },
    /// Apply the policy to the message of transaction `tx` ([`Policy::process`])
    /// and send the result (`DATA`, content, end of data).
    Deliver {
        tx: u64,
        message: Vec<u8>,
        treatment: Option<Treatment>,
        sender: MailFrom,
        recipients: Vec<RcptTo>,
    },
}

/// How a downstream operation went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownstreamOutcome {
    /// The downstream answered 2xx.
    Accepted { code: u16, text: String },
    /// The downstream answered 4xx/5xx at `stage`.
    Refused {
        stage: Stage,
        code: u16,
        text: String,
    },
    /// No verdict from the downstream.
    Failed(DownstreamFailure),
    /// Postern itself refused the message (policy or crypto) before the downstream saw its
    /// content; the downstream transaction is abandoned.
    Local(Reply),
}

/// Why no verdict came from the downstream; each maps to a 4xx (or, for SMTPUTF8, 5xx) reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownstreamFailure {
    Unreachable,
    Timeout,
    ConnectionLost,
    Protocol,
    TlsNotOffered,
    TlsFailed,
    NoSmtpUtf8,
}

impl DownstreamFailure {
    pub fn reply(self) -> Reply {
        match self {
            DownstreamFailure::Unreachable => reply::DOWNSTREAM_UNREACHABLE,
            DownstreamFailure::Timeout => reply::DOWNSTREAM_TIMEOUT,
            DownstreamFailure::ConnectionLost => reply::DOWNSTREAM_LOST,
            DownstreamFailure::Protocol => reply::DOWNSTREAM_PROTOCOL,
            DownstreamFailure::TlsNotOffered => reply::DOWNSTREAM_NO_TLS,
            DownstreamFailure::TlsFailed => reply::DOWNSTREAM_TLS_FAILED,
            DownstreamFailure::NoSmtpUtf8 => reply::DOWNSTREAM_NO_SMTPUTF8,
        }
    }
}

/// A mail transaction in progress.
#[derive(Debug)]
struct Transaction {
    id: u64,
    sender: MailFrom,
    recipients: Vec<RcptTo>,
    /// Treatment of the first accepted recipient; all others must be compatible.
    treatment: Option<Treatment>,
    /// Set when the downstream transaction broke after recipients were accepted: the
    /// upstream must retry the whole transaction later.
    broken: Option<Reply>,
    /// Partner domains looked up in this transaction (once each).
    looked_up: Vec<String>,
}

#[derive(Debug)]
enum Phase {
    Command,
    /// Skipping the rest of an over-long command line.
    DiscardLine,
    Data(Box<DataReceiver>),
    /// Waiting for the outcome of a downstream operation.
    Waiting(Pending),
    Closed,
}

#[derive(Debug)]
enum Pending {
    Recipient(RcptTo, Treatment),
    Message,
    /// A partner domain lookup before this recipient's treatment.
    Lookup(RcptTo),
}

/// One SMTP session.
#[derive(Debug)]
pub struct Session {
    config: Arc<SessionConfig>,
    policy: Arc<dyn Policy>,
    info: ConnectionInfo,
    helo: Option<String>,
    esmtp: bool,
    tls: bool,
    tx: Option<Transaction>,
    phase: Phase,
    /// A recipient whose lookup is done: its RCPT goes on at the next `advance`.
    resume: Option<RcptTo>,
    errors: u32,
    transactions: u64,
    delivered: u64,
}

impl Session {
    pub fn new(config: Arc<SessionConfig>, policy: Arc<dyn Policy>, info: ConnectionInfo) -> Self {
        Session {
            config,
            policy,
            info,
            helo: None,
            esmtp: false,
            tls: false,
            tx: None,
            phase: Phase::Command,
            resume: None,
            errors: 0,
            transactions: 0,
            delivered: 0,
        }
    }

    /// The connection greeting.
    pub fn greeting(&self) -> Reply {
        reply::greeting(&self.config.hostname)
    }

    /// How long the driver may wait for the next input in the current phase.
    pub fn read_timeout(&self) -> Duration {
        match self.phase {
            Phase::Data(_) => self.config.data_timeout,
            _ => self.config.command_timeout,
        }
    }

    /// Whether a mail transaction is in progress (a graceful shutdown waits for it).
    pub fn in_transaction(&self) -> bool {
        self.tx.is_some()
    }

    /// Messages accepted downstream in this session.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Consumes input and says what to do next. Consumed bytes are removed from `input`.
    pub fn advance(&mut self, input: &mut Vec<u8>) -> Event {
        if let Some(to) = self.resume.take() {
            return self.rcpt(to);
        }
        match &mut self.phase {
            Phase::Closed | Phase::Waiting(_) => Event::NeedInput,
            Phase::DiscardLine => match input.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    input.drain(..=i);
                    self.phase = Phase::Command;
                    self.error(reply::LINE_TOO_LONG)
                }
                None => {
                    input.clear();
                    Event::NeedInput
                }
            },
            Phase::Data(receiver) => {
                let (used, end) = receiver.feed(input);
                input.drain(..used);
                match end {
                    None => Event::NeedInput,
                    Some(end) => self.end_of_data(end),
                }
            }
            Phase::Command => match command::frame(input) {
                Framing::Incomplete => Event::NeedInput,
                Framing::TooLong => {
                    self.phase = Phase::DiscardLine;
                    self.advance(input)
                }
                Framing::Line(len) => {
                    let line: Vec<u8> = input.drain(..len).collect();
                    match command::parse(&line) {
                        Ok(cmd) => self.dispatch(cmd),
                        Err(r) => self.error(r),
                    }
                }
            },
        }
    }

    fn dispatch(&mut self, cmd: Command) -> Event {
        match cmd {
            Command::Ehlo(host) => self.ehlo(host),
            Command::Helo(host) => self.helo(host),
            Command::Mail(from) => self.mail(from),
            Command::Rcpt(to) => self.rcpt(to),
            Command::Data => self.data(),
            Command::Rset => self.rset(),
            Command::Noop => Event::Reply(reply::OK),
            Command::Quit => self.quit(),
            Command::StartTls => self.starttls(),
            Command::Vrfy => Event::Reply(reply::VRFY_UNSUPPORTED),
            Command::Help => Event::Reply(reply::HELP),
            Command::NotImplemented => self.error(reply::NOT_IMPLEMENTED),
        }
    }

    /// Turns the outcome of the pending downstream operation into the upstream's reply.
    pub fn downstream_done(&mut self, outcome: DownstreamOutcome) -> Reply {
        match std::mem::replace(&mut self.phase, Phase::Command) {
            Phase::Waiting(Pending::Recipient(rcpt, treatment)) => {
                self.recipient_outcome(rcpt, treatment, outcome)
            }
            Phase::Waiting(Pending::Message) => self.message_outcome(outcome),
            other => {
                // A driver bug, not an input problem: keep the state and say so.
                self.phase = other;
                tracing::error!("downstream outcome without a pending operation");
                reply::LOCAL_ERROR
            }
        }
    }

    /// The lookup asked for by [`Event::Lookup`] is done: the recipient's RCPT goes on at the
    /// next [`Session::advance`].
    pub fn lookup_done(&mut self) {
        match std::mem::replace(&mut self.phase, Phase::Command) {
            Phase::Waiting(Pending::Lookup(to)) => self.resume = Some(to),
            other => {
                self.phase = other;
                tracing::error!("lookup done without a pending lookup");
            }
        }
    }

    /// A 5xx for a bad command; too many of them end the session.
    fn error(&mut self, r: Reply) -> Event {
        self.errors += 1;
        if self.errors > self.config.max_errors {
            self.phase = Phase::Closed;
            Event::Close(reply::TOO_MANY_ERRORS)
        } else {
            Event::Reply(r)
        }
    }

    fn reset_transaction(&mut self) {
        self.tx = None;
    }
}
