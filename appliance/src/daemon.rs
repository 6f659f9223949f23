//! Wiring for `posternd`: from a checked [`Config`] to a listening relay.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use postern_crypto::engine::Engine;
use postern_crypto::keys::MemoryKeyStore;
use postern_crypto::keys::seal::Sealer;
use postern_crypto::policy::PolicyConfig;

use crate::config::Config;
use crate::control;
use crate::dispatch::Dispatcher;
use crate::federation::Federation;
use crate::member::MemberError;
use crate::policy::{DomainRouter, Gateway};
use crate::relay::downstream::{Target, TargetError, Targets};
use crate::relay::limits::ConnectionLimits;
use crate::relay::server::{self, Relay};
use crate::relay::trace::Trace;
use crate::services::hardware;
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
    #[error("cluster member: {0}")]
    Cluster(#[from] MemberError),
    #[error("cannot make a key store sealer: {0}")]
    Sealer(String),
    #[error("federation: {0}")]
    Federation(#[from] crate::federation::wkd::RootsError),
    #[error("web server: {0}")]
    Web(String),
    #[error("control socket {path}: {source}")]
    Control {
        path: String,
        source: std::io::Error,
    },
}

/// A relay ready to serve: the listener is bound.
#[derive(Debug)]
pub struct Daemon {
    listener: TcpListener,
    relay: Arc<Relay>,
    grace: std::time::Duration,
    control: tokio::net::UnixListener,
    dispatcher: Dispatcher,
    /// The downstream targets (the default one's reachability is this node's health for VIPs).
    targets: Arc<Targets>,
    /// The HTTPS listener of the GUI and API, and its TLS configuration.
    web: (TcpListener, rustls::ServerConfig),
    hostname: String,
    watchdog: Option<std::path::PathBuf>,
    rollover_interval: std::time::Duration,
    /// The crypto policy in force (its internal domains get domain keys).
    policy: Arc<postern_crypto::policy::SharedPolicy>,
    /// Where refused partner keys are reported.
    federation_alert_to: Option<String>,
}

impl Daemon {
    /// Prepares everything that can fail at start-up, in the order an operator fixes them.
    pub async fn start(config: &Config) -> Result<Daemon, StartError> {
        let data_dir = &config.server.data_dir;
        create_private_dir(data_dir).map_err(|source| StartError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        // Update bundles arrive here (the web server writes, the root installer reads); a
        // half-received one from before a restart is of no use.
        let spool = data_dir.join("update");
        create_private_dir(&spool).map_err(|source| StartError::DataDir {
            path: spool.display().to_string(),
            source,
        })?;
        let _ = std::fs::remove_file(spool.join(crate::update::SPOOL_INCOMING));
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
        // The key store mirrors the cluster state; the member fills it (and gives it the
        // cluster key) as it starts.
        let keys = Arc::new(MemoryKeyStore::new(Sealer::new(
            Sealer::generate().map_err(|e| StartError::Sealer(e.to_string()))?,
        )));
        let crypto = &config.crypto;
        let engine = Engine::new(
            PolicyConfig {
                internal_domains: crypto.internal_domains.clone(),
                always_encrypt: crypto.always_encrypt,
                policy_header: crypto.policy_header,
                subject_markers: crypto.subject_markers,
                ..PolicyConfig::default()
            },
            Arc::clone(&keys) as Arc<dyn postern_crypto::keys::KeyStore>,
        );
        let targets = Arc::new(Targets::new(targets));
        let trace = Arc::new(Trace::default());
        let federation = Arc::new(Federation::new(Arc::clone(&keys), &config.federation)?);
        let mut dispatcher = Dispatcher::new(
            config,
            Arc::clone(&keys),
            Arc::clone(&engine.policy),
            Arc::clone(&targets),
            Arc::clone(&trace),
        );
        dispatcher.federation = Some(Arc::clone(&federation));
        dispatcher.domains.federation = Some(Arc::clone(&federation));
        let member = Arc::clone(&dispatcher.member);
        let socket = control::socket_path(data_dir);
        let control = control::bind(&socket).map_err(|source| StartError::Control {
            path: socket.display().to_string(),
            source,
        })?;
        let policy = Arc::clone(&engine.policy);
        let relay = Relay {
            session: Arc::new(session),
            policy: Arc::new(Gateway {
                router: DomainRouter::new(rules),
                engine,
            }),
            tls: Some(TlsAcceptor::from(tls_config)),
            targets: Arc::clone(&targets),
            trace: Arc::clone(&trace),
            limits: ConnectionLimits::new(
                config.server.max_connections,
                config.server.max_connections_per_ip,
            ),
            tls_handshake_timeout: smtp.tls_handshake_timeout,
            discovery: Some(federation as Arc<dyn crate::relay::discovery::Discovery>),
        };
        let addr = config.server.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Listen { addr, source })?;
        let web_addr = config.web.listen;
        let web_listener =
            TcpListener::bind(web_addr)
                .await
                .map_err(|source| StartError::Listen {
                    addr: web_addr,
                    source,
                })?;
        let (cert, key) =
            postern_webgui::tls::self_signed(&data_dir.join("web"), &config.server.hostname)
                .map_err(|e| StartError::Web(e.to_string()))?;
        let own = postern_webgui::tls::certified_key(&cert, &key)
            .map_err(|e| StartError::Web(e.to_string()))?;
        let backend = crate::web::backend(&dispatcher, &config.server.hostname);
        let web_tls =
            postern_webgui::tls::server_config(postern_webgui::tls::Resolver::new(backend, own))
                .map_err(|e| StartError::Web(e.to_string()))?;
        member.start().await?;
        Ok(Daemon {
            listener,
            relay: Arc::new(relay),
            grace: config.server.shutdown_grace,
            control,
            dispatcher,
            targets,
            web: (web_listener, web_tls),
            hostname: config.server.hostname.clone(),
            watchdog: config.hardware.watchdog.clone(),
            federation_alert_to: config
                .federation
                .alert_to
                .clone()
                .or_else(|| config.hardware.alert_to.clone()),
            rollover_interval: crypto.rollover_interval,
            policy: Arc::clone(&policy),
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The bound address of the GUI and API.
    pub fn web_addr(&self) -> std::io::Result<SocketAddr> {
        self.web.0.local_addr()
    }

    /// Serves until `shutdown` turns true.
    pub async fn serve(self, shutdown: watch::Receiver<bool>) {
        let d = &self.dispatcher;
        let member = Arc::clone(&d.member);
        let monitor = Arc::clone(&d.hardware);
        let control = tokio::spawn(control::serve(self.control, d.clone()));
        let keeper = tokio::spawn(crate::tasks::rollover(
            d.keys.clone(),
            self.rollover_interval,
            Arc::clone(&self.policy),
        ));
        let domains = tokio::spawn(crate::tasks::domain_keys(
            d.keys.clone(),
            Arc::clone(&self.policy),
        ));
        let vips = tokio::spawn(crate::tasks::vips::run(
            Arc::clone(&member),
            Arc::clone(&self.targets),
            Arc::clone(&monitor),
            shutdown.clone(),
        ));
        let (web_listener, web_tls) = self.web;
        let app = postern_webgui::App::new(crate::web::backend(d, &self.hostname));
        let web = tokio::spawn(postern_webgui::serve(
            web_listener,
            app,
            web_tls,
            shutdown.clone(),
        ));
        let hardware = tokio::spawn(crate::tasks::hardware::run(
            Arc::clone(&monitor),
            Arc::clone(&member),
            Arc::clone(&self.targets),
            self.hostname.clone(),
            shutdown.clone(),
        ));
        let partner_alerts = tokio::spawn(crate::tasks::partners::alerts(
            Arc::clone(&d.keys.store),
            Arc::clone(&self.targets),
            self.hostname.clone(),
            self.federation_alert_to.clone(),
            shutdown.clone(),
        ));
        let beat = tokio::spawn(crate::tasks::heartbeat(
            Arc::clone(&member),
            Arc::clone(&monitor),
        ));
        let stop_dog = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let dog = match &self.watchdog {
            Some(path) => match hardware::start_watchdog(
                path,
                Arc::clone(&monitor),
                WATCHDOG_STALE,
                Arc::clone(&stop_dog),
            ) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::error!(error = %e, "no hardware watchdog");
                    None
                }
            },
            None => None,
        };
        server::serve(self.listener, self.relay, shutdown, self.grace).await;
        control.abort();
        keeper.abort();
        domains.abort();
        web.abort();
        hardware.abort();
        partner_alerts.abort();
        beat.abort();
        // A deliberate stop: disarm the watchdog (a crash leaves it armed, on purpose).
        stop_dog.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = dog {
            let _ = t.join();
        }
        // Give the virtual IPs up before the process ends (their lifetime would anyway).
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), vips).await;
        member.stop().await;
    }
}

/// How old the heartbeat may get before the watchdog is no longer petted.
const WATCHDOG_STALE: std::time::Duration = std::time::Duration::from_secs(5);

fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}
