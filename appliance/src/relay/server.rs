//! Accepts upstream connections and drives one [`Session`] per connection over plain TCP
//! and, after STARTTLS, over TLS. All protocol decisions are the session's; this module only
//! moves bytes, applies deadlines and runs downstream operations.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument as _;

use super::downstream::{Downstream, Targets};
use super::limits::ConnectionLimits;
use super::ratelog::RateLimitedLog;
use crate::relay::discovery::Discovery;
use crate::relay::trace::{Record, Trace};
use crate::smtp::reply::{self, Reply};
use crate::smtp::session::port::Policy;
use crate::smtp::session::{
    ConnectionInfo, DownstreamOp, DownstreamOutcome, Event, Session, SessionConfig,
};

/// Everything sessions share.
pub struct Relay {
    pub session: Arc<SessionConfig>,
    pub policy: Arc<dyn Policy>,
    pub tls: Option<TlsAcceptor>,
    pub targets: Arc<Targets>,
    pub limits: Arc<ConnectionLimits>,
    pub tls_handshake_timeout: Duration,
    /// The message trace and counters of this node.
    pub trace: Arc<Trace>,
    /// Partner-domain lookups at RCPT (federation); None: none are made.
    pub discovery: Option<Arc<dyn Discovery>>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("session", &self.session)
            .field("targets", &self.targets)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// Bytes read per call; with the line limits this bounds a session's input buffer.
const READ_CHUNK: usize = 16 * 1024;

/// Serves until `shutdown` turns true, then waits up to `grace` for open sessions (idle ones
/// get `421 4.3.2` at once; those inside a transaction finish it).
pub async fn serve(
    listener: TcpListener,
    relay: Arc<Relay>,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let relay = Arc::clone(&relay);
                    let shutdown = shutdown.clone();
                    sessions.spawn(connection(stream, peer, relay, shutdown));
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    tracing::info!(open = sessions.len(), "no longer accepting connections");
    let drain = async { while sessions.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, drain).await.is_err() {
        tracing::warn!("shutdown grace period over; closing remaining sessions");
    }
}

fn session_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let start = *START.get_or_init(crate::clock::now_secs);
    format!("{start:x}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    relay: Arc<Relay>,
    shutdown: watch::Receiver<bool>,
) {
    let _permit = match relay.limits.acquire(peer.ip()) {
        Ok(p) => p,
        Err(r) => {
            if let Some(suppressed) = REFUSED_LOG.check(std::time::Instant::now()) {
                tracing::info!(%peer, reply = %r, suppressed, "connection refused by limit");
            }
            let _ =
                tokio::time::timeout(Duration::from_secs(5), stream.write_all(&r.encode())).await;
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let id = session_id();
    let span = tracing::info_span!("smtp", session = %id, %peer);
    run(stream, peer, id, relay, shutdown)
        .instrument(span)
        .await;
}

async fn run(
    stream: TcpStream,
    peer: SocketAddr,
    id: String,
    relay: Arc<Relay>,
    shutdown: watch::Receiver<bool>,
) {
    relay
        .trace
        .sessions
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let info = ConnectionInfo {
        id: id.clone(),
        peer,
    };
    let mut session = Session::new(Arc::clone(&relay.session), Arc::clone(&relay.policy), info);
    let mut downstream = Downstream::new(relay.targets.current(), &relay.session.hostname);
    let mut driver = Driver {
        policy: Arc::clone(&relay.policy),
        discovery: relay.discovery.clone(),
        trace: Arc::clone(&relay.trace),
        id,
        peer,
        session: &mut session,
        downstream: &mut downstream,
        input: Vec::with_capacity(READ_CHUNK),
        shutdown,
    };
    let greeting = driver.session.greeting();
    let end = match driver.drive(stream, Some(greeting)).await {
        Ok(End::StartTls(tcp)) => match &relay.tls {
            Some(acceptor) => {
                match tokio::time::timeout(relay.tls_handshake_timeout, acceptor.accept(tcp)).await
                {
                    Ok(Ok(tls)) => {
                        driver.session.tls_started();
                        tracing::debug!("TLS established");
                        driver.drive(tls, None).await.map(|_| ())
                    }
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "TLS handshake timed out",
                    )),
                }
            }
            None => Ok(()),
        },
        Ok(End::Closed) => Ok(()),
        Err(e) => Err(e),
    };
    if let Err(e) = end {
        tracing::debug!(error = %e, "connection ended with an error");
    }
    downstream.quit().await;
    tracing::info!(delivered = session.delivered(), "session closed");
}

enum End<S> {
    Closed,
    StartTls(S),
}

struct Driver<'a> {
    policy: Arc<dyn Policy>,
    discovery: Option<Arc<dyn Discovery>>,
    trace: Arc<Trace>,
    id: String,
    peer: SocketAddr,
    session: &'a mut Session,
    downstream: &'a mut Downstream,
    input: Vec<u8>,
    shutdown: watch::Receiver<bool>,
}

impl Driver<'_> {
    /// Runs the session over `stream` until it closes or asks for TLS.
    async fn drive<S>(&mut self, mut stream: S, greeting: Option<Reply>) -> std::io::Result<End<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut out: Vec<u8> = Vec::new();
        if let Some(g) = greeting {
            out.extend_from_slice(&g.encode());
        }
        loop {
            match self.session.advance(&mut self.input) {
                Event::Reply(r) => {
                    if r == reply::DOMAIN_KEY_UNAVAILABLE {
                        self.trace.enforced.fetch_add(1, Ordering::Relaxed);
                    }
                    log_reply(&r);
                    out.extend_from_slice(&r.encode());
                }
                Event::Close(r) => {
                    log_reply(&r);
                    out.extend_from_slice(&r.encode());
                    stream.write_all(&out).await?;
                    let _ = stream.shutdown().await;
                    return Ok(End::Closed);
                }
                Event::StartTls => {
                    out.extend_from_slice(&reply::READY_FOR_TLS.encode());
                    stream.write_all(&out).await?;
                    if !self.input.is_empty() {
                        tracing::info!(
                            bytes = self.input.len(),
                            "discarded plaintext pipelined after STARTTLS"
                        );
                        self.input.clear();
                    }
                    return Ok(End::StartTls(stream));
                }
                Event::Downstream(op) => {
                    let mut record = self.trace_record(&op);
                    let outcome = match self.apply_policy(op).await {
                        Ok((op, treatment)) => {
                            if let (Some(rec), Some(t)) = (record.as_mut(), treatment) {
                                rec.treatment = t;
                            }
                            self.downstream.execute(op).await
                        }
                        Err(r) => DownstreamOutcome::Local(r),
                    };
                    let r = self.session.downstream_done(outcome);
                    if let Some(mut rec) = record {
                        rec.code = r.code;
                        rec.reply = r.to_string();
                        self.trace.record(rec);
                    }
                    log_reply(&r);
                    out.extend_from_slice(&r.encode());
                }
                Event::Lookup(domain) => {
                    if let Some(d) = &self.discovery {
                        d.discover(&domain).await;
                    }
                    self.session.lookup_done();
                }
                Event::NeedInput => {
                    if !out.is_empty() {
                        stream.write_all(&out).await?;
                        out.clear();
                    }
                    if !self.read(&mut stream).await? {
                        return Ok(End::Closed);
                    }
                }
            }
        }
    }

    /// The trace entry of a delivery (envelope and size; treatment and reply come later).
    fn trace_record(&self, op: &DownstreamOp) -> Option<Record> {
        let DownstreamOp::Deliver {
            message,
            sender,
            recipients,
            treatment,
            ..
        } = op
        else {
            return None;
        };
        Some(Record {
            time: crate::clock::now_secs(),
            session: self.id.clone(),
            peer: self.peer.to_string(),
            sender: sender.address.clone(),
            recipients: recipients.iter().map(|r| r.address.clone()).collect(),
            size: message.len(),
            treatment: match treatment.as_ref().map(|t| &t.class) {
                None | Some(postern_crypto::policy::Class::Pass) => "relayed as is".into(),
                Some(_) => String::new(),
            },
            code: 0,
            reply: String::new(),
        })
    }

    /// Runs the policy over a message before it goes downstream: signing and encryption are
    /// CPU work, done on the blocking pool so other sessions keep moving. Returns the
    /// message to send and, when the policy acted, its explanation.
    async fn apply_policy(
        &self,
        op: DownstreamOp,
    ) -> Result<(DownstreamOp, Option<String>), Reply> {
        let DownstreamOp::Deliver {
            tx,
            message,
            treatment: Some(treatment),
            sender,
            recipients,
        } = op
        else {
            return Ok((op, None));
        };
        // Pass-through mail is relayed as it came: no trip through the blocking pool.
        if treatment.class == postern_crypto::policy::Class::Pass {
            return Ok((
                DownstreamOp::Deliver {
                    tx,
                    message,
                    treatment: Some(treatment),
                    sender,
                    recipients,
                },
                None,
            ));
        }
        let policy = Arc::clone(&self.policy);
        let job = tokio::task::spawn_blocking(move || {
            let r = policy.process(&treatment, &sender, &recipients, message);
            (r, treatment, sender, recipients)
        });
        match job.await {
            Ok((Ok(processed), treatment, sender, recipients)) => {
                tracing::info!(policy = %processed.explanation, "message processed");
                Ok((
                    DownstreamOp::Deliver {
                        tx,
                        message: processed.message,
                        treatment: Some(treatment),
                        sender,
                        recipients,
                    },
                    Some(processed.explanation.to_string()),
                ))
            }
            Ok((Err(reply), ..)) => Err(reply),
            Err(e) => {
                tracing::error!(error = %e, "policy task failed");
                Err(reply::CRYPTO_FAILED)
            }
        }
    }

    /// Reads more input. `false` when the session is over (EOF, timeout, shutdown).
    async fn read<S>(&mut self, stream: &mut S) -> std::io::Result<bool>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let idle = !self.session.in_transaction();
        let timeout = self.session.read_timeout();
        self.input.reserve(READ_CHUNK);
        let shutting_down = *self.shutdown.borrow();
        if shutting_down && idle {
            stream.write_all(&reply::SHUTTING_DOWN.encode()).await?;
            return Ok(false);
        }
        let read = tokio::time::timeout(timeout, stream.read_buf(&mut self.input));
        tokio::select! {
            r = read => match r {
                Err(_) => {
                    tracing::info!(?timeout, "upstream timed out");
                    stream.write_all(&reply::TIMEOUT.encode()).await?;
                    Ok(false)
                }
                Ok(Ok(0)) => {
                    if self.session.in_transaction() {
                        tracing::info!("upstream disconnected inside a transaction; nothing was delivered");
                    }
                    Ok(false)
                }
                Ok(Ok(_)) => Ok(true),
                Ok(Err(e)) => Err(e),
            },
            _ = self.shutdown.changed(), if idle && !shutting_down => {
                stream.write_all(&reply::SHUTTING_DOWN.encode()).await?;
                Ok(false)
            }
        }
    }
}

/// Client-triggered log lines: at most this many per second each.
static REFUSED_LOG: RateLimitedLog = RateLimitedLog::new(20);
static REPLY_LOG: RateLimitedLog = RateLimitedLog::new(50);

fn log_reply(r: &Reply) {
    if r.code >= 400
        && let Some(suppressed) = REPLY_LOG.check(std::time::Instant::now())
    {
        tracing::info!(reply = %r, suppressed, "negative reply");
    }
}
