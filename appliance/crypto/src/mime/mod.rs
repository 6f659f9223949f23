//! Just enough MIME (RFC 2045–2047) for a gateway that signs, encrypts and unwraps mail:
//! split a message into header and body, read header fields and `Content-Type`, split
//! multiparts, separate the *content entity* (what gets signed or encrypted) from the outer
//! header (what stays readable for the MTAs), and rebuild.
//!
//! Everything works on bytes exactly as received. Postern's SMTP side guarantees CRLF line
//! ends (bare CR/LF are refused there), so the bytes are already canonical (RFC 5751 §3.1.1);
//! [`canonicalize`] exists for content that arrives from elsewhere (decrypted payloads).

mod codec;
pub mod date;
mod header;

pub use codec::{base64_decode, base64_wrapped, canonicalize, qp_decode};
pub use header::{ContentType, Field, Header, decode_words};

/// A message or entity split at the first empty line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts<'a> {
    /// The header fields, each ending in CRLF (empty when there are none).
    pub header: &'a [u8],
    /// Everything after the empty line.
    pub body: &'a [u8],
}

/// Splits at the first empty line. Without one, all of it is header (RFC 5322 allows an
/// absent body); an entity that starts with an empty line has no header fields.
pub fn split(entity: &[u8]) -> Parts<'_> {
    if let Some(rest) = entity.strip_prefix(b"\r\n") {
        return Parts {
            header: &[],
            body: rest,
        };
    }
    match memchr::memmem::find(entity, b"\r\n\r\n") {
        Some(i) => Parts {
            header: &entity[..i + 2],
            body: &entity[i + 4..],
        },
        None => Parts {
            header: entity,
            body: &[],
        },
    }
}

/// The body parts of a multipart entity with `boundary` (RFC 2046 §5.1.1): the bytes between
/// delimiters, without the CRLF that belongs to each delimiter. `None` when the body has no
/// opening delimiter; a missing close delimiter ends the last part at the end of the body.
pub fn multipart_parts<'a>(body: &'a [u8], boundary: &str) -> Option<Vec<&'a [u8]>> {
    let dash: Vec<u8> = [b"--", boundary.as_bytes()].concat();
    let mut delimiters = Vec::new();
    let mut line_start = 0;
    while line_start < body.len() {
        let line_end = memchr::memmem::find(&body[line_start..], b"\r\n")
            .map_or(body.len(), |i| line_start + i);
        let line = &body[line_start..line_end];
        if let Some(rest) = line.strip_prefix(dash.as_slice()) {
            let close = rest.starts_with(b"--");
            let tail = if close { &rest[2..] } else { rest };
            if tail.iter().all(|b| *b == b' ' || *b == b'\t') {
                delimiters.push((line_start, (line_end + 2).min(body.len()), close));
                if close {
                    break;
                }
            }
        }
        line_start = line_end + 2;
    }
    let (_, mut content_start, first_close) = *delimiters.first()?;
    if first_close {
        return Some(Vec::new());
    }
    let mut parts = Vec::new();
    for &(start, next, close) in &delimiters[1..] {
        // The CRLF before a delimiter belongs to the delimiter.
        let end = start.saturating_sub(2).max(content_start);
        parts.push(&body[content_start..end]);
        content_start = next;
        if close {
            return Some(parts);
        }
    }
    parts.push(&body[content_start.min(body.len())..]);
    Some(parts)
}

/// A message split into the outer header (routing, addressing, subject: stays readable) and
/// the content entity (`Content-*` fields and the body: what gets signed or encrypted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Outer fields, without `Content-*` and `MIME-Version`.
    pub outer: Header,
    /// The content entity: its header (never empty: a missing `Content-Type` becomes the
    /// RFC 2045 default) and body.
    pub content: Vec<u8>,
}

impl Envelope {
    pub fn split(message: &[u8]) -> Envelope {
        let parts = split(message);
        let all = Header::parse(parts.header);
        let (content_fields, outer) =
            all.partition(|f| f.name_is_prefix("content-") || f.name_eq("mime-version"));
        let mut inner = content_fields.without("mime-version");
        if inner.get("content-type").is_none() {
            inner.push("Content-Type", "text/plain; charset=us-ascii");
        }
        let mut content = inner.to_bytes();
        content.extend_from_slice(b"\r\n");
        content.extend_from_slice(parts.body);
        Envelope { outer, content }
    }

    /// The message with `entity` as its content: outer fields, `MIME-Version`, the entity.
    pub fn join(outer: &Header, entity: &[u8]) -> Vec<u8> {
        let mut out = outer.to_bytes();
        out.reserve(entity.len() + 20);
        out.extend_from_slice(b"MIME-Version: 1.0\r\n");
        // An entity that begins with an empty line has no fields: keep that empty line.
        out.extend_from_slice(entity);
        out
    }
}

/// A fresh multipart boundary: random, and with characters that cannot occur in base64 or
/// quoted-printable output (RFC 2046 §5.1.1 advice), so no encoded body can contain it.
pub fn new_boundary() -> String {
    let mut raw = [0u8; 18];
    // Fallback to time-based uniqueness only if the RNG fails, which openssl reports.
    if openssl::rand::rand_bytes(&mut raw).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        raw[..16].copy_from_slice(&t.to_le_bytes());
    }
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    format!("=_postern_{hex}")
}

/// Whether an entity holds a calendar invitation or a TNEF attachment anywhere (these are
/// never encrypted: Outlook and calendar servers must read them, DESIGN.md §4).
pub fn contains_calendar_or_tnef(entity: &[u8]) -> bool {
    walk_types(entity, 0)
}

fn walk_types(entity: &[u8], depth: usize) -> bool {
    if depth > 20 {
        return false;
    }
    let parts = split(entity);
    let header = Header::parse(parts.header);
    let ct = ContentType::of(&header);
    if ct.is("text", "calendar") || ct.is("application", "ms-tnef") {
        return true;
    }
    let named_tnef =
        |v: Option<String>| v.is_some_and(|v| v.to_ascii_lowercase().contains("winmail.dat"));
    if named_tnef(ct.param("name").map(str::to_owned))
        || named_tnef(header.get("content-disposition"))
    {
        return true;
    }
    if ct.type_ == "multipart"
        && let Some(b) = ct.param("boundary")
        && let Some(children) = multipart_parts(parts.body, b)
    {
        return children.iter().any(|c| walk_types(c, depth + 1));
    }
    false
}

/// Re-encodes every leaf whose body holds 8-bit bytes as base64, so a signature survives
/// MTAs that downgrade 8-bit content (RFC 5751 §3.1.2 asks for 7-bit signed content).
/// The decoded content stays byte-identical; `message/*` leaves are left alone (RFC 2046
/// forbids base64 there).
pub fn to_seven_bit(entity: &[u8]) -> Vec<u8> {
    seven_bit(entity, 0)
}

fn seven_bit(entity: &[u8], depth: usize) -> Vec<u8> {
    if entity.is_ascii() || depth > 20 {
        return entity.to_vec();
    }
    let parts = split(entity);
    let header = Header::parse(parts.header);
    let ct = ContentType::of(&header);
    if ct.type_ == "multipart" {
        let Some(boundary) = ct.param("boundary") else {
            return entity.to_vec();
        };
        let Some(children) = multipart_parts(parts.body, boundary) else {
            return entity.to_vec();
        };
        let dash = format!("--{boundary}");
        // Keep preamble and epilogue bytes as they were.
        let first = memchr::memmem::find(parts.body, dash.as_bytes()).unwrap_or(0);
        let mut out = header.to_bytes();
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&parts.body[..first]);
        for child in &children {
            out.extend_from_slice(dash.as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&seven_bit(child, depth + 1));
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(dash.as_bytes());
        out.extend_from_slice(b"--\r\n");
        return out;
    }
    if ct.type_ == "message" {
        return entity.to_vec();
    }
    let cte = header
        .get("content-transfer-encoding")
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if cte == "base64" || cte == "quoted-printable" || parts.body.is_ascii() {
        return entity.to_vec();
    }
    let mut h = header.without("content-transfer-encoding");
    h.push("Content-Transfer-Encoding", "base64");
    let mut out = h.to_bytes();
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&base64_wrapped(parts.body));
    out
}

#[cfg(test)]
mod tests;
