//! The SMTP session state machine on arbitrary client bytes: never panics, always answers.
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use postern::policy::DomainRouter;
use postern::smtp::session::{
    ConnectionInfo, DownstreamOutcome, Event, Session, SessionConfig,
};

fuzz_target!(|data: &[u8]| {
    let config = SessionConfig {
        hostname: "fuzz.example".into(),
        max_message_size: 4096,
        max_line_length: 1000,
        max_recipients: 10,
        max_errors: 50,
        max_received_headers: 20,
        tls_available: true,
        command_timeout: Duration::from_secs(1),
        data_timeout: Duration::from_secs(1),
    };
    let info = ConnectionInfo {
        id: "f".into(),
        peer: "127.0.0.1:1".parse().expect("addr"),
    };
    let mut s = Session::new(Arc::new(config), Arc::new(DomainRouter::default()), info);
    // The first byte picks how the pretend downstream answers.
    let accept = data.first().is_none_or(|b| b % 3 != 0);
    let mut input = data.to_vec();
    for _ in 0..10_000 {
        match s.advance(&mut input) {
            Event::NeedInput | Event::Close(_) => break,
            Event::Reply(_) => {}
            // No partner directory behind the fuzzer: every lookup ends at once.
            Event::Lookup(_) => s.lookup_done(),
            Event::StartTls => {
                input.clear();
                s.tls_started();
            }
            Event::Downstream(_) => {
                let outcome = if accept {
                    DownstreamOutcome::Accepted { code: 250, text: "ok".into() }
                } else {
                    DownstreamOutcome::Refused {
                        stage: postern::smtp::reply::Stage::Recipient,
                        code: 550,
                        text: "no".into(),
                    }
                };
                let _ = s.downstream_done(outcome);
            }
        }
    }
});
