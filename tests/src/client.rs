//! A small blocking SMTP client for tests: send lines or raw bytes, read replies, upgrade
//! to TLS. It does only what a test says, so tests can misbehave on purpose.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// A reply: code and the text of all its lines.
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.text())
    }
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

pub struct Client {
    reader: BufReader<Box<dyn Stream>>,
    tcp: TcpStream,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("peer", &self.tcp.peer_addr().ok())
            .finish()
    }
}

impl Client {
    /// Connects; the greeting is not read yet.
    pub fn connect(addr: SocketAddr) -> Client {
        let tcp = TcpStream::connect(addr).expect("connect to posternd");
        tcp.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let _ = tcp.set_nodelay(true);
        let boxed: Box<dyn Stream> = Box::new(tcp.try_clone().expect("clone"));
        Client {
            reader: BufReader::new(boxed),
            tcp,
        }
    }

    /// Connects, reads the greeting (must be 220) and says EHLO.
    pub fn ready(addr: SocketAddr) -> Client {
        let mut c = Client::connect(addr);
        c.expect(220);
        c.send("EHLO client.test");
        c.expect(250);
        c
    }

    pub fn set_timeout(&self, t: Duration) {
        self.tcp.set_read_timeout(Some(t)).expect("timeout");
    }

    pub fn send(&mut self, line: &str) {
        self.raw(format!("{line}\r\n").as_bytes());
    }

    pub fn raw(&mut self, bytes: &[u8]) {
        let w = self.reader.get_mut();
        w.write_all(bytes).expect("write to posternd");
        w.flush().expect("flush");
    }

    /// Reads one (possibly multi-line) reply; `None` on EOF or timeout.
    pub fn read_reply(&mut self) -> Option<Reply> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            assert!(line.ends_with("\r\n"), "reply line without CRLF: {line:?}");
            let code: u16 = line.get(..3)?.parse().ok()?;
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").trim_end().to_owned());
            if !more {
                return Some(Reply { code, lines });
            }
        }
    }

    /// Reads a reply and checks its code.
    #[track_caller]
    pub fn expect(&mut self, code: u16) -> Reply {
        match self.read_reply() {
            Some(r) if r.code == code => r,
            other => panic!("expected {code}, got {other:?}"),
        }
    }

    /// Sends a command and checks the reply's code.
    #[track_caller]
    pub fn cmd(&mut self, line: &str, code: u16) -> Reply {
        self.send(line);
        match self.read_reply() {
            Some(r) if r.code == code => r,
            other => panic!("{line}: expected {code}, got {other:?}"),
        }
    }

    /// Whether the server closed the connection (EOF within the timeout).
    pub fn closed(&mut self) -> bool {
        let mut buf = [0u8; 1];
        matches!(self.reader.read(&mut buf), Ok(0))
    }

    /// MAIL, RCPTs and DATA, each of which must be accepted; the message goes next.
    #[track_caller]
    pub fn open_data(&mut self, from: &str, to: &[&str]) {
        self.cmd(&format!("MAIL FROM:<{from}>"), 250);
        for rcpt in to {
            self.cmd(&format!("RCPT TO:<{rcpt}>"), 250);
        }
        self.cmd("DATA", 354);
    }

    /// Sends a whole message: MAIL, RCPTs, DATA, content (dot-stuffed here) and returns
    /// the end-of-data reply. Every RCPT must be accepted.
    pub fn send_mail(&mut self, from: &str, to: &[&str], content: &str) -> Reply {
        self.open_data(from, to);
        let mut data = String::new();
        for line in content.split("\r\n") {
            if line.starts_with('.') {
                data.push('.');
            }
            data.push_str(line);
            data.push_str("\r\n");
        }
        if content.ends_with("\r\n") {
            data.truncate(data.len() - 2);
        }
        data.push_str(".\r\n");
        self.raw(data.as_bytes());
        self.read_reply().expect("end-of-data reply")
    }

    /// STARTTLS and the TLS handshake, trusting `ca_pem` for `server_name`.
    pub fn starttls(self, ca_pem: &[u8], server_name: &str) -> Client {
        let mut c = self;
        c.cmd("STARTTLS", 220);
        c.upgrade(ca_pem, server_name)
    }

    /// The TLS handshake alone (after a 220 to STARTTLS was read).
    pub fn upgrade(self, ca_pem: &[u8], server_name: &str) -> Client {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            roots.add(cert.expect("PEM certificate")).expect("add root");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(server_name.to_owned()).expect("server name");
        let conn = ClientConnection::new(Arc::new(config), name).expect("TLS client");
        assert!(self.reader.buffer().is_empty(), "unread bytes before TLS");
        let tcp = self.tcp;
        let tls = StreamOwned::new(conn, tcp.try_clone().expect("clone"));
        let boxed: Box<dyn Stream> = Box::new(tls);
        Client {
            reader: BufReader::new(boxed),
            tcp,
        }
    }
}
