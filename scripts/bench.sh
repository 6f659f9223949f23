#!/usr/bin/env bash
# Relay benchmark: posternd in pass-through against smtp-sink directly, a Postfix relay and a
# Postfix before-queue proxy (tests/benches/relay.rs). Needs root (private Postfix instances).
# Installs Postfix if missing, prints the Markdown table and writes it to bench-results.md.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "bench.sh: needs root (private Postfix instances, smtp-sink -u nobody)" >&2
    exit 1
fi

if ! command -v smtp-source >/dev/null && [ ! -x /usr/sbin/smtp-source ]; then
    echo "bench.sh: installing postfix (no configuration) …" >&2
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postfix >&2
fi

out=bench-results.md
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
start=$(date +%s)
# The bench prints progress on stderr and only the report on stdout.
# A failed cell still leaves a report (with its failures listed); the exit status says so.
status=0
REQUIRE_PEERS=1 cargo bench -p postern-tests --bench relay | tee "$tmp" || status=$?
if [ -s "$tmp" ]; then
    mv "$tmp" "$out" && chmod 644 "$out"
    echo "bench.sh: wrote $out in $(( $(date +%s) - start )) s (exit status $status)" >&2
fi
exit "$status"
