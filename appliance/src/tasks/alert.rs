//! Alert mails to the admin (hardware problems, refused partner keys): plain text, sent
//! through the default downstream like any mail, marked `Auto-Submitted: auto-generated`.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime};

use crate::services::now_secs;

/// Tells apart alerts sent within the same second.
static SEQ: AtomicU64 = AtomicU64::new(0);

/// Why an alert mail was not sent.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("address {address}: {reason}")]
    Address { address: String, reason: String },
    #[error("downstream {0:?} is not host:port")]
    Downstream(String),
    #[error(transparent)]
    Smtp(#[from] lettre::transport::smtp::Error),
}

/// Mails `text` to `to` through the downstream at `relay` (host:port); its first line is the
/// subject, `kind` goes into the Message-ID.
pub async fn send(
    relay: &str,
    host: &str,
    to: &str,
    kind: &str,
    text: &str,
) -> Result<(), AlertError> {
    use lettre::AsyncTransport as _;
    let from = format!("postern@{host}");
    let address = |a: &str| -> Result<lettre::Address, AlertError> {
        a.parse()
            .map_err(|e: lettre::address::AddressError| AlertError::Address {
                address: a.to_owned(),
                reason: e.to_string(),
            })
    };
    let envelope = lettre::address::Envelope::new(Some(address(&from)?), vec![address(to)?])
        .map_err(|e| AlertError::Address {
            address: to.to_owned(),
            reason: e.to_string(),
        })?;
    let (h, port) = relay
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.trim_matches(['[', ']']), p.parse::<u16>().ok()?)))
        .ok_or_else(|| AlertError::Downstream(relay.to_owned()))?;
    let now = now_secs();
    let subject = text.lines().next().unwrap_or("Alert");
    let message = format!(
        "From: Postern {host} <{from}>\r\nTo: <{to}>\r\nSubject: [postern] {subject}\r\nDate: {}\r\nMessage-ID: <{kind}-{now}-{}-{}@{host}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nAuto-Submitted: auto-generated\r\n\r\n{text}",
        postern_crypto::mime::date::Utc::from(SystemTime::now()).rfc5322(),
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let transport = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous(h)
        .port(port)
        .timeout(Some(Duration::from_secs(30)))
        .build();
    transport.send_raw(&envelope, message.as_bytes()).await?;
    Ok(())
}
