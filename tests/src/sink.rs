//! Postfix's `smtp-sink` as a downstream: it accepts (or, with its switches, refuses,
//! delays or drops) mail and dumps every transaction it accepted into a directory.

use std::collections::BTreeMap;
use std::process::{Child, Stdio};

use crate::peers::{Peer, exec_in};
use std::time::Duration;

use crate::{Scratch, free_port, wait_for};

/// One message as the sink received it.
#[derive(Debug, Clone)]
pub struct SunkMessage {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message content, with the sink's own Received header removed.
    pub content: Vec<u8>,
}

impl SunkMessage {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.content).into_owned()
    }

    /// The content as it was on the wire: smtp-sink dumps lines with LF and ends the dump
    /// with one empty line of its own; SMTP carried CRLF and no such line.
    pub fn wire(&self) -> Vec<u8> {
        let content = self
            .content
            .strip_suffix(b"\n")
            .filter(|c| c.ends_with(b"\n"))
            .unwrap_or(&self.content);
        crate::crlf(content)
    }

    /// The value of the first header with this name.
    pub fn header(&self, name: &str) -> Option<String> {
        let text = self.text();
        let prefix = format!("{}:", name.to_ascii_lowercase());
        text.lines()
            .take_while(|l| !l.is_empty())
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_owned())
    }
}

#[derive(Debug)]
pub struct Sink {
    child: Child,
    pub port: u16,
    pub dir: Scratch,
    /// Where it listens.
    listen: String,
}

impl Sink {
    /// Starts `smtp-sink` on a free port with extra switches (e.g. `["-f", "RCPT"]`).
    pub fn start(switches: &[&str]) -> Sink {
        let dir = Scratch::new("sink");
        let dump = dir.join("dump");
        std::fs::create_dir_all(&dump).expect("dump dir");
        crate::make_world_writable(&dump);
        let port = free_port();
        let child = Peer::SmtpSink
            .command()
            .args(["-u", "nobody", "-d"])
            .arg(format!("{}/%Y%m%d%H%M%S.", dump.display()))
            .args(switches)
            .arg(format!("127.0.0.1:{port}"))
            .arg("256")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start smtp-sink");
        let sink = Sink {
            child,
            port,
            dir,
            listen: format!("127.0.0.1:{port}"),
        };
        wait_for(Duration::from_secs(10), || {
            std::net::TcpStream::connect(sink.addr()).ok()
        })
        .expect("smtp-sink did not start listening");
        sink
    }

    /// Starts `smtp-sink` inside network namespace `netns`, listening on `listen` (an
    /// address of that namespace), dumping every message like [`Sink::start`].
    pub fn start_in(netns: &str, listen: &str) -> Sink {
        let dir = Scratch::new("sink");
        let dump = dir.join("dump");
        std::fs::create_dir_all(&dump).expect("dump dir");
        crate::make_world_writable(&dump);
        let child = exec_in(
            Some(netns),
            Peer::SmtpSink.path().expect("smtp-sink installed"),
        )
        .args(["-u", "nobody", "-d"])
        .arg(format!("{}/%Y%m%d%H%M%S.", dump.display()))
        .arg(listen)
        .arg("256")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start smtp-sink in a namespace");
        let port = listen
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or(25);
        // It listens within milliseconds; nothing on this side can connect to check.
        std::thread::sleep(Duration::from_millis(300));
        Sink {
            child,
            port,
            dir,
            listen: listen.to_owned(),
        }
    }

    pub fn addr(&self) -> String {
        self.listen.clone()
    }

    /// Every message dumped so far, oldest first (order within the same instant is not
    /// reliable). smtp-sink creates a dump file at MAIL and deletes it again when the
    /// transaction is abandoned, so only files unchanged over a short interval count.
    pub fn messages(&self) -> Vec<SunkMessage> {
        let before = self.dump_files();
        std::thread::sleep(Duration::from_millis(150));
        self.dump_files()
            .into_iter()
            .filter(|(key, bytes)| before.get(key) == Some(bytes))
            .filter_map(|(_, b)| parse_dump(&b))
            .collect()
    }

    fn dump_files(&self) -> BTreeMap<(Option<std::time::SystemTime>, std::ffi::OsString), Vec<u8>> {
        let mut files = BTreeMap::new();
        let entries = std::fs::read_dir(self.dir.join("dump"));
        for entry in entries.into_iter().flatten().flatten() {
            if let Ok(bytes) = std::fs::read(entry.path()) {
                let modified = entry.metadata().and_then(|m| m.modified()).ok();
                files.insert((modified, entry.file_name()), bytes);
            }
        }
        files
    }

    /// Waits until at least `n` messages are there (or the timeout passes).
    pub fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<SunkMessage> {
        wait_for(timeout, || {
            let m = self.messages();
            (m.len() >= n).then_some(m)
        })
        .unwrap_or_else(|| self.messages())
    }
}

/// Parses smtp-sink's dump: `X-…` envelope lines, its Received header, then the message.
/// Incomplete dumps (still being written) give `None`.
fn parse_dump(bytes: &[u8]) -> Option<SunkMessage> {
    let text = String::from_utf8_lossy(bytes);
    let mut mail_from = None;
    let mut rcpt_to = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let l = line.trim_end();
        if let Some(v) = l.strip_prefix("X-Mail-Args: ") {
            mail_from = Some(
                v.split_whitespace()
                    .next()
                    .unwrap_or("")
                    .trim_matches(|c| c == '<' || c == '>')
                    .to_owned(),
            );
        } else if let Some(v) = l.strip_prefix("X-Rcpt-Args: ") {
            rcpt_to.push(
                v.split_whitespace()
                    .next()
                    .unwrap_or("")
                    .trim_matches(|c| c == '<' || c == '>')
                    .to_owned(),
            );
        } else if !l.starts_with("X-") {
            break;
        }
        offset += line.len();
    }
    // Skip the sink's own Received header (first line plus its folded continuations).
    let rest = &bytes[offset..];
    let mut pos = 0;
    if rest.starts_with(b"Received:") {
        for (i, line) in rest.split_inclusive(|&b| b == b'\n').enumerate() {
            if i > 0 && !(line.starts_with(b"\t") || line.starts_with(b" ")) {
                break;
            }
            pos += line.len();
        }
    }
    Some(SunkMessage {
        mail_from: mail_from?,
        rcpt_to,
        content: rest[pos..].to_vec(),
    })
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
