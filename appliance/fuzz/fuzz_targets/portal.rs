//! Portal envelopes as a browser or an attacker hands them in: the structure and header are
//! read (`portal::parse`) and a share is asked for (`PortalKeys::release`), on arbitrary
//! bytes. (Opening runs 600,000 PBKDF2 rounds: not a fuzzing target.)
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use postern_crypto::portal::{self, PortalKeys};

fn keys() -> &'static PortalKeys {
    static KEYS: OnceLock<PortalKeys> = OnceLock::new();
    KEYS.get_or_init(|| PortalKeys::new(&[9; 32]).expect("keys"))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = portal::parse(data) {
        let _ = keys().release(p.header_bytes, p.mac, &p.header.to, 0);
    }
    let (header, mac) = data.split_at(data.len() / 2);
    let _ = keys().release(header, mac, "carol@partner.example", 0);
});
