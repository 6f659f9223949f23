//! Server-rendered HTML: escaping and the page frame. No templates engine, no front-end
//! build: pages are small functions of the data they show.

use std::fmt::Write as _;

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a path segment or query value.
pub fn url(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

const NAV: &[(&str, &str)] = &[
    ("/", "Dashboard"),
    ("/users", "Users"),
    ("/partners", "Partners & domains"),
    ("/policies", "Policies"),
    ("/cluster", "Cluster"),
    ("/network", "Network"),
    ("/trace", "Message trace"),
    ("/audit", "Audit log"),
    ("/admins", "Administrators"),
];

/// Who the page is for: the signed-in name, role, CSRF token.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    pub name: &'a str,
    pub role: &'a str,
    pub csrf: &'a str,
}

/// A whole page. `active` is the navigation entry to highlight; `notice` a line of feedback
/// (`Ok` good news, `Err` a problem).
pub fn page(
    node: &str,
    title: &str,
    active: &str,
    viewer: Option<Viewer<'_>>,
    notice: Option<Result<&str, &str>>,
    body: &str,
) -> String {
    let mut nav = String::new();
    if let Some(v) = viewer {
        nav.push_str("<nav>");
        for (href, label) in NAV {
            let cls = if *href == active {
                " class=\"active\""
            } else {
                ""
            };
            let _ = write!(nav, "<a href=\"{href}\"{cls}>{label}</a>");
        }
        let _ = write!(
            nav,
            "<form method=\"post\" action=\"/logout\" class=\"logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><span id=\"who\">{} ({})</span> <button type=\"submit\" id=\"logout\">Log out</button></form></nav>",
            esc(v.csrf),
            esc(v.name),
            esc(v.role)
        );
    }
    let notice = match notice {
        Some(Ok(m)) => format!("<p class=\"notice ok\" id=\"notice\">{}</p>", esc(m)),
        Some(Err(m)) => format!("<p class=\"notice error\" id=\"notice\">{}</p>", esc(m)),
        None => String::new(),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{t} · Postern {n}</title><link rel=\"stylesheet\" href=\"/static/app.css\"><script src=\"/static/app.js\" defer></script></head><body><header><span class=\"brand\">Postern</span> <span class=\"node\">{n}</span>{nav}</header><main><h1>{t}</h1>{notice}{body}</main></body></html>",
        t = esc(title),
        n = esc(node),
    )
}

/// A table from a header row and rows of already-escaped cells.
pub fn table(id: &str, head: &[&str], rows: &[Vec<String>], empty: &str) -> String {
    if rows.is_empty() {
        return format!("<p class=\"empty\" id=\"{id}\">{}</p>", esc(empty));
    }
    let mut t = format!("<table id=\"{id}\"><thead><tr>");
    for h in head {
        let _ = write!(t, "<th>{}</th>", esc(h));
    }
    t.push_str("</tr></thead><tbody>");
    for r in rows {
        t.push_str("<tr>");
        for c in r {
            let _ = write!(t, "<td>{c}</td>");
        }
        t.push_str("</tr>");
    }
    t.push_str("</tbody></table>");
    t
}

/// A one-button form posting `fields` (name, value) to `action`.
pub fn button(
    action: &str,
    csrf: &str,
    fields: &[(&str, &str)],
    label: &str,
    class: &str,
) -> String {
    let mut f = format!(
        "<form method=\"post\" action=\"{}\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(action),
        esc(csrf)
    );
    for (k, v) in fields {
        let _ = write!(
            f,
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            esc(k),
            esc(v)
        );
    }
    let _ = write!(
        f,
        "<button type=\"submit\" class=\"{class}\">{}</button></form>",
        esc(label)
    );
    f
}

/// The UTC calendar date and time of `secs` since the epoch: (year, month 1-12, day,
/// hour, minute, second). Howard Hinnant's civil-from-days (postern-crypto's mime::date
/// has the same for the mail path; this crate does not depend on it).
fn civil(secs: u64) -> (i64, u32, u32, u64, u64, u64) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn time(secs: u64) -> String {
    let (y, m, d, hh, mm, ss) = civil(secs);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(url("a b/c@d"), "a%20b%2Fc@d");
    }

    #[test]
    fn times() {
        assert_eq!(time(0), "1970-01-01 00:00:00");
        assert_eq!(time(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(time(1_795_000_000), "2026-11-18 11:06:40");
    }
}
