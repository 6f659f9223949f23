//! DESIGN.md §3 invariants 1–3 and the session rules, each against a real smtp-sink.

use std::time::{Duration, Instant};

use postern_tests::client::Client;
use postern_tests::posternd::Posternd;
use postern_tests::sink::Sink;

use super::{have_sink, message};

#[test]
fn relay_accepted_message_arrives_once_with_the_downstream_verdict_mirrored() {
    if !have_sink("relay_accepted") {
        return;
    }
    let sink = Sink::start(&[]);
    let p = Posternd::start(&sink.addr(), "", "");
    let mut c = Client::ready(p.addr);
    let r = c.send_mail(
        "a@corp.example",
        &["b@else.example", "c@else.example"],
        &message("one"),
    );
    assert_eq!(r.code, 250, "{r}");
    // smtp-sink answers "250 2.0.0 Ok: queued as …": its text is kept in ours
    assert!(r.text().starts_with("2.0.0 Queued downstream: Ok"), "{r}");
    let m = sink.wait_for_messages(1, Duration::from_secs(5));
    assert_eq!(
        m.len(),
        1,
        "one upstream transaction is one downstream transaction"
    );
    assert_eq!(m[0].mail_from, "a@corp.example");
    assert_eq!(m[0].rcpt_to, vec!["b@else.example", "c@else.example"]);
    let text = m[0].text();
    assert!(
        text.starts_with("Received: from client.test ([127.0.0.1])"),
        "{text}"
    );
    assert!(
        text.contains("by postern.test (Postern) with ESMTP id"),
        "{text}"
    );
    assert!(
        text.contains("Subject: one\n") || text.contains("Subject: one\r\n"),
        "{text}"
    );
    assert!(
        text.contains("\n.leading dot"),
        "dot-stuffing undone and redone: {text}"
    );
    // a second transaction on the same session is its own downstream transaction
    let r = c.send_mail("", &["d@else.example"], &message("bounce"));
    assert_eq!(r.code, 250, "null sender accepted: {r}");
    let m = sink.wait_for_messages(2, Duration::from_secs(5));
    assert_eq!(m.len(), 2);
    // dumps written in the same instant have no reliable order: find the bounce by content
    let bounce = m
        .iter()
        .find(|m| m.header("Subject").as_deref() == Some("bounce"));
    assert_eq!(bounce.map(|b| b.mail_from.as_str()), Some(""), "{m:?}");
    c.cmd("QUIT", 221);
}

#[test]
fn relay_downstream_refusals_are_mirrored_per_stage() {
    if !have_sink("relay_refusals") {
        return;
    }
    // recipient refused, permanently
    let sink = Sink::start(&["-B", "550 5.1.1 Recipient unknown here", "-f", "RCPT"]);
    let p = Posternd::start(&sink.addr(), "", "");
    let mut c = Client::ready(p.addr);
    c.cmd("MAIL FROM:<a@corp.example>", 250);
    let r = c.cmd("RCPT TO:<b@else.example>", 550);
    assert_eq!(
        r.text(),
        "5.1.1 Downstream refused the recipient: Recipient unknown here"
    );
    c.cmd("DATA", 554);
    c.cmd("RSET", 250);
    drop((c, p, sink));

    // sender refused: the refusal comes back at the first RCPT
    let sink = Sink::start(&["-B", "553 5.7.1 Sender blocked", "-f", "MAIL"]);
    let p = Posternd::start(&sink.addr(), "", "");
    let mut c = Client::ready(p.addr);
    c.cmd("MAIL FROM:<spam@corp.example>", 250);
    let r = c.cmd("RCPT TO:<b@else.example>", 553);
    assert_eq!(
        r.text(),
        "5.7.1 Downstream refused the sender: Sender blocked"
    );
    drop((c, p, sink));

    // message refused temporarily at end-of-data; the session stays usable
    let sink = Sink::start(&["-b", "452 4.3.1 Insufficient system storage", "-r", "."]);
    let p = Posternd::start(&sink.addr(), "", "");
    let mut c = Client::ready(p.addr);
    c.open_data("a@corp.example", &["b@else.example"]);
    c.raw(b"Subject: x\r\n\r\nbody\r\n.\r\n");
    let r = c.expect(452);
    assert_eq!(
        r.text(),
        "4.3.1 Downstream refused the message: Insufficient system storage"
    );
    c.cmd("NOOP", 250);
    c.cmd("MAIL FROM:<a@corp.example>", 250);
    c.cmd("QUIT", 221);
}

#[test]
fn relay_downstream_silence_or_loss_gives_451() {
    if !have_sink("relay_451") {
        return;
    }
    // nothing listens: 451 4.4.1 at the first recipient
    let port = postern_tests::free_port();
    let p = Posternd::start(&format!("127.0.0.1:{port}"), "", "");
    let mut c = Client::ready(p.addr);
    c.cmd("MAIL FROM:<a@corp.example>", 250);
    let r = c.cmd("RCPT TO:<b@else.example>", 451);
    assert!(r.text().starts_with("4.4.1 "), "{r}");
    drop((c, p));

    // the downstream stalls at end-of-data longer than our deadline: 451 4.4.2 in time
    let sink = Sink::start(&["-W", ".:30"]);
    let p = Posternd::start(&sink.addr(), "", "[downstream]\ndata_timeout = \"2s\"\n");
    let mut c = Client::ready(p.addr);
    c.open_data("a@corp.example", &["b@else.example"]);
    let start = Instant::now();
    c.raw(b"Subject: slow\r\n\r\nx\r\n.\r\n");
    let r = c.expect(451);
    assert!(r.text().starts_with("4.4.2 "), "{r}");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    // the session goes on after the failure
    c.cmd("RSET", 250);
    drop((c, p, sink));

    // the downstream hangs up at end-of-data without a reply: 451 4.4.2
    let sink = Sink::start(&["-q", "."]);
    let p = Posternd::start(&sink.addr(), "", "");
    let mut c = Client::ready(p.addr);
    let r = {
        c.open_data("a@corp.example", &["b@else.example"]);
        c.raw(b"Subject: lost\r\n\r\nx\r\n.\r\n");
        c.expect(451)
    };
    assert!(r.text().starts_with("4.4.2 "), "{r}");
}

#[test]
fn relay_oversize_is_refused_without_buffering() {
    if !have_sink("relay_oversize") {
        return;
    }
    let sink = Sink::start(&[]);
    let p = Posternd::start(&sink.addr(), "", "[smtp]\nmax_message_size = \"1MB\"\n");
    let mut c = Client::ready(p.addr);
    let ehlo = c.cmd("EHLO client.test", 250);
    assert!(ehlo.lines.iter().any(|l| l == "SIZE 1000000"), "{ehlo}");
    // declared size: refused at MAIL, before any data
    let r = c.cmd("MAIL FROM:<a@corp.example> SIZE=2000000", 552);
    assert!(r.text().starts_with("5.3.4 "), "{r}");
    // undeclared: 40 MB streamed; refused at the end, never held in memory (the peak
    // grows by far less than the message; the baseline holds the cluster member's RocksDB)
    let base = peak_rss_kib(p.pid());
    c.open_data("a@corp.example", &["b@else.example"]);
    let line = format!("{}\r\n", "x".repeat(998));
    let chunk = line.repeat(1000);
    for _ in 0..40 {
        c.raw(chunk.as_bytes());
    }
    c.raw(b".\r\n");
    let r = c.expect(552);
    assert!(r.text().starts_with("5.3.4 "), "{r}");
    let hwm = peak_rss_kib(p.pid());
    assert!(
        hwm < base + 8 * 1024 && hwm < 48 * 1024,
        "posternd peak memory {hwm} KiB (before: {base} KiB) after a 40 MB message over a 1 MB limit"
    );
    c.cmd("MAIL FROM:<a@corp.example>", 250);
    assert!(sink.messages().is_empty());
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmHWM")
}

#[test]
fn relay_recipients_of_another_route_are_deferred_with_452_4_5_3() {
    if !have_sink("relay_452") {
        return;
    }
    let internal = Sink::start(&[]);
    let partner = Sink::start(&[]);
    let routes = format!(
        "[[route]]\ndomains = [\"partner.example\"]\naddress = \"{}\"\n",
        partner.addr()
    );
    let p = Posternd::start(&internal.addr(), "", &routes);
    let mut c = Client::ready(p.addr);
    c.cmd("MAIL FROM:<a@corp.example>", 250);
    c.cmd("RCPT TO:<one@else.example>", 250);
    let r = c.cmd("RCPT TO:<two@partner.example>", 452);
    assert!(r.text().starts_with("4.5.3 "), "{r}");
    c.cmd("RCPT TO:<three@else.example>", 250);
    c.cmd("DATA", 354);
    c.raw(b"Subject: split\r\n\r\nx\r\n.\r\n");
    c.expect(250);
    // the upstream retries the deferred recipient in its own transaction
    let r = c.send_mail(
        "a@corp.example",
        &["two@partner.example"],
        "Subject: split\r\n\r\nx\r\n",
    );
    assert_eq!(r.code, 250);
    let a = internal.wait_for_messages(1, Duration::from_secs(5));
    let b = partner.wait_for_messages(1, Duration::from_secs(5));
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].rcpt_to, vec!["one@else.example", "three@else.example"]);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].rcpt_to, vec!["two@partner.example"]);
}

#[test]
fn relay_idle_and_stalled_sessions_time_out_per_phase() {
    if !have_sink("relay_timeouts") {
        return;
    }
    let sink = Sink::start(&[]);
    let p = Posternd::start(
        &sink.addr(),
        "",
        "[smtp]\ncommand_timeout = \"1s\"\ndata_timeout = \"2s\"\n",
    );
    let mut c = Client::ready(p.addr);
    let start = Instant::now();
    let r = c.expect(421);
    assert!(r.text().starts_with("4.4.2 "), "{r}");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(c.closed());

    let mut c = Client::ready(p.addr);
    c.open_data("a@corp.example", &["b@else.example"]);
    c.raw(b"Subject: stalled\r\n");
    std::thread::sleep(Duration::from_millis(1500));
    c.raw(b"still here\r\n");
    let start = Instant::now();
    c.expect(421);
    let waited = start.elapsed();
    assert!(
        waited > Duration::from_millis(1500) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert!(
        sink.messages().is_empty(),
        "a stalled message is never delivered"
    );
}

#[test]
fn relay_connection_limit_per_address_gives_421() {
    if !have_sink("relay_limit") {
        return;
    }
    let sink = Sink::start(&[]);
    let p = Posternd::start(&sink.addr(), "max_connections_per_ip = 2\n", "");
    let _a = Client::ready(p.addr);
    let _b = Client::ready(p.addr);
    let mut c = Client::connect(p.addr);
    let r = c.expect(421);
    assert!(r.text().starts_with("4.7.0 "), "{r}");
    assert!(c.closed());
    drop(_a);
    // the slot is released when a session ends
    let ok = postern_tests::wait_for(Duration::from_secs(5), || {
        let mut c = Client::connect(p.addr);
        (c.read_reply()?.code == 220).then_some(())
    });
    assert!(ok.is_some());
}

#[test]
fn relay_esmtp_parameters_pass_through() {
    if !have_sink("relay_params") {
        return;
    }
    let sink = Sink::start(&[]);
    let p = Posternd::start(&sink.addr(), "", "");
    let mut c = Client::ready(p.addr);
    let ehlo = c.cmd("EHLO client.test", 250);
    for ext in [
        "PIPELINING",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "DSN",
        "STARTTLS",
    ] {
        assert!(
            ehlo.lines.iter().any(|l| l == ext),
            "{ext} missing in {ehlo}"
        );
    }
    c.cmd(
        "MAIL FROM:<a@corp.example> BODY=8BITMIME RET=HDRS ENVID=abc+2Bdef",
        250,
    );
    c.cmd(
        "RCPT TO:<b@else.example> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;b@else.example",
        250,
    );
    c.cmd("DATA", 354);
    c.raw("Subject: caf\u{e9}\r\n\r\n8-bit \u{e9}\r\n.\r\n".as_bytes());
    c.expect(250);
    let dump = std::fs::read_dir(sink.dir.join("dump"))
        .expect("dump")
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    assert!(
        dump.contains("X-Mail-Args: <a@corp.example> BODY=8BITMIME RET=HDRS ENVID=abc+2Bdef"),
        "{dump}"
    );
    assert!(
        dump.contains(
            "X-Rcpt-Args: <b@else.example> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;b@else.example"
        ),
        "{dump}"
    );
    assert!(dump.contains("8-bit \u{e9}"), "{dump}");
}

#[test]
fn relay_sigterm_closes_idle_sessions_and_lets_open_transactions_finish() {
    if !have_sink("relay_sigterm") {
        return;
    }
    let sink = Sink::start(&[]);
    let mut p = Posternd::start(&sink.addr(), "", "");
    let mut idle = Client::ready(p.addr);
    let mut busy = Client::ready(p.addr);
    busy.open_data("a@corp.example", &["b@else.example"]);
    busy.raw(b"Subject: in flight\r\n\r\npart one\r\n");
    postern_tests::signal(p.pid(), "TERM");
    let r = idle.expect(421);
    assert!(r.text().starts_with("4.3.2 "), "{r}");
    assert!(idle.closed());
    // no new sessions once shutdown began
    let refused = postern_tests::wait_for(Duration::from_secs(5), || {
        std::net::TcpStream::connect(p.addr).is_err().then_some(())
    });
    assert!(refused.is_some(), "still accepting after SIGTERM");
    // the transaction in flight completes and is delivered, then the session is closed
    busy.raw(b"part two\r\n.\r\n");
    busy.expect(250);
    busy.expect(421);
    let status = p
        .terminate(Duration::from_secs(10))
        .expect("posternd exits");
    assert!(status.success(), "{status}");
    let m = sink.wait_for_messages(1, Duration::from_secs(5));
    assert_eq!(m.len(), 1);
    assert!(m[0].text().contains("part one") && m[0].text().contains("part two"));
}

#[test]
fn relay_downstream_without_pipelining_gets_one_command_at_a_time() {
    if !have_sink("relay_no_pipelining") {
        return;
    }
    // -p: the sink does not announce PIPELINING, so MAIL and RCPT go separately
    let sink = Sink::start(&["-p"]);
    let p = Posternd::start(&sink.addr(), "", "");
    let mut c = Client::ready(p.addr);
    let r = c.send_mail(
        "a@corp.example",
        &["b@else.example", "c@else.example"],
        &message("nopipe"),
    );
    assert_eq!(r.code, 250, "{r}");
    assert_eq!(
        sink.wait_for_messages(1, Duration::from_secs(5))[0]
            .rcpt_to
            .len(),
        2
    );
    drop((c, p, sink));
    // and a refused sender still comes back at the first RCPT
    let sink = Sink::start(&["-p", "-B", "550 5.7.1 Sender blocked", "-f", "MAIL"]);
    let p = Posternd::start(&sink.addr(), "", "");
    let mut c = Client::ready(p.addr);
    c.cmd("MAIL FROM:<spam@corp.example>", 250);
    let r = c.cmd("RCPT TO:<b@else.example>", 550);
    assert_eq!(
        r.text(),
        "5.7.1 Downstream refused the sender: Sender blocked"
    );
    c.cmd("RSET", 250);
}
