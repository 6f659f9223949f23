//! `posternctl`: manage a Postern node through its control socket.

mod args;
mod request;
mod update;

use std::io::{BufRead as _, Write as _};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Parser as _;
use postern::control::{Response, socket_path};
use postern_api::Command;

use args::*;

fn call(cli: &Cli, cmd: &Command) -> anyhow::Result<Response> {
    let path = socket_path(&cli.data_dir);
    let mut s = UnixStream::connect(&path).with_context(|| {
        format!(
            "cannot reach posternd at {} (is it running, and may you use it?)",
            path.display()
        )
    })?;
    let mut line = serde_json::to_vec(cmd)?;
    line.push(b'\n');
    s.write_all(&line)?;
    let mut reply = String::new();
    std::io::BufReader::new(s).read_line(&mut reply)?;
    serde_json::from_str(&reply).context("posternd sent an unreadable response")
}

fn print_human(cli: &Cli, data: &serde_json::Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match (&cli.what, data) {
        (What::Cluster(ClusterCmd::ExportCredentials { output, .. }), creds) => {
            use std::os::unix::fs::OpenOptionsExt as _;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(output)
                .with_context(|| format!("cannot write {}", output.display()))?;
            f.write_all(serde_json::to_string_pretty(creds)?.as_bytes())?;
            writeln!(out, "wrote {} (one join; keep it secret)", output.display())?;
        }
        (
            What::Cluster(_)
            | What::Vip(VipCmd::List)
            | What::Admin(_)
            | What::Token(_)
            | What::Audit { .. }
            | What::Trace { .. }
            | What::Stats
            | What::Hardware
            | What::Update(_),
            v,
        ) if !v.is_null() => writeln!(out, "{}", serde_json::to_string_pretty(v)?)?,
        (What::Domain(DomainCmd::DnsRecords { .. }), v) => {
            for r in v["records"].as_array().into_iter().flatten() {
                writeln!(out, "{}", r.as_str().unwrap_or_default())?;
            }
        }
        (What::Domain(_), v) if !v.is_null() => {
            writeln!(out, "{}", serde_json::to_string_pretty(v)?)?
        }
        (What::User(UserCmd::Pkcs12 { output, .. }), serde_json::Value::String(b64)) => {
            let der = openssl::base64::decode_block(b64)?;
            std::fs::write(output, der)
                .with_context(|| format!("cannot write {}", output.display()))?;
            writeln!(out, "wrote {}", output.display())?;
        }
        (_, serde_json::Value::String(s)) => write!(out, "{s}")?,
        (_, serde_json::Value::Array(items)) => {
            for item in items {
                writeln!(out, "{}", summary_line(item))?;
            }
        }
        (_, serde_json::Value::Null) => writeln!(out, "done")?,
        (_, v) => writeln!(out, "{}", summary_line(v))?,
    }
    Ok(())
}

/// One line per user/partner: address, S/MIME serials with expiry, OpenPGP fingerprints.
fn summary_line(v: &serde_json::Value) -> String {
    let Some(address) = v.get("address").and_then(|a| a.as_str()) else {
        return v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    };
    let smime: Vec<String> = v
        .get("smime")
        .and_then(|s| s.as_array())
        .map(|a| {
            a.iter()
                .map(|c| {
                    let serial = c.get("serial").and_then(|s| s.as_str()).unwrap_or("?");
                    let end = c.get("not_after").and_then(|s| s.as_u64()).unwrap_or(0);
                    format!("{serial} (until {})", end / 86_400 * 86_400)
                })
                .collect()
        })
        .unwrap_or_default();
    let pgp: Vec<&str> = v
        .get("pgp")
        .and_then(|s| s.as_array())
        .map(|a| a.iter().filter_map(|f| f.as_str()).collect())
        .unwrap_or_default();
    format!(
        "{address}\tS/MIME: {}\tOpenPGP: {}",
        if smime.is_empty() {
            "-".into()
        } else {
            smime.join(", ")
        },
        if pgp.is_empty() {
            "-".into()
        } else {
            pgp.join(", ")
        }
    )
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    if let What::Update(u) = &cli.what
        && !matches!(u, UpdateCmd::Status)
    {
        return update::update_local(cli, u);
    }
    let cmd = request::request(cli)?;
    let response = call(cli, &cmd)?;
    if cli.json {
        writeln!(
            std::io::stdout(),
            "{}",
            serde_json::to_string_pretty(&response)?
        )?;
        return if response.ok {
            Ok(())
        } else {
            bail!("command failed")
        };
    }
    if !response.ok {
        bail!(
            "{}",
            response.error.unwrap_or_else(|| "command failed".into())
        );
    }
    print_human(cli, &response.data)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("posternctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}
