#!/usr/bin/env bash
# Builds the appliance images from a fresh machine (installs what it needs from Debian):
#   target/images/roamer.qcow2     bootable VM image (images/vm/)
#   target/images/roamer-oci.tar   `docker load` archive tagged roamer:latest (images/container/)
#   target/images/roamer-host-oci.tar   the small host image `roamer lab --runtime docker` uses
# each with a .sha256 beside it. Both carry one static roamer binary built here.
#   scripts/build-images.sh [vm|container]...   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out="$root/target/images"
mkdir -p "$out"

targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(container vm)
for t in "${targets[@]}"; do
    case "$t" in vm|container) ;; *) echo "unknown image '$t' (vm, container)" >&2; exit 2 ;; esac
done

if [ "$(id -u)" != 0 ]; then
    echo "build-images.sh needs root (debootstrap, loop mounts)" >&2
    exit 1
fi

need_apt=()
need() { command -v "$1" >/dev/null 2>&1 || need_apt+=("$2"); }
need debootstrap debootstrap
need extlinux extlinux
[ -e /usr/lib/syslinux/mbr/mbr.bin ] || need_apt+=(syslinux-common)
need mkfs.ext4 e2fsprogs
need sfdisk fdisk
need xorriso xorriso
need qemu-img qemu-utils
[ -e /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx ip || need_apt+=(busybox-static)
need ip iproute2
need sha256sum coreutils
need python3 python3
need readelf binutils
need strip binutils
need dash dash
if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "== installing ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# One static binary for both images: glibc with crt-static (no musl target can be fetched
# here); --target keeps build scripts and proc-macros dynamic.
echo "== static roamer binary"
RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --quiet --target x86_64-unknown-linux-gnu --bin roamer
built="$root/target/x86_64-unknown-linux-gnu/release/roamer"
if readelf -d "$built" | grep -q NEEDED; then
    echo "$built is not static: it needs $(readelf -d "$built" | grep NEEDED | tr -s ' ')" >&2
    exit 1
fi
# The images carry it without its line tables (41 MB -> a fifth of that).
bin="$out/roamer-static"
strip -o "$bin" "$built"

for t in "${targets[@]}"; do
    echo "== $t image"
    start=$(date +%s)
    "$root/images/$t/build.sh" "$bin" "$out"
    echo "== $t image built in $(( $(date +%s) - start )) s"
done

cd "$out"
for f in roamer.qcow2 roamer-oci.tar roamer-host-oci.tar; do
    [ -f "$f" ] || continue
    sha256sum "$f" > "$f.sha256"
    printf '%-22s %8s  %s\n' "$f" "$(du -h "$f" | cut -f1)" "$(cut -d' ' -f1 "$f.sha256")"
done
