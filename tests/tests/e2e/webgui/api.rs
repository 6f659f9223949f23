//! The REST API through HTTPS: it and `posternctl` share one command layer (what one does
//! the other sees, both in the audit log), roles, unauthenticated requests, metrics, the
//! message trace, and schemathesis checking the API against its OpenAPI document.

use postern_tests::peers::Peer;

use postern_tests::posternd::Posternd;
use postern_tests::sink::Sink;

use super::{node, setup_api};

fn token(p: &Posternd, name: &str, role: &str) -> String {
    let v = p
        .ctl_json(&["token", "create", name, "--role", role])
        .expect("token create");
    v["token"].as_str().expect("token").to_owned()
}

#[test]
fn api_and_cli_share_one_command_layer() {
    let sink = Sink::start(&[]);
    let (p, _) = node(&sink);
    setup_api(&p, "root");
    let api = p.web_client();
    let admin = token(&p, "ci", "admin");

    // Enrolled through the API, seen by the CLI; and the other way round.
    let r = api
        .json(
            "POST",
            "/api/v1/users",
            &admin,
            Some(serde_json::json!({ "address": "alice@corp.example" })),
        )
        .expect("enrol");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["address"], "alice@corp.example");
    assert!(p.ctl(&["user", "list"]).contains("alice@corp.example"));
    p.ctl(&["user", "enrol", "bob@corp.example"]);
    let list = api
        .json("GET", "/api/v1/users", &admin, None)
        .expect("list")
        .json();
    let names: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|u| u["address"].as_str())
        .collect();
    assert_eq!(names, ["alice@corp.example", "bob@corp.example"]);
    let pem = api
        .json(
            "GET",
            "/api/v1/users/alice@corp.example/certificate",
            &admin,
            None,
        )
        .expect("cert")
        .json();
    assert!(pem.as_str().unwrap_or("").contains("BEGIN CERTIFICATE"));
    let missing = api
        .json(
            "GET",
            "/api/v1/users/nobody@corp.example/certificate",
            &admin,
            None,
        )
        .expect("cert");
    assert_eq!(missing.status, 404, "{}", missing.text());
    assert_eq!(missing.json()["kind"], "not-found");

    // Bad input gets a clear 400, never a 5xx.
    let bad = api
        .request(
            "POST",
            "/api/v1/users",
            &[
                ("Authorization", &format!("Bearer {admin}")),
                ("Content-Type", "application/json"),
            ],
            b"{not json",
        )
        .expect("bad json");
    assert_eq!(bad.status, 400, "{}", bad.text());
    let bad = api
        .json(
            "PUT",
            "/api/v1/settings/crypto.always_encrypt",
            &admin,
            Some(serde_json::json!({ "value": "maybe" })),
        )
        .expect("bad setting");
    assert_eq!(bad.status, 400);
    assert!(
        bad.json()["error"]
            .as_str()
            .unwrap_or("")
            .contains("not true or false")
    );
    // A join token lives 60 s to 7 days: a lifetime outside is refused, never changed.
    let bad = api
        .json(
            "POST",
            "/api/v1/cluster/credentials",
            &admin,
            Some(serde_json::json!({ "ttl_secs": 1 })),
        )
        .expect("credentials with ttl 1");
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(
        bad.text().contains("60 to 604800 seconds"),
        "{}",
        bad.text()
    );

    // A readonly token reads but cannot change anything.
    let ro = token(&p, "grafana", "readonly");
    assert_eq!(
        api.json("GET", "/api/v1/users", &ro, None)
            .expect("ro list")
            .status,
        200
    );
    let denied = api
        .json(
            "POST",
            "/api/v1/users",
            &ro,
            Some(serde_json::json!({ "address": "eve@corp.example" })),
        )
        .expect("ro enrol");
    assert_eq!(denied.status, 403, "{}", denied.text());
    assert_eq!(
        api.json(
            "POST",
            "/api/v1/users/alice@corp.example/pkcs12",
            &ro,
            Some(serde_json::json!({ "password": "0123456789" }))
        )
        .expect("ro pkcs12")
        .status,
        403,
        "a readonly token gets no private keys"
    );

    // This node's network settings: readonly reads, admin replaces; bad input is 400; the
    // update endpoint needs admin before it reads a byte, and a node that is not an appliance
    // image takes no bundles.
    let net = api.json("GET", "/api/v1/network", &ro, None).expect("net");
    assert_eq!(
        (net.status, net.json()["mode"].as_str()),
        (200, Some("dhcp"))
    );
    let put = |t: &str, v: serde_json::Value| {
        api.json("PUT", "/api/v1/network", t, Some(v)).expect("put")
    };
    assert_eq!(
        put(&ro, serde_json::json!({ "addresses": ["192.0.2.10/24"] })).status,
        403
    );
    let bad = put(
        &admin,
        serde_json::json!({ "addresses": ["192.0.2.10"], "gateways": ["192.0.2.1"] }),
    );
    assert_eq!(bad.status, 400, "{}", bad.text());
    let good = put(
        &admin,
        serde_json::json!({ "addresses": ["2001:db8::25/64"], "gateways": ["2001:db8::1"] }),
    );
    assert_eq!(
        (good.status, good.json()["mode"].as_str()),
        (200, Some("static")),
        "{}",
        good.text()
    );
    let conf = std::fs::read_to_string(p.dir.join("data/network.conf")).expect("conf");
    assert!(
        conf.contains("ADDRESS=2001:db8::25/64\nGATEWAY=2001:db8::1\n"),
        "{conf}"
    );
    let dhcp = put(&admin, serde_json::json!({}));
    assert_eq!(dhcp.json()["mode"], "dhcp", "{}", dhcp.text());
    assert!(!p.dir.join("data/network.conf").exists());
    let upload = |t: &str| {
        api.request(
            "POST",
            "/api/v1/system/update",
            &[
                ("Authorization", &format!("Bearer {t}")),
                ("Content-Type", "application/octet-stream"),
            ],
            b"POSTERN-UPDATE/1\n",
        )
        .expect("update")
    };
    assert_eq!(upload(&ro).status, 403);
    let r = upload(&admin);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("takes no update bundles"), "{}", r.text());
    let sys = api
        .json("GET", "/api/v1/system", &ro, None)
        .expect("system")
        .json();
    assert_eq!(sys["updates"], false, "{sys}");
    assert!(sys["slot"].is_null(), "{sys}");

    // The audit log holds both surfaces' actions; the CLI sees the API's and vice versa.
    let audit = api
        .json("GET", "/api/v1/audit?limit=50", &admin, None)
        .expect("audit")
        .json();
    let entries = audit.as_array().expect("array");
    assert!(
        entries.iter().any(|e| e["action"] == "user-enrol"
            && e["via"] == "api"
            && e["actor"] == "token:ci"
            && e["detail"] == "alice@corp.example"),
        "{audit}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "user-enrol" && e["via"] == "cli" && e["actor"] == "local"),
        "{audit}"
    );
    assert!(
        !audit.to_string().contains("0123456789"),
        "no secrets in the audit log"
    );
    assert!(p.ctl(&["audit"]).contains("user-enrol"));

    // Mail shows in the trace and the counters.
    let mut c = postern_tests::client::Client::ready(p.addr);
    c.cmd("EHLO upstream.test", 250);
    let r = c.send_mail(
        "alice@corp.example",
        &["carol@partner.example"],
        "Subject: hi\r\n\r\nhello\r\n",
    );
    assert_eq!(r.code, 250, "{r:?}");
    let trace = api
        .json("GET", "/api/v1/trace?limit=5", &ro, None)
        .expect("trace")
        .json();
    assert_eq!(trace[0]["sender"], "alice@corp.example", "{trace}");
    assert_eq!(trace[0]["recipients"][0], "carol@partner.example");
    assert_eq!(trace[0]["code"], 250);
    assert!(
        !trace.to_string().contains("hello"),
        "the trace never holds bodies"
    );
    let metrics = api
        .get("/metrics", &[("Authorization", &format!("Bearer {ro}"))])
        .expect("metrics");
    assert_eq!(metrics.status, 200);
    let m = metrics.text();
    assert!(m.contains("postern_messages_delivered_total 1"), "{m}");
    assert!(m.contains("postern_cluster_is_leader 1"), "{m}");
    assert!(m.contains("postern_users 2"), "{m}");

    // A revoked token is dead at once.
    p.ctl(&["token", "revoke", "grafana"]);
    assert_eq!(
        api.json("GET", "/api/v1/users", &ro, None)
            .expect("revoked")
            .status,
        401
    );
}

#[test]
fn unauthenticated_requests_get_nothing_but_the_login_page() {
    let sink = Sink::start(&[]);
    let (p, _) = node(&sink);
    let web = p.web_client();
    // Before setup: everything leads to the setup page.
    let r = web.get("/users", &[]).expect("get");
    assert_eq!((r.status, r.header("location")), (303, Some("/setup")));
    setup_api(&p, "root");
    p.ctl(&["user", "enrol", "alice@corp.example"]);
    for path in [
        "/",
        "/users",
        "/cluster",
        "/trace",
        "/audit",
        "/admins",
        "/policies",
        "/partners",
        "/ca.pem",
        "/users/alice@corp.example/certificate.pem",
        "/no/such/page",
        "/setup",
    ] {
        let r = web.get(path, &[]).expect("get");
        assert_eq!(
            (r.status, r.header("location")),
            (303, Some("/login")),
            "{path}"
        );
        assert!(!r.text().contains("alice"), "{path} leaked data");
    }
    // Forged session cookies are no better.
    let r = web
        .get("/users", &[("Cookie", "postern_session=0000")])
        .expect("get");
    assert_eq!(r.header("location"), Some("/login"));
    // Forms posted without a session: to the login as well, nothing done.
    let r = web
        .request(
            "POST",
            "/users/enrol",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            b"csrf=x&address=eve%40corp.example",
        )
        .expect("post");
    assert_eq!(r.header("location"), Some("/login"));
    assert!(!p.ctl(&["user", "list"]).contains("eve@"));
    let login = web.get("/login", &[]).expect("login page");
    assert_eq!(login.status, 200);
    assert!(login.text().contains("Authenticator code"));
    assert_eq!(login.header("x-frame-options"), Some("DENY"));
    assert!(
        login
            .header("content-security-policy")
            .is_some_and(|c| c.contains("frame-ancestors 'none'"))
    );
    // The API answers 401 for every documented operation without a token.
    let doc: serde_json::Value = serde_json::from_str(&postern_webgui_doc(&p)).expect("document");
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("ops").keys() {
            if path == "/setup" {
                continue;
            }
            let concrete = path
                .replace("{address}", "alice@corp.example")
                .replace("{key}", "k")
                .replace("{id}", "2")
                .replace("{name}", "root");
            let r = web
                .request(
                    &method.to_uppercase(),
                    &format!("/api/v1{concrete}"),
                    &[("Content-Type", "application/json")],
                    b"{}",
                )
                .expect("api");
            assert_eq!(r.status, 401, "{method} {path}: {}", r.text());
            assert!(!r.text().contains("alice@corp.example"));
        }
    }
    assert_eq!(web.get("/metrics", &[]).expect("metrics").status, 401);
    let bogus = web
        .get("/api/v1/users", &[("Authorization", "Bearer 1234")])
        .expect("bogus");
    assert_eq!(bogus.status, 401);
    // Setup cannot be repeated.
    let again = web
        .request(
            "POST",
            "/api/v1/setup",
            &[("Content-Type", "application/json")],
            br#"{"admin":"eve","password":"0123456789ab"}"#,
        )
        .expect("setup again");
    assert_eq!(again.status, 409);
}

/// The OpenAPI document, fetched with a readonly token.
fn postern_webgui_doc(p: &Posternd) -> String {
    let t = token(p, "doc", "readonly");
    let r = p
        .web_client()
        .get(
            "/api/v1/openapi.json",
            &[("Authorization", &format!("Bearer {t}"))],
        )
        .expect("document");
    assert_eq!(r.status, 200);
    r.text()
}

#[test]
fn schemathesis_finds_the_api_true_to_its_openapi_document() {
    if !postern_tests::peers_available("webgui::schemathesis", &[Peer::Schemathesis]) {
        return;
    }
    let sink = Sink::start(&[]);
    let (p, _) = node(&sink);
    setup_api(&p, "root");
    let admin = token(&p, "schemathesis", "admin");
    let doc = p.dir.join("openapi.json");
    std::fs::write(&doc, postern_webgui_doc(&p)).expect("write document");
    let report = super::artifacts().join("schemathesis");
    let out = Peer::Schemathesis
        .command()
        .arg("run")
        .arg(&doc)
        .args(["--url", &format!("https://localhost:{}/api/v1", p.web.port())])
        .args(["--tls-verify", p.dir.join("data/web/self-signed.crt").to_str().expect("path")])
        .args(["-H", &format!("Authorization: Bearer {admin}")])
        .args(["--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection,ignored_auth"])
        .args(["--max-examples", "8", "--seed", "1", "--workers", "1", "--no-color"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-time", "60"])
        // Not run blind: leaving the cluster or removing members and accounts.
        .args(["--exclude-path-regex", "^/(cluster/join|cluster/members|admins/|tokens/)"])
        .args(["--report", "junit", "--report-dir", report.to_str().expect("path")])
        .args(["--generation-database", "none"])
        .current_dir(&p.dir.path)
        .env("NO_COLOR", "1")
        .output()
        .expect("run schemathesis");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "{}",
        text.lines()
            .rev()
            .take(25)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(out.status.success(), "schemathesis found problems:\n{text}");
    assert!(
        !p.log().contains("panicked"),
        "posternd panicked:\n{}",
        p.log()
    );
}
