#!/bin/sh
# mmdebstrap customize hook of the BIOS images: turns the bootstrapped tree "$1" into a lab guest.
# Environment from lab.py: LAB_DIST, LAB_ROOT_UUID, LAB_PUBKEY (the build's SSH public key),
# LAB_RECIPE_DIR (this folder).
set -eu
root="$1"

# Pass 0: no fsck of the root file system at boot (2-5 s of every TCG boot on the critical chain); a
# lab disk is a fresh copy-on-write overlay each time.
printf 'UUID=%s / ext4 errors=remount-ro 0 0\n' "$LAB_ROOT_UUID" > "$root/etc/fstab"
# The guest itself (shared with the UEFI images): network, masked units, initramfs, users, sshd.
sh "$LAB_RECIPE_DIR/guest.sh" "$root"
# GRUB on the serial console with the marker line; the first boot installs it to the MBR.
LAB_GRUB_TERMINAL=serial LAB_GRUB_INSTALL="--target=i386-pc /dev/vda" sh "$LAB_RECIPE_DIR/grub.sh" "$root"
