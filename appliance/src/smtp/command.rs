//! Command lines: framing with length limits, and parsing (by `smtp-proto`) into the
//! commands Postern implements, with every parameter it does not announce refused.

use smtp_proto::{Error as ProtoError, Request};

use super::envelope::{Body, MailFrom, Notify, RcptTo, Ret};
use super::reply::{self, Reply};

/// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets including CRLF.
pub const MAX_COMMAND_LINE: usize = 512;
/// MAIL and RCPT may be longer: SIZE (RFC 1870 §3) and DSN (RFC 3461 §4: +100 for MAIL,
/// +500 for RCPT) extend them. One limit for both keeps the framing simple.
pub const MAX_ENVELOPE_LINE: usize = MAX_COMMAND_LINE + 500;

/// One command Postern acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo(String),
    Helo(String),
    Mail(MailFrom),
    Rcpt(RcptTo),
    Data,
    Rset,
    Noop,
    Quit,
    StartTls,
    Vrfy,
    Help,
    /// Known to the parser but not offered by Postern (AUTH, BDAT, ETRN, EXPN, …).
    NotImplemented,
}

/// Result of looking for the next command line in the input buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// A complete line of this many bytes (including the LF) is at the start of the input.
    Line(usize),
    /// No LF yet, and the partial line is still within the limit.
    Incomplete,
    /// More than [`MAX_ENVELOPE_LINE`] bytes without a LF.
    TooLong,
}

/// Finds the first command line in `input`.
pub fn frame(input: &[u8]) -> Framing {
    let window = &input[..input.len().min(MAX_ENVELOPE_LINE)];
    match window.iter().position(|&b| b == b'\n') {
        Some(i) => Framing::Line(i + 1),
        None if input.len() >= MAX_ENVELOPE_LINE => Framing::TooLong,
        None => Framing::Incomplete,
    }
}

/// Parses one line (ending in LF) into a command, or gives the reply for a bad one.
pub fn parse(line: &[u8]) -> Result<Command, Reply> {
    let body = line.strip_suffix(b"\n").unwrap_or(line);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    if body.iter().any(|&b| b == b'\r' || b == 0) {
        return Err(reply::BAD_CHARACTER);
    }
    let verb: Vec<u8> = body
        .iter()
        .take_while(|b| !b.is_ascii_whitespace())
        .map(u8::to_ascii_uppercase)
        .collect();
    let limit = match verb.as_slice() {
        b"MAIL" | b"RCPT" => MAX_ENVELOPE_LINE,
        _ => MAX_COMMAND_LINE,
    };
    if line.len() > limit {
        return Err(reply::LINE_TOO_LONG);
    }
    // smtp-proto wants the line terminated by CRLF.
    let mut normalized = Vec::with_capacity(body.len() + 2);
    normalized.extend_from_slice(body);
    normalized.extend_from_slice(b"\r\n");
    match Request::parse(&mut normalized.iter()) {
        Ok(request) => convert(request.into_owned()),
        Err(e) => Err(proto_error_reply(&e, &verb)),
    }
}

fn convert(request: Request<String>) -> Result<Command, Reply> {
    Ok(match request {
        Request::Ehlo { host } => Command::Ehlo(host),
        Request::Helo { host } => Command::Helo(host),
        Request::Mail { from } => Command::Mail(mail_from(from)?),
        Request::Rcpt { to } => Command::Rcpt(rcpt_to(to)?),
        Request::Data => Command::Data,
        Request::Rset => Command::Rset,
        Request::Noop { .. } => Command::Noop,
        Request::Quit => Command::Quit,
        Request::StartTls => Command::StartTls,
        Request::Vrfy { .. } => Command::Vrfy,
        Request::Help { .. } => Command::Help,
        Request::Lhlo { .. }
        | Request::Bdat { .. }
        | Request::Auth { .. }
        | Request::Expn { .. }
        | Request::Etrn { .. }
        | Request::Atrn { .. }
        | Request::Burl { .. } => Command::NotImplemented,
    })
}

fn mail_from(from: smtp_proto::MailFrom<String>) -> Result<MailFrom, Reply> {
    use smtp_proto::{
        MAIL_BODY_7BIT, MAIL_BODY_8BITMIME, MAIL_RET_FULL, MAIL_RET_HDRS, MAIL_SMTPUTF8,
    };
    let offered =
        MAIL_BODY_7BIT | MAIL_BODY_8BITMIME | MAIL_SMTPUTF8 | MAIL_RET_FULL | MAIL_RET_HDRS;
    let others_used = from.trans_id.is_some()
        || from.by != 0
        || from.solicit.is_some()
        || from.mtrk.is_some()
        || from.auth.is_some()
        || from.hold_for != 0
        || from.hold_until != 0
        || from.mt_priority != 0;
    if from.flags & !offered != 0 || others_used {
        return Err(reply::UNSUPPORTED_PARAMETER);
    }
    let smtputf8 = from.flags & MAIL_SMTPUTF8 != 0;
    if !smtputf8 && !from.address.is_ascii() {
        return Err(reply::NEED_SMTPUTF8);
    }
    Ok(MailFrom {
        address: from.address,
        size: (from.size > 0).then_some(from.size),
        body: if from.flags & MAIL_BODY_8BITMIME != 0 {
            Some(Body::EightBitMime)
        } else if from.flags & MAIL_BODY_7BIT != 0 {
            Some(Body::SevenBit)
        } else {
            None
        },
        smtputf8,
        ret: if from.flags & MAIL_RET_FULL != 0 {
            Some(Ret::Full)
        } else if from.flags & MAIL_RET_HDRS != 0 {
            Some(Ret::Headers)
        } else {
            None
        },
        envid: from.env_id,
    })
}

fn rcpt_to(to: smtp_proto::RcptTo<String>) -> Result<RcptTo, Reply> {
    use smtp_proto::{
        RCPT_NOTIFY_DELAY, RCPT_NOTIFY_FAILURE, RCPT_NOTIFY_NEVER, RCPT_NOTIFY_SUCCESS,
    };
    let notify_flags =
        RCPT_NOTIFY_NEVER | RCPT_NOTIFY_SUCCESS | RCPT_NOTIFY_FAILURE | RCPT_NOTIFY_DELAY;
    if to.flags & !notify_flags != 0 || to.rrvs != 0 {
        return Err(reply::UNSUPPORTED_PARAMETER);
    }
    if to.address.is_empty() {
        return Err(reply::BAD_RECIPIENT);
    }
    let notify = if to.flags & RCPT_NOTIFY_NEVER != 0 {
        Some(Notify::Never)
    } else if to.flags & notify_flags != 0 {
        Some(Notify::On {
            success: to.flags & RCPT_NOTIFY_SUCCESS != 0,
            failure: to.flags & RCPT_NOTIFY_FAILURE != 0,
            delay: to.flags & RCPT_NOTIFY_DELAY != 0,
        })
    } else {
        None
    };
    Ok(RcptTo {
        address: to.address,
        notify,
        orcpt: to.orcpt,
    })
}

fn proto_error_reply(error: &ProtoError, verb: &[u8]) -> Reply {
    match error {
        ProtoError::UnknownCommand => reply::SYNTAX_ERROR,
        ProtoError::InvalidSenderAddress => reply::BAD_SENDER,
        ProtoError::InvalidRecipientAddress => reply::BAD_RECIPIENT,
        ProtoError::UnsupportedParameter { .. } => reply::UNSUPPORTED_PARAMETER,
        ProtoError::SyntaxError { .. } if verb == b"MAIL" => reply::BAD_SENDER,
        ProtoError::SyntaxError { .. } if verb == b"RCPT" => reply::BAD_RECIPIENT,
        ProtoError::SyntaxError { .. }
        | ProtoError::InvalidParameter { .. }
        | ProtoError::NeedsMoreData { .. }
        | ProtoError::ResponseTooLong
        | ProtoError::InvalidResponse { .. } => reply::BAD_ARGUMENTS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<Command, Reply> {
        parse(line.as_bytes())
    }

    #[test]
    fn parses_the_offered_commands() {
        assert_eq!(
            p("EHLO client.example\r\n"),
            Ok(Command::Ehlo("client.example".into()))
        );
        assert_eq!(p("data\r\n"), Ok(Command::Data));
        assert_eq!(p("QUIT\n"), Ok(Command::Quit));
        let Ok(Command::Mail(m)) = p("MAIL FROM:<> SIZE=100 BODY=8BITMIME RET=FULL ENVID=x1\r\n")
        else {
            panic!("MAIL not parsed")
        };
        assert_eq!(m.address, "");
        assert_eq!(m.size, Some(100));
        assert_eq!(m.body, Some(Body::EightBitMime));
        assert_eq!(m.ret, Some(Ret::Full));
        assert_eq!(m.envid.as_deref(), Some("x1"));
        let Ok(Command::Rcpt(r)) = p("RCPT TO:<a@b.example> NOTIFY=NEVER\r\n") else {
            panic!("RCPT not parsed")
        };
        assert_eq!(r.notify, Some(Notify::Never));
    }

    #[test]
    fn refuses_what_is_not_offered() {
        assert_eq!(
            p("MAIL FROM:<a@b> BODY=BINARYMIME\r\n"),
            Err(reply::UNSUPPORTED_PARAMETER)
        );
        assert_eq!(
            p("MAIL FROM:<a@b> HOLDFOR=10\r\n"),
            Err(reply::UNSUPPORTED_PARAMETER)
        );
        assert_eq!(
            p("MAIL FROM:<a@b> FOO=bar\r\n"),
            Err(reply::UNSUPPORTED_PARAMETER)
        );
        assert_eq!(p("AUTH PLAIN\r\n"), Ok(Command::NotImplemented));
        assert_eq!(p("BDAT 10 LAST\r\n"), Ok(Command::NotImplemented));
        assert_eq!(p("XYZZY\r\n"), Err(reply::SYNTAX_ERROR));
        assert_eq!(p("RCPT TO:<>\r\n"), Err(reply::BAD_RECIPIENT));
        assert_eq!(
            p("MAIL FROM:<\u{e9}@b.example>\r\n"),
            Err(reply::NEED_SMTPUTF8)
        );
        assert!(matches!(
            p("MAIL FROM:<\u{e9}@b.example> SMTPUTF8\r\n"),
            Ok(Command::Mail(_))
        ));
    }

    #[test]
    fn refuses_bare_cr_nul_and_long_lines() {
        assert_eq!(p("NOOP a\rb\r\n"), Err(reply::BAD_CHARACTER));
        assert_eq!(p("NOOP a\0b\r\n"), Err(reply::BAD_CHARACTER));
        let long = format!("NOOP {}\r\n", "x".repeat(600));
        assert_eq!(p(&long), Err(reply::LINE_TOO_LONG));
        let rcpt = format!("RCPT TO:<a@b> ORCPT=rfc822;{}@b\r\n", "x".repeat(200));
        assert!(p(&rcpt).is_ok());
    }

    #[test]
    fn framing_respects_the_limit() {
        assert_eq!(frame(b"NOOP\r\nQUIT\r\n"), Framing::Line(6));
        assert_eq!(frame(b"NOO"), Framing::Incomplete);
        assert_eq!(frame(&vec![b'x'; MAX_ENVELOPE_LINE]), Framing::TooLong);
    }
}
