#!/usr/bin/env bash
# Boot check of a built image under qemu (TCG), the manual counterpart of the Rust boot test:
#
#   image/check-boot.sh [OUT_DIR]      (default /var/tmp/postern-image)
#
#  1. boot disk.raw: wait for "posternd ready" on the serial console, then expect HTTPS
#     /login to answer 303 (a fresh node sends you to /setup), an SMTP greeting on port 25, the
#     sandbox assessment and "no failed units" from postern-boot-report;
#  2. boot a copy with one byte flipped in the middle of root-a's verified area: expect
#     "root-a failed verification; refusing to boot" and no systemd.
# Prints the times; exit status 0 when both behave. Serial logs stay in OUT_DIR/check-*.log.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-/var/tmp/postern-image}
smtp_port=${SMTP_PORT:-2525}
https_port=${HTTPS_PORT:-8443}
limit=${BOOT_LIMIT:-300}
qemu_pid=
tampered=

cleanup() {
    if [[ -n $qemu_pid ]]; then kill "$qemu_pid" 2>/dev/null || true; fi
    if [[ -n $tampered ]]; then rm -f "$tampered"; fi
}
trap cleanup EXIT

fail() {
    echo "check-boot: FAIL: $*" >&2
    exit 1
}

# wait_for LOG PATTERN: seconds until PATTERN shows in LOG (fails after $limit s).
wait_for() {
    local start=$SECONDS
    until grep -aq "$2" "$1"; do
        ((SECONDS - start < limit)) || fail "no \"$2\" in $1 after $limit s"
        kill -0 "$qemu_pid" 2>/dev/null || fail "qemu exited; see $1"
        sleep 0.5
    done
}

stop_qemu() {
    kill "$qemu_pid"
    while kill -0 "$qemu_pid" 2>/dev/null; do sleep 0.2; done
    qemu_pid=
}

# --- 1. a good boot -----------------------------------------------------------------------
log=$out/check-boot.log
start=$SECONDS
qemu_pid=$("$here/boot-qemu.sh" "$out" --smtp-port "$smtp_port" --https-port "$https_port" --serial "$log")
echo "booting $out/disk.raw (qemu $qemu_pid, serial $log)"
wait_for "$log" 'posternd ready'
ready=$((SECONDS - start))
echo "  posternd ready after $ready s: $(grep -a -m1 'posternd ready' "$log" | tr -d '\r')"

code=$(curl -sk -o /dev/null -w '%{http_code} %{redirect_url}' "https://127.0.0.1:$https_port/login")
[[ $code == 303* ]] || fail "GET /login answered $code, expected 303"
echo "  GET https://127.0.0.1:$https_port/login: $code"

exec 3<>"/dev/tcp/127.0.0.1/$smtp_port"
greeting=$(timeout 10 head -n 1 <&3 | tr -d '\r')
printf 'QUIT\r\n' >&3
exec 3>&-
[[ $greeting == 220* ]] || fail "SMTP greeting: '$greeting'"
echo "  SMTP on 127.0.0.1:$smtp_port: $greeting"

wait_for "$log" 'postern-boot-report: \(no failed units\|FAILED\)'
grep -a 'Overall exposure level' "$log" | sed 's/^.*→ /  /' || fail "no sandbox assessment"
if grep -aq 'postern-boot-report: FAILED' "$log"; then
    grep -a 'postern-boot-report' "$log" >&2
    fail "units failed"
fi
echo "  no failed units"
stop_qemu

# --- 2. a tampered root -------------------------------------------------------------------
tampered=$out/check-tampered.raw
cp --sparse=always "$out/disk.raw" "$tampered"
root_start=$(sfdisk --json "$tampered" | awk '
    /"start"/ { gsub(/[^0-9]/, "", $0); start = $0 }
    /"name": *"root-a"/ { print start; exit }')
[[ -n $root_start ]] || fail "no root-a partition in $tampered"
# Half-way into the erofs (the verified area; the slot's unused rest is never read).
offset=$((root_start * 512 + $(stat -c %s "$out/root-a.erofs") / 2))
byte=$(dd if="$tampered" bs=1 skip="$offset" count=1 status=none | od -An -tu1 | tr -d ' ')
printf '%b' "\\$(printf '%03o' $((byte ^ 0xff)))" |
    dd of="$tampered" bs=1 seek="$offset" count=1 conv=notrunc status=none
echo "booting a copy with the byte at $offset (root-a + $((offset - root_start * 512))) flipped"

log=$out/check-tampered.log
start=$SECONDS
qemu_pid=$("$here/boot-qemu.sh" "$out" --disk "$tampered" --smtp-port "$smtp_port" \
    --https-port "$https_port" --serial "$log")
wait_for "$log" 'refusing to boot'
echo "  refused after $((SECONDS - start)) s: $(grep -a -m1 'refusing to boot' "$log" | tr -d '\r')"
sleep 5
grep -aq 'Welcome to\|systemd\[1\]' "$log" && fail "systemd started on a tampered root"
stop_qemu
echo "check-boot: OK (posternd ready after $ready s)"
