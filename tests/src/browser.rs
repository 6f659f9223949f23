//! A small W3C WebDriver client that drives Debian's headless Chromium through
//! `chromedriver`, for end-to-end tests of the HTTPS admin web GUI.
//!
//! It speaks HTTP/1.1 to chromedriver itself over one `TcpStream` per request
//! (`Connection: close`, `Content-Length` bodies) and has no dependencies beyond
//! `anyhow` and `serde_json`. `chromedriver` is started on a free 127.0.0.1 port and
//! killed by its PID when the [`Browser`] drops; Chromium is its child and exits when the
//! session is deleted.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use crate::peers::Peer;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::free_port;

/// Where Debian's `chromium` package puts the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Where Debian's `chromium-driver` package puts the driver.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The key under which WebDriver returns an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long `start` waits for chromedriver to report ready.
const DRIVER_READY: Duration = Duration::from_secs(20);
/// Read timeout for one WebDriver command (page loads are capped below this).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);
/// Page-load and script timeouts asked of the session.
const PAGE_LOAD_MS: u64 = 60_000;

/// A headless Chromium session through a `chromedriver` we started.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    port: u16,
    /// The WebDriver session id (empty until the session exists).
    session: String,
    artifacts: PathBuf,
    user_data: PathBuf,
}

/// An element of the current page, found by [`Browser::find`] and friends.
#[derive(Debug, Clone)]
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Browser {
    /// Ok when Chromium and chromedriver are installed, else why not.
    pub fn available() -> std::result::Result<(), String> {
        let missing = crate::peers::missing(&[Peer::Chromium, Peer::Chromedriver]);
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing.join("; "))
        }
    }

    /// Starts chromedriver on a free port (its output goes to
    /// `<artifacts>/chromedriver-<port>.log`) and opens a headless Chromium session that
    /// accepts self-signed certificates. `artifacts` is created if needed; screenshots
    /// land there too.
    pub fn start(artifacts: &Path) -> Result<Browser> {
        Browser::available().map_err(|e| anyhow!("browser unavailable: {e}"))?;
        std::fs::create_dir_all(artifacts)
            .with_context(|| format!("creating artifacts directory {}", artifacts.display()))?;
        let user_data = fresh_user_data_dir()?;
        let port = free_port();
        let log_path = artifacts.join(format!("chromedriver-{port}.log"));
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let log_err = log
            .try_clone()
            .with_context(|| format!("duplicating handle of {}", log_path.display()))?;
        let driver = match Peer::Chromedriver
            .command()
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
        {
            Ok(child) => child,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&user_data);
                return Err(anyhow!(e).context(format!("spawning {CHROMEDRIVER}")));
            }
        };
        // From here on, Drop kills the driver and removes the user-data dir.
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
            artifacts: artifacts.to_owned(),
            user_data,
        };
        browser
            .wait_ready(&log_path)
            .with_context(|| format!("chromedriver log: {}", log_path.display()))?;
        browser
            .new_session()
            .with_context(|| format!("chromedriver log: {}", log_path.display()))?;
        Ok(browser)
    }

    /// Polls `GET /status` until chromedriver says it is ready.
    fn wait_ready(&mut self, log_path: &Path) -> Result<()> {
        let start = Instant::now();
        let mut last;
        loop {
            if let Some(status) = self
                .driver
                .try_wait()
                .context("checking the chromedriver process")?
            {
                let log = std::fs::read_to_string(log_path).unwrap_or_default();
                bail!("chromedriver exited early ({status}): {}", log.trim());
            }
            match self.request("GET", "/status", None) {
                Ok(v) if v.get("ready").and_then(Value::as_bool) == Some(true) => return Ok(()),
                Ok(v) => last = format!("not ready: {v}"),
                Err(e) => last = format!("{e:#}"),
            }
            if start.elapsed() > DRIVER_READY {
                bail!(
                    "chromedriver on 127.0.0.1:{} not ready after {:?}: {last}",
                    self.port,
                    DRIVER_READY
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn new_session(&mut self) -> Result<()> {
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            format!("--user-data-dir={}", self.user_data.display()),
            "--window-size=1280,900".to_owned(),
        ];
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "acceptInsecureCerts": true,
                    "timeouts": { "pageLoad": PAGE_LOAD_MS, "script": PAGE_LOAD_MS },
                    "goog:chromeOptions": {
                        "binary": CHROMIUM,
                        "args": args,
                    },
                }
            }
        });
        let v = self
            .request("POST", "/session", Some(&caps))
            .context("creating a WebDriver session")?;
        let id = v
            .get("sessionId")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("new session answer has no sessionId: {v}"))?;
        self.session = id.to_owned();
        Ok(())
    }

    /// The directory screenshots and the chromedriver log go to.
    pub fn artifacts(&self) -> &Path {
        &self.artifacts
    }

    /// Navigates to `url` and waits for the page to load.
    pub fn goto(&self, url: &str) -> Result<()> {
        self.cmd("POST", "/url", Some(&json!({ "url": url })))
            .with_context(|| format!("navigating to {url}"))?;
        Ok(())
    }

    /// The current page's URL.
    pub fn url(&self) -> Result<String> {
        string(self.cmd("GET", "/url", None)?, "current URL")
    }

    /// The current page's title.
    pub fn title(&self) -> Result<String> {
        string(self.cmd("GET", "/title", None)?, "page title")
    }

    /// The current page's source (the DOM serialised).
    pub fn source(&self) -> Result<String> {
        string(self.cmd("GET", "/source", None)?, "page source")
    }

    /// The first element matching a CSS selector.
    pub fn find(&self, css: &str) -> Result<Element<'_>> {
        let body = json!({ "using": "css selector", "value": css });
        match self.cmd("POST", "/element", Some(&body)) {
            Ok(v) => self.element(&v),
            Err(e) => Err(e.context(format!(
                "finding CSS selector `{css}` on {}",
                self.url_for_errors()
            ))),
        }
    }

    /// Every element matching a CSS selector (possibly none).
    pub fn find_all(&self, css: &str) -> Result<Vec<Element<'_>>> {
        let body = json!({ "using": "css selector", "value": css });
        let v = self
            .cmd("POST", "/elements", Some(&body))
            .with_context(|| {
                format!(
                    "finding all of CSS selector `{css}` on {}",
                    self.url_for_errors()
                )
            })?;
        v.as_array()
            .ok_or_else(|| anyhow!("find elements answered with a non-array: {v}"))?
            .iter()
            .map(|e| self.element(e))
            .collect()
    }

    /// Polls (every 100 ms) until an element matches a CSS selector or `timeout` passes.
    pub fn wait_for(&self, css: &str, timeout: Duration) -> Result<Element<'_>> {
        let start = Instant::now();
        loop {
            let body = json!({ "using": "css selector", "value": css });
            let err = match self.cmd("POST", "/element", Some(&body)) {
                Ok(v) => return self.element(&v),
                Err(e) => e,
            };
            if start.elapsed() >= timeout {
                return Err(err.context(format!(
                    "waited {timeout:?} for CSS selector `{css}` on {}",
                    self.url_for_errors()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs a synchronous script (`return …` gives the result; `arguments[i]` are `args`).
    pub fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        let body = json!({ "script": script, "args": args });
        self.cmd("POST", "/execute/sync", Some(&body))
            .context("executing a script")
    }

    /// Saves a PNG screenshot of the viewport as `<artifacts>/<name>.png`.
    pub fn screenshot(&self, name: &str) -> Result<PathBuf> {
        let v = self.cmd("GET", "/screenshot", None)?;
        let png = base64_decode(
            v.as_str()
                .ok_or_else(|| anyhow!("screenshot answer is not a string: {v}"))?,
        )
        .context("decoding the screenshot")?;
        let path = self.artifacts.join(format!("{name}.png"));
        std::fs::write(&path, png).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// All cookies visible to the current page, as WebDriver cookie objects
    /// (`name`, `value`, `path`, `domain`, `secure`, `httpOnly`, …).
    pub fn cookies(&self) -> Result<Vec<Value>> {
        let v = self.cmd("GET", "/cookie", None)?;
        match v {
            Value::Array(a) => Ok(a),
            other => bail!("cookies answer is not an array: {other}"),
        }
    }

    /// Deletes all cookies visible to the current page.
    pub fn delete_cookies(&self) -> Result<()> {
        self.cmd("DELETE", "/cookie", None)?;
        Ok(())
    }

    fn element(&self, v: &Value) -> Result<Element<'_>> {
        let id = v
            .get(ELEMENT_KEY)
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("not an element reference: {v}"))?;
        Ok(Element {
            browser: self,
            id: id.to_owned(),
        })
    }

    /// The current URL, or a note that it could not be had (for error messages).
    fn url_for_errors(&self) -> String {
        self.url()
            .unwrap_or_else(|e| format!("<current URL unknown: {e:#}>"))
    }

    /// A command in this session: `path` is relative to `/session/{id}`.
    fn cmd(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        if self.session.is_empty() {
            bail!("no WebDriver session");
        }
        self.request(method, &format!("/session/{}{path}", self.session), body)
    }

    /// One WebDriver request; returns the answer's `value`, or an error carrying the
    /// WebDriver `error` and `message`.
    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let body = match body {
            Some(b) => Some(serde_json::to_vec(b)?),
            None if method == "POST" => Some(b"{}".to_vec()),
            None => None,
        };
        let (status, answer) = http(
            SocketAddr::from(([127, 0, 0, 1], self.port)),
            method,
            path,
            body.as_deref(),
        )
        .with_context(|| format!("WebDriver {method} {path}"))?;
        let mut json: Value = serde_json::from_slice(&answer).with_context(|| {
            format!(
                "WebDriver {method} {path}: HTTP {status}, not JSON: {}",
                String::from_utf8_lossy(&answer)
            )
        })?;
        let value = json
            .get_mut("value")
            .map(Value::take)
            .unwrap_or(Value::Null);
        let error = value.get("error").and_then(Value::as_str);
        if !(200..300).contains(&status) || error.is_some() {
            let message = value
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("(no message)");
            bail!(
                "WebDriver {method} {path}: HTTP {status}: {}: {message}",
                error.unwrap_or("(no error code)")
            );
        }
        Ok(value)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            let _ = self.request("DELETE", &path, None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.user_data);
    }
}

impl Element<'_> {
    /// The WebDriver element id.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn cmd(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        self.browser
            .cmd(method, &format!("/element/{}{path}", self.id), body)
    }

    /// Clicks the element (scrolling it into view first).
    pub fn click(&self) -> Result<()> {
        self.cmd("POST", "/click", None)?;
        Ok(())
    }

    /// Types text into the element. For `<input type=file>`, `text` is the absolute path
    /// of a file to attach.
    pub fn send_keys(&self, text: &str) -> Result<()> {
        self.cmd("POST", "/value", Some(&json!({ "text": text })))?;
        Ok(())
    }

    /// Clears an input or textarea.
    pub fn clear(&self) -> Result<()> {
        self.cmd("POST", "/clear", None)?;
        Ok(())
    }

    /// The rendered text of the element.
    pub fn text(&self) -> Result<String> {
        string(self.cmd("GET", "/text", None)?, "element text")
    }

    /// An attribute of the element, None when it has none of that name.
    pub fn attr(&self, name: &str) -> Result<Option<String>> {
        let v = self.cmd("GET", &format!("/attribute/{}", percent_encode(name)), None)?;
        match v {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            other => Ok(Some(other.to_string())),
        }
    }

    /// A DOM property of the element (e.g. `value`, `checked`), Null when unset.
    pub fn property(&self, name: &str) -> Result<Value> {
        self.cmd("GET", &format!("/property/{}", percent_encode(name)), None)
    }
}

/// One HTTP/1.1 exchange on a fresh connection: returns the status and the body.
fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&[u8]>) -> Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to chromedriver at {addr}"))?;
    stream.set_read_timeout(Some(COMMAND_TIMEOUT))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(body) = body {
        request.push_str(&format!(
            "Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body.unwrap_or_default());
    stream.write_all(&bytes).context("sending the request")?;

    // Read the head, then exactly Content-Length bytes (or to EOF when there is none).
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).context("reading the answer")?;
        if n == 0 {
            bail!(
                "connection closed before the end of the answer's head ({} bytes read)",
                buf.len()
            );
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("bad HTTP status line: {status_line:?}"))?;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .with_context(|| format!("bad Content-Length: {value:?}"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && !value.eq_ignore_ascii_case("identity")
        {
            bail!("unsupported Transfer-Encoding: {value}");
        }
    }
    let mut body = buf.split_off(head_end + 4);
    match length {
        Some(len) => {
            while body.len() < len {
                let n = stream
                    .read(&mut chunk)
                    .context("reading the answer's body")?;
                if n == 0 {
                    bail!("connection closed after {} of {len} body bytes", body.len());
                }
                body.extend_from_slice(&chunk[..n]);
            }
            body.truncate(len);
        }
        None => {
            stream
                .read_to_end(&mut body)
                .context("reading the answer's body")?;
        }
    }
    Ok((status, body))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn string(v: Value, what: &str) -> Result<String> {
    match v {
        Value::String(s) => Ok(s),
        other => bail!("{what} is not a string: {other}"),
    }
}

/// Percent-encodes a URL path segment (everything but unreserved characters).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A fresh, empty directory for Chromium's profile.
fn fresh_user_data_dir() -> Result<PathBuf> {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "postern-chromium-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating Chromium user-data dir {}", dir.display()))?;
    Ok(dir)
}

/// Decodes base64 (standard or URL-safe alphabet, padding optional, whitespace ignored).
pub fn base64_decode(text: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut digits = 0usize;
    let mut padding = false;
    for (i, c) in text.bytes().enumerate() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => {
                padding = true;
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            other => bail!("invalid base64 byte 0x{other:02x} at offset {i}"),
        };
        if padding {
            bail!("base64 data after padding at offset {i}");
        }
        digits += 1;
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            // Lossless: the shifted accumulator holds at most 8 significant bits here.
            out.push(((acc >> bits) & 0xff) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if digits % 4 == 1 {
        bail!("truncated base64: {digits} digits");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scratch;
    use std::io::BufRead;
    use std::net::TcpListener;

    #[test]
    fn base64_decodes() {
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("Zg==").unwrap(), b"f");
        assert_eq!(base64_decode("Zm8=").unwrap(), b"fo");
        assert_eq!(base64_decode("Zm9v").unwrap(), b"foo");
        assert_eq!(base64_decode("Zm9vYg").unwrap(), b"foob");
        assert_eq!(base64_decode("Zm9v\nYmFy").unwrap(), b"foobar");
        assert_eq!(base64_decode("iVBORw0KGgo=").unwrap(), b"\x89PNG\r\n\x1a\n");
        assert_eq!(base64_decode("_-8=").unwrap(), [0xff, 0xef]);
        assert_eq!(base64_decode("/+8=").unwrap(), [0xff, 0xef]);
        assert!(base64_decode("Z").is_err());
        assert!(base64_decode("Zm9v!").is_err());
        assert!(base64_decode("Zg==Zg==").is_err());
    }

    #[test]
    fn percent_encodes() {
        assert_eq!(percent_encode("data-x_y.z"), "data-x_y.z");
        assert_eq!(percent_encode("a b/c"), "a%20b%2Fc");
    }

    fn html_escape(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    }

    const FORM: &str = r#"<!doctype html>
<html><head><title>Upload form</title></head><body>
<form method="post" action="/submit" enctype="multipart/form-data">
<input type="text" id="text-in" name="greeting" value="placeholder">
<input type="file" id="file-in" name="upload">
<button type="submit" id="send">Send</button>
</form></body></html>"#;

    /// Parses a multipart/form-data body into (name, filename, content) parts.
    fn multipart(content_type: &str, body: &[u8]) -> Vec<(String, Option<String>, Vec<u8>)> {
        let boundary = content_type
            .split(';')
            .find_map(|p| p.trim().strip_prefix("boundary="))
            .expect("boundary")
            .trim_matches('"');
        let delimiter = format!("--{boundary}");
        let mut parts = Vec::new();
        let mut rest = body;
        while let Some(start) = find(rest, delimiter.as_bytes()) {
            rest = &rest[start + delimiter.len()..];
            if rest.starts_with(b"--") {
                break;
            }
            let rest_part = rest.strip_prefix(b"\r\n").unwrap_or(rest);
            let end = find(rest_part, delimiter.as_bytes()).expect("closing delimiter");
            let part = &rest_part[..end];
            let part = part.strip_suffix(b"\r\n").unwrap_or(part);
            let head_end = find(part, b"\r\n\r\n").expect("part head");
            let head = String::from_utf8_lossy(&part[..head_end]).into_owned();
            let attr = |key: &str| {
                let needle = format!("{key}=\"");
                head.find(&needle).map(|i| {
                    let s = &head[i + needle.len()..];
                    s[..s.find('"').expect("closing quote")].to_owned()
                })
            };
            parts.push((
                attr(" name").expect("part name"),
                attr("filename"),
                part[head_end + 4..].to_vec(),
            ));
            rest = rest_part;
        }
        parts
    }

    fn serve(mut stream: TcpStream) {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        let mut reader = std::io::BufReader::new(stream.try_clone().expect("clone stream"));
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return; // a speculative connection that never sent anything
        }
        let mut content_type = String::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            let (name, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().expect("content-length");
            } else if name.eq_ignore_ascii_case("content-type") {
                content_type = value.to_owned();
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).expect("request body");

        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let (status, extra, page) = match (method, path) {
            ("GET", "/") => ("200 OK", "", FORM.to_owned()),
            ("POST", "/submit") => {
                let mut text = String::new();
                let mut filename = String::new();
                let mut content = String::new();
                for (name, file, data) in multipart(&content_type, &body) {
                    match name.as_str() {
                        "greeting" => text = String::from_utf8_lossy(&data).into_owned(),
                        "upload" => {
                            filename = file.unwrap_or_default();
                            content = String::from_utf8_lossy(&data).into_owned();
                        }
                        _ => {}
                    }
                }
                (
                    "200 OK",
                    "Set-Cookie: posted=yes; Path=/\r\n",
                    format!(
                        "<!doctype html><html><head><title>Posted</title></head><body>\
                         <p id=\"echo-text\">{}</p><p id=\"echo-filename\">{}</p>\
                         <pre id=\"echo-content\">{}</pre></body></html>",
                        html_escape(&text),
                        html_escape(&filename),
                        html_escape(&content)
                    ),
                )
            }
            _ => ("404 Not Found", "", "not found".to_owned()),
        };
        let answer = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n{extra}\
             Content-Length: {}\r\nConnection: close\r\n\r\n{page}",
            page.len()
        );
        let _ = stream.write_all(answer.as_bytes());
    }

    /// A tiny HTTP server on 127.0.0.1: a form and a page echoing what was posted.
    fn start_server() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || serve(stream));
            }
        });
        port
    }

    #[test]
    fn browser_drives_a_form_with_file_upload() {
        if let Err(reason) = Browser::available() {
            crate::skip(
                &format!("skipped: browser_drives_a_form_with_file_upload: {reason}"),
                "REQUIRE_PEERS",
            );
            return;
        }
        let started = Instant::now();
        let scratch = Scratch::new("browser");
        let upload = scratch.join("upload.txt");
        std::fs::write(&upload, "attached <content> line\n").unwrap();
        let port = start_server();
        let base = format!("http://127.0.0.1:{port}");

        let browser = Browser::start(&scratch.join("artifacts")).unwrap();
        browser.goto(&format!("{base}/")).unwrap();
        assert_eq!(browser.url().unwrap(), format!("{base}/"));
        assert_eq!(browser.title().unwrap(), "Upload form");
        assert!(browser.source().unwrap().contains("multipart/form-data"));
        assert_eq!(browser.find_all("input").unwrap().len(), 2);
        assert!(browser.find_all("textarea").unwrap().is_empty());

        let err = browser.find("#no-such-thing").unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("#no-such-thing"), "{msg}");
        assert!(msg.contains(&base), "{msg}");
        assert!(msg.contains("no such element"), "{msg}");

        let text = browser.find("#text-in").unwrap();
        assert_eq!(text.attr("name").unwrap().as_deref(), Some("greeting"));
        assert_eq!(text.attr("data-missing").unwrap(), None);
        assert_eq!(text.property("value").unwrap(), json!("placeholder"));
        text.clear().unwrap();
        assert_eq!(text.property("value").unwrap(), json!(""));
        text.send_keys("Hello <Postern> & co").unwrap();
        assert_eq!(
            text.property("value").unwrap(),
            json!("Hello <Postern> & co")
        );

        browser
            .find("#file-in")
            .unwrap()
            .send_keys(upload.to_str().unwrap())
            .unwrap();
        let sum = browser
            .execute(
                "return arguments[0] + document.getElementById('file-in').files.length;",
                vec![json!(41)],
            )
            .unwrap();
        assert_eq!(sum, json!(42));
        assert_eq!(browser.find("#send").unwrap().text().unwrap(), "Send");
        browser.find("#send").unwrap().click().unwrap();

        let echoed = browser
            .wait_for("#echo-text", Duration::from_secs(5))
            .unwrap();
        assert_eq!(echoed.text().unwrap(), "Hello <Postern> & co");
        assert_eq!(browser.title().unwrap(), "Posted");
        assert_eq!(
            browser.find("#echo-filename").unwrap().text().unwrap(),
            "upload.txt"
        );
        assert_eq!(
            browser.find("#echo-content").unwrap().text().unwrap(),
            "attached <content> line"
        );
        let err = browser
            .wait_for("#never", Duration::from_millis(300))
            .unwrap_err();
        assert!(format!("{err:#}").contains("#never"), "{err:#}");

        let cookies = browser.cookies().unwrap();
        assert!(
            cookies
                .iter()
                .any(|c| c["name"] == "posted" && c["value"] == "yes"),
            "{cookies:?}"
        );
        browser.delete_cookies().unwrap();
        assert!(browser.cookies().unwrap().is_empty());

        let shot = browser.screenshot("posted").unwrap();
        assert_eq!(shot, scratch.join("artifacts").join("posted.png"));
        let png = std::fs::read(&shot).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG: {shot:?}");
        assert!(png.len() > 1000, "tiny screenshot: {} bytes", png.len());

        let user_data = browser.user_data.clone();
        assert!(user_data.is_dir());
        drop(browser);
        assert!(!user_data.exists(), "user-data dir left: {user_data:?}");
        eprintln!("browser test took {:?}", started.elapsed());
    }
}
