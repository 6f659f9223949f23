//! OpenPGP input paths: keys, decryption, inline and detached signatures on arbitrary bytes.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use postern_crypto::pgp::{self, PgpCert};

fn key() -> &'static PgpCert {
    static KEY: OnceLock<PgpCert> = OnceLock::new();
    KEY.get_or_init(|| {
        pgp::generate("f@fuzz.example", SystemTime::now(), Duration::from_secs(86_400))
            .expect("key")
    })
}

fuzz_target!(|data: &[u8]| {
    let now = SystemTime::now();
    let k = key();
    let _ = pgp::parse_keyring(data);
    let _ = pgp::decrypt(data, std::slice::from_ref(k), &[], now);
    let _ = pgp::verify_inline(data, std::slice::from_ref(k), now);
    let _ = pgp::verify_detached(b"x", data, std::slice::from_ref(k), now);
});
