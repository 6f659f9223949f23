//! posternctl's command line: what the operator can ask for.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "posternctl",
    version,
    about = "Manage a Postern secure-mail gateway"
)]
pub struct Cli {
    /// The node's data directory (its control socket is DATA_DIR/control.sock).
    #[arg(long, default_value = "/var/lib/postern", global = true)]
    pub data_dir: PathBuf,
    /// Print the raw JSON response.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub what: What,
}

#[derive(Debug, Subcommand)]
pub enum What {
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
    /// Federation: our domains' keys and DNS records, the partner domains pinned.
    #[command(subcommand)]
    Domain(DomainCmd),
    /// Administrators of the web GUI and API (password + TOTP).
    #[command(subcommand)]
    Admin(AdminCmd),
    /// API tokens for scripts and Prometheus.
    #[command(subcommand)]
    Token(TokenCmd),
    /// The TLS certificate every node's web listener (GUI, API, WKD) presents: a PEM
    /// certificate (chain) and its private key; until set, each node's own self-signed one.
    WebTls {
        #[arg(long)]
        cert: PathBuf,
        #[arg(long)]
        key: PathBuf,
    },
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
pub enum UpdateCmd {
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
pub enum AdminCmd {
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
    /// Set an administrator's password (their TOTP secret stays; their sessions end).
    Password {
        name: String,
        #[arg(long)]
        password_file: PathBuf,
    },
    /// Give an administrator another role (admin or readonly); in force at once, in open
    /// sessions too.
    Role {
        name: String,
        role: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
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
pub enum DomainCmd {
    /// Our internal domains, their domain keys and what they publish.
    List,
    /// The OPENPGPKEY, SMIMEA and _mailenc TXT records for DOMAIN's DNSSEC-signed zone.
    DnsRecords { domain: String },
    /// A new domain key for DOMAIN now, certified by the current one.
    Rollover { domain: String },
    /// Revoke one of DOMAIN's keys by fingerprint: an OpenPGP key, or an S/MIME domain
    /// certificate by its SHA-256 (`domain list` shows both); partners stop using it at their
    /// next refresh.
    Revoke { domain: String, fingerprint: String },
    /// Partner domains and what is pinned for them (keys, trust, sources, policy).
    Partners,
    /// Pin a partner's domain key from FILE by hand (verified): an OpenPGP key, or an S/MIME
    /// domain certificate (PEM or DER) that names the domain.
    Import { domain: String, file: PathBuf },
    /// Look a partner domain up now (DNSSEC, WKD).
    Refresh { domain: String },
    /// Forget everything pinned for a partner domain.
    Forget { domain: String },
}

#[derive(Debug, Subcommand)]
pub enum VipCmd {
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
pub enum ClusterCmd {
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
pub enum SettingCmd {
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
pub enum UserCmd {
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
pub enum PartnerCmd {
    /// Import certificates (PEM) or OpenPGP public keys of partners.
    Import {
        file: PathBuf,
    },
    List,
}

#[derive(Debug, Subcommand)]
pub enum TrustCmd {
    /// Trust the CA certificates (PEM) in FILE for verifying S/MIME signatures.
    Add { file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum CaCmd {
    /// Print the CA certificate (PEM), to give to partners.
    Cert,
}

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Run the rollover check now (normally hourly).
    Rollover,
}
