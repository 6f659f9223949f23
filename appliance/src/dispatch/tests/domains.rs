//! Our domain keys through the dispatcher: rollover, published records, revocation.

use super::*;
use postern_api::views;

async fn domains(a: &Node) -> Vec<views::Domain> {
    let Ok(Reply::DomainList(list)) = run(a, req::DomainList {}).await else {
        panic!("domain list");
    };
    list
}

async fn records(a: &Node) -> views::DnsRecords {
    let Ok(Reply::DomainDnsRecords(r)) = run(
        a,
        req::DomainDnsRecords {
            domain: "corp.example".into(),
        },
    )
    .await
    else {
        panic!("records");
    };
    r
}

async fn revoke(a: &Node, fingerprint: &str) {
    let r = req::DomainRevoke {
        domain: "corp.example".into(),
        fingerprint: fingerprint.to_owned(),
    };
    run(a, r).await.expect("revoke");
}

#[tokio::test(flavor = "multi_thread")]
async fn our_domain_keys_roll_over_publish_records_and_revoke() {
    let a = node("domains").await;
    assert!(
        a.d.keys
            .ensure_domain_key("corp.example".into())
            .await
            .expect("domain key")
    );
    let list = domains(&a).await;
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
    // Published at once, used only after half the max_age we publish (a week: 3.5 days).
    assert!(
        d.keys.iter().any(|k| k.fingerprint == first && k.current),
        "the next key signs before partners could have seen it: {d:?}"
    );
    assert_eq!(d.smime.len(), 2);
    assert_eq!(d.smime.iter().filter(|c| c.current).count(), 1);
    let next = d
        .keys
        .iter()
        .find(|k| k.fingerprint != first)
        .expect("next");
    let r = records(&a).await;
    let all = r.records.join("\n");
    assert!(
        all.contains("._openpgpkey.corp.example. 3600 IN OPENPGPKEY "),
        "{all}"
    );
    assert_eq!(
        all.matches("._smimecert.corp.example. 3600 IN SMIMEA 3 0 0 ")
            .count(),
        2,
        "the current and the next certificate: {all}"
    );
    assert!(
        all.contains(
            "_mailenc.corp.example. 3600 IN TXT \"v=mailenc1; mode=testing; max_age=604800; fpr="
        ),
        "{all}"
    );
    revoke(&a, &next.fingerprint).await;
    let list = domains(&a).await;
    let revoked = list[0]
        .keys
        .iter()
        .find(|k| k.fingerprint == next.fingerprint)
        .expect("kept");
    assert!(revoked.revoked && !revoked.current);
    // An S/MIME domain certificate is revoked by its SHA-256: no longer published.
    let cert = d
        .smime
        .iter()
        .find(|c| !c.current)
        .expect("next certificate");
    revoke(&a, &cert.fingerprint).await;
    let list = domains(&a).await;
    assert!(
        list[0]
            .smime
            .iter()
            .any(|c| c.fingerprint == cert.fingerprint && c.revoked)
    );
    let r = records(&a).await;
    assert_eq!(r.records.join("\n").matches(" IN SMIMEA ").count(), 1);
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
