//! Join credentials and quorum: spent and expired tokens are one refusal, a lost quorum is
//! unavailable (503), not a bad request.

use super::*;

/// Credentials exported on `a` (as the file's JSON), with `expires` moved to `expires`.
async fn credentials(a: &Node, expires: Option<u64>) -> String {
    let Ok(Reply::ClusterExportCredentials(mut c)) =
        run(a, req::ClusterExportCredentials { ttl_secs: 600 }).await
    else {
        panic!("credentials");
    };
    if let Some(e) = expires {
        c.expires = e;
    }
    serde_json::to_string(&c).expect("json")
}

#[tokio::test(flavor = "multi_thread")]
async fn spent_and_expired_join_tokens_are_refused_alike_and_lost_quorum_is_unavailable() {
    let a = node("a").await;
    let b = node("b").await;
    let c = node("c").await;
    let creds = credentials(&a, None).await;
    let join = |creds: String| req::ClusterJoin {
        credentials: creds,
        peer: a.cluster.clone(),
    };
    run(&b, join(creds.clone())).await.expect("b joins");
    voters(&a, 2).await;

    // The same credentials again: spent.
    let spent = run(&c, join(creds)).await;
    assert_eq!(kind(&spent), Some(ErrorKind::Conflict), "{spent:?}");
    assert!(format!("{spent:?}").contains("already used"), "{spent:?}");
    // Credentials past their time: refused the same way.
    let expired = run(&c, join(credentials(&a, Some(1)).await)).await;
    assert_eq!(kind(&expired), Some(ErrorKind::Conflict), "{expired:?}");
    assert!(format!("{expired:?}").contains("expired"), "{expired:?}");

    // b stops: a and b are the two voters, so a can commit nothing and confirm no read.
    b.d.member.stop().await;
    let started = std::time::Instant::now();
    let write = run(
        &a,
        req::SettingSet {
            key: "site.note".into(),
            value: "lost".into(),
        },
    )
    .await;
    assert_eq!(kind(&write), Some(ErrorKind::Unavailable), "{write:?}");
    assert_eq!(ErrorKind::Unavailable.http_status(), 503);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let read = run(
        &a,
        req::SettingGet {
            key: "site.note".into(),
        },
    )
    .await;
    assert_eq!(kind(&read), Some(ErrorKind::Unavailable), "{read:?}");
}
