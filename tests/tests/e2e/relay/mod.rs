//! The queue-less relay (issue: workspace and strict relay): the contract of DESIGN.md §3
//! against smtp-sink and Postfix, hostile input, TLS, configuration and crash safety.

mod config;
mod contract;
mod crash;
mod decisions;
mod hostile;
mod tls;

use postern_tests::peers::Peer;
use postern_tests::peers_available;

/// smtp-sink is the downstream of most tests.
fn have_sink(test: &str) -> bool {
    peers_available(test, &[Peer::SmtpSink])
}

/// A message with a unique subject.
fn message(subject: &str) -> String {
    format!(
        "From: a@corp.example\r\nTo: b@else.example\r\nSubject: {subject}\r\nMessage-ID: <{subject}@test>\r\n\r\nHello.\r\n.leading dot\r\n"
    )
}
