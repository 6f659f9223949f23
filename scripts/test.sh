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

# Every process the suite starts inherits this mark, and every peer's scratch directory lies
# under this run's POSTERN_TEST_DIR; after the suite, no process may carry either (Postfix
# masters clean their environment, but work in their queue directory under it).
export POSTERN_TEST_RUN="$$.$start"
export POSTERN_TEST_DIR="${POSTERN_TEST_DIR:-/tmp/postern-tests}/run-$POSTERN_TEST_RUN"
netns_before=$(ip netns list 2>/dev/null | awk '{print $1}' | sort)

# leftovers: prints every process of this run still alive (PID, name, working directory,
# command line) and every test namespace that was not there before; true when there are none.
leftovers() {
  # The scan itself must not carry the mark.
  env -u POSTERN_TEST_RUN bash -s "$POSTERN_TEST_RUN" "$POSTERN_TEST_DIR" "$netns_before" <<'EOS'
mark="POSTERN_TEST_RUN=$1" dir=$2 before=$3 found=0
for proc in /proc/[0-9]*; do
  pid=${proc#/proc/}
  cwd=$(readlink "$proc/cwd" 2>/dev/null) || continue
  ours=0
  case "$cwd" in "$dir"|"$dir"/*) ours=1 ;; esac
  if [ $ours -eq 0 ]; then
    { mapfile -t -d '' environ < "$proc/environ"; } 2>/dev/null || continue
    for e in "${environ[@]}"; do [ "$e" = "$mark" ] && { ours=1; break; }; done
  fi
  [ $ours -eq 1 ] || continue
  found=1
  printf 'leftover process %s (%s) in %s: %s\n' "$pid" "$(cat "$proc/comm" 2>/dev/null)" "$cwd" \
    "$({ tr '\0' ' ' < "$proc/cmdline"; } 2>/dev/null | cut -c1-200)"
done
for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
  case "$ns" in pt[0-9]*) grep -qx "$ns" <<<"$before" || { echo "leftover network namespace $ns"; found=1; } ;; esac
done
exit $found
EOS
}

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

step "leftover processes"
# Peers are ended by PID when their handles drop; give the last ones a moment to exit.
for _ in 1 2 3 4 5 6 7 8 9 10; do leftovers >/dev/null && break; sleep 1; done
if report=$(leftovers); then
  echo "none: every process the suite started has ended" >&2
else
  printf '%s\n' "$report" >&2
  echo "the suite left processes or namespaces behind (above): a harness helper does not stop what it started" >&2
  status=1
fi
rmdir "$POSTERN_TEST_DIR" 2>/dev/null || true
[ "$status" -eq 0 ] && step "all checks passed in $(( $(date +%s) - start )) s"
# The closing line: totals over every test binary.
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "\ntests: %d passed, %d failed, %d skipped\n", p, f, i }' "$log"
exit "$status"

