#!/usr/bin/env bash
# Sets up everything and runs Postern's whole test suite: formatting, lints, unit tests, the
# end-to-end tests against real peers (Postfix, smtp-sink, openssl, gpg) and a short fuzz run.
#   scripts/test.sh            everything
#   scripts/test.sh relay      only end-to-end tests whose name contains "relay"
# REQUIRE_PEERS=1 turns "skipped: peer not installed" into a failure (CI sets it).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

step() { printf '\n==> %s\n' "$*" >&2; }
start=$(date +%s)

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "build"
cargo build --workspace --all-targets --quiet

step "tests"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
if [ $# -gt 0 ]; then
  cargo test -p postern-tests -- "$@" 2>&1 | tee "$log" || status=$?
else
  cargo test --workspace 2>&1 | tee "$log" || status=$?
fi
if [ "$status" -eq 0 ] && [ $# -eq 0 ]; then
  step "fuzz smoke run (10 s per target)"
  scripts/fuzz.sh 10 || status=$?
fi
[ "$status" -eq 0 ] && step "all checks passed in $(( $(date +%s) - start )) s"
# The closing line: totals over every test binary.
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "\ntests: %d passed, %d failed, %d skipped\n", p, f, i }' "$log"
exit "$status"

