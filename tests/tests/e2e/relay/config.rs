//! Start-up errors: every configuration problem reported at once with its key, and clear
//! messages for an unusable certificate and a port in use.

use std::time::Duration;

use postern_tests::Scratch;
use postern_tests::posternd::run;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn relay_config_errors_are_all_reported_with_their_keys() {
    let dir = Scratch::new("cfg");
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"here\"\nmax_connections = 0\ncolour = 1\n[smtp]\ndata_timeout = \"soon\"\n[downstream]\naddress = \"no-port\"\ntls = \"sometimes\"\n",
    )
    .expect("write");
    let out = run(
        &["--config", path.to_str().expect("path"), "--check-config"],
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(78), "EX_CONFIG: {}", stderr(&out));
    let err = stderr(&out);
    for key in [
        "server.listen",
        "server.max_connections",
        "server.colour: unknown key",
        "smtp.data_timeout",
        "downstream.address",
        "downstream.tls",
    ] {
        assert!(err.contains(key), "{key} not reported:\n{err}");
    }
    assert!(err.contains("6 configuration error(s)"), "{err}");

    // a syntax error names the file
    std::fs::write(&path, "[server\n").expect("write");
    let out = run(
        &["--config", path.to_str().expect("path")],
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(78));
    assert!(
        stderr(&out).contains("bad.toml: not valid TOML"),
        "{}",
        stderr(&out)
    );

    // a missing file
    let out = run(
        &["--config", "/nonexistent/postern.toml"],
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(66));
    assert!(
        stderr(&out).contains("cannot read /nonexistent/postern.toml"),
        "{}",
        stderr(&out)
    );

    // flags are checked like the file, and a good configuration passes --check-config
    let out = run(
        &[
            "--listen",
            "nowhere",
            "--downstream",
            "127.0.0.1:25",
            "--check-config",
        ],
        Duration::from_secs(10),
    );
    assert!(
        stderr(&out).contains("server.listen: \"nowhere\""),
        "{}",
        stderr(&out)
    );
    let out = run(
        &[
            "--listen",
            "127.0.0.1:2525",
            "--downstream",
            "127.0.0.1:25",
            "--check-config",
        ],
        Duration::from_secs(10),
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn relay_unusable_certificate_and_busy_port_are_clear_start_errors() {
    let dir = Scratch::new("cfg");
    let data = dir.join("data");
    std::fs::write(dir.join("garbage.pem"), "not a certificate").expect("write");
    let a = rcgen::generate_simple_self_signed(vec!["a.example".to_owned()]).expect("cert");
    let b = rcgen::generate_simple_self_signed(vec!["b.example".to_owned()]).expect("cert");
    std::fs::write(dir.join("a.crt"), a.cert.pem()).expect("write");
    std::fs::write(dir.join("b.key"), b.signing_key.serialize_pem()).expect("write");
    let port = postern_tests::free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let cluster = format!("127.0.0.1:{}", postern_tests::free_port());
    let base = [
        "--listen",
        &listen,
        "--cluster-listen",
        &cluster,
        "--downstream",
        "127.0.0.1:25",
        "--data-dir",
        data.to_str().expect("p"),
    ];

    // posternd with the base flags and a [tls] section naming `cert` and `key`
    let with_tls = |name: &str, cert: &str, key: &str| {
        let cfg = dir.join(name);
        let d = dir.path.display();
        std::fs::write(
            &cfg,
            format!("[tls]\ncert = \"{d}/{cert}\"\nkey = \"{d}/{key}\"\n"),
        )
        .expect("write");
        let mut args = base.to_vec();
        args.extend(["--config", cfg.to_str().expect("p")]);
        run(&args, Duration::from_secs(10))
    };

    let out = with_tls("garbage.toml", "garbage.pem", "garbage.pem");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("garbage.pem: no PEM certificate found"),
        "{}",
        stderr(&out)
    );

    let out = with_tls("mismatch.toml", "a.crt", "b.key");
    assert!(
        stderr(&out).contains("cannot be used together"),
        "{}",
        stderr(&out)
    );

    let busy = std::net::TcpListener::bind(&listen).expect("occupy the port");
    let out = run(&base, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            "cannot listen on {listen}: Address already in use"
        )),
        "{}",
        stderr(&out)
    );
    drop(busy);
}
