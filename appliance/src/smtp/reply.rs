//! Every SMTP reply Postern sends, in one catalogue.
//!
//! A [`Reply`] is a code, an optional enhanced status code (RFC 3463) and text. Fixed replies
//! are named constants below; the few that carry data (greeting, EHLO, mirrored downstream
//! verdicts) are built by the functions at the end. README.md lists them all for operators.

use std::borrow::Cow;
use std::fmt::Write as _;

/// One SMTP reply. Multi-line text is separated by `\n`; [`Reply::encode`] turns it into
/// `code-` continuation lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub status: Option<Cow<'static, str>>,
    pub text: Cow<'static, str>,
}

impl Reply {
    const fn fixed(code: u16, status: &'static str, text: &'static str) -> Reply {
        Reply {
            code,
            status: Some(Cow::Borrowed(status)),
            text: Cow::Borrowed(text),
        }
    }

    /// The reply class digit: 2, 3, 4 or 5.
    pub fn class(&self) -> u16 {
        self.code / 100
    }

    /// The wire form: one or more lines, each ending in CRLF. Control characters in the
    /// text are replaced so that no text (in particular a downstream's) can inject lines.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::with_capacity(64 + self.text.len());
        let lines: Vec<&str> = self.text.split('\n').collect();
        for (i, line) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            let _ = write!(out, "{}{}", self.code, sep);
            if let Some(status) = &self.status {
                let _ = write!(out, "{status} ");
            }
            out.extend(line.chars().map(|c| if c.is_control() { ' ' } else { c }));
            out.push_str("\r\n");
        }
        out.into_bytes()
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.status {
            Some(status) => write!(f, "{} {} {}", self.code, status, self.text),
            None => write!(f, "{} {}", self.code, self.text),
        }
    }
}

// --- 2xx / 3xx -------------------------------------------------------------------------------
pub const OK: Reply = Reply::fixed(250, "2.0.0", "OK");
pub const SENDER_OK: Reply = Reply::fixed(250, "2.1.0", "Sender OK");
pub const RESET_OK: Reply = Reply::fixed(250, "2.0.0", "Reset OK");
pub const BYE: Reply = Reply::fixed(221, "2.0.0", "Bye");
pub const START_DATA: Reply = Reply {
    code: 354,
    status: None,
    text: Cow::Borrowed("End data with <CR><LF>.<CR><LF>"),
};
pub const READY_FOR_TLS: Reply = Reply::fixed(220, "2.0.0", "Ready to start TLS");
pub const VRFY_UNSUPPORTED: Reply = Reply::fixed(
    252,
    "2.5.2",
    "Cannot VRFY user, but will accept message and attempt delivery",
);
pub const HELP: Reply = Reply::fixed(
    214,
    "2.0.0",
    "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT STARTTLS VRFY HELP",
);

// --- 4xx: try again later --------------------------------------------------------------------
pub const SHUTTING_DOWN: Reply =
    Reply::fixed(421, "4.3.2", "Service shutting down, try again later");
pub const TOO_MANY_CONNECTIONS: Reply =
    Reply::fixed(421, "4.7.0", "Too many connections, try again later");
pub const TOO_MANY_CONNECTIONS_FROM_YOU: Reply = Reply::fixed(
    421,
    "4.7.0",
    "Too many connections from your address, try again later",
);
pub const TIMEOUT: Reply = Reply::fixed(421, "4.4.2", "Timeout exceeded, closing connection");
pub const TOO_MANY_ERRORS: Reply =
    Reply::fixed(421, "4.7.0", "Too many errors, closing connection");
pub const DOWNSTREAM_UNREACHABLE: Reply = Reply::fixed(
    451,
    "4.4.1",
    "Downstream mail server unreachable, try again later",
);
pub const DOWNSTREAM_TIMEOUT: Reply = Reply::fixed(
    451,
    "4.4.2",
    "Downstream mail server did not answer in time, try again later",
);
pub const DOWNSTREAM_LOST: Reply = Reply::fixed(
    451,
    "4.4.2",
    "Connection to downstream mail server lost, try again later",
);
pub const DOWNSTREAM_PROTOCOL: Reply = Reply::fixed(
    451,
    "4.5.0",
    "Downstream mail server sent an invalid reply, try again later",
);
pub const DOWNSTREAM_NO_TLS: Reply = Reply::fixed(
    451,
    "4.7.4",
    "Downstream mail server does not offer the required TLS, try again later",
);
pub const DOWNSTREAM_TLS_FAILED: Reply = Reply::fixed(
    451,
    "4.7.5",
    "TLS with the downstream mail server failed, try again later",
);
pub const LOCAL_ERROR: Reply = Reply::fixed(451, "4.3.0", "Local error, try again later");
pub const TLS_UNAVAILABLE: Reply = Reply::fixed(454, "4.7.0", "TLS not available");
pub const TOO_MANY_RECIPIENTS: Reply = Reply::fixed(452, "4.5.3", "Too many recipients");
/// Invariant 3 of the queue-less contract: one upstream transaction is one downstream
/// transaction, so a recipient treated differently from the first goes in another one.
pub const DIFFERENT_TREATMENT: Reply = Reply::fixed(
    452,
    "4.5.3",
    "Recipient needs a different treatment; send it in a separate transaction",
);

// --- 5xx: permanent --------------------------------------------------------------------------
pub const SYNTAX_ERROR: Reply = Reply::fixed(500, "5.5.2", "Syntax error, command unrecognized");
pub const LINE_TOO_LONG: Reply = Reply::fixed(500, "5.5.2", "Line too long");
pub const BAD_CHARACTER: Reply =
    Reply::fixed(500, "5.5.2", "Command contains a bare CR or a NUL byte");
pub const BAD_ARGUMENTS: Reply =
    Reply::fixed(501, "5.5.4", "Syntax error in parameters or arguments");
pub const BAD_SENDER: Reply = Reply::fixed(501, "5.1.7", "Bad sender address syntax");
pub const BAD_RECIPIENT: Reply = Reply::fixed(501, "5.1.3", "Bad recipient address syntax");
pub const NOT_IMPLEMENTED: Reply = Reply::fixed(502, "5.5.1", "Command not implemented");
pub const NEED_HELO: Reply = Reply::fixed(503, "5.5.1", "Send EHLO or HELO first");
pub const NEED_MAIL: Reply = Reply::fixed(503, "5.5.1", "Send MAIL FROM first");
pub const NESTED_MAIL: Reply = Reply::fixed(503, "5.5.1", "Sender already given");
pub const TLS_ALREADY_ACTIVE: Reply = Reply::fixed(503, "5.5.1", "TLS already active");
pub const TLS_IN_TRANSACTION: Reply = Reply::fixed(
    503,
    "5.5.1",
    "STARTTLS not allowed during a mail transaction",
);
pub const NO_VALID_RECIPIENTS: Reply = Reply::fixed(554, "5.5.1", "No valid recipients");
pub const UNSUPPORTED_PARAMETER: Reply = Reply::fixed(
    555,
    "5.5.4",
    "MAIL FROM/RCPT TO parameter not recognized or not implemented",
);
pub const NEED_SMTPUTF8: Reply = Reply::fixed(
    553,
    "5.6.7",
    "Non-ASCII address requires the SMTPUTF8 parameter",
);
pub const MESSAGE_TOO_BIG: Reply = Reply::fixed(552, "5.3.4", "Message size exceeds fixed limit");
pub const BARE_LINE_ENDING: Reply = Reply::fixed(
    550,
    "5.6.0",
    "Message contains a bare CR or LF; lines must end with CRLF (RFC 5321 2.3.8)",
);
pub const NUL_IN_MESSAGE: Reply = Reply::fixed(550, "5.6.0", "Message contains a NUL byte");
pub const MESSAGE_LINE_TOO_LONG: Reply = Reply::fixed(
    550,
    "5.6.0",
    "Message contains a line longer than the limit",
);
pub const ROUTING_LOOP: Reply = Reply::fixed(
    554,
    "5.4.6",
    "Too many Received headers: mail loop detected",
);
pub const DOWNSTREAM_NO_SMTPUTF8: Reply = Reply::fixed(
    553,
    "5.6.7",
    "Downstream mail server does not support SMTPUTF8",
);
pub const ENCRYPTION_IMPOSSIBLE: Reply = Reply::fixed(
    554,
    "5.7.1",
    "Encryption is required but no certificate or key is known for a recipient",
);
pub const KEY_UNAVAILABLE: Reply = Reply::fixed(
    451,
    "4.7.0",
    "A recipient's key became unusable during the transaction; try again",
);
pub const DOMAIN_KEY_UNAVAILABLE: Reply = Reply::fixed(
    451,
    "4.7.5",
    "The recipient's domain requires encryption and none of its domain keys can be used now; try again later",
);
pub const CRYPTO_FAILED: Reply = Reply::fixed(
    451,
    "4.7.0",
    "Signing or encryption failed on this gateway; try again later",
);

/// Every fixed reply by name. README.md documents each one; a test keeps the two in step.
pub const CATALOGUE: &[(&str, Reply)] = &[
    ("OK", OK),
    ("SENDER_OK", SENDER_OK),
    ("RESET_OK", RESET_OK),
    ("BYE", BYE),
    ("START_DATA", START_DATA),
    ("READY_FOR_TLS", READY_FOR_TLS),
    ("VRFY_UNSUPPORTED", VRFY_UNSUPPORTED),
    ("HELP", HELP),
    ("SHUTTING_DOWN", SHUTTING_DOWN),
    ("TOO_MANY_CONNECTIONS", TOO_MANY_CONNECTIONS),
    (
        "TOO_MANY_CONNECTIONS_FROM_YOU",
        TOO_MANY_CONNECTIONS_FROM_YOU,
    ),
    ("TIMEOUT", TIMEOUT),
    ("TOO_MANY_ERRORS", TOO_MANY_ERRORS),
    ("DOWNSTREAM_UNREACHABLE", DOWNSTREAM_UNREACHABLE),
    ("DOWNSTREAM_TIMEOUT", DOWNSTREAM_TIMEOUT),
    ("DOWNSTREAM_LOST", DOWNSTREAM_LOST),
    ("DOWNSTREAM_PROTOCOL", DOWNSTREAM_PROTOCOL),
    ("DOWNSTREAM_NO_TLS", DOWNSTREAM_NO_TLS),
    ("DOWNSTREAM_TLS_FAILED", DOWNSTREAM_TLS_FAILED),
    ("LOCAL_ERROR", LOCAL_ERROR),
    ("TLS_UNAVAILABLE", TLS_UNAVAILABLE),
    ("TOO_MANY_RECIPIENTS", TOO_MANY_RECIPIENTS),
    ("DIFFERENT_TREATMENT", DIFFERENT_TREATMENT),
    ("SYNTAX_ERROR", SYNTAX_ERROR),
    ("LINE_TOO_LONG", LINE_TOO_LONG),
    ("BAD_CHARACTER", BAD_CHARACTER),
    ("BAD_ARGUMENTS", BAD_ARGUMENTS),
    ("BAD_SENDER", BAD_SENDER),
    ("BAD_RECIPIENT", BAD_RECIPIENT),
    ("NOT_IMPLEMENTED", NOT_IMPLEMENTED),
    ("NEED_HELO", NEED_HELO),
    ("NEED_MAIL", NEED_MAIL),
    ("NESTED_MAIL", NESTED_MAIL),
    ("TLS_ALREADY_ACTIVE", TLS_ALREADY_ACTIVE),
    ("TLS_IN_TRANSACTION", TLS_IN_TRANSACTION),
    ("NO_VALID_RECIPIENTS", NO_VALID_RECIPIENTS),
    ("UNSUPPORTED_PARAMETER", UNSUPPORTED_PARAMETER),
    ("NEED_SMTPUTF8", NEED_SMTPUTF8),
    ("MESSAGE_TOO_BIG", MESSAGE_TOO_BIG),
    ("BARE_LINE_ENDING", BARE_LINE_ENDING),
    ("NUL_IN_MESSAGE", NUL_IN_MESSAGE),
    ("MESSAGE_LINE_TOO_LONG", MESSAGE_LINE_TOO_LONG),
    ("ROUTING_LOOP", ROUTING_LOOP),
    ("DOWNSTREAM_NO_SMTPUTF8", DOWNSTREAM_NO_SMTPUTF8),
    ("ENCRYPTION_IMPOSSIBLE", ENCRYPTION_IMPOSSIBLE),
    ("KEY_UNAVAILABLE", KEY_UNAVAILABLE),
    ("DOMAIN_KEY_UNAVAILABLE", DOMAIN_KEY_UNAVAILABLE),
    ("CRYPTO_FAILED", CRYPTO_FAILED),
];

// --- Replies built from data -----------------------------------------------------------------

/// The connection greeting (RFC 2034: no enhanced status code).
pub fn greeting(hostname: &str) -> Reply {
    Reply {
        code: 220,
        status: None,
        text: Cow::Owned(format!("{hostname} ESMTP Postern")),
    }
}

/// HELO reply (no enhanced status code and no extension list).
pub fn helo(hostname: &str) -> Reply {
    Reply {
        code: 250,
        status: None,
        text: Cow::Owned(hostname.to_owned()),
    }
}

/// EHLO reply with the extension list.
pub fn ehlo(hostname: &str, extensions: &[String]) -> Reply {
    let mut text = hostname.to_owned();
    for ext in extensions {
        text.push('\n');
        text.push_str(ext);
    }
    Reply {
        code: 250,
        status: None,
        text: Cow::Owned(text),
    }
}

/// Where in the transaction a downstream verdict was given; it picks the enhanced status
/// code used when the downstream did not send one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Sender,
    Recipient,
    Message,
}

/// A downstream reply, mirrored upstream: the same code (so the same class), the
/// downstream's enhanced status code when it gave one (else Postern's for that stage), and
/// the downstream's text kept inside Postern's.
pub fn mirrored(code: u16, downstream_text: &str, stage: Stage) -> Reply {
    let (status, text) = split_enhanced_status(downstream_text);
    let status = match status {
        Some(s) if s.starts_with(char::from(b'0' + (code / 100) as u8)) => s.to_owned(),
        _ => default_status(code, stage).to_owned(),
    };
    let what = match (code / 100, stage) {
        (2, Stage::Message) => "Queued downstream",
        (2, _) => "Accepted downstream",
        (_, Stage::Sender) => "Downstream refused the sender",
        (_, Stage::Recipient) => "Downstream refused the recipient",
        (_, Stage::Message) => "Downstream refused the message",
    };
    let text = sanitize(text, 400);
    Reply {
        code,
        status: Some(Cow::Owned(status)),
        text: Cow::Owned(format!("{what}: {text}")),
    }
}

fn default_status(code: u16, stage: Stage) -> &'static str {
    match (code / 100, stage) {
        (2, Stage::Sender) => "2.1.0",
        (2, Stage::Recipient) => "2.1.5",
        (2, Stage::Message) => "2.0.0",
        (4, _) => "4.0.0",
        _ => "5.0.0",
    }
}

/// Splits a leading RFC 3463 enhanced status code (`x.y.z`) off a reply text.
fn split_enhanced_status(text: &str) -> (Option<&str>, &str) {
    let text = text.trim_start();
    let candidate = text.split(' ').next().unwrap_or("");
    let parts: Vec<&str> = candidate.split('.').collect();
    let valid = parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..]
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()));
    if valid {
        (Some(candidate), text[candidate.len()..].trim_start())
    } else {
        (None, text)
    }
}

/// Keeps printable text only and at most `max` characters.
fn sanitize(text: &str, max: usize) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_single_and_multi_line_replies() {
        assert_eq!(OK.encode(), b"250 2.0.0 OK\r\n");
        let r = ehlo("gw.example", &["PIPELINING".into(), "SIZE 10".into()]);
        assert_eq!(
            r.encode(),
            b"250-gw.example\r\n250-PIPELINING\r\n250 SIZE 10\r\n"
        );
    }

    #[test]
    fn mirrored_reply_keeps_code_status_and_text() {
        let r = mirrored(550, "5.1.1 <x@y>: user unknown", Stage::Recipient);
        assert_eq!(
            r.encode(),
            b"550 5.1.1 Downstream refused the recipient: <x@y>: user unknown\r\n"
        );
        let r = mirrored(451, "try later", Stage::Message);
        assert_eq!(
            r.to_string(),
            "451 4.0.0 Downstream refused the message: try later"
        );
        // a status of the wrong class is not trusted
        let r = mirrored(452, "5.2.2 full", Stage::Recipient);
        assert_eq!(r.status.as_deref(), Some("4.0.0"));
    }

    /// Operators look replies up in the README: every fixed one must be there.
    #[test]
    fn readme_documents_every_reply() {
        let readme = include_str!("../../../README.md");
        for (name, r) in CATALOGUE {
            let head = match &r.status {
                Some(s) => format!("| {} | {} | {} |", r.code, s, r.text),
                None => format!("| {} | | {} |", r.code, r.text),
            };
            assert!(readme.contains(&head), "README.md lacks {name}: {head}");
        }
    }

    #[test]
    fn downstream_text_cannot_inject_lines() {
        let r = mirrored(550, "bad\r\n250 2.0.0 ok", Stage::Message);
        let wire = r.encode();
        assert_eq!(wire.iter().filter(|&&b| b == b'\n').count(), 1);
    }
}
