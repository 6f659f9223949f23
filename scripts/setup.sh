#!/usr/bin/env bash
# The one place that installs what building, testing and demonstrating Postern needs on
# Debian bookworm (run as root, or with sudo available). Idempotent: what is present is not
# touched, and apt's index is refreshed only when something must be installed.
#
#   scripts/setup.sh                 install everything that is missing (all groups)
#   scripts/setup.sh image           only one group (build, test, image, fuzz)
#   scripts/setup.sh --check [G…]    print what is missing, install nothing; exit 1 if anything is
#   scripts/setup.sh --list [G…]     print what it installs, one per line: Debian packages by
#                                    name, then pypi:NAME==VERSION and cargo:NAME
#
# The end-to-end tests keep a registry of every program they run and the package it comes
# from (tests/src/peers.rs); its test fails when a package there is missing from this list.
set -euo pipefail

# build: a C compiler for ring; OpenSSL headers for S/MIME and sequoia's OpenSSL backend
# (whose bindings need libclang); Debian's RocksDB for the cluster state (.cargo/config.toml
# links it instead of building the bundled C++).
BUILD_PACKAGES=(build-essential pkg-config libssl-dev libclang-dev librocksdb-dev
  ca-certificates)
# test: the peers of the end-to-end tests. Postfix (postfix, sendmail, postqueue, smtp-sink,
# smtp-source), openssl and gpg (gnupg: gpg with its agent) check what Postern signs and
# encrypts; iproute2 makes the network namespaces; procps and coreutils signal and copy;
# util-linux (setpriv) drops privileges; Debian's Chromium and ChromeDriver drive the web GUI
# (no test tool downloads a browser); python3-venv holds schemathesis; swaks sends the
# demo's message; libc-bin (getconf) and git serve the benchmarks' reports. The federation
# tests run knot (a DNSSEC-signing authoritative server: knotd, knotc, keymgr), unbound (the
# validating resolver), gpg-wks-server and python3's http.server (a domain that publishes
# only by WKD: tests/peers/https_files.py). No package's
# service is started or enabled by this setup (see quiet_services): the tests run their own.
TEST_PACKAGES=(bash coreutils util-linux libc-bin git openssl gnupg gpg gpgconf postfix swaks
  libnet-ssleay-perl procps iproute2 chromium chromium-driver python3 python3-venv knot unbound
  gpg-wks-server)
# image: what image/build.sh and the qemu boot tests run. mmdebstrap installs the Debian tree;
# erofs-utils, cryptsetup-bin (veritysetup), systemd-boot-efi (the UKI stub), binutils
# (objcopy), cpio, kmod, zstd build root, hash tree, initramfs and kernel images; dosfstools,
# mtools, e2fsprogs and fdisk (sfdisk) the ESP, the data partition and the GPT; util-linux
# flock; openssl the update signing key; ovmf is the UEFI firmware qemu boots; acpica-tools
# (iasl) compiles the ACPI thermal zone the hardware boot test gives the VM; qemu-system-x86
# comes from the suite of the machine's qemu-utils (see install_qemu).
IMAGE_PACKAGES=(mmdebstrap debian-archive-keyring erofs-utils cryptsetup-bin systemd-boot-efi
  binutils cpio kmod zstd dosfstools mtools e2fsprogs fdisk util-linux ovmf acpica-tools
  openssl qemu-system-x86)

# schemathesis (PyPI) checks the REST API against its OpenAPI document (web GUI tests); it
# lives in its own virtual environment outside the clone.
PYENV_DIR=/var/tmp/postern-py
SCHEMATHESIS_VERSION=4.32.5

say() { printf '==> %s\n' "$*" >&2; }

mode=install
groups=()
for arg in "$@"; do
  case "$arg" in
  --check) mode=check ;;
  --list) mode=list ;;
  build | test | image | fuzz) groups+=("$arg") ;;
  -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) say "unknown argument '$arg' (see scripts/setup.sh --help)"; exit 2 ;;
  esac
done
[ ${#groups[@]} -gt 0 ] || groups=(build test image fuzz)
want() { local g; for g in "${groups[@]}"; do [ "$g" = "$1" ] && return 0; done; return 1; }

packages=()
want build && packages+=("${BUILD_PACKAGES[@]}")
want test && packages+=("${TEST_PACKAGES[@]}")
want image && packages+=("${IMAGE_PACKAGES[@]}")

if [ "$mode" = list ]; then
  printf '%s\n' "${packages[@]}"
  want test && echo "pypi:schemathesis==$SCHEMATHESIS_VERSION"
  want fuzz && echo "cargo:cargo-fuzz"
  exit 0
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done
need_schemathesis=0
if want test && ! "$PYENV_DIR/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  need_schemathesis=1
fi
need_fuzz=0
if want fuzz && ! cargo fuzz --version >/dev/null 2>&1; then
  need_fuzz=1
fi

if [ "$mode" = check ]; then
  gaps=0
  for p in "${missing[@]}"; do echo "missing: Debian package $p"; gaps=1; done
  [ $need_schemathesis -eq 1 ] && { echo "missing: schemathesis $SCHEMATHESIS_VERSION in $PYENV_DIR (PyPI)"; gaps=1; }
  [ $need_fuzz -eq 1 ] && { echo "missing: cargo-fuzz (crates.io)"; gaps=1; }
  command -v cargo >/dev/null || { echo "missing: cargo (the Rust toolchain, by rustup)"; gaps=1; }
  [ $gaps -eq 0 ] && echo "nothing missing (groups: ${groups[*]})"
  exit $gaps
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then sudo_cmd=(sudo); else
    say "not root and no sudo: install these packages by hand: ${missing[*]}"; exit 1
  fi
fi
apt_get() { DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get "$@"; }

# qemu-system-x86 must come from the suite of the installed qemu-utils: this machine kind
# ships qemu-utils 10 from bookworm-backports, and installing bookworm's qemu-system-x86 7.2
# would remove it (TESTBED.md).
install_qemu() {
  local utils
  utils=$(dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null || true)
  if [[ $utils == *bpo12* ]]; then
    if ! apt-cache policy qemu-system-x86 | grep -q bookworm-backports; then
      say "adding bookworm-backports (qemu-utils $utils comes from there)"
      "${sudo_cmd[@]}" tee /etc/apt/sources.list.d/postern-bookworm-backports.sources >/dev/null <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
      apt_get update -q
    fi
    say "installing qemu-system-x86 from bookworm-backports (as qemu-utils $utils)"
    apt_get install -y -q --no-install-recommends -t bookworm-backports qemu-system-x86
  else
    say "installing qemu-system-x86"
    apt_get install -y -q --no-install-recommends qemu-system-x86
  fi
}

# Installing postfix, knot or unbound must not start a system mail or DNS server (a system
# unbound would take port 53 and the host's resolv.conf): a policy-rc.d forbids starting
# services while apt runs, unless the machine has one already, and what got enabled for the
# next boot is disabled again.
POLICY_RC=/usr/sbin/policy-rc.d
quiet_services() {
  [ -e "$POLICY_RC" ] && return 0
  printf '#!/bin/sh\n# scripts/setup.sh: no service starts while it installs packages\nexit 101\n' |
    "${sudo_cmd[@]}" tee "$POLICY_RC" >/dev/null
  "${sudo_cmd[@]}" chmod 755 "$POLICY_RC"
  trap '"${sudo_cmd[@]}" rm -f "$POLICY_RC"' EXIT
}
disable_services() {
  [ -d /run/systemd/system ] || return 0
  local unit
  for unit in "$@"; do
    "${sudo_cmd[@]}" systemctl disable --quiet "$unit" 2>/dev/null || true
  done
}

if [ ${#missing[@]} -gt 0 ]; then
  quiet_services
  rest=()
  qemu=0
  for p in "${missing[@]}"; do
    if [ "$p" = qemu-system-x86 ]; then qemu=1; else rest+=("$p"); fi
  done
  apt_get update -q
  if [ ${#rest[@]} -gt 0 ]; then
    say "installing: ${rest[*]}"
    # Postfix must not ask questions or configure a system mail server: the tests run
    # private instances with their own configuration.
    echo "postfix postfix/main_mailer_type select No configuration" | "${sudo_cmd[@]}" debconf-set-selections
    apt_get install -y -q --no-install-recommends "${rest[@]}"
    for p in "${rest[@]}"; do
      case "$p" in
      postfix | knot) disable_services "$p" ;;
      unbound) disable_services unbound unbound-resolvconf ;;
      esac
    done
  fi
  [ $qemu -eq 0 ] || install_qemu
else
  say "system packages present (groups: ${groups[*]})"
fi

if ! command -v cargo >/dev/null; then
  say "cargo not found: install the Rust toolchain (rustup, Rust >= 1.88) first"; exit 1
fi
if want build; then
  for component in rustfmt clippy; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
      say "adding rustup component $component"
      rustup component add "$component"
    fi
  done
fi
if [ $need_schemathesis -eq 1 ]; then
  say "installing schemathesis $SCHEMATHESIS_VERSION into $PYENV_DIR"
  python3 -m venv "$PYENV_DIR"
  "$PYENV_DIR/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
if [ $need_fuzz -eq 1 ]; then
  # scripts/fuzz.sh (the smoke run of scripts/test.sh) builds its targets with it.
  say "installing cargo-fuzz"
  cargo install --locked --quiet cargo-fuzz
fi

# Everything asked for must now be here: a package that apt could not install fails the
# setup, not a test an hour later.
if ! gaps=$("$0" --check "${groups[@]}"); then
  say "still missing after setup:"; printf '%s\n' "$gaps" >&2; exit 1
fi
say "setup done"
