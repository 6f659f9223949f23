//! Wiring for `posternd`: from a checked [`Config`] to a listening relay.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::policy::DomainRouter;
use crate::relay::downstream::{Target, TargetError};
use crate::relay::limits::ConnectionLimits;
use crate::relay::server::{self, Relay};
use crate::smtp::session::SessionConfig;
use crate::tls::{self, ServerTlsError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("TLS certificate: {0}")]
    Tls(#[from] ServerTlsError),
    #[error("downstream {0}")]
    Downstream(#[from] TargetError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A relay ready to serve: the listener is bound.
#[derive(Debug)]
pub struct Daemon {
    listener: TcpListener,
    relay: Arc<Relay>,
    grace: std::time::Duration,
}

impl Daemon {
    /// Prepares everything that can fail at start-up, in the order an operator fixes them.
    pub async fn start(config: &Config) -> Result<Daemon, StartError> {
        let data_dir = &config.server.data_dir;
        create_private_dir(data_dir).map_err(|source| StartError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        let tls_config = tls::server_config(&config.tls, data_dir, &config.server.hostname)?;
        let mut targets = vec![Target::new(config.downstream.clone())?];
        let mut rules = Vec::new();
        for route in &config.routes {
            rules.push((targets.len(), route.domains.clone()));
            targets.push(Target::new(route.downstream.clone())?);
        }
        let smtp = &config.smtp;
        let session = SessionConfig {
            hostname: config.server.hostname.clone(),
            max_message_size: smtp.max_message_size,
            max_line_length: smtp.max_line_length,
            max_recipients: smtp.max_recipients,
            max_errors: smtp.max_errors,
            max_received_headers: smtp.max_received_headers,
            tls_available: true,
            command_timeout: smtp.command_timeout,
            data_timeout: smtp.data_timeout,
        };
        let relay = Relay {
            session: Arc::new(session),
            policy: Arc::new(DomainRouter::new(rules)),
            tls: Some(TlsAcceptor::from(tls_config)),
            targets: Arc::new(targets),
            limits: ConnectionLimits::new(
                config.server.max_connections,
                config.server.max_connections_per_ip,
            ),
            tls_handshake_timeout: smtp.tls_handshake_timeout,
        };
        let addr = config.server.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Listen { addr, source })?;
        Ok(Daemon {
            listener,
            relay: Arc::new(relay),
            grace: config.server.shutdown_grace,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` turns true.
    pub async fn serve(self, shutdown: watch::Receiver<bool>) {
        server::serve(self.listener, self.relay, shutdown, self.grace).await;
    }
}

fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}
