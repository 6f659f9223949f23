//! Header fields (RFC 5322 §2.2) and `Content-Type` (RFC 2045 §5.1) with RFC 2047 words.

/// One header field exactly as received: name, colon, value, folded lines, final CRLF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    raw: Vec<u8>,
}

impl Field {
    /// A new field `name: value` (the value must not contain bare CR or LF).
    pub fn new(name: &str, value: &str) -> Field {
        Field {
            raw: format!("{name}: {value}\r\n").into_bytes(),
        }
    }

    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    pub fn name(&self) -> &[u8] {
        let end = memchr::memchr(b':', &self.raw).unwrap_or(self.raw.len());
        trim_end(&self.raw[..end])
    }

    pub fn name_eq(&self, name: &str) -> bool {
        self.name().eq_ignore_ascii_case(name.as_bytes())
    }

    pub fn name_is_prefix(&self, prefix: &str) -> bool {
        let n = self.name();
        n.len() >= prefix.len() && n[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    }

    /// The unfolded value, trimmed, as text (invalid UTF-8 replaced).
    pub fn value(&self) -> String {
        let start = memchr::memchr(b':', &self.raw).map_or(self.raw.len(), |i| i + 1);
        let unfolded: Vec<u8> = self.raw[start..]
            .iter()
            .copied()
            .filter(|b| *b != b'\r' && *b != b'\n')
            .collect();
        String::from_utf8_lossy(&unfolded).trim().to_owned()
    }
}

fn trim_end(b: &[u8]) -> &[u8] {
    let mut end = b.len();
    while end > 0 && (b[end - 1] == b' ' || b[end - 1] == b'\t') {
        end -= 1;
    }
    &b[..end]
}

/// An ordered list of header fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    fields: Vec<Field>,
}

impl Header {
    /// Parses header bytes (as returned by [`super::split`]). Lines that are neither a field
    /// nor a continuation are kept as their own "field" so nothing is ever dropped.
    pub fn parse(header: &[u8]) -> Header {
        let mut fields: Vec<Field> = Vec::new();
        let mut start = 0;
        while start < header.len() {
            let end = memchr::memmem::find(&header[start..], b"\r\n")
                .map_or(header.len(), |i| start + i + 2);
            let line = &header[start..end];
            let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
            match fields.last_mut() {
                Some(last) if continuation => last.raw.extend_from_slice(line),
                _ => fields.push(Field { raw: line.to_vec() }),
            }
            start = end;
        }
        for f in &mut fields {
            if !f.raw.ends_with(b"\r\n") {
                f.raw.extend_from_slice(b"\r\n");
            }
        }
        Header { fields }
    }

    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The value of the first field called `name`.
    pub fn get(&self, name: &str) -> Option<String> {
        self.fields
            .iter()
            .find(|f| f.name_eq(name))
            .map(Field::value)
    }

    pub fn count(&self, name: &str) -> usize {
        self.fields.iter().filter(|f| f.name_eq(name)).count()
    }

    pub fn push(&mut self, name: &str, value: &str) {
        self.fields.push(Field::new(name, value));
    }

    /// Puts a field first (trace and verdict fields go on top, RFC 5322 §3.6).
    pub fn prepend(&mut self, name: &str, value: &str) {
        self.fields.insert(0, Field::new(name, value));
    }

    /// Replaces the first field called `name` (in place) or appends one.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.fields.iter_mut().find(|f| f.name_eq(name)) {
            Some(f) => *f = Field::new(name, value),
            None => self.push(name, value),
        }
    }

    pub fn without(&self, name: &str) -> Header {
        self.filter(|f| !f.name_eq(name))
    }

    /// Keeps the fields for which `keep` is true.
    pub fn filter(&self, keep: impl Fn(&Field) -> bool) -> Header {
        Header {
            fields: self.fields.iter().filter(|f| keep(f)).cloned().collect(),
        }
    }

    /// `(matching, others)`, each in the original order.
    pub fn partition(&self, pred: impl Fn(&Field) -> bool) -> (Header, Header) {
        let (a, b) = self.fields.iter().cloned().partition(|f| pred(f));
        (Header { fields: a }, Header { fields: b })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.fields
            .iter()
            .flat_map(|f| f.raw.iter().copied())
            .collect()
    }
}

/// A parsed `Content-Type`; type and subtype lower-cased, parameter names lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType {
    pub type_: String,
    pub subtype: String,
    pub params: Vec<(String, String)>,
}

impl Default for ContentType {
    /// RFC 2045 §5.2: no (or an unreadable) Content-Type means `text/plain; charset=us-ascii`.
    fn default() -> Self {
        ContentType {
            type_: "text".into(),
            subtype: "plain".into(),
            params: vec![("charset".into(), "us-ascii".into())],
        }
    }
}

impl ContentType {
    /// The `Content-Type` of a header (the RFC 2045 default when absent).
    pub fn of(header: &Header) -> ContentType {
        header
            .get("content-type")
            .map(|v| ContentType::parse(&v))
            .unwrap_or_default()
    }

    pub fn parse(value: &str) -> ContentType {
        let mut rest = value.trim();
        let end = rest.find(';').unwrap_or(rest.len());
        let Some((t, s)) = rest[..end].split_once('/') else {
            return ContentType::default();
        };
        let (t, s) = (t.trim().to_ascii_lowercase(), s.trim().to_ascii_lowercase());
        if t.is_empty() || s.is_empty() {
            return ContentType::default();
        }
        rest = &rest[end..];
        let mut params = Vec::new();
        while let Some(r) = rest.strip_prefix(';') {
            let r = r.trim_start();
            let Some(eq) = r.find('=') else { break };
            let name = r[..eq].trim().to_ascii_lowercase();
            let r = r[eq + 1..].trim_start();
            let (val, after) = if let Some(q) = r.strip_prefix('"') {
                let mut val = String::new();
                let mut chars = q.char_indices();
                let mut end = q.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, n)) = chars.next() {
                                val.push(n);
                            }
                        }
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        c => val.push(c),
                    }
                }
                (val, &q[end.min(q.len())..])
            } else {
                let e = r.find(';').unwrap_or(r.len());
                (r[..e].trim().to_owned(), &r[e..])
            };
            params.push((name, val));
            rest = after.trim_start();
            if !rest.starts_with(';') {
                if let Some(i) = rest.find(';') {
                    rest = &rest[i..];
                } else {
                    break;
                }
            }
        }
        ContentType {
            type_: t,
            subtype: s,
            params,
        }
    }

    pub fn is(&self, type_: &str, subtype: &str) -> bool {
        self.type_ == type_ && self.subtype == subtype
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Decodes RFC 2047 encoded words (`=?charset?B|Q?...?=`) in an unstructured value such as
/// `Subject`. UTF-8, US-ASCII and ISO-8859-1 are decoded; words in other charsets stay as
/// they are. Whitespace between adjacent encoded words is dropped (RFC 2047 §6.2).
pub fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut last_was_word = false;
    while !rest.is_empty() {
        let Some(start) = rest.find("=?") else {
            out.push_str(rest);
            break;
        };
        let (before, candidate) = rest.split_at(start);
        match decode_word(candidate) {
            Some((text, used)) => {
                if !(last_was_word && before.trim().is_empty()) {
                    out.push_str(before);
                }
                out.push_str(&text);
                rest = &candidate[used..];
                last_was_word = true;
            }
            None => {
                out.push_str(before);
                out.push_str("=?");
                rest = &candidate[2..];
                last_was_word = false;
            }
        }
    }
    out
}

fn decode_word(s: &str) -> Option<(String, usize)> {
    let inner = s.strip_prefix("=?")?;
    let mut it = inner.splitn(3, '?');
    let charset = it.next()?.to_ascii_lowercase();
    let enc = it.next()?.to_ascii_lowercase();
    let tail = it.next()?;
    let end = tail.find("?=")?;
    let text = &tail[..end];
    if text.contains(' ') {
        return None;
    }
    let used = 2 + charset.len() + 1 + enc.len() + 1 + end + 2;
    let bytes = match enc.as_str() {
        "b" => super::base64_decode(text.as_bytes()).ok()?,
        "q" => super::codec::q_decode(text.as_bytes()),
        _ => return None,
    };
    let charset = charset.split('*').next().unwrap_or_default();
    let decoded = match charset {
        "utf-8" | "us-ascii" => String::from_utf8(bytes).ok()?,
        "iso-8859-1" | "latin1" => bytes.iter().map(|b| char::from(*b)).collect(),
        _ => return None,
    };
    Some((decoded, used))
}
