#!/usr/bin/env bash
# Build Postern's bootable appliance disk image (see image/README.md).
#
#   image/build.sh [--out DIR] [--target-dir DIR] [--no-cargo] [--rebuild-root]
#                  [--signing-key FILE] [--overlay DIR] [--update-only] [--no-zstd]
#
# Debian bookworm packages (image/packages.txt) plus Postern's release binaries become a GPT disk
# with an ESP (systemd-boot, one unified kernel image per root slot), A/B root slots (erofs under
# dm-verity) and an ext4 data partition. No loop devices, no mounts, no KVM: every file system is
# built from a folder or a plain file, and the disk is assembled with sfdisk and dd.
#
#  [1/10] host tools          scripts/setup.sh image when a tool is missing
#  [2/10] postern binaries    cargo build --release (posternd, posternctl)
#  [3/10] root filesystem     mmdebstrap into a folder, cached by the package list's hash
#  [4/10] appliance files     a copy of that tree + image/rootfs, binaries, users, units, cleanup
#  [5/10] erofs + dm-verity   root-a.erofs, root-a.verity, roothash-a
#  [6/10] initramfs           busybox, veritysetup, e2fsprogs, modules, image/initramfs/init
#  [7/10] kernel images       systemd-boot's stub + kernel + initramfs + command line, per slot
#  [8/10] update bundle       root + hash tree + both UKIs, signed (posternctl update pack)
#  [9/10] ESP and data        FAT by mkfs.vfat -C + mtools; ext4 by mkfs.ext4 on a file
#  [10/10] disk image         GPT by sfdisk on a sparse file, partitions dd'ed in, zstd
#
# Reproducible: with the same cached tree and binaries, root-a.erofs is the same bytes
# (SOURCE_DATE_EPOCH, default the last commit's time, fixes every timestamp and id; it is also
# the image version's last part, so a later commit's image is a newer version for updates).
set -Eeuo pipefail

STEPS=10
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self=$here/$(basename "${BASH_SOURCE[0]}")
repo=$(cd "$here/.." && pwd)

out=/var/tmp/postern-image
target_dir=${CARGO_TARGET_DIR:-/var/tmp/postern-target}
cache=${POSTERN_IMAGE_CACHE:-/var/tmp/postern-image-cache}
run_cargo=1
rebuild_root=0
signing_key=
overlay=
update_only=0
compress=1

usage() {
    cat <<EOF
usage: image/build.sh [--out DIR] [--target-dir DIR] [--no-cargo] [--rebuild-root]
                      [--signing-key FILE] [--overlay DIR] [--update-only] [--no-zstd]

  --out DIR          where disk.raw, disk.raw.zst, root-a.erofs, root-a.verity, roothash-a
                     and postern-a.efi go (default /var/tmp/postern-image)
  --target-dir DIR   cargo target directory (default \$CARGO_TARGET_DIR or
                     /var/tmp/postern-target)
  --no-cargo         use the release binaries already in the target directory
  --rebuild-root     install the Debian tree afresh even if it is cached (security updates)
  --signing-key FILE Ed25519 private key (PEM) that signs update bundles; its public half
                     goes into the image (default: a development key made once in the cache
                     folder; use your own, kept offline, for production)
  --overlay DIR      files copied over image/rootfs (site changes; the tests use it to make a
                     deliberately broken update)
  --update-only      stop after the update bundle (no ESP, no disk image)
  --no-zstd          do not compress disk.raw (saves ~15 s when only qemu boots it)

environment: SOURCE_DATE_EPOCH (default: the last commit's time), POSTERN_IMAGE_CACHE
(default /var/tmp/postern-image-cache), POSTERN_MIRROR (default http://deb.debian.org/debian),
POSTERN_SECURITY_MIRROR (default http://deb.debian.org/debian-security)
EOF
}

while (($#)); do
    case "$1" in
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --target-dir) target_dir=${2:?--target-dir needs a directory}; shift 2 ;;
    --no-cargo) run_cargo=0; shift ;;
    --rebuild-root) rebuild_root=1; shift ;;
    --signing-key) signing_key=${2:?--signing-key needs a file}; shift 2 ;;
    --overlay) overlay=$(cd "${2:?--overlay needs a directory}" && pwd); shift 2 ;;
    --update-only) update_only=1; STEPS=8; shift ;;
    --no-zstd) compress=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done

if [[ $(id -u) != 0 ]]; then
    echo "build.sh: must run as root (mmdebstrap --mode=root, file ownership in the image)" >&2
    exit 1
fi

export LC_ALL=C.UTF-8 TZ=UTC DEBIAN_FRONTEND=noninteractive
umask 022

mkdir -p "$out" "$cache"
out=$(cd "$out" && pwd)
# One build per output folder at a time.
exec 9>"$out/.lock"
if ! flock -n 9; then
    echo "build.sh: another build is using $out" >&2
    exit 1
fi
work=$out/.work
logs=$work/logs
rm -rf "$work"
mkdir -p "$logs"

# ---------------------------------------------------------------------------------------------
# Progress, logs, failure

build_start=$SECONDS
step_no=0
step_start=$SECONDS
current_log=

step() {
    step_no=$((step_no + 1))
    step_start=$SECONDS
    printf '[%d/%d] %s …\n' "$step_no" "$STEPS" "$1"
}

step_done() {
    printf '      %s(%d s)\n' "${1:+$1 }" $((SECONDS - step_start))
}

# run LOGNAME COMMAND…: run a noisy tool with its output in $logs/LOGNAME.log.
run() {
    current_log=$logs/$1.log
    shift
    "$@" >>"$current_log" 2>&1
    current_log=
}

die() {
    echo "build.sh: $*" >&2
    exit 1
}

on_error() {
    local rc=$?
    # Only the main shell reports (errors in $(…) reach it too).
    ((BASHPID == $$)) || exit "$rc"
    echo "build.sh: step $step_no failed (exit $rc)" >&2
    if [[ -n $current_log && -f $current_log ]]; then
        echo "---- last lines of $current_log:" >&2
        tail -n 30 "$current_log" >&2
    fi
    exit "$rc"
}
trap on_error ERR

have() { command -v "$1" >/dev/null 2>&1; }

# round_up N M: N rounded up to a multiple of M
round_up() { echo $(((($1) + ($2) - 1) / ($2) * ($2))); }

# A UUID derived from a string (stable across builds, different per purpose).
uuid_of() {
    local h
    h=$(printf '%s' "$1" | sha256sum | cut -c1-32)
    echo "${h:0:8}-${h:8:4}-4${h:13:3}-a${h:17:3}-${h:20:12}"
}

MiB=$((1024 * 1024))

# ---------------------------------------------------------------------------------------------
step "host tools (scripts/setup.sh image)"

# command or file → Debian package that provides it
declare -A tool_packages=(
    [mmdebstrap]=mmdebstrap
    [mkfs.erofs]=erofs-utils
    [veritysetup]=cryptsetup-bin
    [/usr/lib/systemd/boot/efi/linuxx64.efi.stub]=systemd-boot-efi
    [mkfs.vfat]=dosfstools
    [mcopy]=mtools
    [sfdisk]=fdisk
    [objcopy]=binutils
    [zstd]=zstd
    [mkfs.ext4]=e2fsprogs
    [/usr/share/OVMF/OVMF_CODE_4M.fd]=ovmf
    [cpio]=cpio
    [modprobe]=kmod
    [flock]=util-linux
    [openssl]=openssl
)
missing=()
for tool in "${!tool_packages[@]}"; do
    if [[ $tool == /* ]]; then [[ -e $tool ]] && continue; else have "$tool" && continue; fi
    missing+=("${tool_packages[$tool]}")
done
# scripts/setup.sh is the one place that installs packages (qemu from the suite of the
# machine's qemu-utils included); its "image" group holds everything above.
if ((${#missing[@]})); then
    echo "      missing ${missing[*]}: running scripts/setup.sh image"
    run apt "$repo/scripts/setup.sh" image
fi
step_done "${#missing[@]} package(s) installed"

# ---------------------------------------------------------------------------------------------
step "postern binaries (cargo build --release)"
posternd=$target_dir/release/posternd
posternctl=$target_dir/release/posternctl
if ((run_cargo)); then
    # From the repository: its .cargo/config.toml links Debian's RocksDB.
    cd "$repo"
    CARGO_TARGET_DIR=$target_dir run cargo \
        cargo build --release --locked -p postern --bin posternd --bin posternctl
    cd "$here"
fi
[[ -x $posternd && -x $posternctl ]] || die "no release binaries in $target_dir/release"
postern_version=$("$posternd" --version | awk '{ print $2 }')
commit=$(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
# Every timestamp in the image: the last commit's time unless given.
if [[ -z ${SOURCE_DATE_EPOCH:-} ]]; then
    SOURCE_DATE_EPOCH=$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH
# The image version orders updates (systemd-boot starts the newest): Postern's version, then
# the build time (SOURCE_DATE_EPOCH) as YYYYMMDDhhmmss.
image_version="$postern_version.$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d%H%M%S)"

# The key that signs update bundles; the image trusts its public half.
if [[ -z $signing_key ]]; then
    signing_key=$cache/update-signing-key.pem
    if [[ ! -s $signing_key ]]; then
        (umask 077 && openssl genpkey -algorithm ed25519 -out "$signing_key.tmp" 2>/dev/null)
        mv "$signing_key.tmp" "$signing_key"
        echo "      made a development update signing key $signing_key (use --signing-key for production)"
    fi
fi
openssl pkey -in "$signing_key" -pubout -out "$work/update-key.pem" 2>"$logs/signing-key.log" ||
    die "--signing-key $signing_key: $(cat "$logs/signing-key.log")"
grep -q ED25519 <(openssl pkey -pubin -in "$work/update-key.pem" -text -noout 2>/dev/null) ||
    die "--signing-key $signing_key: not an Ed25519 key (openssl genpkey -algorithm ed25519)"
# The appliance configuration must be valid for this posternd.
"$posternd" --config "$here/rootfs/etc/postern/postern.toml" --check-config 2>"$logs/check-config.log" ||
    die "image/rootfs/etc/postern/postern.toml: $(cat "$logs/check-config.log")"
step_done "posternd $image_version, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH"

# ---------------------------------------------------------------------------------------------
step "root filesystem (mmdebstrap)"

mirror=${POSTERN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${POSTERN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
mapfile -t packages < <(sed 's/#.*//' "$here/packages.txt" | xargs -n1)

# --- cache key begin: the cache is keyed on this function's text, the package list and the
# mirrors; change any and the tree is installed afresh.
install_tree() {
    local dest=$1
    local IFS=,
    # Essential packages plus the list; no documentation, manuals or translations (copyright
    # files stay); security updates included.
    mmdebstrap --mode=root --variant=essential --format=directory \
        --include="${packages[*]}" \
        --aptopt='Acquire::Languages "none"' \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        --dpkgopt='path-exclude=/usr/share/lintian/*' \
        bookworm "$dest" \
        "deb $mirror bookworm main" \
        "deb $mirror bookworm-updates main" \
        "deb $security_mirror bookworm-security main"
}
# --- cache key end

cache_key=$(
    {
        printf '%s\n' "${packages[@]}" "$mirror" "$security_mirror"
        sed -n '/^# --- cache key begin/,/^# --- cache key end/p' "$self"
    } | sha256sum | cut -c1-16
)
tree=$cache/rootfs-$cache_key
exec 8>"$cache/.lock"
flock 8
if ((rebuild_root)) || [[ ! -e $tree/.complete ]]; then
    rm -rf "$tree" "$tree.tmp"
    run mmdebstrap install_tree "$tree.tmp"
    touch "$tree.tmp/.complete"
    mv "$tree.tmp" "$tree"
    # Older trees are of no further use.
    find "$cache" -mindepth 1 -maxdepth 1 -name 'rootfs-*' ! -name "rootfs-$cache_key" \
        -exec rm -rf {} +
    tree_note="installed $cache_key"
else
    tree_note="cached $cache_key"
fi
flock -u 8
step_done "$tree_note, ${#packages[@]} packages"

# ---------------------------------------------------------------------------------------------
step "appliance files (overlay, users, units, cleanup)"
root=$work/root
cp -a "$tree" "$root"
rm -f "$root/.complete"

kver=$(basename "$(find "$root/usr/lib/modules" -mindepth 1 -maxdepth 1 -type d | sort | tail -n 1)")
[[ -f $root/boot/vmlinuz-$kver ]] || die "no kernel for $kver in the tree"
cp "$root/boot/vmlinuz-$kver" "$work/vmlinuz"

# The kernel and its initrd live in the UKI: /boot stays as an empty mount point for the ESP
# (systemd-gpt-auto-generator mounts the ESP there, systemd-bless-boot finds it there).
find "$root/boot" -mindepth 1 -delete

# Kernel modules an appliance never loads: sound, cameras and TV, desktop GPUs, wireless,
# Bluetooth, InfiniBand, industrial I/O, staging drivers. Fewer modules, less to attack. (Checked
# with depmod -e: what loses a dependency by this is laptop, RDMA or desktop-GPU drivers only.)
moddir=$root/usr/lib/modules/$kver/kernel
for pruned in sound drivers/media drivers/gpu/drm/amd drivers/gpu/drm/radeon \
    drivers/gpu/drm/nouveau drivers/gpu/drm/i915 drivers/gpu/drm/gma500 drivers/gpu/drm/vmwgfx \
    drivers/net/wireless net/wireless net/mac80211 net/bluetooth drivers/bluetooth \
    drivers/infiniband drivers/iio drivers/staging drivers/isdn; do
    rm -rf "${moddir:?}/$pruned"
done
run depmod depmod -b "$root" "$kver"

# Postern's files: configuration, units, scripts (modes from git: executable or not).
(cd "$here/rootfs" && find . -type d) | while read -r d; do
    install -d -m 0755 -o root -g root "$root/$d"
done
(cd "$here/rootfs" && find . -type f) | while read -r f; do
    mode=0644
    [[ -x $here/rootfs/$f ]] && mode=0755
    install -m "$mode" -o root -g root "$here/rootfs/$f" "$root/$f"
done
if [[ -n $overlay ]]; then
    (cd "$overlay" && find . -type d) | while read -r d; do
        install -d -m 0755 -o root -g root "$root/$d"
    done
    (cd "$overlay" && find . -type f) | while read -r f; do
        mode=0644
        [[ -x $overlay/$f ]] && mode=0755
        install -m "$mode" -o root -g root "$overlay/$f" "$root/$f"
    done
    # Symbolic links as they are (a unit enabled in a .wants folder).
    (cd "$overlay" && find . -type l) | while read -r l; do
        ln -sfn "$(readlink "$overlay/$l")" "$root/$l"
    done
fi
install -d -m 0755 "$root/usr/share/postern"
install -m 0644 "$work/update-key.pem" "$root/usr/share/postern/update-key.pem"
install -d -m 0755 "$root/usr/share/doc/postern"
install -m 0644 "$here/README.md" "$root/usr/share/doc/postern/README.md"
# Release binaries without their DWARF line tables (symbols stay for backtraces).
objcopy --strip-debug "$posternd" "$root/usr/bin/posternd"
objcopy --strip-debug "$posternctl" "$root/usr/bin/posternctl"
chmod 0755 "$root/usr/bin/posternd" "$root/usr/bin/posternctl"

# Every shared library posternd needs must be in the tree (else: add its package to
# packages.txt).
# in_tree PATH: PATH with every symlink resolved inside the tree (Debian's loader link is absolute).
in_tree() { chroot "$root" readlink -f "$1"; }
elf_needed() { objdump -p "$root$1" | awk '$1 == "NEEDED" { print $2 }'; }
# lib_closure FILE…: the libraries (resolved paths inside the tree) FILE… need, recursively.
lib_closure() {
    local file soname dir path
    local -A found=()
    local queue=("$@")
    while ((${#queue[@]})); do
        file=$(in_tree "${queue[0]}")
        queue=("${queue[@]:1}")
        for soname in $(elf_needed "$file"); do
            [[ -n ${found[$soname]:-} ]] && continue
            path=
            for dir in /usr/lib/x86_64-linux-gnu /usr/lib; do
                if [[ -e $root$dir/$soname || -L $root$dir/$soname ]]; then
                    path=$(in_tree "$dir/$soname")
                    break
                fi
            done
            [[ -n $path ]] || die "$file needs $soname, which no package in packages.txt provides"
            found[$soname]=$path
            queue+=("$path")
        done
    done
    for soname in "${!found[@]}"; do echo "$soname ${found[$soname]}"; done | sort
}
lib_closure /usr/bin/posternd /usr/bin/posternctl >"$logs/posternd-libraries.log"

# The postern system user (fixed id 901, image/rootfs/usr/lib/sysusers.d/postern.conf).
run sysusers systemd-sysusers --root="$root"
postern_ids=$(awk -F: '$1 == "postern" { print $3 ":" $4 }' "$root/etc/passwd")
[[ $postern_ids == 901:901 ]] || die "postern user is $postern_ids, expected 901:901"

# Nobody logs in: root's password is locked (the serial console's login prompt leads nowhere),
# no getty on virtual terminals, no first-boot prompts, no setuid/setgid programs.
sed -i 's/^root:[^:]*:/root:*:/' "$root/etc/shadow"
ln -sfn /dev/null "$root/etc/systemd/system/getty@.service"
ln -sfn /dev/null "$root/etc/systemd/system/autovt@.service"
ln -sfn /dev/null "$root/etc/systemd/system/systemd-firstboot.service"
# The machine-id comes from the data partition (initramfs), never written to /etc.
ln -sfn /dev/null "$root/etc/systemd/system/systemd-machine-id-commit.service"
rm -f "$root/etc/systemd/system/getty.target.wants/getty@tty1.service"
find "$root" -xdev -type f -perm /6000 -print -exec chmod ug-s {} + >"$logs/setuid-removed.log"

run systemctl systemctl --root="$root" enable \
    postern.service postern-settings.service postern-healthy.service \
    postern-boot-report.service postern-update.path postern-update-boot.service \
    postern-network.path nftables.service systemd-networkd.service \
    systemd-resolved.service systemd-timesyncd.service
# Timers and services that write to a root that is read-only or need LVM.
run systemctl systemctl --root="$root" disable \
    dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service

# Image identity (os-release IMAGE_ID/IMAGE_VERSION, read by updates and the UKI's title).
sed -i '/^\(IMAGE_ID\|IMAGE_VERSION\|BUILD_ID\)=/d' "$root/usr/lib/os-release"
printf 'IMAGE_ID=postern\nIMAGE_VERSION=%s\nBUILD_ID=g%s\n' "$image_version" "$commit" \
    >>"$root/usr/lib/os-release"

# What is installed, for the record (also beside the image).
dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Package} ${Version} ${Architecture}\n' |
    sort >"$work/packages.manifest"
install -m 0644 "$work/packages.manifest" "$root/usr/share/doc/postern/packages.manifest"

# Reproducibility: drop what differs from build to build or is written at run time anyway
# (/var is a tmpfs on the running appliance).
rm -rf "$root"/var/cache/* "$root"/var/log/* "$root"/var/lib/apt/lists/* "$root"/tmp/* \
    "$root"/var/tmp/* "$root/var/lib/systemd/random-seed" "$root/var/lib/dbus/machine-id" \
    "$root/etc/.pwd.lock" "$root"/etc/{passwd,group,shadow,gshadow,subuid,subgid}- \
    "$root"/var/lib/dpkg/*-old "$root/etc/hostid"
find "$root" -xdev \( -name '*.pyc' -o -name __pycache__ \) -prune -exec rm -rf {} +
: >"$root/etc/machine-id"
# Password ages count days since 1970: make them the build's day, not today's.
awk -v day=$((SOURCE_DATE_EPOCH / 86400)) 'BEGIN { FS = OFS = ":" } $3 != "" { $3 = day } 1' \
    "$root/etc/shadow" >"$work/shadow"
cat "$work/shadow" >"$root/etc/shadow"
# systemd's ConditionNeedsUpdate=/etc: /usr is not newer than /etc, nothing to update at boot.
touch "$root/etc/.updated"
# Clamp every timestamp to SOURCE_DATE_EPOCH.
find "$root" -xdev -newermt "@$SOURCE_DATE_EPOCH" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
step_done "kernel $kver, $(du -sm "$root" | cut -f1) MiB"

# ---------------------------------------------------------------------------------------------
step "erofs + dm-verity"
rm -f "$out"/root-a.* "$out/roothash-a"
run erofs mkfs.erofs -zlz4hc,9 -T"$SOURCE_DATE_EPOCH" -U"$(uuid_of "postern-root-$image_version")" \
    "$out/root-a.erofs" "$root"
erofs_size=$(stat -c %s "$out/root-a.erofs")
# Salt and verity UUID come from the file system itself: same root, same hash tree.
erofs_sha=$(sha256sum "$out/root-a.erofs" | cut -d' ' -f1)
run verity veritysetup format --hash=sha256 --data-block-size=4096 --hash-block-size=4096 \
    --salt="$erofs_sha" --uuid="$(uuid_of "postern-verity-$erofs_sha")" \
    --root-hash-file="$out/roothash-a" "$out/root-a.erofs" "$out/root-a.verity"
roothash=$(cat "$out/roothash-a")
[[ $roothash =~ ^[0-9a-f]{64}$ ]] || die "unexpected root hash '$roothash'"
printf '%s\n' "$roothash" >"$out/roothash-a"
run verity veritysetup verify "$out/root-a.erofs" "$out/root-a.verity" "$roothash"
step_done "$((erofs_size / MiB)) MiB erofs, root hash $roothash"

# ---------------------------------------------------------------------------------------------
step "initramfs"
initramfs=$work/initramfs
mkdir -p "$initramfs"/{dev,proc,sys,run,tmp,newroot,etc/postern-initramfs} \
    "$initramfs"/usr/{bin,sbin,lib/x86_64-linux-gnu,lib64}
for link in bin sbin lib lib64; do ln -s "usr/$link" "$initramfs/$link"; done
mknod -m 0600 "$initramfs/dev/console" c 5 1
ln -s /proc/mounts "$initramfs/etc/mtab"

# Dynamic programs from the tree, with their libraries and the loader.
initramfs_programs=(/usr/sbin/veritysetup /usr/sbin/e2fsck /usr/sbin/mke2fs)
for program in "${initramfs_programs[@]}"; do
    cp "$root$(in_tree "$program")" "$initramfs$program"
done
lib_closure "${initramfs_programs[@]}" >"$work/initramfs-libraries"
while read -r soname path; do
    cp "$root$path" "$initramfs/usr/lib/x86_64-linux-gnu/$soname"
done <"$work/initramfs-libraries"
cp "$root$(in_tree /usr/lib64/ld-linux-x86-64.so.2)" "$initramfs/usr/lib64/ld-linux-x86-64.so.2"
cp "$root/etc/mke2fs.conf" "$initramfs/etc/mke2fs.conf"
# An appliance's clock may be wrong at boot: do not force checks over "last mount in the future".
printf '[options]\n\tbroken_system_clock = true\n' >"$initramfs/etc/e2fsck.conf"

# Static busybox, one link per applet (unless a real program of that name is there).
cp "$root/usr/bin/busybox" "$initramfs/usr/bin/busybox"
for applet in $("$initramfs/usr/bin/busybox" --list); do
    [[ -e $initramfs/usr/bin/$applet || -e $initramfs/usr/sbin/$applet ]] && continue
    ln -s busybox "$initramfs/usr/bin/$applet"
done

# Kernel modules, in the order modprobe would load them (dependencies first).
# Storage (virtio, SATA, NVMe, SCSI, USB, eMMC), dm-verity, erofs, ext4; sha256-ssse3 and
# crc32c-intel are faster implementations where the CPU has them; efivarfs reads the boot counter.
initramfs_modules=(virtio_pci virtio_blk virtio_scsi sd_mod ahci nvme xhci_pci usb_storage uas
    mmc_block sdhci_pci sdhci_acpi dm_mod dm_bufio dm_verity erofs
    crc16 mbcache jbd2 crc32c_generic ext4 sha256_ssse3 crc32c_intel efivarfs)
: >"$work/modules.order"
for module in "${initramfs_modules[@]}"; do
    modprobe --dirname="$root" --set-version="$kver" --show-depends "$module" >>"$work/modules.order" ||
        die "kernel $kver has no module $module"
done
awk '$1 == "insmod" && !seen[$2]++ { print $2 }' "$work/modules.order" | while read -r ko; do
    ko=${ko#"$root"}
    mkdir -p "$initramfs$(dirname "$ko")"
    cp "$root$ko" "$initramfs$ko"
    echo "$ko"
done >"$initramfs/etc/postern-initramfs/modules"
echo "$postern_ids" >"$initramfs/etc/postern-initramfs/postern-ids"
install -m 0755 "$here/initramfs/init" "$initramfs/init"

find "$initramfs" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
(cd "$initramfs" && find . -print0 | LC_ALL=C sort -z |
    cpio --null --create --format=newc --reproducible --owner=0:0 --quiet) |
    gzip -n -9 >"$work/initrd.img"
step_done "$(($(stat -c %s "$work/initrd.img") / 1024)) KiB, $(wc -l <"$initramfs/etc/postern-initramfs/modules") modules"

# ---------------------------------------------------------------------------------------------
step "kernel images (UKI per slot)"
stub=$root/usr/lib/systemd/boot/efi/linuxx64.efi.stub
# Sections go after the stub's last one, each at the stub's section alignment (objcopy on a PE
# file: what ukify does in newer systemd).
align=$((16#$(objdump -p "$stub" | awk '$1 == "SectionAlignment" { print $2 }')))
stub_end=0
while read -r size vma; do
    ((16#$vma + 16#$size > stub_end)) && stub_end=$((16#$vma + 16#$size))
done < <(objdump -h -w "$stub" | awk '$1 ~ /^[0-9]+$/ { print $3, $4 }')
le32() {
    printf '%b' "$(printf '\\%03o' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)))"
}
# One UKI per root slot: the same kernel and initramfs, the slot on the command line. An update
# bundle carries both, so it can go into whichever slot is not running.
for slot in a b; do
    # The second console named is /dev/console: ttyS0 gets the initramfs' and systemd's
    # messages (and the login prompt nobody can use); the kernel logs to both. No "quiet".
    cmdline="postern.slot=$slot postern.roothash=$roothash ro console=tty0 console=ttyS0,115200 panic=10"
    printf '%s' "$cmdline" >"$work/cmdline-$slot"
    # systemd-boot orders entries by IMAGE_ID and then IMAGE_VERSION, newest first.
    cat >"$work/osrel-$slot" <<EOF
NAME="Postern"
PRETTY_NAME="Postern $image_version (slot $slot)"
ID=postern
ID_LIKE=debian
VERSION_ID=$postern_version
IMAGE_ID=postern
IMAGE_VERSION=$image_version
BUILD_ID=g$commit
EOF
    next=$stub_end
    sections=()
    for section in osrel:"$work/osrel-$slot" cmdline:"$work/cmdline-$slot" linux:"$work/vmlinuz" initrd:"$work/initrd.img"; do
        name=${section%%:*}
        file=${section#*:}
        next=$(round_up "$next" "$align")
        sections+=(--add-section ".$name=$file" --change-section-vma ".$name=$(printf 0x%x "$next")")
        next=$((next + $(stat -c %s "$file")))
    done
    uki=$out/postern-$slot.efi
    objcopy "${sections[@]}" "$stub" "$uki"
    # objcopy stamps the PE header with the current time: put SOURCE_DATE_EPOCH there and clear
    # the optional header's checksum, which it covers (UEFI does not check it; signing
    # recomputes it).
    pe_header=$(od -An -tu4 -j 60 -N 4 "$uki" | tr -d ' ')
    le32 "$SOURCE_DATE_EPOCH" | dd of="$uki" bs=1 seek=$((pe_header + 8)) conv=notrunc status=none
    le32 0 | dd of="$uki" bs=1 seek=$((pe_header + 88)) conv=notrunc status=none
    chmod 0644 "$uki"
done
step_done "$(($(stat -c %s "$out/postern-a.efi") / MiB)) MiB each, cmdline: $(cat "$work/cmdline-a")"

# ---------------------------------------------------------------------------------------------
step "update bundle (signed)"
rm -f "$out/update.bundle"
run bundle "$posternctl" update pack --key "$signing_key" --version "$image_version" \
    --roothash "$roothash" --root "$out/root-a.erofs" --verity "$out/root-a.verity" \
    --uki-a "$out/postern-a.efi" --uki-b "$out/postern-b.efi" --out "$out/update.bundle"
chmod 0644 "$out/update.bundle"
echo "$image_version" >"$out/version"
echo "$SOURCE_DATE_EPOCH" >"$out/source-date-epoch"
step_done "$(($(stat -c %s "$out/update.bundle") / MiB)) MiB, version $image_version"

if ((update_only)); then
    chmod 0644 "$out/root-a.erofs" "$out/root-a.verity" "$out/roothash-a"
    (cd "$out" && sha256sum update.bundle root-a.erofs root-a.verity roothash-a postern-a.efi \
        postern-b.efi >SHA256SUMS)
    rm -rf "$root" "$initramfs"
    echo "built $out/update.bundle in $((SECONDS - build_start)) s: Postern $image_version, kernel $kver"
    exit 0
fi

# ---------------------------------------------------------------------------------------------
step "ESP and data partition"
esp_mib=128
rm -f "$work/esp.img"
# --invariant: fixed volume id (1234-ABCD) and time stamps.
run esp mkfs.vfat -C -F 32 -n POSTERN-ESP \
    --invariant "$work/esp.img" $((esp_mib * 1024))
# The ESP's files are staged in a folder with fixed time stamps and copied in one go (mtools
# gives folders it creates with mmd the current time).
esp=$work/esp
mkdir -p "$esp/EFI/BOOT" "$esp/EFI/systemd" "$esp/EFI/Linux" "$esp/loader/entries"
bootefi=$root/usr/lib/systemd/boot/efi/systemd-bootx64.efi
cp "$bootefi" "$esp/EFI/BOOT/BOOTX64.EFI"
cp "$bootefi" "$esp/EFI/systemd/systemd-bootx64.efi"
# Boot counting: three tries; systemd-bless-boot renames it to postern-a.efi once the boot is
# good (postern-healthy.service), or systemd-boot prefers another entry when the tries are gone.
cp "$out/postern-a.efi" "$esp/EFI/Linux/postern-a+3-0.efi"
cat >"$esp/loader/loader.conf" <<'EOF'
timeout 0
editor no
auto-entries no
auto-firmware no
console-mode keep
EOF
find "$esp" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
MTOOLS_SKIP_CHECK=1 run esp mcopy -s -m -i "$work/esp.img" "$esp/EFI" "$esp/loader" ::/

# The data partition: ext4 with an empty root owned by postern (posternd's data_dir).
data_mib=512
mkdir -m 0750 "$work/data"
chown "$postern_ids" "$work/data"
rm -f "$work/data.img"
E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH run data mkfs.ext4 -q -F -L postern-data \
    -U "$(uuid_of "postern-data-$image_version")" \
    -E "root_owner=$postern_ids,hash_seed=$(uuid_of "postern-data-hash-$image_version")" \
    -d "$work/data" "$work/data.img" "${data_mib}M"
# mke2fs gives the root folder mode 0755 whatever -d's folder has: posternd's alone, 0750.
E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH run data debugfs -w -R "set_inode_field <2> mode 040750" "$work/data.img"
step_done "ESP $esp_mib MiB, data $data_mib MiB"

# ---------------------------------------------------------------------------------------------
step "disk image (GPT, partitions, zstd)"
# Root slots: the erofs plus half again for updates, in 64 MiB steps; verity slots: room for a
# hash tree of a full slot (1/128 of it) twice over, in 8 MiB steps.
slot_mib=$(round_up $(((erofs_size * 3 / 2 + MiB - 1) / MiB)) 64)
verity_mib=$(round_up $((slot_mib / 64 + 1)) 8)
verity_size=$(stat -c %s "$out/root-a.verity")
((verity_size <= verity_mib * MiB)) || die "hash tree ($verity_size bytes) exceeds its slot"

# name:size-in-MiB:GPT type. Root and verity use the Discoverable Partitions types for x86-64.
esp_type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B
root_type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709
verity_type=2C7357ED-EBD2-46D9-AEC1-23D437EC2BF5
linux_type=0FC63DAF-8483-4772-8E79-3D69D8477DE4
layout=(
    "esp:$esp_mib:$esp_type"
    "root-a:$slot_mib:$root_type" "verity-a:$verity_mib:$verity_type"
    "root-b:$slot_mib:$root_type" "verity-b:$verity_mib:$verity_type"
    "data:$data_mib:$linux_type"
)
declare -A part_start=()
start=1
{
    echo "label: gpt"
    echo "label-id: $(uuid_of "postern-disk")"
    echo "unit: sectors"
    echo "first-lba: 2048"
    for entry in "${layout[@]}"; do
        IFS=: read -r name size type <<<"$entry"
        part_start[$name]=$start
        echo "start=$((start * 2048)), size=$((size * 2048)), type=$type, uuid=$(uuid_of "postern-part-$name"), name=\"$name\""
        start=$((start + size))
    done
} >"$work/sfdisk.script"
disk=$out/disk.raw
rm -f "$disk" "$disk.zst"
# One MiB at each end: the GPT and its backup.
truncate -s $(((start + 1) * MiB)) "$disk"
run sfdisk sfdisk --no-reread --no-tell-kernel "$disk" <"$work/sfdisk.script"
put() { dd if="$1" of="$disk" bs=1M seek="${part_start[$2]}" conv=notrunc,sparse status=none; }
put "$work/esp.img" esp
put "$out/root-a.erofs" root-a
put "$out/root-a.verity" verity-a
put "$work/data.img" data
zst_note="not compressed"
if ((compress)); then
    run zstd zstd -T0 -q -f -9 "$disk" -o "$disk.zst"
    zst_note="$(($(stat -c %s "$disk.zst") / MiB)) MiB zstd"
fi

install -m 0644 "$work/packages.manifest" "$out/packages.manifest"
chmod 0644 "$out/root-a.erofs" "$out/root-a.verity" "$out/roothash-a"
(cd "$out" && sha256sum disk.raw $( ((compress)) && echo disk.raw.zst) update.bundle root-a.erofs \
    root-a.verity roothash-a postern-a.efi postern-b.efi >SHA256SUMS)
step_done "$((start + 1)) MiB disk, root slots $slot_mib MiB, $zst_note"

rm -rf "$root" "$initramfs" "$work/data" "$work/esp"
echo "built $out/disk.raw$( ((compress)) && echo " (+ .zst)") in $((SECONDS - build_start)) s: Postern $image_version, kernel $kver"
echo "root hash (slot a): $roothash"
