//! From the command line to the command language.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use postern_api::Command;
use postern_api::command::requests as req;

use crate::args::*;

fn b64_file(path: &PathBuf) -> anyhow::Result<String> {
    let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(openssl::base64::encode_block(&data))
}

fn password(path: &PathBuf) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read password file {}", path.display()))?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

pub fn request(cli: &Cli) -> anyhow::Result<Command> {
    Ok(match &cli.what {
        What::User(u) => match u {
            UserCmd::Enrol { address } => Command::UserEnrol(req::UserEnrol {
                address: address.clone(),
            }),
            UserCmd::List => Command::UserList(req::UserList {}),
            UserCmd::Remove { address } => Command::UserRemove(req::UserRemove {
                address: address.clone(),
            }),
            UserCmd::Cert { address } => Command::UserCert(req::UserCert {
                address: address.clone(),
            }),
            UserCmd::Pgp { address } => Command::UserPgp(req::UserPgp {
                address: address.clone(),
            }),
            UserCmd::Pkcs12 {
                address,
                password_file,
                ..
            } => Command::UserPkcs12(req::UserPkcs12 {
                address: address.clone(),
                password: password(password_file)?,
            }),
            UserCmd::ImportPkcs12 {
                file,
                password_file,
            } => Command::ImportPkcs12(req::ImportPkcs12 {
                data: b64_file(file)?,
                password: password(password_file)?,
            }),
            UserCmd::ImportPgp { file } => Command::ImportPgpSecret(req::ImportPgpSecret {
                data: b64_file(file)?,
            }),
        },
        What::Partner(PartnerCmd::Import { file }) => Command::ImportPublic(req::ImportPublic {
            data: b64_file(file)?,
        }),
        What::Partner(PartnerCmd::List) => Command::PartnerList(req::PartnerList {}),
        What::Trust(TrustCmd::Add { file }) => Command::TrustAdd(req::TrustAdd {
            data: b64_file(file)?,
        }),
        What::Ca(CaCmd::Cert) => Command::CaCert(req::CaCert {}),
        What::Keys(KeysCmd::Rollover) => Command::Rollover(req::Rollover {}),
        What::Cluster(ClusterCmd::Init) => Command::ClusterInit(req::ClusterInit {}),
        What::Cluster(ClusterCmd::Remove { id }) => {
            Command::ClusterRemove(req::ClusterRemove { id: *id })
        }
        What::Cluster(ClusterCmd::ExportCredentials { ttl, .. }) => {
            Command::ClusterExportCredentials(req::ClusterExportCredentials { ttl_secs: *ttl })
        }
        What::Cluster(ClusterCmd::Join { credentials, peer }) => {
            Command::ClusterJoin(req::ClusterJoin {
                credentials: std::fs::read_to_string(credentials)
                    .with_context(|| format!("cannot read {}", credentials.display()))?,
                peer: peer.clone(),
            })
        }
        What::Cluster(ClusterCmd::Status) => Command::ClusterStatus(req::ClusterStatus {}),
        What::Setting(SettingCmd::Set { key, value }) => Command::SettingSet(req::SettingSet {
            key: key.clone(),
            value: value.clone(),
        }),
        What::Setting(SettingCmd::Get { key }) => {
            Command::SettingGet(req::SettingGet { key: key.clone() })
        }
        What::Setting(SettingCmd::Unset { key }) => {
            Command::SettingUnset(req::SettingUnset { key: key.clone() })
        }
        What::Vip(VipCmd::Add {
            address,
            interface,
            prefer,
        }) => Command::VipAdd(req::VipAdd {
            address: address.clone(),
            interface: interface.clone(),
            preferred: prefer.clone(),
        }),
        What::Vip(VipCmd::List) => Command::VipList(req::VipList {}),
        What::Domain(d) => domain(d)?,
        What::WebTls { cert, key } => {
            let read = |p: &PathBuf| {
                std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
            };
            Command::WebTlsSet(req::WebTlsSet {
                cert: read(cert)?,
                key: read(key)?,
            })
        }
        What::Vip(VipCmd::Move { address, to }) => Command::VipMove(req::VipMove {
            address: address.clone(),
            to: *to,
        }),
        What::Vip(VipCmd::Remove { address }) => Command::VipRemove(req::VipRemove {
            address: address.clone(),
        }),
        What::Admin(AdminCmd::Add {
            name,
            password_file,
            role,
        }) => Command::AdminAdd(req::AdminAdd {
            name: name.clone(),
            password: password(password_file)?,
            role: role.clone(),
        }),
        What::Admin(AdminCmd::List) => Command::AdminList(req::AdminList {}),
        What::Admin(AdminCmd::Remove { name }) => {
            Command::AdminRemove(req::AdminRemove { name: name.clone() })
        }
        What::Admin(AdminCmd::Password {
            name,
            password_file,
        }) => Command::AdminPassword(req::AdminPassword {
            name: name.clone(),
            password: password(password_file)?,
        }),
        What::Admin(AdminCmd::Role { name, role }) => Command::AdminRole(req::AdminRole {
            name: name.clone(),
            role: role.clone(),
        }),
        What::Token(TokenCmd::Create { name, role }) => Command::TokenCreate(req::TokenCreate {
            name: name.clone(),
            role: role.clone(),
        }),
        What::Token(TokenCmd::List) => Command::TokenList(req::TokenList {}),
        What::Token(TokenCmd::Revoke { name }) => {
            Command::TokenRevoke(req::TokenRevoke { name: name.clone() })
        }
        What::Audit { limit } => Command::AuditList(req::AuditList { limit: *limit }),
        What::Trace { limit } => Command::TraceList(req::TraceList { limit: *limit }),
        What::Stats => Command::Stats(req::Stats {}),
        What::Hardware => Command::Hardware(req::Hardware {}),
        What::Update(UpdateCmd::Status) => Command::System(req::System {}),
        What::Update(_) => bail!("this update command runs locally"),
    })
}

fn domain(d: &DomainCmd) -> anyhow::Result<Command> {
    let domain = |d: &String| d.clone();
    Ok(match d {
        DomainCmd::List => req::DomainList {}.into(),
        DomainCmd::DnsRecords { domain: d } => req::DomainDnsRecords { domain: domain(d) }.into(),
        DomainCmd::Rollover { domain: d } => req::DomainRollover { domain: domain(d) }.into(),
        DomainCmd::Revoke {
            domain: d,
            fingerprint,
        } => req::DomainRevoke {
            domain: domain(d),
            fingerprint: fingerprint.clone(),
        }
        .into(),
        DomainCmd::Partners => req::PartnerDomainList {}.into(),
        DomainCmd::Import { domain: d, file } => req::PartnerDomainImport {
            domain: domain(d),
            data: b64_file(file)?,
        }
        .into(),
        DomainCmd::Refresh { domain: d } => req::PartnerDomainRefresh { domain: domain(d) }.into(),
        DomainCmd::Forget { domain: d } => req::PartnerDomainForget { domain: domain(d) }.into(),
    })
}
