//! CMS input paths (S/MIME): decrypt, verify, and the DER probes on arbitrary bytes.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use postern_crypto::keys::ca::Ca;
use postern_crypto::smime::{self, Identity};

fn identity() -> &'static (Identity, openssl::x509::store::X509Store) {
    static ID: OnceLock<(Identity, openssl::x509::store::X509Store)> = OnceLock::new();
    ID.get_or_init(|| {
        let now = SystemTime::now();
        let ca = Ca::generate("Fuzz CA", now, Duration::from_secs(86_400)).expect("ca");
        let id = ca.issue("f@fuzz.example", now, now + Duration::from_secs(3600)).expect("id");
        let mut store = openssl::x509::store::X509StoreBuilder::new().expect("store");
        store.add_cert(ca.identity.cert.clone()).expect("add");
        (id, store.build())
    })
}

fuzz_target!(|data: &[u8]| {
    let (id, store) = identity();
    let _ = smime::content_type(data);
    let _ = smime::decrypt(data, std::slice::from_ref(id));
    let _ = smime::verify_opaque(data, store);
    let _ = smime::verify_detached(b"Content-Type: text/plain\r\n\r\nx", data, store);
});
