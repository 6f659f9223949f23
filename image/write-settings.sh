#!/usr/bin/env bash
# Put first-boot settings files on the data partition of a Postern disk image file, without
# mounting anything (debugfs on the partition's byte offset):
#
#   image/write-settings.sh DISK [--firstboot FILE] [--network FILE]
#
#   --firstboot FILE   becomes /var/lib/postern/firstboot.toml (downstream.address, server.hostname)
#   --network FILE     becomes /var/lib/postern/network.conf (static addresses instead of DHCP)
#
# DISK is a disk.raw (better a copy: cp --sparse=always disk.raw mine.raw). An existing file of
# the same name is replaced. The formats are in image/README.md, "First-boot settings". On a real
# disk, mount the partition labelled postern-data and copy the files there instead.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

(($# >= 3)) || usage
disk=$1
shift
declare -A files=()
while (($#)); do
    case "$1" in
    --firstboot) files[firstboot.toml]=${2:?}; shift 2 ;;
    --network) files[network.conf]=${2:?}; shift 2 ;;
    *) usage ;;
    esac
done
[[ -f $disk ]] || { echo "write-settings.sh: no disk image $disk" >&2; exit 1; }

# The data partition's first sector, from the GPT (partition name "data").
start=$(sfdisk --json "$disk" | awk '
    /"start"/ { gsub(/[^0-9]/, "", $0); start = $0 }
    /"name": *"data"/ { print start; exit }')
[[ -n $start ]] || { echo "write-settings.sh: $disk has no partition named data" >&2; exit 1; }
fs="$disk?offset=$((start * 512))"

# debugfs does not replay the journal: refuse a file system that was not cleanly unmounted.
if dumpe2fs -h "$fs" 2>/dev/null | grep -q '^Filesystem features:.*needs_recovery'; then
    echo "write-settings.sh: the data partition needs journal recovery (boot it once, or" \
        "e2fsck -fy on a copy of the partition): not writing" >&2
    exit 1
fi

for name in "${!files[@]}"; do
    src=${files[$name]}
    [[ -f $src ]] || { echo "write-settings.sh: no file $src" >&2; exit 1; }
    # root-owned, world-readable: postern-settings (root) reads them, posternd need not write them.
    debugfs -w -R "rm $name" "$fs" >/dev/null 2>&1 || true
    debugfs -w -f - "$fs" >/dev/null 2>&1 <<EOF
write $src $name
set_inode_field $name mode 0100644
set_inode_field $name uid 0
set_inode_field $name gid 0
EOF
    debugfs -R "stat $name" "$fs" 2>/dev/null | grep -q 'Size:' ||
        { echo "write-settings.sh: writing $name failed" >&2; exit 1; }
    echo "wrote $name ($(stat -c %s "$src") bytes) to the data partition of $disk"
done
