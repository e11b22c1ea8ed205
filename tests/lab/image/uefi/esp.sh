#!/bin/sh
# First customize hook of the UEFI images: the GPT disk's two file systems in /etc/fstab (the ESP
# where Debian's installer mounts it) and the ESP's modules for the initramfs (guest.sh, the next
# hook, builds it).
# Environment: LAB_ROOT_UUID, LAB_ESP_UUID (the vfat serial, XXXX-XXXX).
set -eu
root="$1"

# Pass 0: no fsck at boot (2-5 s of every TCG boot); a lab disk is a fresh copy-on-write overlay.
# umask=0077 as the installer does: the ESP (boot loader, kernels, random seed) is root's.
printf 'UUID=%s / ext4 errors=remount-ro 0 0\nUUID=%s /boot/efi vfat umask=0077 0 0\n' \
  "$LAB_ROOT_UUID" "$LAB_ESP_UUID" > "$root/etc/fstab"
mkdir -p "$root/boot/efi"
# vfat and the code pages of its default mount options (cp437, utf8): systemd mounts /boot/efi after
# the switch to the root file system, whose modules would serve too; in the initramfs they cost a
# few hundred KiB and keep the ESP mountable from it (e.g. for a debug shell).
printf '%s\n' vfat nls_cp437 nls_utf8 nls_ascii >> "$root/etc/initramfs-tools/modules"
