//! Each command to its service: one exhaustive `match`, no wildcard, so a new command does
//! not compile until it is routed.

use postern_api::{Actor, Command, Reply};

use super::Dispatcher;
use super::error::ServiceError;

impl Dispatcher {
    pub(super) async fn execute(&self, cmd: Command, actor: &Actor) -> Result<Reply, ServiceError> {
        use Command as C;
        let (keys, accounts, member) = (&self.keys, &self.accounts, &self.member);
        Ok(match cmd {
            C::UserEnrol(r) => Reply::UserEnrol(keys.enrol(r.address).await?),
            C::UserList(_) => Reply::UserList(keys.users().await?),
            C::UserRemove(r) => Reply::UserRemove(keys.remove(r.address).await?),
            C::UserCert(r) => Reply::UserCert(keys.certificates(r.address).await?),
            C::UserPgp(r) => Reply::UserPgp(keys.openpgp(r.address).await?),
            C::UserPkcs12(r) => Reply::UserPkcs12(keys.pkcs12(r.address, r.password).await?),
            C::ImportPkcs12(r) => {
                Reply::ImportPkcs12(keys.import_pkcs12(r.data, r.password).await?)
            }
            C::ImportPgpSecret(r) => Reply::ImportPgpSecret(keys.import_pgp_secret(r.data).await?),
            C::ImportPublic(r) => Reply::ImportPublic(keys.import_public(r.data).await?),
            C::PartnerList(_) => Reply::PartnerList(keys.partners().await?),
            C::TrustAdd(r) => Reply::TrustAdd(keys.trust_add(r.data).await?),
            C::CaCert(_) => Reply::CaCert(keys.ca_certificate().await?),
            C::Rollover(_) => Reply::Rollover(
                keys.rollover(self.domains.policy.get().domain_rollover_lead())
                    .await?,
            ),
            C::DomainList(_) => Reply::DomainList(self.domains.list().await?),
            C::DomainRollover(r) => Reply::DomainRollover(self.domains.rollover(r.domain).await?),
            C::DomainRevoke(r) => {
                Reply::DomainRevoke(self.domains.revoke(r.domain, r.fingerprint).await?)
            }
            C::DomainDnsRecords(r) => {
                Reply::DomainDnsRecords(self.domains.dns_records(r.domain).await?)
            }
            C::PartnerDomainList(_) => Reply::PartnerDomainList(self.domains.partners().await?),
            C::PartnerDomainImport(r) => {
                Reply::PartnerDomainImport(self.domains.import(r.domain, r.data).await?)
            }
            C::PartnerDomainRefresh(r) => {
                Reply::PartnerDomainRefresh(self.domains.refresh(r.domain).await?)
            }
            C::PartnerDomainForget(r) => {
                Reply::PartnerDomainForget(self.domains.forget(r.domain).await?)
            }
            C::ClusterInit(_) => Reply::ClusterInit(member.init().await?),
            C::ClusterExportCredentials(r) => {
                Reply::ClusterExportCredentials(member.export(r.ttl_secs).await?)
            }
            C::ClusterJoin(r) => Reply::ClusterJoin(member.join(&r.credentials, &r.peer).await?),
            C::ClusterRemove(r) => Reply::ClusterRemove(member.remove(r.id).await?),
            C::ClusterStatus(_) => Reply::ClusterStatus(member.cluster_status().await?),
            C::SettingSet(r) => Reply::SettingSet(self.settings.set(r.key, r.value).await?),
            C::SettingUnset(r) => Reply::SettingUnset(self.settings.unset(r.key).await?),
            C::SettingGet(r) => Reply::SettingGet(self.settings.get(r.key).await?),
            C::SettingList(_) => Reply::SettingList(self.settings.list().await?),
            C::VipAdd(r) => {
                Reply::VipAdd(self.vips.add(r.address, r.interface, r.preferred).await?)
            }
            C::VipList(_) => Reply::VipList(self.vips.list().await?),
            C::VipMove(r) => Reply::VipMove(self.vips.move_to(r.address, r.to).await?),
            C::VipRemove(r) => Reply::VipRemove(self.vips.remove(r.address).await?),
            C::SetupStatus(_) => Reply::SetupStatus(accounts.setup_status()),
            C::Setup(r) => Reply::Setup(
                accounts
                    .setup(&r.admin, &r.password, &r.domains, &r.downstream)
                    .await?,
            ),
            C::AdminAdd(r) => {
                Reply::AdminAdd(accounts.admin_add(&r.name, &r.password, &r.role).await?)
            }
            C::AdminList(_) => Reply::AdminList(accounts.admin_list().await?),
            C::AdminRemove(r) => Reply::AdminRemove(accounts.admin_remove(&r.name).await?),
            C::AdminPassword(r) => {
                Reply::AdminPassword(accounts.admin_password(&r.name, &r.password).await?)
            }
            C::AdminRole(r) => Reply::AdminRole(accounts.admin_role(&r.name, &r.role).await?),
            C::TokenCreate(r) => Reply::TokenCreate(accounts.token_create(&r.name, &r.role).await?),
            C::TokenList(_) => Reply::TokenList(accounts.token_list().await?),
            C::TokenRevoke(r) => Reply::TokenRevoke(accounts.token_revoke(&r.name).await?),
            C::AuditList(r) => Reply::AuditList(accounts.audit_list(r.limit).await?),
            C::TraceList(r) => {
                Reply::TraceList(self.trace.latest(r.limit.min(crate::relay::trace::KEEP)))
            }
            C::Stats(_) => Reply::Stats(self.stats().await),
            C::WebTlsSet(r) => Reply::WebTlsSet(accounts.web_tls_set(&r.cert, &r.key).await?),
            C::Hardware(_) => Reply::Hardware(self.hardware_view().await?),
            C::System(_) => Reply::System(self.spool.status()),
            C::UpdateStage(r) => Reply::UpdateStage(self.update_stage(r.reboot, actor).await?),
            C::NetworkGet(_) => Reply::NetworkGet(self.network.get()?),
            C::NetworkSet(r) => Reply::NetworkSet(self.network.set(&r.settings)?),
        })
    }

    async fn stats(&self) -> postern_api::views::Stats {
        let mut s = self.trace.counters();
        s.node_id = self.member.node_id().await.unwrap_or(0);
        if let Some(f) = &self.federation {
            s.federation = postern_api::views::FederationCounters {
                enforced: s.federation.enforced,
                ..f.counters()
            };
        }
        s
    }

    /// This node's hardware and every node's summary from the cluster state.
    async fn hardware_view(&self) -> Result<postern_api::views::Hardware, ServiceError> {
        let mut v = self.hardware.view();
        v.cluster = self
            .member
            .read()
            .await?
            .hardware
            .into_iter()
            .map(|(node, r)| {
                let summary = postern_api::views::HardwareSummary {
                    model: r.model,
                    overall: r.overall,
                    problems: r.problems,
                    disk_failing: r.disk_failing,
                    time: r.time,
                };
                (node, summary)
            })
            .collect();
        Ok(v)
    }

    /// Verifies the bundle the web server received (reading a few hundred MiB: on the
    /// blocking pool) and hands it to the privileged installer.
    async fn update_stage(
        &self,
        reboot: bool,
        actor: &Actor,
    ) -> Result<postern_api::views::Staged, ServiceError> {
        let spool = self.spool.clone();
        let by = actor.name.clone();
        tokio::task::spawn_blocking(move || spool.stage(reboot, &by))
            .await
            .map_err(|e| ServiceError::Task(e.to_string()))?
            .map_err(ServiceError::from)
    }
}
