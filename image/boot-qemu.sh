#!/usr/bin/env bash
# Boot a built Postern image under qemu (TCG, UEFI) in the background and print qemu's PID.
#
#   image/boot-qemu.sh OUT_DIR [--smtp-port N] [--https-port N] [--serial FILE] [--disk FILE]
#                              [--persist] [--hardware] [--qmp SOCKET] [--foreground]
#
#   OUT_DIR        image/build.sh's output folder (disk.raw)
#   --smtp-port    host port forwarded to the guest's 25  (default $SMTP_PORT or 2525)
#   --https-port   host port forwarded to the guest's 443 (default $HTTPS_PORT or 8443)
#   --serial FILE  serial console log (default $SERIAL_LOG or OUT_DIR/serial.log)
#   --disk FILE    boot another disk file, e.g. a tampered copy (default OUT_DIR/disk.raw)
#   --persist      write to the disk file itself (no snapshot): the data partition and the
#                  boot counter survive into the next boot (use a copy of disk.raw)
#   --hardware     add appliance hardware: i6300esb watchdog, IPMI BMC on KCS
#   --qmp SOCKET   a QMP control socket (e.g. system_powerdown for a clean shutdown)
#   --foreground   run qemu in the foreground instead of printing its PID
#
# Without --persist the disk is opened with snapshot=on: the guest's writes (data partition,
# boot counter) go to a temporary overlay and disk.raw stays as built. The guest sees 10.0.2.2
# as the host (qemu user networking); its downstream mail server defaults to 10.0.2.2:10025.
# Stop the guest with: kill PID (qemu exits; nothing to clean up but the serial log).
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

(($#)) || usage
[[ $1 == -h || $1 == --help ]] && usage
out=$1
shift
smtp_port=${SMTP_PORT:-2525}
https_port=${HTTPS_PORT:-8443}
serial=${SERIAL_LOG:-}
disk=
snapshot=on
hardware=0
qmp=
foreground=0
while (($#)); do
    case "$1" in
    --smtp-port) smtp_port=$2; shift 2 ;;
    --https-port) https_port=$2; shift 2 ;;
    --serial) serial=$2; shift 2 ;;
    --disk) disk=$2; shift 2 ;;
    --persist) snapshot=off; shift ;;
    --hardware) hardware=1; shift ;;
    --qmp) qmp=$2; shift 2 ;;
    --foreground) foreground=1; shift ;;
    *) usage ;;
    esac
done
disk=${disk:-$out/disk.raw}
serial=${serial:-$out/serial.log}
[[ -f $disk ]] || { echo "boot-qemu.sh: no disk image $disk (run image/build.sh)" >&2; exit 1; }

ovmf_code=/usr/share/OVMF/OVMF_CODE_4M.fd
ovmf_vars=/usr/share/OVMF/OVMF_VARS_4M.fd
[[ -f $ovmf_code ]] || { echo "boot-qemu.sh: $ovmf_code missing (apt-get install ovmf)" >&2; exit 1; }

# UEFI variables (boot entries, systemd-boot's state) are per run: a fresh copy each time,
# beside the serial log, removed when qemu is gone.
vars=$(mktemp "$(dirname "$serial")/ovmf-vars.XXXXXX.fd")
cp "$ovmf_vars" "$vars"
: >"$serial"

# (qemu's option values contain commas: they are not array separators.)
# shellcheck disable=SC2054
args=(
    -accel tcg -machine q35 -m "${QEMU_MEMORY:-1024}" -smp "${QEMU_SMP:-1}" -nodefaults
    -drive "if=pflash,format=raw,readonly=on,file=$ovmf_code"
    -drive "if=pflash,format=raw,file=$vars"
    -drive "file=$disk,format=raw,if=virtio,snapshot=$snapshot"
    -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$smtp_port-:25,hostfwd=tcp:127.0.0.1:$https_port-:443"
    -device virtio-net-pci,netdev=n0
    -serial "file:$serial"
    -display none
)
if ((hardware)); then
    # shellcheck disable=SC2054
    args+=(-device i6300esb -device ipmi-bmc-sim,id=bmc0 -device isa-ipmi-kcs,bmc=bmc0)
fi

if [[ -n $qmp ]]; then
    args+=(-qmp "unix:$qmp,server=on,wait=off")
fi

if ((foreground)); then
    trap 'rm -f "$vars"' EXIT
    qemu-system-x86_64 "${args[@]}"
    exit
fi

# In the background: a subshell owns qemu and removes the variables file when it ends. It
# keeps none of our descriptors, so a caller reading our output sees its end now.
pidfile=$(mktemp)
(
    qemu-system-x86_64 "${args[@]}" -pidfile "$pidfile" </dev/null >>"$serial.qemu" 2>&1 || true
    rm -f "$vars"
) </dev/null >/dev/null 2>&1 &
for _ in $(seq 100); do
    [[ -s $pidfile ]] && break
    if ! kill -0 $! 2>/dev/null; then
        echo "boot-qemu.sh: qemu did not start: $(cat "$serial.qemu")" >&2
        rm -f "$pidfile"
        exit 1
    fi
    sleep 0.1
done
[[ -s $pidfile ]] || { echo "boot-qemu.sh: qemu did not write its PID" >&2; exit 1; }
cat "$pidfile"
rm -f "$pidfile"
