//! The envelope of one transaction: the sender and recipients with the ESMTP parameters
//! Postern understands, and how they are written again towards the downstream.

use std::fmt::Write as _;

/// `BODY=` of MAIL FROM (RFC 6152).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    SevenBit,
    EightBitMime,
}

/// `RET=` of MAIL FROM (RFC 3461).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    Full,
    Headers,
}

/// A parsed `MAIL FROM`. An empty address is the null sender `<>` of bounces.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MailFrom {
    pub address: String,
    pub size: Option<usize>,
    pub body: Option<Body>,
    pub smtputf8: bool,
    pub ret: Option<Ret>,
    pub envid: Option<String>,
}

/// `NOTIFY=` of RCPT TO (RFC 3461): `Never`, or any of success/failure/delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notify {
    Never,
    On {
        success: bool,
        failure: bool,
        delay: bool,
    },
}

/// A parsed `RCPT TO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcptTo {
    pub address: String,
    pub notify: Option<Notify>,
    pub orcpt: Option<String>,
}

impl RcptTo {
    /// The domain part, lower-cased (empty when the address has none, like `postmaster`).
    pub fn domain(&self) -> String {
        domain_of(&self.address)
    }
}

/// The domain of an address, lower-cased.
pub fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default()
}

/// What the downstream announced in its EHLO reply, as far as forwarding needs it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DownstreamCaps {
    pub size: bool,
    pub eight_bit_mime: bool,
    pub smtputf8: bool,
    pub dsn: bool,
    pub starttls: bool,
    pub pipelining: bool,
}

impl DownstreamCaps {
    /// Reads the keywords of an EHLO reply (one extension per line, the first line is the
    /// server's name).
    pub fn from_ehlo_lines<'a>(lines: impl Iterator<Item = &'a str>) -> Self {
        let mut caps = DownstreamCaps::default();
        for line in lines.skip(1) {
            let keyword = line.split_whitespace().next().unwrap_or("");
            match keyword.to_ascii_uppercase().as_str() {
                "SIZE" => caps.size = true,
                "8BITMIME" => caps.eight_bit_mime = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "DSN" => caps.dsn = true,
                "STARTTLS" => caps.starttls = true,
                "PIPELINING" => caps.pipelining = true,
                _ => {}
            }
        }
        caps
    }
}

impl MailFrom {
    /// `MAIL FROM:<…> params` for a downstream with `caps`, without CRLF. Parameters the
    /// downstream did not announce are left out (DSN requests then end at this hop).
    pub fn downstream_command(&self, caps: &DownstreamCaps) -> String {
        let mut cmd = format!("MAIL FROM:{}", render_path(&self.address));
        if caps.size
            && let Some(size) = self.size
        {
            let _ = write!(cmd, " SIZE={size}");
        }
        if caps.eight_bit_mime {
            match self.body {
                Some(Body::EightBitMime) => cmd.push_str(" BODY=8BITMIME"),
                Some(Body::SevenBit) => cmd.push_str(" BODY=7BIT"),
                None => {}
            }
        }
        if self.smtputf8 {
            cmd.push_str(" SMTPUTF8");
        }
        if caps.dsn {
            match self.ret {
                Some(Ret::Full) => cmd.push_str(" RET=FULL"),
                Some(Ret::Headers) => cmd.push_str(" RET=HDRS"),
                None => {}
            }
            if let Some(envid) = &self.envid {
                let _ = write!(cmd, " ENVID={}", xtext(envid));
            }
        }
        cmd
    }
}

impl RcptTo {
    /// `RCPT TO:<…> params` for a downstream with `caps`, without CRLF.
    pub fn downstream_command(&self, caps: &DownstreamCaps) -> String {
        let mut cmd = format!("RCPT TO:{}", render_path(&self.address));
        if caps.dsn {
            match self.notify {
                Some(Notify::Never) => cmd.push_str(" NOTIFY=NEVER"),
                Some(Notify::On {
                    success,
                    failure,
                    delay,
                }) => {
                    let list: Vec<&str> =
                        [(success, "SUCCESS"), (failure, "FAILURE"), (delay, "DELAY")]
                            .iter()
                            .filter(|(on, _)| *on)
                            .map(|(_, name)| *name)
                            .collect();
                    let _ = write!(cmd, " NOTIFY={}", list.join(","));
                }
                None => {}
            }
            if let Some(orcpt) = &self.orcpt {
                let _ = write!(cmd, " ORCPT=rfc822;{}", xtext(orcpt));
            }
        }
        cmd
    }
}

/// `<address>`, quoting the local part when it is not a dot-atom (RFC 5321 §4.1.2).
pub fn render_path(address: &str) -> String {
    if address.is_empty() {
        return "<>".to_owned();
    }
    let (local, domain) = match address.rsplit_once('@') {
        Some((l, d)) => (l, Some(d)),
        None => (address, None),
    };
    let dot_atom = !local.is_empty()
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| c == '.' || is_atext(c));
    let mut out = String::with_capacity(address.len() + 4);
    out.push('<');
    if dot_atom {
        out.push_str(local);
    } else {
        out.push('"');
        for c in local.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    if let Some(d) = domain {
        out.push('@');
        out.push_str(d);
    }
    out.push('>');
    out
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

/// xtext encoding (RFC 3461 §4): `+XX` for `+`, `=`, and anything outside `!`..`~`.
pub fn xtext(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "+{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_sender_and_parameters_are_rendered_for_capable_downstreams() {
        let mail = MailFrom {
            address: String::new(),
            size: Some(1200),
            body: Some(Body::EightBitMime),
            smtputf8: false,
            ret: Some(Ret::Headers),
            envid: Some("QQ+1=2".into()),
        };
        let all = DownstreamCaps {
            size: true,
            eight_bit_mime: true,
            dsn: true,
            ..Default::default()
        };
        assert_eq!(
            mail.downstream_command(&all),
            "MAIL FROM:<> SIZE=1200 BODY=8BITMIME RET=HDRS ENVID=QQ+2B1+3D2"
        );
        assert_eq!(
            mail.downstream_command(&DownstreamCaps::default()),
            "MAIL FROM:<>"
        );
    }

    #[test]
    fn dsn_recipient_parameters_pass_through() {
        let rcpt = RcptTo {
            address: "bob@example.com".into(),
            notify: Some(Notify::On {
                success: true,
                failure: true,
                delay: false,
            }),
            orcpt: Some("Bob@Example.com".into()),
        };
        let caps = DownstreamCaps {
            dsn: true,
            ..Default::default()
        };
        assert_eq!(
            rcpt.downstream_command(&caps),
            "RCPT TO:<bob@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob@Example.com"
        );
    }

    #[test]
    fn odd_local_parts_are_quoted() {
        assert_eq!(render_path("a b@x.org"), "<\"a b\"@x.org>");
        assert_eq!(render_path("a.b+c@x.org"), "<a.b+c@x.org>");
        assert_eq!(render_path("postmaster"), "<postmaster>");
    }

    #[test]
    fn ehlo_capabilities_are_read() {
        let lines = [
            "sink.example",
            "PIPELINING",
            "SIZE 1000",
            "8BITMIME",
            "DSN",
            "STARTTLS",
        ];
        let caps = DownstreamCaps::from_ehlo_lines(lines.into_iter());
        assert!(caps.size && caps.eight_bit_mime && caps.dsn && caps.starttls && caps.pipelining);
        assert!(!caps.smtputf8);
    }
}
