//! Our domain keys through the dispatcher: rollover, published records, revocation.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn our_domain_keys_roll_over_publish_records_and_revoke() {
    let a = node("domains").await;
    assert!(
        a.d.keys
            .ensure_domain_key("corp.example".into())
            .await
            .expect("domain key")
    );
    let Ok(Reply::DomainList(list)) = run(&a, req::DomainList {}).await else {
        panic!("domain list");
    };
    assert_eq!(list[0].domain, "corp.example");
    assert_eq!(list[0].keys.len(), 1);
    assert!(list[0].keys[0].current);
    let first = list[0].keys[0].fingerprint.clone();
    let Ok(Reply::DomainRollover(d)) = run(
        &a,
        req::DomainRollover {
            domain: "corp.example".into(),
        },
    )
    .await
    else {
        panic!("rollover");
    };
    assert_eq!(d.keys.len(), 2);
    let next = d
        .keys
        .iter()
        .find(|k| k.fingerprint != first)
        .expect("next");
    let Ok(Reply::DomainDnsRecords(r)) = run(
        &a,
        req::DomainDnsRecords {
            domain: "corp.example".into(),
        },
    )
    .await
    else {
        panic!("records");
    };
    let all = r.records.join("\n");
    assert!(
        all.contains("._openpgpkey.corp.example. 3600 IN OPENPGPKEY "),
        "{all}"
    );
    assert!(
        all.contains("._smimecert.corp.example. 3600 IN SMIMEA 3 0 0 "),
        "{all}"
    );
    assert!(
        all.contains(
            "_mailenc.corp.example. 3600 IN TXT \"v=mailenc1; mode=testing; max_age=604800; fpr="
        ),
        "{all}"
    );
    run(
        &a,
        req::DomainRevoke {
            domain: "corp.example".into(),
            fingerprint: next.fingerprint.clone(),
        },
    )
    .await
    .expect("revoke");
    let Ok(Reply::DomainList(list)) = run(&a, req::DomainList {}).await else {
        panic!("domain list");
    };
    let revoked = list[0]
        .keys
        .iter()
        .find(|k| k.fingerprint == next.fingerprint)
        .expect("kept");
    assert!(revoked.revoked && !revoked.current);
    // What the Web Key Directory serves for the domain key, advanced and direct.
    let hash = postern_crypto::federation::wkd::hashed_local("domainkey");
    let w = a.d.publisher.well_known(
        "openpgpkey.corp.example",
        &format!("/.well-known/openpgpkey/corp.example/hu/{hash}"),
    );
    let keys = postern_crypto::pgp::parse_keyring(&w.expect("a key").body).expect("keyring");
    assert_eq!(
        keys.len(),
        2,
        "both keys, so partners learn of the revocation"
    );
    assert_eq!(
        keys.iter()
            .filter(|k| postern_crypto::pgp::is_revoked(k, std::time::SystemTime::now()))
            .count(),
        1
    );
    assert!(
        a.d.publisher
            .well_known(
                "corp.example",
                &format!("/.well-known/openpgpkey/hu/{hash}")
            )
            .is_some()
    );
    assert!(
        a.d.publisher
            .well_known(
                "other.example",
                &format!("/.well-known/openpgpkey/hu/{hash}")
            )
            .is_none()
    );
    let policy =
        a.d.publisher
            .well_known("corp.example", "/.well-known/openpgpkey/policy")
            .expect("policy");
    assert!(String::from_utf8_lossy(&policy.body).contains("mailenc-mode: testing"));
}
