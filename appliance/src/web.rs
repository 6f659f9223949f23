//! The daemon as the web server's [`Backend`]: commands go to the dispatcher, logins and
//! session checks to the accounts service and view (this node's copy: logins keep working
//! without quorum), and the server's certificate comes from the replicated state.

use std::sync::Arc;

use postern_api::{Actor, Command, Error, Reply, Role};
use postern_webgui::{Account, Backend, BoxFuture, LoginOk, WellKnown};

use crate::dispatch::Dispatcher;

/// The web server's view of the daemon.
#[derive(Debug, Clone)]
pub struct GuiBackend {
    pub dispatcher: Dispatcher,
    /// This node's name (page titles, the TOTP issuer).
    pub node_name: String,
}

impl Backend for GuiBackend {
    fn execute(&self, cmd: Command, actor: Actor) -> BoxFuture<'_, Result<Reply, Error>> {
        Box::pin(self.dispatcher.run(cmd, actor))
    }

    fn verify_login<'a>(
        &'a self,
        name: &'a str,
        password: &'a str,
        code: &'a str,
    ) -> BoxFuture<'a, Option<LoginOk>> {
        Box::pin(async move {
            let v = self
                .dispatcher
                .accounts
                .verify_login(name, password, code)
                .await?;
            Some(LoginOk {
                role: v.role,
                credential: v.credential,
                step: v.step,
            })
        })
    }

    fn account(&self, name: &str) -> Option<Account> {
        self.dispatcher.accounts.view.account(name)
    }

    fn api_token(&self, hash: &str) -> Option<(String, Role)> {
        self.dispatcher.accounts.view.api_token(hash)
    }

    fn setup_done(&self) -> bool {
        self.dispatcher.accounts.view.has_admins()
    }

    fn metrics(&self) -> BoxFuture<'_, String> {
        let d = &self.dispatcher;
        Box::pin(crate::services::metrics::render(
            &d.trace,
            &d.member,
            &d.hardware,
            d.federation.as_deref(),
        ))
    }

    fn web_tls(&self) -> Option<(String, String)> {
        self.dispatcher.accounts.view.web_tls()
    }

    fn node_name(&self) -> String {
        self.node_name.clone()
    }

    fn well_known(&self, host: &str, path: &str) -> Option<WellKnown> {
        self.dispatcher
            .publisher
            .well_known(host, path)
            .map(|p| WellKnown {
                content_type: p.content_type,
                body: p.body,
            })
    }

    fn update_spool(&self) -> Option<std::path::PathBuf> {
        let spool = &self.dispatcher.spool;
        spool.public_key.as_ref().map(|_| spool.dir.clone())
    }
}

/// The backend as the web server takes it.
pub fn backend(dispatcher: &Dispatcher, node_name: &str) -> Arc<dyn Backend> {
    Arc::new(GuiBackend {
        dispatcher: dispatcher.clone(),
        node_name: node_name.to_owned(),
    })
}
