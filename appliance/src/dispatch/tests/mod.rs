//! The dispatcher against real cluster members in temporary directories (RocksDB, the
//! cluster transport on 127.0.0.1): every command reaches its service, and failures come
//! out with the kind an operator (and the HTTP status) needs.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use postern_api::command::requests as req;
use postern_api::{Actor, Command, Error, ErrorKind, Reply, Role, Via};
use postern_crypto::keys::MemoryKeyStore;
use postern_crypto::keys::seal::Sealer;
use postern_crypto::policy::{PolicyConfig, SharedPolicy};

use super::Dispatcher;
use crate::config::{Config, Overrides};
use crate::relay::downstream::{Target, Targets};
use crate::relay::trace::Trace;

/// One member with its services, in a directory removed on drop.
struct Node {
    d: Dispatcher,
    dir: PathBuf,
    cluster: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn node(name: &str) -> Node {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "postern-dispatch-{}-{n}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let cluster = format!("127.0.0.1:{}", free_port());
    let overrides = Overrides {
        data_dir: Some(dir.clone()),
        cluster_listen: Some(cluster.clone()),
        downstream: Some("127.0.0.1:9".into()),
        ..Overrides::default()
    };
    let config = Config::parse(
        "[crypto]\ninternal_domains = [\"corp.example\"]\n",
        "test",
        &overrides,
    )
    .expect("configuration");
    std::fs::create_dir_all(dir.join("update")).expect("data dir");
    let keys = Arc::new(MemoryKeyStore::new(Sealer::new(
        Sealer::generate().expect("key"),
    )));
    let policy = Arc::new(SharedPolicy::new(PolicyConfig {
        internal_domains: config.crypto.internal_domains.clone(),
        ..PolicyConfig::default()
    }));
    let targets = Arc::new(Targets::new(vec![
        Target::new(config.downstream.clone()).expect("target"),
    ]));
    let d = Dispatcher::new(&config, keys, policy, targets, Arc::new(Trace::default()));
    d.member.start().await.expect("member starts");
    Node { d, dir, cluster }
}

fn local() -> Actor {
    Actor::local()
}

async fn run(n: &Node, cmd: impl Into<Command>) -> Result<Reply, Error> {
    n.d.run(cmd.into(), local()).await
}

fn kind(r: &Result<Reply, Error>) -> Option<ErrorKind> {
    r.as_ref().err().map(|e| e.kind)
}

/// Waits until `n`'s cluster has `voters` voters.
async fn voters(n: &Node, voters: usize) {
    for _ in 0..200 {
        if let Ok(s) = n.d.member.cluster_status().await
            && s.voters.len() == voters
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the cluster never had {voters} voters");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_command_reaches_its_service() {
    let a = node("all").await;
    let mut seen = BTreeSet::new();
    // (command, what must come back): Ok, or the error kind its service gives here.
    let cases: Vec<(Command, Result<(), ErrorKind>)> = vec![
        (req::SetupStatus {}.into(), Ok(())),
        (
            req::Setup {
                admin: "root".into(),
                password: "correct horse battery".into(),
                domains: vec!["corp.example".into()],
                downstream: "127.0.0.1:2526".into(),
            }
            .into(),
            Ok(()),
        ),
        (
            req::UserEnrol {
                address: "alice@corp.example".into(),
            }
            .into(),
            Ok(()),
        ),
        (req::UserList {}.into(), Ok(())),
        (
            req::UserCert {
                address: "alice@corp.example".into(),
            }
            .into(),
            Ok(()),
        ),
        (
            req::UserPgp {
                address: "alice@corp.example".into(),
            }
            .into(),
            Ok(()),
        ),
        (
            req::UserPkcs12 {
                address: "alice@corp.example".into(),
                password: "secret".into(),
            }
            .into(),
            Ok(()),
        ),
        (
            req::ImportPkcs12 {
                data: "bm90IGEgYnVuZGxl".into(),
                password: "x".into(),
            }
            .into(),
            Err(ErrorKind::Invalid),
        ),
        (
            req::ImportPgpSecret { data: "!!".into() }.into(),
            Err(ErrorKind::Invalid),
        ),
        (
            req::ImportPublic {
                data: "bm90IGEga2V5".into(),
            }
            .into(),
            Err(ErrorKind::Invalid),
        ),
        (req::PartnerList {}.into(), Ok(())),
        (req::CaCert {}.into(), Ok(())),
        (req::Rollover {}.into(), Ok(())),
        (
            req::UserRemove {
                address: "alice@corp.example".into(),
            }
            .into(),
            Ok(()),
        ),
        (req::DomainList {}.into(), Ok(())),
        (
            req::DomainDnsRecords {
                domain: "other.example".into(),
            }
            .into(),
            Err(ErrorKind::NotFound),
        ),
        (
            req::DomainRollover {
                domain: "corp.example".into(),
            }
            .into(),
            Err(ErrorKind::NotFound),
        ),
        (
            req::DomainRevoke {
                domain: "corp.example".into(),
                fingerprint: "00".into(),
            }
            .into(),
            Err(ErrorKind::NotFound),
        ),
        (req::PartnerDomainList {}.into(), Ok(())),
        (
            req::PartnerDomainImport {
                domain: "partner.example".into(),
                data: "bm90IGEga2V5".into(),
            }
            .into(),
            Err(ErrorKind::Invalid),
        ),
        (
            req::PartnerDomainRefresh {
                domain: "partner.example".into(),
            }
            .into(),
            Err(ErrorKind::Conflict),
        ),
        (
            req::PartnerDomainForget {
                domain: "partner.example".into(),
            }
            .into(),
            Err(ErrorKind::NotFound),
        ),
        (req::ClusterInit {}.into(), Ok(())),
        (req::ClusterStatus {}.into(), Ok(())),
        (
            req::ClusterExportCredentials { ttl_secs: 120 }.into(),
            Ok(()),
        ),
        (
            req::ClusterJoin {
                credentials: "{}".into(),
                peer: "127.0.0.1:1".into(),
            }
            .into(),
            Err(ErrorKind::Invalid),
        ),
        (
            req::ClusterRemove { id: 99 }.into(),
            Err(ErrorKind::NotFound),
        ),
        (
            req::SettingSet {
                key: "crypto.policy_header".into(),
                value: "false".into(),
            }
            .into(),
            Ok(()),
        ),
        (
            req::SettingGet {
                key: "crypto.policy_header".into(),
            }
            .into(),
            Ok(()),
        ),
        (req::SettingList {}.into(), Ok(())),
        (
            req::SettingUnset {
                key: "crypto.policy_header".into(),
            }
            .into(),
            Ok(()),
        ),
        (
            req::VipAdd {
                address: "198.18.0.100/24".into(),
                interface: "eth0".into(),
                preferred: vec![],
            }
            .into(),
            Ok(()),
        ),
        (req::VipList {}.into(), Ok(())),
        (
            req::VipMove {
                address: "198.18.0.100/24".into(),
                to: 99,
            }
            .into(),
            Err(ErrorKind::Invalid),
        ),
        (
            req::VipRemove {
                address: "198.18.0.100/24".into(),
            }
            .into(),
            Ok(()),
        ),
        (
            req::AdminAdd {
                name: "ops".into(),
                password: "another long password".into(),
                role: "readonly".into(),
            }
            .into(),
            Ok(()),
        ),
        (req::AdminList {}.into(), Ok(())),
        (
            req::AdminPassword {
                name: "ops".into(),
                password: "a third long password".into(),
            }
            .into(),
            Ok(()),
        ),
        (
            req::AdminRole {
                name: "ops".into(),
                role: "admin".into(),
            }
            .into(),
            Ok(()),
        ),
        (req::AdminRemove { name: "ops".into() }.into(), Ok(())),
        (
            req::TokenCreate {
                name: "ci".into(),
                role: "readonly".into(),
            }
            .into(),
            Ok(()),
        ),
        (req::TokenList {}.into(), Ok(())),
        (req::TokenRevoke { name: "ci".into() }.into(), Ok(())),
        (req::AuditList { limit: 10 }.into(), Ok(())),
        (req::TraceList { limit: 10 }.into(), Ok(())),
        (req::Stats {}.into(), Ok(())),
        (
            req::WebTlsSet {
                cert: "not a certificate".into(),
                key: "not a key".into(),
            }
            .into(),
            Err(ErrorKind::Invalid),
        ),
        (req::Hardware {}.into(), Ok(())),
        (req::System {}.into(), Ok(())),
        (
            req::UpdateStage { reboot: false }.into(),
            Err(ErrorKind::Conflict),
        ),
        (req::NetworkGet {}.into(), Ok(())),
        (
            req::NetworkSet {
                settings: postern_api::views::NetworkSettings {
                    addresses: vec!["192.0.2.10/24".into()],
                    ..Default::default()
                },
            }
            .into(),
            Ok(()),
        ),
    ];
    for (cmd, want) in cases {
        let name = cmd.name();
        seen.insert(name);
        let r = run(&a, cmd).await;
        match (&r, want) {
            (Ok(_), Ok(())) => {}
            (Err(e), Err(k)) if e.kind == k => {}
            _ => panic!("{name}: got {r:?}, wanted {want:?}"),
        }
    }
    // Trust anchors: the node's own CA certificate, as a partner's would be.
    let Ok(Reply::CaCert(ca)) = run(&a, req::CaCert {}).await else {
        panic!("CA certificate");
    };
    let data = openssl::base64::encode_block(ca.as_bytes());
    let added = run(&a, req::TrustAdd { data }).await;
    assert!(matches!(added, Ok(Reply::TrustAdd(1))), "{added:?}");
    seen.insert("trust-add");
    let all: BTreeSet<&str> = Command::NAMES.iter().copied().collect();
    let missing: Vec<&&str> = all.difference(&seen).collect();
    assert!(missing.is_empty(), "commands not exercised: {missing:?}");
    // The typed replies carry what was asked for.
    let status = a.d.member.cluster_status().await.expect("status");
    assert_eq!(status.members.len(), 1);
    let Ok(Reply::AuditList(audit)) = run(&a, req::AuditList { limit: 100 }).await else {
        panic!("audit list");
    };
    assert!(
        audit
            .iter()
            .any(|e| e.action == "user-enrol" && e.detail == "alice@corp.example")
    );
    assert!(
        audit
            .iter()
            .all(|e| !e.detail.contains("correct horse") && !e.detail.contains("secret")),
        "{audit:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_and_missing_things_get_their_kinds() {
    let a = node("kinds").await;
    let readonly = Actor {
        name: "viewer".into(),
        role: Role::Readonly,
        via: Via::Api,
    };
    let r =
        a.d.run(
            req::UserEnrol {
                address: "bob@corp.example".into(),
            }
            .into(),
            readonly.clone(),
        )
        .await;
    assert_eq!(kind(&r), Some(ErrorKind::Forbidden));
    assert!(a.d.run(req::UserList {}.into(), readonly).await.is_ok());
    for cmd in [
        Command::from(req::UserCert {
            address: "nobody@corp.example".into(),
        }),
        req::UserRemove {
            address: "nobody@corp.example".into(),
        }
        .into(),
        req::SettingGet {
            key: "never.set".into(),
        }
        .into(),
        req::SettingUnset {
            key: "never.set".into(),
        }
        .into(),
        req::AdminPassword {
            name: "nobody".into(),
            password: "long enough password".into(),
        }
        .into(),
        req::TokenRevoke {
            name: "nobody".into(),
        }
        .into(),
    ] {
        let name = cmd.name();
        assert_eq!(
            kind(&run(&a, cmd).await),
            Some(ErrorKind::NotFound),
            "{name}"
        );
    }
    let r = run(&a, req::ClusterExportCredentials { ttl_secs: 1 }).await;
    assert_eq!(kind(&r), Some(ErrorKind::Invalid));
    let r = run(
        &a,
        req::SettingSet {
            key: "crypto.always_encrypt".into(),
            value: "maybe".into(),
        },
    )
    .await;
    assert_eq!(kind(&r), Some(ErrorKind::Invalid));
    // The last admin cannot go: refused by the state, 409.
    run(
        &a,
        req::Setup {
            admin: "root".into(),
            password: "correct horse battery".into(),
            domains: vec![],
            downstream: String::new(),
        },
    )
    .await
    .expect("setup");
    let r = run(
        &a,
        req::AdminRemove {
            name: "root".into(),
        },
    )
    .await;
    assert_eq!(kind(&r), Some(ErrorKind::Conflict), "{r:?}");
    let r = run(
        &a,
        req::AdminRole {
            name: "root".into(),
            role: "readonly".into(),
        },
    )
    .await;
    assert_eq!(kind(&r), Some(ErrorKind::Conflict), "{r:?}");
    let r = run(
        &a,
        req::Setup {
            admin: "other".into(),
            password: "correct horse battery".into(),
            domains: vec![],
            downstream: String::new(),
        },
    )
    .await;
    assert_eq!(kind(&r), Some(ErrorKind::Conflict));
}

mod cluster;
mod domains;
