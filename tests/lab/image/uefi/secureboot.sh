#!/bin/sh
# Last customize hook of uefi-secureboot (after guest.sh and grub.sh): what Debian's maintainer
# scripts use when grub-efi-amd64 or shim-signed are upgraded later, as the first boot's
# grub-install does: the removable path too (a fresh OVMF variable store boots only
# EFI/BOOT/BOOTX64.EFI), no NVRAM writes.
set -eu
root="$1"
printf '%s\n' 'grub-efi-amd64 grub2/force_efi_extra_removable boolean true' \
  'grub-efi-amd64 grub2/update_nvram boolean false' | chroot "$root" debconf-set-selections
