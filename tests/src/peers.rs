//! The registry of every external program the end-to-end tests and benchmarks run, with the
//! package that provides it. `scripts/setup.sh` is the one place that installs them; this
//! module's tests fail when a program here comes from a package that setup.sh does not list,
//! when a program is not installed (under `REQUIRE_PEERS=1`), when a tool `image/build.sh`
//! checks for has no package in setup.sh, and when test code starts a program without going
//! through [`Peer::command`] — so a new peer cannot land without its install step.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where a program comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A Debian package (`apt-get install`).
    Debian(&'static str),
    /// A PyPI package installed by setup.sh into its own virtual environment: name, and the
    /// program's absolute path.
    PyPi(&'static str),
}

macro_rules! peers {
    ($($(#[doc = $doc:literal])* $variant:ident => $program:literal, $source:expr;)+) => {
        /// An external program the tests run.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Peer {
            $($(#[doc = $doc])* $variant,)+
        }

        impl Peer {
            /// Every peer, for the registry's own tests.
            pub const ALL: &'static [Peer] = &[$(Peer::$variant,)+];

            /// The program's name (looked up in PATH and the sbin directories) or absolute path.
            pub fn program(self) -> &'static str {
                match self {
                    $(Peer::$variant => $program,)+
                }
            }

            /// The package that provides it.
            pub fn source(self) -> Source {
                match self {
                    $(Peer::$variant => $source,)+
                }
            }
        }
    };
}

use Source::{Debian, PyPi};

peers! {
    /// Private Postfix instances as upstream and downstream MTAs.
    Postfix => "postfix", Debian("postfix");
    /// Submits mail into a private Postfix instance.
    Sendmail => "sendmail", Debian("postfix");
    /// Postfix's version for the benchmark report.
    Postconf => "postconf", Debian("postfix");
    /// Asks a private Postfix instance to retry its deferred mail.
    Postqueue => "postqueue", Debian("postfix");
    /// The downstream that dumps (or refuses) what it receives.
    SmtpSink => "smtp-sink", Debian("postfix");
    /// The load driver of the benchmarks.
    SmtpSource => "smtp-source", Debian("postfix");
    /// Makes test CAs and certificates; judges Postern's CMS output.
    Openssl => "openssl", Debian("openssl");
    /// Makes partners' OpenPGP keys; judges Postern's OpenPGP output.
    Gpg => "gpg", Debian("gpg");
    /// Ends a test's gpg-agent.
    Gpgconf => "gpgconf", Debian("gpgconf");
    /// Network namespaces, veth pairs, addresses (cluster and VIP tests).
    Ip => "ip", Debian("iproute2");
    /// Signals processes the harness started, by PID.
    Kill => "kill", Debian("procps");
    /// Hands a directory to the user a peer drops privileges to.
    Chown => "chown", Debian("coreutils");
    /// Sparse copies of disk images and recorded hardware trees.
    Cp => "cp", Debian("coreutils");
    /// Bounds a command run inside a namespace.
    Timeout => "timeout", Debian("coreutils");
    /// The clock tick, to turn a process's CPU time into seconds (benchmarks).
    Getconf => "getconf", Debian("libc-bin");
    /// The kernel for the benchmark report.
    Uname => "uname", Debian("coreutils");
    /// The commit for the benchmark report.
    Git => "git", Debian("git");
    /// Runs image/build.sh and small probes inside namespaces.
    Bash => "bash", Debian("bash");
    /// Starts posternd unprivileged with only the capabilities it needs (VIP tests).
    Setpriv => "setpriv", Debian("util-linux");
    /// The browser of the web GUI tests (headless).
    Chromium => "/usr/bin/chromium", Debian("chromium");
    /// Drives Chromium over WebDriver.
    Chromedriver => "/usr/bin/chromedriver", Debian("chromium-driver");
    /// Boots the appliance image (TCG).
    Qemu => "qemu-system-x86_64", Debian("qemu-system-x86");
    /// UEFI firmware for qemu (code, read-only).
    OvmfCode => "/usr/share/OVMF/OVMF_CODE_4M.fd", Debian("ovmf");
    /// UEFI firmware for qemu (variables, copied per boot).
    OvmfVars => "/usr/share/OVMF/OVMF_VARS_4M.fd", Debian("ovmf");
    /// Reads the partition table of the built disk.
    Sfdisk => "sfdisk", Debian("fdisk");
    /// Compiles the ACPI thermal zone given to the VM of the hardware boot test.
    Iasl => "iasl", Debian("acpica-tools");
    /// The authoritative DNS server of the federation tests: signs the lab's zones (DNSSEC).
    Knotd => "knotd", Debian("knot");
    /// Reloads knotd's zones after a test changes them.
    Knotc => "knotc", Debian("knot");
    /// Prints the DS record of a signed zone: the trust anchor of the lab's resolver.
    Keymgr => "keymgr", Debian("knot");
    /// The validating resolver Postern asks in the federation tests (sets AD or SERVFAILs).
    Unbound => "unbound", Debian("unbound");
    /// Publishes a WKD-only domain's key (gpg's Web Key Service tools).
    GpgWksServer => "gpg-wks-server", Debian("gpg-wks-server");
    /// Runs tests/peers/https_files.py: the web server of a WKD-only domain.
    Python3 => "python3", Debian("python3");
    /// Checks the REST API against its OpenAPI document.
    Schemathesis => "/var/tmp/postern-py/bin/schemathesis", PyPi("schemathesis");
}

impl Peer {
    /// Where the program is installed, if it is.
    pub fn path(self) -> Option<PathBuf> {
        let program = self.program();
        if program.starts_with('/') {
            Path::new(program).exists().then(|| PathBuf::from(program))
        } else {
            crate::which(program)
        }
    }

    /// A command that runs this program; panics with the package to install when it is not.
    pub fn command(self) -> Command {
        Command::new(self.path().unwrap_or_else(|| panic!("{}", self.missing()))) // the registry
    }

    /// Why it cannot run: not installed, and what installs it.
    pub fn missing(self) -> String {
        let from = match self.source() {
            Debian(p) => format!("Debian package {p}"),
            PyPi(p) => format!("{p} from PyPI"),
        };
        format!(
            "{} not installed ({from}; scripts/setup.sh installs it)",
            self.program()
        )
    }
}

/// A command that runs `program` (a peer's path or one of Postern's own binaries) inside
/// network namespace `netns` (by `ip netns exec`, which execs: the PID is the program's), or
/// here when `netns` is None.
pub fn exec_in(netns: Option<&str>, program: impl AsRef<std::ffi::OsStr>) -> Command {
    match netns {
        Some(ns) => {
            let mut c = Peer::Ip.command();
            c.args(["netns", "exec", ns]).arg(program);
            c
        }
        None => Command::new(program), // the registry: a peer's path or an own binary
    }
}

/// Whether every peer is installed; the ones that are not, with what installs them.
pub fn missing(peers: &[Peer]) -> Vec<String> {
    peers
        .iter()
        .filter(|p| p.path().is_none())
        .map(|p| p.missing())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// What `scripts/setup.sh --list` installs.
    fn setup_list() -> BTreeSet<String> {
        let out = Command::new("bash") // the registry's own check: bash runs setup.sh itself
            .arg(repo().join("scripts/setup.sh"))
            .arg("--list")
            .output()
            .expect("run scripts/setup.sh --list");
        assert!(out.status.success(), "scripts/setup.sh --list failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Whether setup.sh installs this source.
    fn installed_by_setup(list: &BTreeSet<String>, source: Source) -> bool {
        match source {
            Debian(p) => list.contains(p),
            PyPi(p) => list
                .iter()
                .any(|l| l.strip_prefix("pypi:").is_some_and(|l| l.starts_with(p))),
        }
    }

    /// `image/build.sh`'s table of the tools it checks for: (tool, package).
    fn image_build_tools() -> Vec<(String, String)> {
        let script =
            std::fs::read_to_string(repo().join("image/build.sh")).expect("read image/build.sh");
        let table = script
            .split_once("declare -A tool_packages=(")
            .and_then(|(_, rest)| rest.split_once("\n)"))
            .expect("image/build.sh has a tool_packages table")
            .0;
        table
            .lines()
            .filter_map(|l| {
                let (tool, package) = l.trim().strip_prefix('[')?.split_once("]=")?;
                Some((tool.to_owned(), package.to_owned()))
            })
            .collect()
    }

    #[test]
    fn every_peer_comes_from_a_package_setup_installs() {
        let list = setup_list();
        let mut gaps: Vec<String> = Peer::ALL
            .iter()
            .filter(|p| !installed_by_setup(&list, p.source()))
            .map(|p| format!("{:?} ({}) from {:?}", p, p.program(), p.source()))
            .collect();
        let tools = image_build_tools();
        assert!(tools.len() >= 10, "image/build.sh tool table: {tools:?}");
        gaps.extend(
            tools
                .iter()
                .filter(|(_, package)| !list.contains(package))
                .map(|(tool, package)| format!("image/build.sh's {tool} from {package}")),
        );
        assert!(
            gaps.is_empty(),
            "the tests run programs whose packages scripts/setup.sh does not install:\n  {}\n\
             add each package to scripts/setup.sh",
            gaps.join("\n  ")
        );
    }

    #[test]
    fn every_peer_is_installed() {
        let mut gaps = missing(Peer::ALL);
        gaps.extend(
            image_build_tools()
                .into_iter()
                .filter(|(tool, _)| {
                    if tool.starts_with('/') {
                        !Path::new(tool).exists()
                    } else {
                        crate::which(tool).is_none()
                    }
                })
                .map(|(tool, package)| {
                    format!("{tool} (image/build.sh) not installed (Debian package {package})")
                }),
        );
        if !gaps.is_empty() {
            crate::skip(
                &format!(
                    "peers: not installed (run scripts/setup.sh):\n  {}",
                    gaps.join("\n  ")
                ),
                "REQUIRE_PEERS",
            );
        }
    }

    /// Where dpkg is, the registry names the package that really owns each program.
    #[test]
    fn the_registry_names_the_package_that_owns_each_program() {
        let dpkg = crate::which("dpkg"); // the registry's own check
        if dpkg.is_none() {
            eprintln!("peers: no dpkg here; package ownership not checked");
            return;
        }
        let mut wrong = Vec::new();
        for peer in Peer::ALL {
            let (Some(path), Debian(package)) = (peer.path(), peer.source()) else {
                continue;
            };
            let real = std::fs::canonicalize(&path).unwrap_or(path.clone());
            // dpkg knows a file by the path its package installed it at: merged /usr puts
            // /bin/ip and /usr/bin/ip in one place, and alternatives lead elsewhere.
            let mut candidates = vec![path.clone(), real.clone()];
            for p in [&path, &real] {
                if let Ok(rest) = p.strip_prefix("/usr") {
                    candidates.push(Path::new("/").join(rest));
                }
            }
            let owners: Vec<String> = candidates
                .iter()
                .filter_map(|c| {
                    let out = Command::new("dpkg") // the registry's own check
                        .arg("-S")
                        .arg(c)
                        .output()
                        .ok()?;
                    out.status.success().then(|| {
                        String::from_utf8_lossy(&out.stdout)
                            .lines()
                            .flat_map(|l| l.split_once(": ").map(|(p, _)| p.to_owned()))
                            .flat_map(|p| {
                                p.split(", ")
                                    .map(|s| s.split(':').next().unwrap_or(s).to_owned())
                                    .collect::<Vec<_>>()
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .flatten()
                .collect();
            if !owners.is_empty() && !owners.iter().any(|o| o == package) {
                wrong.push(format!(
                    "{peer:?}: {} belongs to {owners:?}, not {package}",
                    path.display()
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// Test code starts external programs only through [`Peer::command`]; the few places
    /// that start Postern's own binaries (or this registry's own checks) say so on the line.
    #[test]
    fn programs_are_started_only_through_the_registry() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in ["src", "tests", "benches"] {
            collect_rs(&root.join(dir), &mut files);
        }
        assert!(files.len() > 10, "found only {files:?}");
        let mut offenders = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file).expect("read source");
            for (n, line) in text.lines().enumerate() {
                let spawns = line.contains("Command::new(") || line.contains("which(\""); // the registry
                let declared = line.contains("// own binary") || line.contains("// the registry");
                if spawns && !declared && !line.trim_start().starts_with("//") {
                    offenders.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "start external programs with peers::Peer::X.command() (add the program and its \
             package to tests/src/peers.rs and scripts/setup.sh):\n{}",
            offenders.join("\n")
        );
    }

    fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                collect_rs(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
}
