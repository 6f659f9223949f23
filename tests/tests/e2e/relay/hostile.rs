//! DESIGN.md §3 invariant 5: hostile input. The eleven published end-of-data smuggling
//! sequences, line limits, and what Postern puts on the wire downstream (recorded by a
//! transparent TCP tap in front of the real smtp-sink).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postern_tests::client::Client;
use postern_tests::posternd::Posternd;
use postern_tests::sink::Sink;

use super::have_sink;

const VARIANTS: [&[u8]; 11] = [
    b"\n.\n",
    b"\n.\r",
    b"\r.\n",
    b"\r.\r",
    b"\n.\r\n",
    b"\r\n.\n",
    b"\r.\r\n",
    b"\r\n.\r",
    b"\r\n.\r\r\n",
    b"\r\r\n.\r\r\n",
    b"\r\n\x00.\r\n",
];

/// Forwards TCP connections to `target` and records what the client side sent.
struct Tap {
    port: u16,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl Tap {
    fn start(target: String) -> Tap {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind tap");
        let port = listener.local_addr().expect("addr").port();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&sent);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let (mut c_read, mut s_write) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                let (mut s_read, mut c_write) = (server, client);
                let record = Arc::clone(&record);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 8192];
                    while let Ok(n) = c_read.read(&mut buf) {
                        if n == 0 || s_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        record.lock().expect("lock").extend_from_slice(&buf[..n]);
                    }
                    let _ = s_write.shutdown(std::net::Shutdown::Write);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s_read, &mut c_write);
                    let _ = c_write.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        Tap { port, sent }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn sent(&self) -> Vec<u8> {
        self.sent.lock().expect("lock").clone()
    }
}

/// Every CR is followed by LF, every LF preceded by CR, and there is no NUL.
fn assert_clean_line_endings(wire: &[u8]) {
    for (i, &b) in wire.iter().enumerate() {
        let context = || {
            String::from_utf8_lossy(&wire[i.saturating_sub(40)..(i + 40).min(wire.len())])
                .into_owned()
        };
        match b {
            b'\r' => assert_eq!(
                wire.get(i + 1),
                Some(&b'\n'),
                "bare CR sent downstream near {:?}",
                context()
            ),
            b'\n' => assert!(
                i > 0 && wire[i - 1] == b'\r',
                "bare LF sent downstream near {:?}",
                context()
            ),
            0 => panic!("NUL sent downstream near {:?}", context()),
            _ => {}
        }
    }
}

#[test]
fn relay_smuggling_variants_never_give_a_second_message() {
    if !have_sink("relay_smuggling") {
        return;
    }
    let sink = Sink::start(&[]);
    let tap = Tap::start(sink.addr());
    let p = Posternd::start(&tap.addr(), "", "");
    for (i, variant) in VARIANTS.iter().enumerate() {
        for split in [false, true] {
            let mut c = Client::ready(p.addr);
            c.open_data("a@corp.example", &["b@else.example"]);
            let head = format!("Subject: carrier {i} {split}\r\n\r\nfirst part");
            let tail = b"MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@else.example>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\n";
            if split {
                // the sequence itself split across TCP segments
                c.raw(head.as_bytes());
                std::thread::sleep(Duration::from_millis(20));
                let (a, b) = variant.split_at(variant.len() / 2);
                c.raw(a);
                std::thread::sleep(Duration::from_millis(20));
                c.raw(b);
                std::thread::sleep(Duration::from_millis(20));
                c.raw(tail);
            } else {
                let mut all = head.into_bytes();
                all.extend_from_slice(variant);
                all.extend_from_slice(tail);
                c.raw(&all);
            }
            let r = c.read_reply().expect("end-of-data reply");
            assert_eq!(r.code, 550, "variant {i} ({variant:?}, split {split}): {r}");
            // nothing else was answered: no smuggled MAIL/RCPT/DATA was seen as commands
            c.send("QUIT");
            let bye = c.read_reply().expect("QUIT reply");
            assert_eq!(bye.code, 221, "variant {i}: extra reply {bye}");
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let messages = sink.messages();
    assert!(
        messages.len() <= VARIANTS.len() * 2,
        "at most one message per attempt"
    );
    assert!(
        messages.iter().all(|m| !m.text().contains("smuggled")),
        "a smuggled message got through"
    );
    assert!(
        messages
            .iter()
            .all(|m| !m.rcpt_to.iter().any(|r| r.contains("victim")))
    );
    assert_clean_line_endings(&tap.sent());
}

#[test]
fn relay_never_sends_bare_cr_lf_or_nul_downstream() {
    if !have_sink("relay_clean_wire") {
        return;
    }
    let sink = Sink::start(&[]);
    let tap = Tap::start(sink.addr());
    let p = Posternd::start(&tap.addr(), "", "");
    let mut c = Client::ready(p.addr);
    let long = "y".repeat(998);
    let content = format!(
        "Subject: edge cases\r\n\r\n.\r\n..\r\n. \r\n.leading\r\n{long}\r\n8bit \u{fc}\u{e9}\r\n\r\n\r\nlast"
    );
    let r = c.send_mail("a@corp.example", &["b@else.example"], &content);
    assert_eq!(r.code, 250, "{r}");
    // bare LF inside the message: refused, not normalized, not forwarded
    c.open_data("a@corp.example", &["b@else.example"]);
    c.raw(b"Subject: bare\r\n\r\nline one\nline two\r\n.\r\n");
    let r = c.expect(550);
    assert!(r.text().contains("bare CR or LF"), "{r}");
    c.cmd("QUIT", 221);
    let m = sink.wait_for_messages(1, Duration::from_secs(5));
    assert_eq!(m.len(), 1);
    let text = m[0].text();
    assert!(text.contains(&long));
    assert!(
        text.contains("\n.\n..\n. \n.leading\n")
            || text.contains("\r\n.\r\n..\r\n. \r\n.leading\r\n"),
        "{text}"
    );
    assert_clean_line_endings(&tap.sent());
}

#[test]
fn relay_line_limits() {
    if !have_sink("relay_line_limits") {
        return;
    }
    let sink = Sink::start(&[]);
    let p = Posternd::start(&sink.addr(), "", "");
    let mut c = Client::ready(p.addr);
    // command lines: 512 octets (RFC 5321 4.5.3.1.4)
    let r = c.cmd(&format!("NOOP {}", "x".repeat(600)), 500);
    assert_eq!(r.text(), "5.5.2 Line too long");
    c.cmd("NOOP", 250);
    // a line of many kilobytes without LF does not grow memory and costs one error
    c.raw(&vec![b'z'; 200_000]);
    c.raw(b"\r\n");
    c.expect(500);
    // text lines: 1000 octets with CRLF (RFC 5321 4.5.3.1.6)
    c.open_data("a@corp.example", &["b@else.example"]);
    c.raw(format!("Subject: long\r\n\r\n{}\r\n.\r\n", "w".repeat(999)).as_bytes());
    let r = c.expect(550);
    assert!(r.text().contains("line longer"), "{r}");
    c.cmd("RSET", 250);
    assert!(sink.messages().is_empty());
}
