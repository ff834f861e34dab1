#!/usr/bin/env bash
# Builds the test VM's Debian 12 image and the local apt repository the library installs from.
#
#   test/vm/build-image.sh CACHE_DIR
#
# Needs root (debootstrap, chroot) and Debian's archive. Everything lands in CACHE_DIR, keyed
# by a hash of this file: a second run with the same recipe reuses it (prints "cached").
#
# The image is what a bare cloud host has (systemd, sshd, sudo, an admin user), NOT the
# packages the library installs: those go into CACHE_DIR/repo-<key>, a flat apt repository
# the guest reaches at http://10.0.2.2:$REPO_PORT/ (qemu's user-mode NAT maps 10.0.2.2 to the
# host's loopback), so the library's real `apt-get install` path runs.
set -euo pipefail
CACHE=${1:?usage: build-image.sh CACHE_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
SUITE=bookworm
REPO_PORT=${REPO_PORT:-18799}
MIRROR=${MIRROR:-$(awk '/^URIs:/ && $2 !~ /-security$/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
IMAGE_PKGS=(linux-image-amd64 systemd-sysv udev dbus libpam-systemd openssh-server sudo iproute2 kmod
  procps netbase e2fsprogs less busybox-static haproxy)
# busybox-static and haproxy are test tools only: no registry is reachable, so the e2e builds
# its images in the guest from them (test/e2e/images.ts); haproxy.service is disabled below
# what the library's distro install pulls on Debian (keep in step with prerequisitePackages)
LIBRARY_PKGS=(uidmap dbus-user-session slirp4netns iptables ca-certificates curl docker.io rootlesskit fuse-overlayfs)

KEY=$( { cat "$0" "$HERE/keys/ssh_host_ed25519_key.pub"; echo "$REPO_PORT"; } | sha256sum | cut -c1-12)
OUT=$CACHE/image-$KEY
if [[ -f $OUT/done ]]; then echo "cached $OUT"; exit 0; fi
[[ $(id -u) == 0 ]] || { echo "build-image.sh: needs root (debootstrap, chroot)" >&2; exit 1; }
for tool in debootstrap mke2fs dpkg-scanpackages ssh-keygen; do
  command -v "$tool" >/dev/null || { echo "build-image.sh: $tool is missing (apt-get install debootstrap e2fsprogs dpkg-dev openssh-client)" >&2; exit 1; }
done

T0=$(date +%s); log() { printf '[build %4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }
mkdir -p "$CACHE"; WORK=$(mktemp -d "$CACHE/build.XXXXXX"); R=$WORK/rootfs
mkdir -p "$CACHE/debootstrap" "$CACHE/apt-archives" "$WORK/repo"
cleanup() {
  for m in var/cache/apt/archives repo-dl dev/pts dev sys proc; do umount "$R/$m" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

log "debootstrap $SUITE (minbase)"
debootstrap --variant=minbase --cache-dir="$CACHE/debootstrap" "$SUITE" "$R" "$MIRROR" >"$WORK/build.log" 2>&1 \
  || { tail -20 "$WORK/build.log" >&2; exit 1; }
printf 'deb %s %s main\ndeb %s %s-updates main\n' "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" >"$R/etc/apt/sources.list"
printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"; chmod +x "$R/usr/sbin/policy-rc.d"
echo force-unsafe-io >"$R/etc/dpkg/dpkg.cfg.d/zz-unsafe-io"
mkdir -p "$R/etc/initramfs-tools/conf.d" "$R/repo-dl"
echo MODULES=list >"$R/etc/initramfs-tools/conf.d/test-vm.conf"
printf 'virtio_pci\nvirtio_blk\next4\n' >"$R/etc/initramfs-tools/modules"
mount -t proc proc "$R/proc"; mount -t sysfs sysfs "$R/sys"
mount --bind /dev "$R/dev"; mount --bind /dev/pts "$R/dev/pts"
mount --bind "$CACHE/apt-archives" "$R/var/cache/apt/archives"
mount --bind "$WORK/repo" "$R/repo-dl"
export DEBIAN_FRONTEND=noninteractive
log "install the image's packages"
chroot "$R" apt-get -q update >>"$WORK/build.log"
chroot "$R" apt-get -q -y install --no-install-recommends -o Dpkg::Options::=--force-confold "${IMAGE_PKGS[@]}" >>"$WORK/build.log"
log "download the library's packages into the local repository"
chroot "$R" apt-get -q -y install --download-only --no-install-recommends -o Dir::Cache::archives=/repo-dl "${LIBRARY_PKGS[@]}" >>"$WORK/build.log"
umount "$R/var/cache/apt/archives" "$R/repo-dl" "$R/dev/pts" "$R/dev" "$R/sys" "$R/proc"

log "configure the guest"
echo dockerhost >"$R/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 dockerhost\n' >"$R/etc/hosts"
echo '/dev/vda / ext4 defaults,errors=remount-ro 0 1' >"$R/etc/fstab"
printf '[Match]\nName=eth*\n\n[Network]\nDHCP=ipv4\n' >"$R/etc/systemd/network/20-wired.network"
chroot "$R" systemctl enable systemd-networkd.service >/dev/null 2>&1
rm -f "$R/etc/resolv.conf"; echo 'nameserver 10.0.2.3' >"$R/etc/resolv.conf"
# apt sees only the local repository (the guest has no internet here, and apt under TCG is slow)
rm -f "$R/etc/apt/sources.list"
echo "deb [trusted=yes] http://10.0.2.2:$REPO_PORT/ ./" >"$R/etc/apt/sources.list.d/local-repo.list"
# the admin user: our test key, a NOPASSWD sudo rule; root cannot log in over SSH
ssh-keygen -q -t ed25519 -N '' -C hardened-docker-test-admin -f "$WORK/id_ed25519"
chroot "$R" useradd --create-home --shell /bin/bash admin
install -d -m 0700 -o 1000 -g 1000 "$R/home/admin/.ssh"
install -m 0600 -o 1000 -g 1000 "$WORK/id_ed25519.pub" "$R/home/admin/.ssh/authorized_keys"
echo 'admin ALL=(ALL) NOPASSWD:ALL' >"$R/etc/sudoers.d/admin"; chmod 0440 "$R/etc/sudoers.d/admin"
printf 'PermitRootLogin no\nPasswordAuthentication no\n' >"$R/etc/ssh/sshd_config.d/10-test-vm.conf"
# a fixed, test-only host key (committed under test/vm/keys) so tests and stacks/Pulumi.local.yaml pin it
rm -f "$R"/etc/ssh/ssh_host_*
install -m 0600 "$HERE/keys/ssh_host_ed25519_key" "$R/etc/ssh/ssh_host_ed25519_key"
install -m 0644 "$HERE/keys/ssh_host_ed25519_key.pub" "$R/etc/ssh/ssh_host_ed25519_key.pub"
printf 'HostKey /etc/ssh/ssh_host_ed25519_key\n' >"$R/etc/ssh/sshd_config.d/05-hostkey.conf"
chroot "$R" systemctl set-default multi-user.target >/dev/null 2>&1
chroot "$R" systemctl mask apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1
chroot "$R" systemctl disable haproxy.service >/dev/null 2>&1
rm -f "$R/usr/sbin/policy-rc.d" "$R/etc/dpkg/dpkg.cfg.d/zz-unsafe-io"
chroot "$R" apt-get clean; rm -rf "$R/var/lib/apt/lists/"*

log "local apt repository ($(ls "$WORK/repo"/*.deb | wc -l) packages)"
mkdir -p "$WORK/out/repo"
mv "$WORK/repo"/*.deb "$WORK/out/repo/"
(cd "$WORK/out/repo" && dpkg-scanpackages --multiversion . /dev/null 2>/dev/null >Packages && gzip -9kf Packages)

log "ext4 image"
cp "$R"/boot/vmlinuz-* "$WORK/out/vmlinuz"; cp "$R"/boot/initrd.img-* "$WORK/out/initrd"
truncate -s 8G "$WORK/out/disk.raw"
mke2fs -q -t ext4 -L vmroot -d "$R" "$WORK/out/disk.raw"
cp "$WORK/id_ed25519" "$WORK/id_ed25519.pub" "$WORK/out/"
touch "$WORK/out/done"
rm -rf "$OUT"; mv "$WORK/out" "$OUT"
log "ready: $OUT"
echo "built $OUT"
