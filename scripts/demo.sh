#!/usr/bin/env bash
# Sets up everything and runs a single Postern node with built-in defaults on
# 127.0.0.1:2525, relaying to a demo downstream (Postfix's smtp-sink on 127.0.0.1:2526)
# that writes every message it accepts into $POSTERN_DEMO_DIR/mail. corp.example is the
# protected domain and alice@corp.example an enrolled user, so her outbound mail is signed.
# The admin GUI is on https://127.0.0.1:8443: its first page sets the node up (first
# administrator with password + TOTP). Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

DEMO=${POSTERN_DEMO_DIR:-/tmp/postern-demo}
LISTEN=${POSTERN_DEMO_LISTEN:-127.0.0.1:2525}
SINK=${POSTERN_DEMO_SINK:-127.0.0.1:2526}
CLUSTER=${POSTERN_DEMO_CLUSTER:-127.0.0.1:7946}
WEB=${POSTERN_DEMO_WEB:-127.0.0.1:8443}

printf '==> building posternd (release)\n' >&2
cargo build --release --quiet -p postern --bin posternd --bin posternctl
BIN=${CARGO_TARGET_DIR:-target}/release/posternd
CTL=${CARGO_TARGET_DIR:-target}/release/posternctl

mkdir -p "$DEMO/mail" "$DEMO/data"
chmod 777 "$DEMO/mail"   # smtp-sink drops privileges to nobody
SMTP_SINK=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)
"$SMTP_SINK" -u nobody -d "$DEMO/mail/%Y%m%d-%H%M%S." "$SINK" 100 &
sink_pid=$!
trap 'kill "$sink_pid" 2>/dev/null || true' EXIT

# The example configuration, protecting the demo's domain.
sed 's/^internal_domains = \[\]$/internal_domains = ["corp.example"]/' \
  appliance/postern.example.toml > "$DEMO/postern.toml"
grep -q '^internal_domains = \["corp.example"\]' "$DEMO/postern.toml"
(
  # Enrol the demo user once posternd is up (its control socket appears).
  for _ in $(seq 100); do
    [ -S "$DEMO/data/control.sock" ] && break
    sleep 0.1
  done
  "$CTL" --data-dir "$DEMO/data" user enrol alice@corp.example >/dev/null 2>&1 \
    && printf '==> enrolled alice@corp.example (S/MIME certificate + OpenPGP key)\n' >&2
) &

cat >&2 <<EOT

==> Postern demo
    posternd listens on   $LISTEN  (SMTP, STARTTLS with a self-signed certificate)
    cluster port          $CLUSTER  (a single-member cluster; posternctl cluster status)
    admin GUI and API     https://$WEB  (self-signed certificate; the first page sets up
                          the first administrator: password + authenticator app code)
    demo downstream on    $SINK  (smtp-sink; messages land in $DEMO/mail)
    configuration         $DEMO/postern.toml (the example, protecting corp.example)
    manage keys with      $CTL --data-dir $DEMO/data user list

    Send a message from another terminal:
      swaks --server $LISTEN --from alice@corp.example --to partner@example.org --tls
    then look at what the downstream received (S/MIME signed, with X-Postern-Policy):
      ls $DEMO/mail && cat $DEMO/mail/*

    Ctrl-C stops posternd and the demo downstream.

EOT
"$BIN" --config "$DEMO/postern.toml" --listen "$LISTEN" --downstream "$SINK" --data-dir "$DEMO/data" \
  --cluster-listen "$CLUSTER" --web-listen "$WEB"
