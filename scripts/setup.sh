#!/usr/bin/env bash
# Installs what building and testing Postern needs on Debian bookworm (run as root, or
# with sudo available). Idempotent: packages already present are not touched, and apt's
# index is refreshed only when something must be installed.
set -euo pipefail

# Build: a C compiler for ring; OpenSSL headers for S/MIME and sequoia's OpenSSL backend
# (whose bindings need libclang); Debian's RocksDB for the cluster state (.cargo/config.toml
# links it instead of building the bundled C++). Tests: Postfix (smtpd, smtp-sink,
# smtp-source), openssl and gpg as real peers; Debian's Chromium and ChromeDriver for the
# web GUI's tests (no test tool downloads a browser); iasl (acpica-tools) compiles the ACPI
# thermal zone the image's hardware test gives the VM. Demo: swaks to send a test message.
PACKAGES=(build-essential pkg-config libssl-dev libclang-dev librocksdb-dev ca-certificates
  openssl gnupg postfix swaks libnet-ssleay-perl procps iproute2 chromium chromium-driver
  python3-venv acpica-tools)

# schemathesis (PyPI) checks the REST API against its OpenAPI document (web GUI tests); it
# lives in its own virtual environment outside the clone.
PYENV_DIR=/var/tmp/postern-py
SCHEMATHESIS_VERSION=4.32.5

say() { printf '==> %s\n' "$*" >&2; }

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then sudo_cmd=(sudo); else
    say "not root and no sudo: install these packages by hand: ${PACKAGES[*]}"; exit 1
  fi
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  say "installing: ${missing[*]}"
  # Postfix must not ask questions or configure a system mail server: the tests run
  # private instances with their own configuration.
  echo "postfix postfix/main_mailer_type select No configuration" | "${sudo_cmd[@]}" debconf-set-selections
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  say "system packages present"
fi

if ! command -v cargo >/dev/null; then
  say "cargo not found: install the Rust toolchain (rustup, Rust >= 1.88) first"; exit 1
fi
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    say "adding rustup component $component"
    rustup component add "$component"
  fi
done
if ! "$PYENV_DIR/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  say "installing schemathesis $SCHEMATHESIS_VERSION into $PYENV_DIR"
  python3 -m venv "$PYENV_DIR"
  "$PYENV_DIR/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
say "setup done"
