//! `posternctl`: manage a Postern node through its control socket.

use std::io::{BufRead as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use postern::control::{Command, Response, socket_path};

#[derive(Debug, Parser)]
#[command(
    name = "posternctl",
    version,
    about = "Manage a Postern secure-mail gateway"
)]
struct Cli {
    /// The node's data directory (its control socket is DATA_DIR/control.sock).
    #[arg(long, default_value = "/var/lib/postern", global = true)]
    data_dir: PathBuf,
    /// Print the raw JSON response.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Subcommand)]
enum What {
    /// Internal users and their keys.
    #[command(subcommand)]
    User(UserCmd),
    /// Partners' certificates and keys (harvested or imported).
    #[command(subcommand)]
    Partner(PartnerCmd),
    /// S/MIME trust anchors.
    #[command(subcommand)]
    Trust(TrustCmd),
    /// The built-in certificate authority.
    #[command(subcommand)]
    Ca(CaCmd),
    /// Key maintenance.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// The cluster: export credentials, join, remove a node, status.
    #[command(subcommand)]
    Cluster(ClusterCmd),
    /// Replicated settings (cluster members only).
    #[command(subcommand)]
    Setting(SettingCmd),
    /// Virtual IPs: the addresses upstream MTAs send to, held by one node at a time.
    #[command(subcommand)]
    Vip(VipCmd),
    /// Administrators of the web GUI and API (password + TOTP).
    #[command(subcommand)]
    Admin(AdminCmd),
    /// API tokens for scripts and Prometheus.
    #[command(subcommand)]
    Token(TokenCmd),
    /// The latest administrative actions (GUI, API and CLI), newest first.
    Audit {
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// The latest mail transactions of this node, newest first (never bodies).
    Trace {
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// This node's mail counters.
    Stats,
    /// This node's hardware health and readings, and every node's summary.
    Hardware,
    /// System updates of the appliance image: signed bundles into the inactive root slot.
    #[command(subcommand)]
    Update(UpdateCmd),
}

#[derive(Debug, Subcommand)]
enum UpdateCmd {
    /// The slot and version this node runs, and the last update's state.
    Status,
    /// Install a bundle into the inactive slot now (root, on the appliance); the next boot
    /// tries it and falls back if it does not come up healthy.
    Install {
        bundle: PathBuf,
        /// Reboot into it once it is written.
        #[arg(long)]
        reboot: bool,
        /// The key bundles must be signed with.
        #[arg(long, default_value = postern::update::DEFAULT_PUBLIC_KEY)]
        public_key: PathBuf,
    },
    /// Install what posternd staged in DATA_DIR/update (run by postern-update.service).
    ApplyStaged {
        #[arg(long, default_value = postern::update::DEFAULT_PUBLIC_KEY)]
        public_key: PathBuf,
    },
    /// Record what became of the last update at boot: running, or rolled back (run by
    /// postern-update-boot.service).
    BootCheck,
    /// Pack and sign a bundle (image/build.sh runs this).
    Pack {
        /// The Ed25519 private key (PEM).
        #[arg(long)]
        key: PathBuf,
        /// The new system's IMAGE_VERSION.
        #[arg(long)]
        version: String,
        /// dm-verity root hash of the root file system.
        #[arg(long)]
        roothash: String,
        #[arg(long)]
        root: PathBuf,
        #[arg(long)]
        verity: PathBuf,
        #[arg(long)]
        uki_a: PathBuf,
        #[arg(long)]
        uki_b: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCmd {
    /// Add an administrator; prints the TOTP secret for their authenticator app (once).
    Add {
        name: String,
        /// File holding the password (first line).
        #[arg(long)]
        password_file: PathBuf,
        /// admin or readonly.
        #[arg(long, default_value = "admin")]
        role: String,
    },
    List,
    Remove {
        name: String,
    },
    /// Set an administrator's password (their TOTP secret stays).
    Password {
        name: String,
        #[arg(long)]
        password_file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCmd {
    /// Create a token; prints it once.
    Create {
        name: String,
        /// admin or readonly.
        #[arg(long, default_value = "readonly")]
        role: String,
    },
    List,
    Revoke {
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum VipCmd {
    /// Configure a virtual IP, e.g. `vip add 192.0.2.25/24 --interface eth0`.
    Add {
        address: String,
        #[arg(long)]
        interface: String,
        /// Nodes that should hold it, in order (ids from `cluster status`), e.g. 1,2.
        #[arg(long, value_delimiter = ',')]
        prefer: Vec<u64>,
    },
    /// Every virtual IP, who holds it, and how long its lease has left.
    List,
    /// Move a virtual IP to node ID (once its current lease ends); it stays there.
    Move {
        address: String,
        #[arg(long)]
        to: u64,
    },
    /// Stop serving a virtual IP (its holder drops it).
    Remove { address: String },
}

#[derive(Debug, Subcommand)]
enum ClusterCmd {
    /// Show the single-member cluster this node founded at its first start (every node
    /// has one until it joins another).
    Init,
    /// Write credentials that let one new node join (a one-time token).
    ExportCredentials {
        #[arg(short, long)]
        output: PathBuf,
        /// How long the token stays valid, in seconds: 60 (one minute) to 604800 (seven
        /// days).
        #[arg(long, default_value_t = 3600,
              value_parser = clap::value_parser!(u64).range(postern_cluster::join::TOKEN_TTL_SECS))]
        ttl: u64,
    },
    /// Join the cluster the credentials name, through the member at PEER (address:port).
    Join {
        #[arg(long)]
        credentials: PathBuf,
        #[arg(long)]
        peer: String,
    },
    /// Take node ID out of the cluster (a dead node, or one being replaced); run it on
    /// another member.
    Remove { id: u64 },
    /// Members, leader, term, applied index, and on the leader each member's lag.
    Status,
}

#[derive(Debug, Subcommand)]
enum SettingCmd {
    Set {
        key: String,
        value: String,
    },
    Get {
        key: String,
    },
    /// Remove a setting (policy settings fall back to each node's configuration file).
    Unset {
        key: String,
    },
}

#[derive(Debug, Subcommand)]
enum UserCmd {
    /// Enrol a user: a new S/MIME certificate from the built-in CA and a new OpenPGP key.
    Enrol {
        address: String,
    },
    List,
    Remove {
        address: String,
    },
    /// Print the user's S/MIME certificates (PEM).
    Cert {
        address: String,
    },
    /// Print the user's OpenPGP public keys (armored).
    Pgp {
        address: String,
    },
    /// Write the user's current S/MIME certificate and key as PKCS#12.
    Pkcs12 {
        address: String,
        /// File holding the password that protects the bundle (first line).
        #[arg(long)]
        password_file: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Import a PKCS#12 bundle as a user's S/MIME identity.
    ImportPkcs12 {
        file: PathBuf,
        #[arg(long)]
        password_file: PathBuf,
    },
    /// Import an OpenPGP secret key (armored or binary) as a user's key.
    ImportPgp {
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum PartnerCmd {
    /// Import certificates (PEM) or OpenPGP public keys of partners.
    Import {
        file: PathBuf,
    },
    List,
}

#[derive(Debug, Subcommand)]
enum TrustCmd {
    /// Trust the CA certificates (PEM) in FILE for verifying S/MIME signatures.
    Add { file: PathBuf },
}

#[derive(Debug, Subcommand)]
enum CaCmd {
    /// Print the CA certificate (PEM), to give to partners.
    Cert,
}

#[derive(Debug, Subcommand)]
enum KeysCmd {
    /// Run the rollover check now (normally hourly).
    Rollover,
}

fn b64_file(path: &PathBuf) -> anyhow::Result<String> {
    let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(openssl::base64::encode_block(&data))
}

fn password(path: &PathBuf) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read password file {}", path.display()))?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

fn request(cli: &Cli) -> anyhow::Result<Command> {
    Ok(match &cli.what {
        What::User(u) => match u {
            UserCmd::Enrol { address } => Command::UserEnrol {
                address: address.clone(),
            },
            UserCmd::List => Command::UserList,
            UserCmd::Remove { address } => Command::UserRemove {
                address: address.clone(),
            },
            UserCmd::Cert { address } => Command::UserCert {
                address: address.clone(),
            },
            UserCmd::Pgp { address } => Command::UserPgp {
                address: address.clone(),
            },
            UserCmd::Pkcs12 {
                address,
                password_file,
                ..
            } => Command::UserPkcs12 {
                address: address.clone(),
                password: password(password_file)?,
            },
            UserCmd::ImportPkcs12 {
                file,
                password_file,
            } => Command::ImportPkcs12 {
                data: b64_file(file)?,
                password: password(password_file)?,
            },
            UserCmd::ImportPgp { file } => Command::ImportPgpSecret {
                data: b64_file(file)?,
            },
        },
        What::Partner(PartnerCmd::Import { file }) => Command::ImportPublic {
            data: b64_file(file)?,
        },
        What::Partner(PartnerCmd::List) => Command::PartnerList,
        What::Trust(TrustCmd::Add { file }) => Command::TrustAdd {
            data: b64_file(file)?,
        },
        What::Ca(CaCmd::Cert) => Command::CaCert,
        What::Keys(KeysCmd::Rollover) => Command::Rollover,
        What::Cluster(ClusterCmd::Init) => Command::ClusterInit,
        What::Cluster(ClusterCmd::Remove { id }) => Command::ClusterRemove { id: *id },
        What::Cluster(ClusterCmd::ExportCredentials { ttl, .. }) => {
            Command::ClusterExportCredentials { ttl_secs: *ttl }
        }
        What::Cluster(ClusterCmd::Join { credentials, peer }) => Command::ClusterJoin {
            credentials: std::fs::read_to_string(credentials)
                .with_context(|| format!("cannot read {}", credentials.display()))?,
            peer: peer.clone(),
        },
        What::Cluster(ClusterCmd::Status) => Command::ClusterStatus,
        What::Setting(SettingCmd::Set { key, value }) => Command::SettingSet {
            key: key.clone(),
            value: value.clone(),
        },
        What::Setting(SettingCmd::Get { key }) => Command::SettingGet { key: key.clone() },
        What::Setting(SettingCmd::Unset { key }) => Command::SettingUnset { key: key.clone() },
        What::Vip(VipCmd::Add {
            address,
            interface,
            prefer,
        }) => Command::VipAdd {
            address: address.clone(),
            interface: interface.clone(),
            preferred: prefer.clone(),
        },
        What::Vip(VipCmd::List) => Command::VipList,
        What::Vip(VipCmd::Move { address, to }) => Command::VipMove {
            address: address.clone(),
            to: *to,
        },
        What::Vip(VipCmd::Remove { address }) => Command::VipRemove {
            address: address.clone(),
        },
        What::Admin(AdminCmd::Add {
            name,
            password_file,
            role,
        }) => Command::AdminAdd {
            name: name.clone(),
            password: password(password_file)?,
            role: role.clone(),
        },
        What::Admin(AdminCmd::List) => Command::AdminList,
        What::Admin(AdminCmd::Remove { name }) => Command::AdminRemove { name: name.clone() },
        What::Admin(AdminCmd::Password {
            name,
            password_file,
        }) => Command::AdminPassword {
            name: name.clone(),
            password: password(password_file)?,
        },
        What::Token(TokenCmd::Create { name, role }) => Command::TokenCreate {
            name: name.clone(),
            role: role.clone(),
        },
        What::Token(TokenCmd::List) => Command::TokenList,
        What::Token(TokenCmd::Revoke { name }) => Command::TokenRevoke { name: name.clone() },
        What::Audit { limit } => Command::AuditList { limit: *limit },
        What::Trace { limit } => Command::TraceList { limit: *limit },
        What::Stats => Command::Stats,
        What::Hardware => Command::Hardware,
        What::Update(UpdateCmd::Status) => Command::System,
        What::Update(_) => bail!("this update command runs locally"),
    })
}

/// The update commands that run here, as root, not through posternd.
fn update_local(cli: &Cli, u: &UpdateCmd) -> anyhow::Result<()> {
    use postern::update;
    let sys = update::System::default();
    let spool = cli.data_dir.join("update");
    let mut progress = |s: &str| say(&format!("postern-update: {s}"));
    match u {
        UpdateCmd::Status => unreachable!("status goes through posternd"),
        UpdateCmd::Install {
            bundle,
            reboot,
            public_key,
        } => {
            let key = update::public_key(public_key)?;
            let done = update::install(bundle, &key, public_key, &sys, &mut progress)?;
            let status = done.status();
            if spool.is_dir() {
                status.write(&spool.join(update::SPOOL_STATUS))?;
            }
            say(&status.message);
            if *reboot {
                reboot_now()?;
            }
        }
        UpdateCmd::ApplyStaged { public_key } => {
            match update::apply_staged(&spool, public_key, &sys, &mut progress) {
                Ok(Some(req)) if req.reboot => reboot_now()?,
                Ok(Some(_)) => progress("it runs after the next reboot"),
                Ok(None) => progress("nothing staged"),
                Err(e) => bail!("update failed: {e}"),
            }
        }
        UpdateCmd::BootCheck => {
            match update::boot_check(&sys, &spool.join(update::SPOOL_STATUS))? {
                Some(st) => progress(&st.message),
                None => {
                    let r = sys.running()?;
                    progress(&format!(
                        "slot {} runs version {}",
                        r.slot.as_str(),
                        r.version
                    ));
                }
            }
        }
        UpdateCmd::Pack {
            key,
            version,
            roothash,
            root,
            verity,
            uki_a,
            uki_b,
            out,
        } => {
            let key = update::private_key(key)?;
            let files = [root.clone(), verity.clone(), uki_a.clone(), uki_b.clone()];
            let m = update::pack(out, version, roothash, &files, &key)?;
            let size: u64 = m.files.iter().map(|f| f.size).sum();
            say(&format!(
                "wrote {} (version {}, {} MiB, signed)",
                out.display(),
                m.version,
                size >> 20
            ));
        }
    }
    Ok(())
}

/// A line on standard output (the console, under systemd).
fn say(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

fn reboot_now() -> anyhow::Result<()> {
    say("postern-update: rebooting");
    let status = std::process::Command::new("systemctl")
        .arg("reboot")
        .status()
        .context("cannot run systemctl reboot")?;
    if !status.success() {
        bail!("systemctl reboot failed ({status})");
    }
    Ok(())
}

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
        return update_local(cli, u);
    }
    let cmd = request(cli)?;
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
