//! The admin web GUI and REST API of real `posternd` processes, driven by headless Chromium
//! (WebDriver) and an HTTPS client: first-boot setup, login with password and TOTP, user
//! enrolment, credential export and a second node joined through its setup page, lockout,
//! CSRF rejection, roles, unauthenticated requests, the API and the CLI sharing one command
//! layer (audit log, message trace, metrics), and schemathesis against the OpenAPI document.
//! Screenshots of the main pages land in `<target>/postern-artifacts/webgui/`.

mod api;
mod sessions;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use postern_tests::browser::Browser;
use postern_tests::posternd::Posternd;
use postern_tests::sink::Sink;
use postern_tests::{free_port, skip};

pub const PASSWORD: &str = "correct horse battery staple";

/// Where screenshots go: beside the build, kept after the run.
pub fn artifacts() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    // <target>/<profile>/deps/e2e-… → <target>/postern-artifacts/webgui
    let target = exe
        .ancestors()
        .nth(3)
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    target.join("postern-artifacts").join("webgui")
}

/// The TOTP code `steps` periods from now (the server accepts one step of drift, and each
/// code only once per account and node). Computed here from RFC 6238 with OpenSSL's HMAC,
/// independently of the code under test, as an authenticator app would.
pub fn code(secret_b32: &str, steps: i64) -> String {
    use openssl::{hash::MessageDigest, pkey::PKey, sign::Signer};
    let secret = data_encoding::BASE32_NOPAD
        .decode(secret_b32.trim_end_matches('=').as_bytes())
        .expect("base32 secret");
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let counter = ((now + steps * 30) / 30) as u64;
    let key = PKey::hmac(&secret).expect("HMAC key");
    let mut signer = Signer::new(MessageDigest::sha1(), &key).expect("signer");
    signer.update(&counter.to_be_bytes()).expect("HMAC");
    let h = signer.sign_to_vec().expect("HMAC");
    let off = usize::from(h[h.len() - 1] & 0x0f);
    let bin = u32::from_be_bytes([h[off] & 0x7f, h[off + 1], h[off + 2], h[off + 3]]);
    format!("{:06}", bin % 1_000_000)
}

/// A browser, or a printed reason to skip (a failure under REQUIRE_PEERS=1).
pub fn browser(test: &str) -> Option<Browser> {
    if let Err(reason) = Browser::available() {
        skip(
            &format!(
                "{test}: skipped: {reason} (scripts/setup.sh installs chromium and chromium-driver)"
            ),
            "REQUIRE_PEERS",
        );
        return None;
    }
    Some(Browser::start(&artifacts()).expect("start Chromium"))
}

/// A node with its own cluster port (returned) relaying to `sink`.
pub fn node(sink: &Sink) -> (Posternd, String) {
    let cluster = format!("127.0.0.1:{}", free_port());
    let p = Posternd::start(
        &sink.addr(),
        "",
        &format!("[cluster]\nlisten = \"{cluster}\"\n"),
    );
    (p, cluster)
}

/// First-boot setup through the API; returns the administrator's TOTP secret.
pub fn setup_api(p: &Posternd, admin: &str) -> String {
    let r = p
        .web_client()
        .request(
            "POST",
            "/api/v1/setup",
            &[("Content-Type", "application/json")],
            serde_json::json!({ "admin": admin, "password": PASSWORD, "domains": ["corp.example"] })
                .to_string()
                .as_bytes(),
        )
        .expect("setup request");
    assert_eq!(r.status, 200, "setup: {}", r.text());
    r.json()["totp_secret"].as_str().expect("secret").to_owned()
}

/// Logs in through the login form.
pub fn login(b: &Browser, base: &str, name: &str, password: &str, code: &str) {
    b.goto(&format!("{base}/login")).expect("login page");
    b.wait_for("#login", Duration::from_secs(10))
        .expect("login form");
    b.find("#name")
        .and_then(|e| e.send_keys(name))
        .expect("name");
    b.find("#password")
        .and_then(|e| e.send_keys(password))
        .expect("password");
    b.find("#code")
        .and_then(|e| e.send_keys(code))
        .expect("code");
    b.find("#login-submit")
        .and_then(|e| e.click())
        .expect("submit");
}

fn page_text(b: &Browser) -> String {
    b.find("body").and_then(|e| e.text()).unwrap_or_default()
}

/// Waits until the page's text contains `what`.
pub fn wait_text(b: &Browser, what: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let t = page_text(b);
        if t.contains(what) {
            return t;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "page {} never showed {what:?}; it shows:\n{t}",
            b.url().unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(150));
    }
}

#[test]
fn first_boot_login_enrol_export_and_join_from_the_browser() {
    let Some(b) = browser("webgui::first_boot") else {
        return;
    };
    let sink = Sink::start(&[]);
    let (a, a_cluster) = node(&sink);
    let base = a.web_url();

    // A fresh node shows nothing but its setup page.
    b.goto(&format!("{base}/users")).expect("open");
    b.wait_for("#create", Duration::from_secs(10))
        .expect("setup page");
    assert!(b.url().expect("url").ends_with("/setup"));
    b.screenshot("01-setup").expect("screenshot");

    // Create the cluster.
    b.find("#admin").and_then(|e| e.clear()).expect("clear");
    b.find("#admin")
        .and_then(|e| e.send_keys("root"))
        .expect("admin");
    b.find("#password")
        .and_then(|e| e.send_keys(PASSWORD))
        .expect("pw");
    b.find("#password2")
        .and_then(|e| e.send_keys(PASSWORD))
        .expect("pw2");
    b.find("#domains")
        .and_then(|e| e.send_keys("corp.example"))
        .expect("domains");
    b.find("#downstream")
        .and_then(|e| e.send_keys(&sink.addr()))
        .expect("downstream");
    b.find("#create-submit")
        .and_then(|e| e.click())
        .expect("create");
    let secret = b
        .wait_for("#totp-secret", Duration::from_secs(20))
        .and_then(|e| e.text())
        .expect("TOTP secret shown");
    assert_eq!(secret.len(), 32, "a 160-bit base32 secret: {secret}");
    // The settings of the setup form are the cluster's now.
    assert_eq!(
        a.ctl_json(&["setting", "get", "relay.downstream"])
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned)),
        Some(sink.addr())
    );
    // Setup is over: the setup page sends to the login now.
    b.goto(&format!("{base}/setup")).expect("setup again");
    b.wait_for("#login", Duration::from_secs(10))
        .expect("login instead");

    // A wrong code is refused; the right one lets the admin in.
    login(&b, &base, "root", PASSWORD, "000000");
    wait_text(&b, "Wrong name, password or code");
    login(&b, &base, "root", PASSWORD, &code(&secret, 0));
    b.wait_for("#members", Duration::from_secs(20))
        .expect("dashboard");
    let dash = wait_text(&b, "leader");
    assert!(dash.contains("root (admin)"), "{dash}");
    let cookies = b.cookies().expect("cookies");
    let session = cookies
        .iter()
        .find(|c| c["name"] == "postern_session")
        .expect("session cookie");
    assert_eq!(session["httpOnly"], true);
    assert_eq!(session["secure"], true);
    assert_eq!(session["sameSite"], "Strict");

    // Enrol a user and see the key.
    b.goto(&format!("{base}/users")).expect("users");
    b.find("#address")
        .and_then(|e| e.send_keys("alice@corp.example"))
        .expect("address");
    b.find("#enrol-submit")
        .and_then(|e| e.click())
        .expect("enrol");
    let users = wait_text(&b, "alice@corp.example enrolled.");
    let serial_shown = b
        .find("#users")
        .and_then(|t| t.text())
        .expect("users table");
    assert!(
        serial_shown.contains("alice@corp.example") && serial_shown.contains("until"),
        "{users}"
    );
    let pem = a.ctl(&["user", "cert", "alice@corp.example"]);
    assert!(pem.contains("BEGIN CERTIFICATE"));
    b.screenshot("03-users").expect("screenshot");
    b.goto(&format!("{base}/")).expect("dashboard");
    b.wait_for("#throughput", Duration::from_secs(10))
        .expect("chart");
    std::thread::sleep(Duration::from_millis(2500));
    b.screenshot("02-dashboard").expect("screenshot");

    // Export credentials from the cluster page (the form's download, fetched by the page).
    b.goto(&format!("{base}/cluster")).expect("cluster page");
    b.wait_for("#export", Duration::from_secs(10))
        .expect("export form");
    b.screenshot("04-cluster").expect("screenshot");
    let got = b
        .execute(
            "const f = document.querySelector('#export');
             const x = new XMLHttpRequest();
             x.open('POST', '/cluster/credentials', false);
             x.setRequestHeader('Content-Type', 'application/x-www-form-urlencoded');
             x.send(new URLSearchParams(new FormData(f)).toString());
             return [x.status, x.getResponseHeader('Content-Disposition'), x.responseText];",
            vec![],
        )
        .expect("export");
    assert_eq!(got[0], 200, "{got}");
    assert!(
        got[1]
            .as_str()
            .unwrap_or("")
            .starts_with("attachment; filename=\"postern-credentials-"),
        "{got}"
    );
    let creds_file = a.dir.join("credentials-from-gui.json");
    std::fs::write(&creds_file, got[2].as_str().expect("credentials")).expect("write");

    // A second node joins through its own setup page.
    let (bn, _) = node(&sink);
    let base_b = bn.web_url();
    b.goto(&format!("{base_b}/")).expect("open B");
    b.wait_for("#join", Duration::from_secs(10))
        .expect("B's setup page");
    b.find("#credentials")
        .and_then(|e| e.send_keys(creds_file.to_str().expect("path")))
        .expect("upload");
    b.find("#peer")
        .and_then(|e| e.send_keys(&a_cluster))
        .expect("peer");
    b.find("#join-submit")
        .and_then(|e| e.click())
        .expect("join");
    let joined = b
        .wait_for("#joined-node", Duration::from_secs(60))
        .and_then(|e| e.text())
        .expect("joined");
    assert_eq!(joined, "2");
    // The same administrator logs in on the new node and sees both members and alice.
    login(&b, &base_b, "root", PASSWORD, &code(&secret, 1));
    b.wait_for("#members", Duration::from_secs(20))
        .expect("B's dashboard");
    let members = b.find("#members").and_then(|t| t.text()).expect("members");
    assert!(members.contains(&a_cluster), "{members}");
    b.goto(&format!("{base_b}/users")).expect("B's users");
    wait_text(&b, "alice@corp.example");

    // Mail, the trace and the audit log.
    let mut c = postern_tests::client::Client::ready(a.addr);
    c.cmd("EHLO upstream.test", 250);
    let r = c.send_mail(
        "alice@corp.example",
        &["bob@partner.example"],
        "From: alice@corp.example\r\nTo: bob@partner.example\r\nSubject: traced\r\n\r\nhello\r\n",
    );
    assert_eq!(r.code, 250, "{r:?}");
    // Cookies are per host, not per port: B's session cookie replaced A's in this browser
    // (on racked appliances each node has its own address). Log in on A again.
    login(&b, &base, "root", PASSWORD, &code(&secret, 1));
    b.wait_for("#members", Duration::from_secs(20))
        .expect("A's dashboard");
    b.goto(&format!("{base}/trace")).expect("trace");
    let trace = wait_text(&b, "bob@partner.example");
    assert!(trace.contains("signed"), "{trace}");
    b.screenshot("05-trace").expect("screenshot");
    b.goto(&format!("{base}/audit")).expect("audit");
    let audit = wait_text(&b, "user-enrol");
    assert!(
        audit.contains("cluster-export-credentials") && audit.contains("setup"),
        "{audit}"
    );
    b.screenshot("06-audit").expect("screenshot");
    b.goto(&format!("{base}/policies")).expect("policies");
    wait_text(&b, "crypto.internal_domains");
    b.screenshot("07-policies").expect("screenshot");
    b.goto(&format!("{base}/admins")).expect("admins");
    wait_text(&b, "API tokens");
    b.screenshot("08-admins").expect("screenshot");

    // This node's network: static settings from the form land in the data directory's
    // network.conf (what the appliance's postern-settings applies), with a request to apply;
    // a bad address is refused with the reason and changes nothing.
    b.goto(&format!("{base}/network")).expect("network");
    wait_text(&b, "DHCP");
    b.find("#addresses")
        .and_then(|e| e.send_keys("192.0.2.10/24"))
        .expect("addresses");
    b.find("#gateways")
        .and_then(|e| e.send_keys("192.0.2.1"))
        .expect("gateways");
    b.find("#dns")
        .and_then(|e| e.send_keys("192.0.2.53, 198.51.100.53"))
        .expect("dns");
    b.find("#network-save")
        .and_then(|e| e.click())
        .expect("save");
    wait_text(&b, "Network: 192.0.2.10/24; applied.");
    b.screenshot("11-network").expect("screenshot");
    let data = a.dir.join("data");
    let conf = std::fs::read_to_string(data.join("network.conf")).expect("network.conf");
    assert!(
        conf.contains(
            "ADDRESS=192.0.2.10/24\nGATEWAY=192.0.2.1\nDNS=192.0.2.53\nDNS=198.51.100.53\n"
        ),
        "{conf}"
    );
    assert!(data.join("network.apply").exists());
    b.find("#addresses")
        .and_then(|e| {
            e.clear()?;
            e.send_keys("192.0.2.300/24")
        })
        .expect("addresses");
    b.find("#network-save")
        .and_then(|e| e.click())
        .expect("save");
    wait_text(
        &b,
        "address \"192.0.2.300/24\": an IP address with its prefix length",
    );
    assert_eq!(
        std::fs::read_to_string(data.join("network.conf")).expect("network.conf"),
        conf
    );
    let audit = a.ctl(&["audit"]);
    assert!(audit.contains("network-set"), "{audit}");
}

#[test]
fn lockout_after_repeated_bad_passwords() {
    let Some(b) = browser("webgui::lockout") else {
        return;
    };
    let sink = Sink::start(&[]);
    let (p, _) = node(&sink);
    let secret = setup_api(&p, "root");
    let base = p.web_url();
    for _ in 0..5 {
        login(&b, &base, "root", "not the password", &code(&secret, 0));
        wait_text(&b, "Wrong name, password or code");
    }
    assert!(page_text(&b).contains("locked"), "{}", page_text(&b));
    // Even the right password and code are refused now.
    login(&b, &base, "root", PASSWORD, &code(&secret, 0));
    let t = wait_text(&b, "locked for");
    assert!(!t.contains("Dashboard"), "{t}");
    b.screenshot("09-locked").expect("screenshot");
    assert!(p.log().contains("login refused: account locked"));
}

#[test]
fn forms_without_the_sessions_csrf_token_are_refused() {
    let Some(b) = browser("webgui::csrf") else {
        return;
    };
    let sink = Sink::start(&[]);
    let (p, _) = node(&sink);
    let secret = setup_api(&p, "root");
    let base = p.web_url();
    login(&b, &base, "root", PASSWORD, &code(&secret, 0));
    b.wait_for("#members", Duration::from_secs(20))
        .expect("dashboard");
    b.goto(&format!("{base}/users")).expect("users");
    b.wait_for("#enrol", Duration::from_secs(10)).expect("form");
    // A forged form: the page's own, with another token.
    b.execute(
        "document.querySelector('#enrol input[name=csrf]').value = 'f'.repeat(64);",
        vec![],
    )
    .expect("forge");
    b.find("#address")
        .and_then(|e| e.send_keys("mallory@corp.example"))
        .expect("address");
    b.find("#enrol-submit")
        .and_then(|e| e.click())
        .expect("submit");
    wait_text(&b, "CSRF check failed");
    b.screenshot("10-csrf").expect("screenshot");
    assert!(
        p.ctl_json(&["user", "list"])
            .expect("list")
            .as_array()
            .expect("array")
            .is_empty()
    );
    // A cookie-authenticated API write without X-CSRF-Token is refused too.
    let status = b
        .execute(
            "const x = new XMLHttpRequest();
             x.open('POST', '/api/v1/users', false);
             x.setRequestHeader('Content-Type', 'application/json');
             x.send(JSON.stringify({address: 'mallory@corp.example'}));
             return x.status;",
            vec![],
        )
        .expect("api");
    assert_eq!(status, 403);
    // The genuine form works.
    b.goto(&format!("{base}/users")).expect("users");
    b.wait_for("#enrol", Duration::from_secs(10)).expect("form");
    b.find("#address")
        .and_then(|e| e.send_keys("carol@corp.example"))
        .expect("address");
    b.find("#enrol-submit")
        .and_then(|e| e.click())
        .expect("submit");
    wait_text(&b, "carol@corp.example enrolled.");
    // Forms that hand out a secret show it once: a new API token, a new administrator.
    b.goto(&format!("{base}/admins")).expect("admins");
    b.find("#tname")
        .and_then(|e| e.send_keys("grafana"))
        .expect("token name");
    b.find("#token-create button")
        .and_then(|e| e.click())
        .expect("create token");
    let token = b
        .wait_for("#api-token", Duration::from_secs(20))
        .and_then(|e| e.text())
        .expect("token shown");
    assert_eq!(token.len(), 64, "{token}");
    b.find("#aname")
        .and_then(|e| e.send_keys("ops"))
        .expect("admin name");
    b.find("#apassword")
        .and_then(|e| e.send_keys(PASSWORD))
        .expect("admin password");
    b.find("#admin-add button")
        .and_then(|e| e.click())
        .expect("add admin");
    b.wait_for("#totp-secret", Duration::from_secs(20))
        .expect("TOTP secret shown");
    let admins = b
        .find("#admins")
        .and_then(|t| t.text())
        .expect("admins table");
    assert!(admins.contains("ops"), "{admins}");
    // Logging out ends the session: the cookie no longer opens pages.
    b.find("#logout").and_then(|e| e.click()).expect("logout");
    wait_text(&b, "Logged out.");
    b.goto(&format!("{base}/users")).expect("users");
    b.wait_for("#login", Duration::from_secs(10))
        .expect("back at the login");
}
