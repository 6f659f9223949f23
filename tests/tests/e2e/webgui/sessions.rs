//! Sessions follow the replicated accounts: an administrator logged in on node B in
//! Chromium loses write forms the moment node A's `posternctl` demotes them, is sent to the
//! login page when A gives them a new password, and again when A removes the account —
//! each within 2 s, on the next click.

use std::time::{Duration, Instant};

use postern_tests::browser::Browser;
use postern_tests::sink::Sink;
use postern_tests::wait_for;

use super::{PASSWORD, browser, code, login, node, setup_api};

/// How soon a change made on another node must reach a session.
const WITHIN: Duration = Duration::from_secs(2);

/// Opens `/users` on `base` and tells where the browser ended up: the login page (None) or
/// the users page, with whether it offers the enrol form.
fn users_page(b: &Browser, base: &str) -> Option<bool> {
    b.goto(&format!("{base}/users")).expect("users page");
    let url = b.url().unwrap_or_default();
    if url.ends_with("/login") {
        return None;
    }
    b.wait_for("#users", Duration::from_secs(10))
        .expect("the users page");
    Some(b.find("#enrol-submit").is_ok())
}

/// Waits (at most [`WITHIN`] after `since`) until the page on `base` is `want`.
fn reaches(b: &Browser, base: &str, want: Option<bool>, since: Instant, what: &str) {
    let got = wait_for(WITHIN, || (users_page(b, base) == want).then_some(()));
    assert!(
        got.is_some(),
        "{what}: after {:?} the page is still {:?}, not {want:?}",
        since.elapsed(),
        users_page(b, base)
    );
    eprintln!(
        "webgui::sessions: {what} reached node B's session after {:.0} ms",
        since.elapsed().as_secs_f64() * 1000.0
    );
}

#[test]
fn sessions_follow_account_changes_made_on_another_node() {
    let Some(b) = browser("webgui::sessions") else {
        return;
    };
    let sink = Sink::start(&[]);
    let (a, a_cluster) = node(&sink);
    let (nb, _) = node(&sink);
    setup_api(&a, "root");
    let creds = a.export_credentials("b");
    nb.join_cluster(&creds, &a_cluster).expect("node B joins");
    wait_for(Duration::from_secs(30), || {
        let s = a.ctl_json(&["cluster", "status"]).ok()?;
        (s["voters"].as_array()?.len() == 2).then_some(())
    })
    .expect("two voters");

    // An administrator made on A with the CLI, who logs in on B.
    let pw = a.dir.join("ops-password");
    std::fs::write(&pw, PASSWORD).expect("password file");
    let pw = pw.to_str().expect("path");
    let made = a
        .ctl_json(&[
            "admin",
            "add",
            "ops",
            "--password-file",
            pw,
            "--role",
            "admin",
        ])
        .expect("admin add");
    let secret = made["totp_secret"].as_str().expect("secret").to_owned();
    wait_for(Duration::from_secs(10), || {
        nb.ctl_json(&["admin", "list"])
            .ok()?
            .as_array()?
            .iter()
            .any(|a| a["name"] == "ops")
            .then_some(())
    })
    .expect("B knows ops");
    let base = nb.web_url();
    login(&b, &base, "ops", PASSWORD, &code(&secret, 0));
    b.wait_for("#members", Duration::from_secs(20))
        .expect("dashboard on B");
    assert_eq!(users_page(&b, &base), Some(true), "an admin can enrol");

    // Demoted on A: the next page on B has no write forms.
    a.ctl(&["admin", "role", "ops", "readonly"]);
    reaches(&b, &base, Some(false), Instant::now(), "the demotion");
    // Promoted again: the same session writes again.
    a.ctl(&["admin", "role", "ops", "admin"]);
    reaches(&b, &base, Some(true), Instant::now(), "the promotion");

    // A new password on A: the session on B ends.
    let pw2 = a.dir.join("ops-password-2");
    std::fs::write(&pw2, "another correct horse battery").expect("password file");
    a.ctl(&[
        "admin",
        "password",
        "ops",
        "--password-file",
        pw2.to_str().expect("path"),
    ]);
    reaches(&b, &base, None, Instant::now(), "the new password");

    // With the new password B lets ops in again; removed on A, the session ends.
    login(
        &b,
        &base,
        "ops",
        "another correct horse battery",
        &code(&secret, 1),
    );
    b.wait_for("#members", Duration::from_secs(20))
        .expect("dashboard on B after the new password");
    a.ctl(&["admin", "remove", "ops"]);
    reaches(&b, &base, None, Instant::now(), "the removal");
    let audit = a.ctl(&["audit", "--limit", "20"]);
    for action in ["admin-role", "admin-password", "admin-remove"] {
        assert!(audit.contains(action), "{action} not audited:\n{audit}");
    }
}
