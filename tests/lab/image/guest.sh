#!/bin/sh
# The lab guest itself, shared by every image (BIOS and UEFI): name, network, the boot work the lab
# masks, a small initramfs, users and keys, sshd with its console marker, kexec-tools in apt's cache.
# The boot loader parts and /etc/fstab are the flavour's (customize.sh for BIOS, uefi/*.sh).
#   sh guest.sh ROOT    (run from a customize hook; ROOT is the bootstrapped tree)
# Environment: LAB_IMAGE (or LAB_DIST: the host name), LAB_PUBKEY (the build's SSH public key).
# Modules for the initramfs beyond the common ones are listed in ROOT/etc/initramfs-tools/modules
# by the flavour before this runs.
set -eu
root="$1"
in_root() { chroot "$root" "$@"; }
name="lab-${LAB_IMAGE:-$LAB_DIST}"

echo "$name" > "$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "$name" > "$root/etc/hosts"

# Network: DHCP from QEMU's user-mode network; its DNS proxy is 10.0.2.3.
mkdir -p "$root/etc/systemd/network"
printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=ipv4\n' > "$root/etc/systemd/network/10-lab.network"
rm -f "$root/etc/resolv.conf"
echo 'nameserver 10.0.2.3' > "$root/etc/resolv.conf"
in_root systemctl enable systemd-networkd.service
# Nothing in the lab waits for "online"; skipping it saves seconds on every boot.
in_root systemctl mask systemd-networkd-wait-online.service
# Timers that would start apt or man-db work in the middle of a test.
for unit in apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer fstrim.timer; do
  in_root systemctl mask "$unit" || true
done
# Boot work the lab has no use for (every unit costs CPU under TCG, where one vCPU runs them all):
# e2scrub_reap looks for LVM snapshots (none; up to 30 s per boot); no display (QEMU -nodefaults),
# so no getty on tty1 and no DRM module; no pstore (on the UEFI images it would write crash dumps
# into the EFI variable store); no FUSE, debugfs, tracefs, configfs, huge pages, loop or
# device-mapper devices, no foreign binaries (binfmt), no network settings or credentials on the
# kernel command line, no audit records in the journal, no DHCP leases kept across boots (trixie's
# networkd-persistent-storage: 1.4 s of networkctl per boot, and again at shutdown). dbus, logind,
# the user manager, sshd, journald (persistent), udev, networkd, the serial getty and grub-common
# stay: the collection and its tests rely on them, as on a real server.
for unit in e2scrub_reap.service getty@tty1.service modprobe@drm.service modprobe@efi_pstore.service \
    systemd-pstore.service modprobe@fuse.service sys-fs-fuse-connections.mount sys-kernel-debug.mount \
    sys-kernel-tracing.mount dev-hugepages.mount modprobe@configfs.service sys-kernel-config.mount \
    modprobe@loop.service modprobe@dm_mod.service systemd-binfmt.service \
    proc-sys-fs-binfmt_misc.automount kmod-static-nodes.service systemd-network-generator.service \
    systemd-udev-load-credentials.service systemd-journald-audit.socket \
    systemd-networkd-persistent-storage.service; do
  in_root systemctl mask "$unit"
done
# Generators that probe for what a lab VM lacks: sshd on AF_VSOCK (it loads the vsock modules),
# GPT auto-mounts (the disk is MBR, or its ESP is in fstab), a TPM, a hibernation image.
mkdir -p "$root/etc/systemd/system-generators"
for generator in systemd-ssh-generator systemd-gpt-auto-generator systemd-tpm2-generator \
    systemd-hibernate-resume-generator; do
  ln -sf /dev/null "$root/etc/systemd/system-generators/$generator"
done
# Drivers that udev would load for QEMU's legacy pc devices and the CPU model's virtualisation
# flag (floppy and PS/2 mouse probing alone take seconds under TCG); the lab uses none of them.
printf 'blacklist %s\n' floppy psmouse pcspkr serio_raw i2c_piix4 ata_piix ata_generic vga16fb \
  powernow_k8 kvm kvm_amd kvm_intel ccp vmw_vmci cfg80211 > "$root/etc/modprobe.d/lab-unused-devices.conf"
mkdir -p "$root/var/log/journal"

# An initramfs with just what finds this root (virtio disk, ext4) instead of "most" modules: a
# fraction of the size that the boot loader reads through the firmware, the kernel unpacks, and a
# kexec's purgatory hashes, all slow under TCG. MODULES=list, not dep: dep would probe the build
# host's disks from this chroot. Built here, natively; kernels that a test installs later get the same.
sed -i 's/^MODULES=.*/MODULES=list/' "$root/etc/initramfs-tools/initramfs.conf"
printf '%s\n' virtio_pci virtio_blk ext4 >> "$root/etc/initramfs-tools/modules"
# trixie's udev hook also packs the 13.5 MB hardware database (udev/hwdb.bin: vendor names, keyboard
# maps), which finding a root file system by UUID never reads: leaving it out halves trixie's initrd.
mkdir -p "$root/etc/initramfs-tools/hooks"
printf '#!/bin/sh\n[ "$1" = prereqs ] && exit 0\nrm -f "$DESTDIR/usr/lib/udev/hwdb.bin"\n' \
  > "$root/etc/initramfs-tools/hooks/lab-no-hwdb"
chmod 0755 "$root/etc/initramfs-tools/hooks/lab-no-hwdb"
in_root update-initramfs -u -k all

# Users: root and a non-root "lab" user with passwordless sudo, both with the build's key.
in_root useradd --create-home --shell /bin/bash lab
echo 'lab ALL=(ALL:ALL) NOPASSWD: ALL' > "$root/etc/sudoers.d/lab"
chmod 0440 "$root/etc/sudoers.d/lab"
for home in /root /home/lab; do
  mkdir -p "$root$home/.ssh"
  echo "$LAB_PUBKEY" > "$root$home/.ssh/authorized_keys"
  chmod 0700 "$root$home/.ssh"
  chmod 0600 "$root$home/.ssh/authorized_keys"
done
in_root chown -R lab:lab /home/lab/.ssh
printf 'UseDNS no\nPasswordAuthentication no\n' > "$root/etc/ssh/sshd_config.d/lab.conf"
# A console line the moment sshd is ready (ssh.service is Type=notify): the benchmark reads the
# console with host timestamps to measure how long a reboot task takes to notice the host.
mkdir -p "$root/etc/systemd/system/ssh.service.d"
printf '[Service]\nExecStartPost=/bin/sh -c "echo LAB-SSHD-READY > /dev/ttyS0"\n' \
  > "$root/etc/systemd/system/ssh.service.d/lab-console.conf"

# kexec-tools is not installed (the role installs it), but it and its dependencies (libxen* on both
# releases) wait in apt's cache so that the install needs no network (`apt-get download` alone
# fetched only kexec-tools itself); the package lists are kept for the same reason.
in_root apt-get clean
in_root env DEBIAN_FRONTEND=noninteractive apt-get install --download-only -y -q kexec-tools >/dev/null
