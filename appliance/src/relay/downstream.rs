//! The downstream side of one SMTP session: a lettre low-level connection to the route's MTA,
//! kept for the session's later transactions, every step under a deadline.
//!
//! lettre's own timeout covers only the connect, and after a failed DATA it can wait forever
//! for a reply (TESTBED.md), so each await here is wrapped in `tokio::time::timeout`, and a
//! connection that failed or timed out is dropped, never reused.

use std::error::Error as _;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;

use crate::config::{DownstreamConfig, DownstreamTls};
use crate::smtp::envelope::{DownstreamCaps, MailFrom, RcptTo};
use crate::smtp::reply::Stage;
use crate::smtp::session::port::RouteId;
use crate::smtp::session::{DownstreamFailure, DownstreamOp, DownstreamOutcome};

/// A route's downstream with its prepared TLS parameters.
#[derive(Clone)]
pub struct Target {
    pub config: DownstreamConfig,
    /// For `opportunistic`: no verification.
    tls_any: TlsParameters,
    /// For `required`: system roots plus `ca_file`, name checked.
    tls_verified: Option<TlsParameters>,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{address}: cannot read CA file {path}: {source}")]
    CaFile {
        address: String,
        path: String,
        source: std::io::Error,
    },
    #[error("{address}: invalid TLS settings: {source}")]
    Tls { address: String, source: SmtpError },
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Target {
    pub fn new(config: DownstreamConfig) -> Result<Target, TargetError> {
        let host = config
            .address
            .rsplit_once(':')
            .map(|(h, _)| h.trim_matches(|c| c == '[' || c == ']').to_owned())
            .unwrap_or_default();
        let tls_err = |source| TargetError::Tls {
            address: config.address.clone(),
            source,
        };
        let tls_any = TlsParameters::builder(host.clone())
            .dangerous_accept_invalid_certs(true)
            .dangerous_accept_invalid_hostnames(true)
            .build_rustls()
            .map_err(tls_err)?;
        let tls_verified = if config.tls == DownstreamTls::Required {
            let name = config.tls_name.clone().unwrap_or(host);
            let mut builder = TlsParameters::builder(name);
            if let Some(path) = &config.ca_file {
                let pem = std::fs::read(path).map_err(|source| TargetError::CaFile {
                    address: config.address.clone(),
                    path: path.display().to_string(),
                    source,
                })?;
                builder =
                    builder.add_root_certificate(Certificate::from_pem(&pem).map_err(tls_err)?);
            }
            Some(builder.build_rustls().map_err(tls_err)?)
        } else {
            None
        };
        Ok(Target {
            config,
            tls_any,
            tls_verified,
        })
    }
}

/// The downstream targets in force: the default route (index 0) and the routes by domain.
/// The default's address can change at run time (the replicated `relay.downstream`
/// setting); each new session takes the targets current when it starts.
#[derive(Debug)]
pub struct Targets {
    current: std::sync::RwLock<Arc<Vec<Target>>>,
    /// The default route as the configuration file gives it.
    base: DownstreamConfig,
}

impl Targets {
    pub fn new(targets: Vec<Target>) -> Targets {
        let base = targets
            .first()
            .map(|t| t.config.clone())
            .unwrap_or_else(|| DownstreamConfig {
                address: String::new(),
                tls: DownstreamTls::Opportunistic,
                ca_file: None,
                tls_name: None,
                connect_timeout: Duration::from_secs(30),
                command_timeout: Duration::from_secs(300),
                data_timeout: Duration::from_secs(540),
            });
        Targets {
            current: std::sync::RwLock::new(Arc::new(targets)),
            base,
        }
    }

    pub fn current(&self) -> Arc<Vec<Target>> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The default downstream's address now.
    pub fn default_address(&self) -> String {
        self.current()
            .first()
            .map(|t| t.config.address.clone())
            .unwrap_or_default()
    }

    /// Points the default route at `address` (None: back to the configuration file's).
    pub fn set_default(&self, address: Option<&str>) -> Result<(), TargetError> {
        let mut config = self.base.clone();
        if let Some(a) = address {
            config.address = a.to_owned();
        }
        if config.address == self.default_address() {
            return Ok(());
        }
        let target = Target::new(config)?;
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        let mut next: Vec<Target> = current.iter().cloned().collect();
        match next.first_mut() {
            Some(first) => *first = target,
            None => next.push(target),
        }
        *current = Arc::new(next);
        Ok(())
    }
}

/// A raw command line for lettre's `command()`, which writes what `Display` gives.
struct Line<'a>(&'a str);

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\r\n", self.0)
    }
}

struct Conn {
    route: RouteId,
    smtp: AsyncSmtpConnection,
    caps: DownstreamCaps,
    /// The upstream transaction whose MAIL FROM is open on this connection.
    open_tx: Option<u64>,
    /// Used before: a failure on its first command may just be an idle close.
    reused: bool,
}

/// Why a step failed: a verdict (4xx/5xx reply) or no verdict at all.
enum StepError {
    Verdict(u16, String),
    Failed(DownstreamFailure),
}

/// The downstream connection of one upstream session.
pub struct Downstream {
    targets: Arc<Vec<Target>>,
    hello: ClientId,
    conn: Option<Conn>,
}

impl fmt::Debug for Downstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Downstream")
            .field("route", &self.conn.as_ref().map(|c| c.route))
            .finish()
    }
}

impl Downstream {
    pub fn new(targets: Arc<Vec<Target>>, hello_name: &str) -> Self {
        Downstream {
            targets,
            hello: ClientId::Domain(hello_name.to_owned()),
            conn: None,
        }
    }

    /// Runs one operation of the session.
    pub async fn execute(&mut self, op: DownstreamOp) -> DownstreamOutcome {
        let result = match op {
            DownstreamOp::AddRecipient {
                tx,
                route,
                sender,
                recipient,
            } => self.add_recipient(tx, route, &sender, &recipient).await,
            DownstreamOp::Deliver { tx, message, .. } => self.deliver(tx, &message).await,
        };
        match result {
            Ok(outcome) => outcome,
            Err(StepError::Verdict(code, text)) => DownstreamOutcome::Refused {
                stage: Stage::Message,
                code,
                text,
            },
            Err(StepError::Failed(failure)) => {
                if let Some(conn) = self.conn.take() {
                    tracing::warn!(
                        route = conn.route,
                        ?failure,
                        "downstream connection dropped"
                    );
                }
                DownstreamOutcome::Failed(failure)
            }
        }
    }

    /// Ends the session politely.
    pub async fn quit(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            let timeout = self.targets[conn.route].config.command_timeout;
            let _ = tokio::time::timeout(timeout, conn.smtp.command(Line("QUIT"))).await;
        }
    }

    async fn add_recipient(
        &mut self,
        tx: u64,
        route: RouteId,
        sender: &MailFrom,
        rcpt: &RcptTo,
    ) -> Result<DownstreamOutcome, StepError> {
        if self.conn.as_ref().is_some_and(|c| c.route != route) {
            self.quit().await;
        }
        let rcpt_result = if self.conn.as_ref().and_then(|c| c.open_tx) != Some(tx) {
            match self.open_transaction(tx, route, sender, rcpt).await {
                Ok(Some(pipelined)) => pipelined,
                Ok(None) => self.send_rcpt(rcpt).await,
                Err(StepError::Verdict(code, text)) => {
                    return Ok(DownstreamOutcome::Refused {
                        stage: Stage::Sender,
                        code,
                        text,
                    });
                }
                Err(e) => return Err(e),
            }
        } else {
            self.send_rcpt(rcpt).await
        };
        match rcpt_result {
            Ok(resp) => Ok(accepted(&resp)),
            Err(StepError::Verdict(code, text)) => Ok(DownstreamOutcome::Refused {
                stage: Stage::Recipient,
                code,
                text,
            }),
            Err(e) => Err(e),
        }
    }

    async fn send_rcpt(&mut self, rcpt: &RcptTo) -> Result<Response, StepError> {
        let (conn, timeout) = self.conn_mut()?;
        let cmd = rcpt.downstream_command(&conn.caps);
        step(timeout, conn.smtp.command(Line(&cmd))).await
    }

    /// Sends MAIL FROM for `tx`, connecting (or reconnecting once, if a reused connection
    /// turned out to be closed by the downstream) as needed. When the downstream announced
    /// PIPELINING (RFC 2920), the first recipient goes in the same write, saving a round
    /// trip per message, and its result is returned; otherwise `None` and the caller sends it.
    async fn open_transaction(
        &mut self,
        tx: u64,
        route: RouteId,
        sender: &MailFrom,
        rcpt: &RcptTo,
    ) -> Result<Option<Result<Response, StepError>>, StepError> {
        for attempt in 0..2 {
            if self.conn.is_none() {
                self.conn = Some(self.connect(route).await?);
            }
            let (conn, timeout) = self.conn_mut()?;
            let reused = conn.reused;
            if sender.smtputf8 && !conn.caps.smtputf8 {
                return Err(StepError::Failed(DownstreamFailure::NoSmtpUtf8));
            }
            let mut result = Ok(None);
            if conn.open_tx.is_some() {
                result = step(timeout, conn.smtp.command(Line("RSET")))
                    .await
                    .map(|_| None);
                conn.open_tx = None;
            }
            if result.is_ok() {
                let mail = sender.downstream_command(&conn.caps);
                result = if conn.caps.pipelining {
                    let both = format!("{mail}\r\n{}", rcpt.downstream_command(&conn.caps));
                    let mail_result = step(timeout, conn.smtp.command(Line(&both))).await;
                    // The RCPT reply follows whatever the MAIL reply was.
                    let rcpt_result = match &mail_result {
                        Err(StepError::Failed(_)) => None,
                        _ => Some(step(timeout, conn.smtp.read_response()).await),
                    };
                    match (mail_result, rcpt_result) {
                        (Err(e), _) => Err(e),
                        (Ok(_), Some(Err(StepError::Failed(f)))) => Err(StepError::Failed(f)),
                        (Ok(_), rcpt) => Ok(rcpt),
                    }
                } else {
                    step(timeout, conn.smtp.command(Line(&mail)))
                        .await
                        .map(|_| None)
                };
            }
            match result {
                Ok(rcpt) => {
                    conn.open_tx = Some(tx);
                    conn.reused = true;
                    return Ok(rcpt);
                }
                Err(StepError::Failed(DownstreamFailure::ConnectionLost))
                    if reused && attempt == 0 =>
                {
                    tracing::debug!("idle downstream connection was closed; reconnecting");
                    self.conn = None;
                }
                Err(e) => return Err(e),
            }
        }
        Err(StepError::Failed(DownstreamFailure::ConnectionLost))
    }

    async fn deliver(&mut self, tx: u64, message: &[u8]) -> Result<DownstreamOutcome, StepError> {
        let targets = Arc::clone(&self.targets);
        let (conn, timeout) = self.conn_mut()?;
        if conn.open_tx != Some(tx) {
            return Err(StepError::Failed(DownstreamFailure::ConnectionLost));
        }
        conn.open_tx = None;
        step(timeout, conn.smtp.command(Line("DATA"))).await?;
        let data_timeout = targets[conn.route].config.data_timeout;
        // lettre adds CRLF.CRLF after the content: give it the message without its last CRLF.
        let content = message.strip_suffix(b"\r\n").unwrap_or(message);
        let resp = step(data_timeout, conn.smtp.message(content)).await?;
        Ok(accepted(&resp))
    }

    fn conn_mut(&mut self) -> Result<(&mut Conn, Duration), StepError> {
        let conn = self
            .conn
            .as_mut()
            .ok_or(StepError::Failed(DownstreamFailure::ConnectionLost))?;
        let timeout = self.targets[conn.route].config.command_timeout;
        Ok((conn, timeout))
    }

    async fn connect(&self, route: RouteId) -> Result<Conn, StepError> {
        let target = &self.targets[route];
        let cfg = &target.config;
        let mut smtp = self.open(cfg).await?;
        match cfg.tls {
            DownstreamTls::None => {}
            DownstreamTls::Opportunistic if smtp.can_starttls() => {
                let upgraded = step(
                    cfg.command_timeout,
                    smtp.starttls(target.tls_any.clone(), &self.hello),
                )
                .await;
                if upgraded.is_err() {
                    tracing::warn!(downstream = %cfg.address, "opportunistic STARTTLS failed; continuing without TLS");
                    smtp = self.open(cfg).await?;
                }
            }
            DownstreamTls::Opportunistic => {}
            DownstreamTls::Required => {
                if !smtp.can_starttls() {
                    return Err(StepError::Failed(DownstreamFailure::TlsNotOffered));
                }
                let params = target
                    .tls_verified
                    .clone()
                    .unwrap_or_else(|| target.tls_any.clone());
                if let Err(e) = step(cfg.command_timeout, smtp.starttls(params, &self.hello)).await
                {
                    tracing::warn!(downstream = %cfg.address, "required STARTTLS failed");
                    return Err(match e {
                        StepError::Failed(DownstreamFailure::Timeout) => {
                            StepError::Failed(DownstreamFailure::Timeout)
                        }
                        _ => StepError::Failed(DownstreamFailure::TlsFailed),
                    });
                }
            }
        }
        // lettre keeps only some EHLO keywords; ask again for the full list (DSN, SIZE).
        let hello = format!("EHLO {}", self.hello);
        let ehlo = step(cfg.command_timeout, smtp.command(Line(&hello))).await?;
        let caps = DownstreamCaps::from_ehlo_lines(ehlo.message());
        tracing::debug!(downstream = %cfg.address, tls = smtp.is_encrypted(), ?caps, "downstream connected");
        Ok(Conn {
            route,
            smtp,
            caps,
            open_tx: None,
            reused: false,
        })
    }

    /// Connects (our own socket, so that TCP_NODELAY is set: lettre writes the content and
    /// the final CRLF.CRLF separately, and with Nagle the second write waits for a delayed
    /// ACK) and reads the greeting and EHLO reply.
    async fn open(&self, cfg: &DownstreamConfig) -> Result<AsyncSmtpConnection, StepError> {
        let connect = async {
            let tcp = tokio::net::TcpStream::connect(cfg.address.as_str())
                .await
                .map_err(|e| e.to_string())?;
            tcp.set_nodelay(true).map_err(|e| e.to_string())?;
            AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                .await
                .map_err(|e| describe(&e))
        };
        match tokio::time::timeout(cfg.connect_timeout, connect).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(error)) => {
                tracing::warn!(downstream = %cfg.address, %error, "downstream unreachable");
                Err(StepError::Failed(DownstreamFailure::Unreachable))
            }
            Err(_) => {
                tracing::warn!(downstream = %cfg.address, "downstream connect timed out");
                Err(StepError::Failed(DownstreamFailure::Unreachable))
            }
        }
    }
}

/// Runs one lettre step under a deadline and classifies its failure.
async fn step<T>(
    deadline: Duration,
    fut: impl Future<Output = Result<T, SmtpError>>,
) -> Result<T, StepError> {
    match tokio::time::timeout(deadline, fut).await {
        Err(_) => Err(StepError::Failed(DownstreamFailure::Timeout)),
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(classify(&e)),
    }
}

fn classify(e: &SmtpError) -> StepError {
    if let Some(code) = e.status() {
        let text = e.source().map(|s| s.to_string()).unwrap_or_default();
        return StepError::Verdict(u16::from(code), text);
    }
    // lettre reports a connection closed before the reply as a response error.
    let closed = e
        .source()
        .is_some_and(|s| s.to_string() == "incomplete response");
    if e.is_timeout() {
        StepError::Failed(DownstreamFailure::Timeout)
    } else if e.is_response() && !closed {
        StepError::Failed(DownstreamFailure::Protocol)
    } else {
        StepError::Failed(DownstreamFailure::ConnectionLost)
    }
}

fn accepted(resp: &Response) -> DownstreamOutcome {
    DownstreamOutcome::Accepted {
        code: u16::from(resp.code()),
        text: resp.message().collect::<Vec<_>>().join(" "),
    }
}

fn describe(e: &SmtpError) -> String {
    match e.source() {
        Some(s) => format!("{e}: {s}"),
        None => e.to_string(),
    }
}
