//! The page frame and the small pieces every page uses: the navigation, notices, tables,
//! one-button forms, the CSRF field, dates, and percent-encoding for links.

use maud::{DOCTYPE, Markup, html};
use postern_api::Role;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::app::Admin;

/// The navigation: where each page lives and its name.
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

/// Who a page is for: the signed-in name, role and CSRF token, and whether the page
/// offers its write forms.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    pub name: &'a str,
    pub role: Role,
    pub csrf: &'a str,
    writes: bool,
}

impl<'a> Viewer<'a> {
    pub fn of(a: &'a Admin) -> Viewer<'a> {
        Viewer {
            name: &a.actor.name,
            role: a.actor.role,
            csrf: &a.csrf,
            writes: a.can_change(),
        }
    }

    /// A viewer for the render tests.
    #[cfg(test)]
    pub fn new(name: &'a str, role: Role, csrf: &'a str) -> Viewer<'a> {
        Viewer {
            name,
            role,
            csrf,
            writes: role >= Role::Admin,
        }
    }

    /// Whether the page offers its write forms.
    pub fn can_change(&self) -> bool {
        self.writes
    }

    /// The CSRF token for the write forms, if the viewer may write.
    pub fn writer(&self) -> Option<&'a str> {
        self.can_change().then_some(self.csrf)
    }
}

/// A line of feedback: `Ok` good news, `Err` a problem.
pub type Notice<'a> = Option<Result<&'a str, &'a str>>;

/// A whole page. `active` is the navigation entry to highlight; the navigation and the
/// logout form are there only for a signed-in viewer.
pub fn page(
    node: &str,
    title: &str,
    active: &str,
    viewer: Option<&Viewer<'_>>,
    notice: Notice<'_>,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Postern " (node) }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body {
                header {
                    span.brand { "Postern" } " " span.node { (node) }
                    @if let Some(v) = viewer { (nav(v, active)) }
                }
                main { h1 { (title) } (notice_line(notice)) (body) }
            }
        }
    }
}

fn nav(v: &Viewer<'_>, active: &str) -> Markup {
    html! {
        nav {
            @for (href, label) in NAV {
                a href=(href) class=[(*href == active).then_some("active")] { (label) }
            }
            form method="post" action="/logout" class="logout" {
                (csrf_field(v.csrf))
                span #who { (v.name) " (" (v.role.as_str()) ")" }
                " "
                button type="submit" #logout { "Log out" }
            }
        }
    }
}

fn notice_line(notice: Notice<'_>) -> Markup {
    html! {
        @match notice {
            Some(Ok(m)) => p.notice.ok #notice { (m) },
            Some(Err(m)) => p.notice.error #notice { (m) },
            None => {},
        }
    }
}

/// A problem shown inside a page (a part that could not be read).
pub fn error_line(msg: &str) -> Markup {
    html! { p.notice.error { (msg) } }
}

/// A table from a header row and rows of cells, or the `empty` line when there are none.
pub fn table(id: &str, head: &[&str], rows: &[Vec<Markup>], empty: &str) -> Markup {
    if rows.is_empty() {
        return html! { p.empty id=(id) { (empty) } };
    }
    html! {
        table id=(id) {
            thead { tr { @for h in head { th { (h) } } } }
            tbody {
                @for row in rows { tr { @for cell in row { td { (cell) } } } }
            }
        }
    }
}

/// Cells one below the other (certificates, recipients, problems).
pub fn lines<T: maud::Render>(items: impl IntoIterator<Item = T>) -> Markup {
    html! {
        @for (i, item) in items.into_iter().enumerate() {
            @if i > 0 { br; }
            (item)
        }
    }
}

/// The hidden field every form carries.
pub fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// A one-button form posting `fields` (name, value) to `action`.
pub fn button(
    action: &str,
    csrf: &str,
    fields: &[(&str, &str)],
    label: &str,
    class: &str,
) -> Markup {
    html! {
        form method="post" action=(action) class="inline" {
            (csrf_field(csrf))
            @for (k, v) in fields { input type="hidden" name=(k) value=(v); }
            button type="submit" class=(class) { (label) }
        }
    }
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS` (UTC); past the year 9999, the number.
pub fn datetime(secs: u64) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    i64::try_from(secs)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| secs.to_string())
}

/// Percent-encodes a path segment or query value.
pub fn url(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "<script>alert(\"x\")</script> & 'q'";

    #[test]
    fn dates_render_as_before() {
        assert_eq!(datetime(0), "1970-01-01 00:00:00");
        assert_eq!(datetime(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(datetime(1_795_000_000), "2026-11-18 11:06:40");
        assert_eq!(datetime(u64::MAX), u64::MAX.to_string());
    }

    #[test]
    fn urls_are_percent_encoded() {
        assert_eq!(url("a b/c@d"), "a%20b%2Fc@d");
        assert_eq!(url("\"<é>"), "%22%3C%C3%A9%3E");
    }

    #[test]
    fn navigation_only_with_a_viewer() {
        let v = Viewer::new("root", Role::Admin, "c5rf");
        let signed_in = page("n1", "Users", "/users", Some(&v), None, html! {}).into_string();
        assert!(signed_in.contains("<nav>"), "{signed_in}");
        assert!(signed_in.contains(r#"<a href="/users" class="active">Users</a>"#));
        assert!(signed_in.contains(r#"<span id="who">root (admin)</span>"#));
        assert!(signed_in.contains(r#"name="csrf" value="c5rf""#));
        let anonymous = page("n1", "Log in", "", None, None, html! {}).into_string();
        assert!(!anonymous.contains("<nav"), "{anonymous}");
        assert!(!anonymous.contains("logout"), "{anonymous}");
        assert!(anonymous.starts_with("<!DOCTYPE html>"));
        assert!(anonymous.contains("<title>Log in · Postern n1</title>"));
    }

    #[test]
    fn hostile_text_is_escaped_everywhere() {
        let v = Viewer::new(HOSTILE, Role::Readonly, HOSTILE);
        let rows = vec![vec![html! { (HOSTILE) }]];
        let body = html! {
            (table("t", &[HOSTILE], &rows, HOSTILE))
            (button("/x", HOSTILE, &[("name", HOSTILE)], HOSTILE, "small"))
        };
        let out = page(HOSTILE, HOSTILE, "", Some(&v), Some(Err(HOSTILE)), body).into_string();
        assert!(!out.contains("<script>alert"), "{out}");
        assert!(!out.contains("\"x\""), "{out}");
        assert!(out.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; 'q'"));
        assert!(out.contains(r#"<p class="notice error" id="notice">&lt;script&gt;"#));
    }

    #[test]
    fn empty_tables_say_so() {
        let out = table("users", &["Address"], &[], "No users enrolled yet.").into_string();
        assert_eq!(
            out,
            r#"<p class="empty" id="users">No users enrolled yet.</p>"#
        );
        let two = lines(["a", "<b>"]).into_string();
        assert_eq!(two, "a<br>&lt;b&gt;");
    }
}
