#!/usr/bin/env bash
# images/vm/build.sh BIN OUTDIR -> OUTDIR/roamer.qcow2: Debian bookworm (debootstrap minbase +
# kernel), extlinux on one ext4 partition (no EFI: this build host has no VFAT), roamer as a
# systemd service, serial console on ttyS0. Called by scripts/build-images.sh.
#
# The debootstrap tree is kept in $ROAMER_IMAGE_CACHE (default /var/cache/roamer-images) under a
# key of its package list, so a machine that keeps it rebuilds the image in well under a minute.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$1
out=$2

mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
packages=linux-image-amd64,systemd-sysv,udev,iproute2,kmod,initramfs-tools,procps,iputils-ping
cache=${ROAMER_IMAGE_CACHE:-/var/cache/roamer-images}
key=$(printf '%s %s %s %s' "$suite" "$packages" "$mirror" 1 | sha256sum | cut -c1-12)
base="$cache/$suite-$key"
# Root file system size: the image is sparse and compressed, so the free space costs nothing.
size_mb=1024
# Fixed, so the boot line and fstab need no lookup (a clone of the disk is the same switch).
uuid=3c1d0a6e-5b1f-4e8e-9f0a-726f616d6572

work=$(mktemp -d /var/tmp/roamer-vm.XXXXXX)
mnt="$work/mnt"
cleanup() {
    mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"
    rm -rf "$work"
}
trap cleanup EXIT

if [ ! -f "$base/.complete" ]; then
    echo "   debootstrap $suite ($packages) into $base"
    mkdir -p "$cache"
    rm -rf "$base.tmp"
    debootstrap --variant=minbase --include="$packages" "$suite" "$base.tmp" "$mirror" \
        > "$work/debootstrap.log" 2>&1 || { tail -30 "$work/debootstrap.log" >&2; exit 1; }
    touch "$base.tmp/.complete"
    mv "$base.tmp" "$base"
else
    echo "   debootstrap tree reused: $base"
fi

rootfs="$work/rootfs"
cp -a "$base" "$rootfs"
rm -f "$rootfs/.complete"
kver=$(basename "$(ls -d "$rootfs"/usr/lib/modules/* | head -1)")

# What a switch needs of the kernel's modules: networking, storage, virtio, ISO 9660 for the
# config drive. Sound, graphics, wireless, media and exotic file systems go (about 250 MB).
modules="$rootfs/usr/lib/modules/$kver/kernel"
for d in sound drivers/gpu drivers/media drivers/infiniband drivers/iio drivers/hwmon \
    drivers/staging drivers/comedi drivers/mtd drivers/video drivers/target drivers/isdn \
    drivers/bluetooth drivers/mmc drivers/thunderbolt drivers/usb drivers/net/wireless \
    drivers/net/can drivers/net/wwan drivers/net/ieee802154 drivers/net/hamradio \
    drivers/net/wan drivers/net/usb drivers/platform/chrome drivers/power drivers/iio \
    net/wireless net/mac80211 net/bluetooth net/nfc net/ceph net/can net/ieee802154 \
    fs/btrfs fs/xfs fs/ocfs2 fs/gfs2 fs/nfs fs/nfsd fs/cifs fs/smb fs/ceph fs/f2fs fs/jfs \
    fs/ubifs fs/reiserfs fs/nilfs2 fs/ntfs3 fs/dlm; do
    rm -rf "${modules:?}/$d"
done

# The appliance's own files, then the roamer binary.
cp -a "$here/rootfs/." "$rootfs/"
install -m 0755 "$bin" "$rootfs/usr/bin/roamer"
install -d -m 0755 "$rootfs/etc/roamer"
chmod 0755 "$rootfs/usr/lib/roamer/"*
cat > "$rootfs/etc/fstab" <<FSTAB
UUID=$uuid / ext4 defaults,noatime,errors=remount-ro 0 1
FSTAB
echo switch > "$rootfs/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tswitch\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
    > "$rootfs/etc/hosts"

chroot "$rootfs" /bin/sh -eu <<'CHROOT'
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
groupadd --system roamer
# admin logs in straight into roamer's CLI; root is for debugging (see images/vm/README.md).
useradd --create-home --gid roamer --shell /usr/lib/roamer/cli-login admin
echo /usr/lib/roamer/cli-login >> /etc/shells
echo 'admin:admin' | chpasswd
echo 'root:roamer' | chpasswd
systemctl enable roamer.service roamer-config-drive.service systemd-networkd.service >/dev/null 2>&1
systemctl mask systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer \
    e2scrub_all.timer e2scrub_reap.service fstrim.timer getty@tty1.service >/dev/null 2>&1
depmod -a "$(ls /usr/lib/modules)"
update-initramfs -u -k all >/dev/null 2>&1
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/*.log /usr/share/doc/* \
    /usr/share/man/* /usr/share/info/* /usr/share/locale/* /etc/machine-id /var/lib/dbus/machine-id
# systemd makes a fresh machine id on first boot.
touch /etc/machine-id
CHROOT

cat > "$rootfs/boot/extlinux.conf" <<EXT
DEFAULT roamer
PROMPT 0
TIMEOUT 0
SERIAL 0 115200
LABEL roamer
  LINUX /boot/vmlinuz-$kver
  INITRD /boot/initrd.img-$kver
  APPEND root=UUID=$uuid ro console=tty0 console=ttyS0,115200n8 net.ifnames=0 quiet
EXT

# ext4 without 64bit: what extlinux can boot. The partition starts at 1 MiB.
rootimg="$work/root.ext4"
mkfs.ext4 -q -F -O ^64bit -L roamer-root -U "$uuid" -d "$rootfs" "$rootimg" "${size_mb}M"
mkdir -p "$mnt"
mount -o loop "$rootimg" "$mnt"
extlinux --install "$mnt/boot" >/dev/null
umount "$mnt"

disk="$work/disk.raw"
truncate -s $((size_mb + 1))M "$disk"
printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q "$disk"
dd if="$rootimg" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$disk" bs=440 count=1 conv=notrunc status=none

qemu-img convert -c -O qcow2 "$disk" "$out/roamer.qcow2.tmp"
mv "$out/roamer.qcow2.tmp" "$out/roamer.qcow2"
echo "   $out/roamer.qcow2: $(du -h "$out/roamer.qcow2" | cut -f1) (kernel $kver)"
