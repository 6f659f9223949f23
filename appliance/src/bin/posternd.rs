//! `posternd`: the Postern gateway daemon. Loads the configuration, sets up logging, starts
//! the relay and waits for SIGTERM/SIGINT. Everything else lives in the `postern` library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use postern::config::{Config, ConfigError, Overrides};
use postern::daemon::Daemon;
use tokio::signal::unix::{SignalKind, signal};

/// Postern secure-mail gateway daemon (queue-less SMTP relay).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Configuration file (TOML). Without it, built-in defaults apply.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to accept SMTP on, e.g. 127.0.0.1:2525 (overrides server.listen).
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<String>,
    /// Cluster port, e.g. 127.0.0.1:7946 (overrides cluster.listen).
    #[arg(long, value_name = "ADDR:PORT")]
    cluster_listen: Option<String>,
    /// HTTPS address of the admin GUI and API, e.g. 127.0.0.1:8443 (overrides web.listen).
    #[arg(long, value_name = "ADDR:PORT")]
    web_listen: Option<String>,
    /// Downstream MTA, e.g. 127.0.0.1:10025 (overrides downstream.address).
    #[arg(long, value_name = "HOST:PORT")]
    downstream: Option<String>,
    /// Directory for state such as the generated TLS certificate (overrides server.data_dir).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Check the configuration and exit.
    #[arg(long)]
    check_config: bool,
}

/// sysexits.h EX_CONFIG: the configuration is wrong.
const EX_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("POSTERN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
    let overrides = Overrides {
        listen: args.listen.clone(),
        cluster_listen: args.cluster_listen.clone(),
        web_listen: args.web_listen.clone(),
        downstream: args.downstream.clone(),
        data_dir: args.data_dir.clone(),
    };
    let config = match &args.config {
        Some(path) => Config::load(path, &overrides),
        None => Config::parse("", "built-in defaults", &overrides),
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("posternd: configuration error: {e}");
            return ExitCode::from(match e {
                ConfigError::Read { .. } => 66, // EX_NOINPUT
                _ => EX_CONFIG,
            });
        }
    };
    if args.check_config {
        eprintln!("posternd: configuration OK");
        return ExitCode::SUCCESS;
    }
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("posternd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: Config) -> anyhow::Result<()> {
    // Two rustls providers are in the graph (ring for us, lettre's choice): pick ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let daemon = Daemon::start(&config).await?;
        let addr = daemon.local_addr()?;
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut term = signal(SignalKind::terminate()).context("cannot install SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot install SIGINT handler")?;
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::info!("shutdown requested");
            let _ = tx.send(true);
        });
        // The readiness line that scripts and the image's boot test wait for.
        let web = daemon
            .web_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        tracing::info!(listen = %addr, %web, downstream = %config.downstream.address, "posternd ready");
        daemon.serve(rx).await;
        tracing::info!("posternd stopped");
        Ok(())
    })
}
