//! Why Postern has its own SMTP server instead of embedding `mailin-embedded` (0.8.3, with
//! `mailin` 0.6.5, the latest on crates.io): the same probes run against a real
//! mailin-embedded server in this process and against the real `posternd` in front of
//! smtp-sink. Each test asserts that the defect is present in mailin-embedded and absent in
//! posternd, so the record of the decision fails loudly if either side changes:
//!
//! - (a) `<LF>.<CR><LF>` ends DATA, so a second message smuggled after it is accepted;
//! - (b) the null reverse-path `MAIL FROM:<>` (every bounce) and the ESMTP parameters
//!   `SIZE=`, `SMTPUTF8` and `NOTIFY=` are refused with `500 Syntax error`;
//! - (c) after a 4xx/5xx at end-of-DATA the session stays in DATA state: RSET and QUIT get no
//!   reply and become the body of the next "message";
//! - (d) command and text lines have no length limit: a 64 KiB line is buffered and accepted.
//!
//! mailin-embedded has no shutdown: each test's server thread lives until the test process
//! exits. It needs its `rtls` feature to compile at all (without a TLS feature its `rtls`
//! module is still built); the server here runs without TLS.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailin_embedded::{Handler, Response, Server, SslConfig};
use postern_tests::client::Client;
use postern_tests::free_port;
use postern_tests::posternd::Posternd;
use postern_tests::sink::Sink;

use super::have_sink;

/// Read timeout for every probe, so a server that swallows input cannot hang a test.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a reply that should not come is waited for (a loopback reply takes microseconds).
const NO_REPLY_WAIT: Duration = Duration::from_millis(300);

/// A carrier message ended by `<LF>.<CR><LF>`, followed by a whole second transaction.
const SMUGGLE: &[u8] = b"Subject: carrier\r\n\r\nfirst part\n.\r\n\
MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@else.example>\r\nDATA\r\n\
Subject: smuggled\r\n\r\nsmuggled\r\n.\r\n";

/// 64 KiB: far beyond the 512-octet command line and 1,000-octet text line of RFC 5321
/// 4.5.3.1, and still small enough to keep the probe cheap.
const LONG: usize = 64 * 1024;

/// mailin-embedded's handler for the probes. It is cloned per connection, so `current` is
/// per session; `delivered` is shared and holds every message `data_end` accepted.
/// A message whose content contains `X-Verdict: NNN` is refused at end-of-DATA with NNN.
#[derive(Clone, Debug, Default)]
struct Recorder {
    current: Vec<u8>,
    delivered: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Handler for Recorder {
    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        _to: &[String],
    ) -> Response {
        self.current.clear();
        mailin_embedded::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let message = std::mem::take(&mut self.current);
        let text = String::from_utf8_lossy(&message);
        if let Some(code) = text
            .lines()
            .find_map(|l| l.strip_prefix("X-Verdict: "))
            .and_then(|c| c.trim().parse::<u16>().ok())
        {
            return Response::custom(code, format!("refused by the test handler ({code})"));
        }
        self.delivered.lock().expect("delivered lock").push(message);
        mailin_embedded::response::OK
    }
}

/// A mailin-embedded server on a 127.0.0.1 port, serving from a background thread.
#[derive(Debug)]
struct Mailin {
    addr: SocketAddr,
    delivered: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Mailin {
    fn start() -> Mailin {
        // Bound here, before the thread starts, so the first connect cannot race the bind.
        let listener =
            TcpListener::bind(("127.0.0.1", free_port())).expect("bind mailin-embedded port");
        let addr = listener.local_addr().expect("mailin-embedded address");
        let recorder = Recorder::default();
        let delivered = Arc::clone(&recorder.delivered);
        let mut server = Server::new(recorder);
        server
            .with_name("mailin.test")
            .with_ssl(SslConfig::None)
            .expect("mailin-embedded without TLS")
            .with_tcp_listener(listener);
        std::thread::Builder::new()
            .name("mailin-embedded".into())
            .spawn(move || {
                if let Err(e) = server.serve() {
                    eprintln!("mailin-embedded stopped: {e}");
                }
            })
            .expect("spawn mailin-embedded");
        Mailin { addr, delivered }
    }

    /// Every message accepted so far (data_end runs before the reply is written, so this is
    /// up to date as soon as the end-of-data reply was read).
    fn delivered(&self) -> Vec<Vec<u8>> {
        self.delivered.lock().expect("delivered lock").clone()
    }
}

/// Greeting read, EHLO done, probe timeout set.
fn ready(addr: SocketAddr) -> Client {
    let c = Client::ready(addr);
    c.set_timeout(PROBE_TIMEOUT);
    c
}

/// MAIL, RCPT and DATA of a plain transaction.
fn open_data(c: &mut Client) {
    c.cmd("MAIL FROM:<a@corp.example>", 250);
    c.cmd("RCPT TO:<b@else.example>", 250);
    c.cmd("DATA", 354);
}

/// Sends a control message through posternd and waits for the sink to hold exactly it, so
/// that "nothing else arrived" is checked after the sink has demonstrably written mail.
fn assert_only_control_arrives(p: &Posternd, sink: &Sink, subject: &str) {
    let mut c = ready(p.addr);
    let r = c.send_mail(
        "a@corp.example",
        &["b@else.example"],
        &super::message(subject),
    );
    assert_eq!(r.code, 250, "control message: {r}");
    c.cmd("QUIT", 221);
    let messages = sink.wait_for_messages(1, Duration::from_secs(5));
    assert_eq!(
        messages.len(),
        1,
        "exactly the control message reaches the sink: {messages:?}"
    );
    assert!(
        messages[0].text().contains(subject),
        "{}",
        messages[0].text()
    );
}

/// (a) `<LF>.<CR><LF>` ends DATA in mailin-embedded: a smuggled second message is accepted.
#[test]
fn relay_decision_bare_lf_dot_ends_data_in_mailin_not_in_posternd() {
    if !have_sink("relay_decision_smuggling") {
        return;
    }
    // mailin-embedded: five replies, two messages delivered
    let m = Mailin::start();
    let mut c = ready(m.addr);
    open_data(&mut c);
    c.raw(SMUGGLE);
    for (what, code) in [
        ("carrier end-of-data", 250),
        ("smuggled MAIL", 250),
        ("smuggled RCPT", 250),
        ("smuggled DATA", 354),
        ("smuggled end-of-data", 250),
    ] {
        let r = c.read_reply();
        assert_eq!(
            r.as_ref().map(|r| r.code),
            Some(code),
            "mailin-embedded, {what}: {r:?}"
        );
    }
    c.cmd("QUIT", 221);
    let delivered = m.delivered();
    assert_eq!(
        delivered.len(),
        2,
        "mailin-embedded delivered carrier and smuggled"
    );
    let smuggled = String::from_utf8_lossy(&delivered[1]);
    assert!(
        smuggled.contains("Subject: smuggled"),
        "second message: {smuggled:?}"
    );

    // posternd: one refusal, nothing more answered, nothing relayed
    let sink = Sink::start(&[]);
    let p = Posternd::start(&sink.addr(), "", "");
    let mut c = ready(p.addr);
    open_data(&mut c);
    c.raw(SMUGGLE);
    let r = c.expect(550);
    assert!(r.text().starts_with("5.6.0"), "{r}");
    // the next reply is QUIT's: the smuggled commands were never seen as commands
    c.cmd("QUIT", 221);
    assert_only_control_arrives(&p, &sink, "control after smuggling");
}

/// (b) mailin-embedded refuses the null sender and the ESMTP parameters relays must pass.
#[test]
fn relay_decision_null_sender_and_esmtp_parameters_refused_by_mailin_not_posternd() {
    if !have_sink("relay_decision_parameters") {
        return;
    }
    let mail_probes = [
        "MAIL FROM:<>",
        "MAIL FROM:<a@corp.example> SIZE=100",
        "MAIL FROM:<a@corp.example> SMTPUTF8",
    ];
    let rcpt_probe = "RCPT TO:<b@else.example> NOTIFY=SUCCESS,DELAY";

    // mailin-embedded: 500 to each, while the same commands without them get 250
    let m = Mailin::start();
    let mut c = ready(m.addr);
    for probe in mail_probes {
        let r = c.cmd(probe, 500);
        assert_eq!(r.text(), "Syntax error", "mailin-embedded, {probe}");
        c.cmd("RSET", 250);
    }
    c.cmd("MAIL FROM:<a@corp.example>", 250);
    let r = c.cmd(rcpt_probe, 500);
    assert_eq!(r.text(), "Syntax error", "mailin-embedded, {rcpt_probe}");
    c.cmd("RCPT TO:<b@else.example>", 250);
    c.cmd("QUIT", 221);

    // posternd: 250 to each, and a bounce with SIZE= and NOTIFY= reaches the sink
    let sink = Sink::start(&[]);
    let p = Posternd::start(&sink.addr(), "", "");
    let mut c = ready(p.addr);
    for probe in mail_probes {
        c.cmd(probe, 250);
        c.cmd("RSET", 250);
    }
    c.cmd("MAIL FROM:<a@corp.example>", 250);
    c.cmd(rcpt_probe, 250);
    c.cmd("RSET", 250);
    // SMTPUTF8 is understood, not just tolerated: smtp-sink does not announce it, so the
    // transaction ends at RCPT with the proper refusal
    c.cmd("MAIL FROM:<a@corp.example> SMTPUTF8", 250);
    let r = c.cmd("RCPT TO:<b@else.example>", 553);
    assert!(r.text().starts_with("5.6.7"), "{r}");
    c.cmd("RSET", 250);
    c.cmd("MAIL FROM:<> SIZE=200", 250);
    c.cmd(rcpt_probe, 250);
    c.cmd("DATA", 354);
    c.raw(b"Subject: delivery status\r\n\r\nbounce\r\n.\r\n");
    let r = c.expect(250);
    c.cmd("QUIT", 221);
    let messages = sink.wait_for_messages(1, Duration::from_secs(5));
    assert_eq!(messages.len(), 1, "bounce relayed ({r}): {messages:?}");
    assert_eq!(messages[0].mail_from, "", "null reverse-path kept");
    assert_eq!(messages[0].rcpt_to, ["b@else.example"]);
}

/// (c) After a 4xx/5xx at end-of-DATA, mailin-embedded stays in DATA state.
#[test]
fn relay_decision_refused_data_leaves_mailin_in_data_state_not_posternd() {
    if !have_sink("relay_decision_data_state") {
        return;
    }
    // mailin-embedded: its handler refuses at end-of-DATA (as a relay would pass on a
    // downstream refusal); RSET gets no reply, QUIT does not end the session, and both
    // become the content of a message the next "." delivers.
    let m = Mailin::start();
    for code in [451, 554] {
        let before = m.delivered().len();
        let mut c = ready(m.addr);
        open_data(&mut c);
        c.raw(format!("X-Verdict: {code}\r\nSubject: refused\r\n\r\nbody\r\n.\r\n").as_bytes());
        c.expect(code);
        c.send("RSET");
        c.set_timeout(NO_REPLY_WAIT);
        let r = c.read_reply();
        assert!(
            r.is_none(),
            "mailin-embedded answered RSET after {code}: {r:?}"
        );
        c.set_timeout(PROBE_TIMEOUT);
        c.send("QUIT");
        c.send(".");
        let r = c.expect(250);
        c.cmd("NOOP", 250); // still connected: QUIT was not executed
        let delivered = m.delivered();
        assert_eq!(
            delivered.len(),
            before + 1,
            "after {code}: the swallowed commands were delivered ({r})"
        );
        assert_eq!(
            String::from_utf8_lossy(&delivered[before]),
            "RSET\r\nQUIT\r\n",
            "after {code}: body of the delivered message"
        );
    }

    // posternd: smtp-sink refuses end-of-DATA (-f hard, -r soft); posternd passes the
    // refusal on and then answers RSET and QUIT.
    for (switch, class) in [("-r", 4), ("-f", 5)] {
        let sink = Sink::start(&[switch, "."]);
        let p = Posternd::start(&sink.addr(), "", "");
        let mut c = ready(p.addr);
        open_data(&mut c);
        c.raw(b"Subject: refused\r\n\r\nbody\r\n.\r\n");
        let r = c.read_reply().expect("end-of-data reply");
        assert_eq!(r.code / 100, class, "posternd, sink {switch} .: {r}");
        c.cmd("RSET", 250);
        c.cmd("QUIT", 221);
        assert!(c.closed(), "posternd closes after QUIT (sink {switch} .)");
    }
}

/// (d) mailin-embedded buffers and accepts 64 KiB lines; posternd refuses them.
#[test]
fn relay_decision_long_lines_accepted_by_mailin_not_posternd() {
    if !have_sink("relay_decision_line_limits") {
        return;
    }
    let long_mail = format!("MAIL FROM:<{}@corp.example>", "x".repeat(LONG));
    let long_text = "w".repeat(LONG);
    let content = format!("Subject: long\r\n\r\n{long_text}\r\n.\r\n");

    // mailin-embedded: a 64 KiB command line accepted, a 64 KiB text line delivered
    let m = Mailin::start();
    let mut c = ready(m.addr);
    c.cmd(&long_mail, 250);
    c.cmd("RCPT TO:<b@else.example>", 250);
    c.cmd("DATA", 354);
    c.raw(content.as_bytes());
    c.expect(250);
    c.cmd("QUIT", 221);
    let delivered = m.delivered();
    assert_eq!(
        delivered.len(),
        1,
        "mailin-embedded delivered the long line"
    );
    let longest = delivered[0]
        .split(|&b| b == b'\n')
        .map(<[u8]>::len)
        .max()
        .unwrap_or(0);
    assert!(longest > LONG, "longest delivered line: {longest} octets");

    // posternd: the same command line gets 500 5.5.2, the same text line 550; the session
    // goes on and nothing reaches the sink
    let sink = Sink::start(&[]);
    let p = Posternd::start(&sink.addr(), "", "");
    let mut c = ready(p.addr);
    let r = c.cmd(&long_mail, 500);
    assert_eq!(r.text(), "5.5.2 Line too long");
    c.cmd("NOOP", 250);
    open_data(&mut c);
    c.raw(content.as_bytes());
    let r = c.expect(550);
    assert!(r.text().contains("line longer"), "{r}");
    c.cmd("RSET", 250);
    c.cmd("QUIT", 221);
    assert_only_control_arrives(&p, &sink, "control after long lines");
}
