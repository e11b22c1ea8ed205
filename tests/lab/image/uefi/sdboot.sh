#!/bin/sh
# Last customize hook of uefi-sdboot: systemd-boot and BLS type 1 entries (kernel-install) for both
# kernels, installed in the chroot without EFI variables onto a tmpfs that stands in for the ESP;
# the tree is copied to LAB_ESP_TREE (the build makes the vfat file system from it) and /boot/efi
# stays an empty mount point. The default entry is the generic kernel, which is NOT the first in
# systemd-boot's sort order ("...-cloud-amd64" sorts as the newer version), so a test can tell
# "the default" from "the newest".
# Environment: LAB_ROOT_UUID, LAB_ESP_TREE. Runs after guest.sh: the entries get its small initrds.
set -eu
root="$1"
in_root() { chroot "$root" "$@"; }

# The entries' options, and a fixed entry token: the image's machine-id is emptied at the end of
# the build, and every VM would get another one.
echo "root=UUID=$LAB_ROOT_UUID ro console=ttyS0,115200n8" > "$root/etc/kernel/cmdline"
echo debian > "$root/etc/kernel/entry-token"
mount -t tmpfs -o size=1G lab-esp "$root/boot/efi"
trap 'umount "$root/boot/efi"' EXIT
# No EFI variables in a chroot (and each VM gets a fresh variable store): OVMF boots the removable
# path EFI/BOOT/BOOTX64.EFI, which bootctl installs too. The tmpfs is no vfat: relax the check.
in_root env SYSTEMD_RELAX_ESP_CHECKS=1 bootctl install --esp-path=/boot/efi --no-variables
generic=
for image in "$root"/boot/vmlinuz-*; do
  version=${image##*/vmlinuz-}
  in_root env SYSTEMD_RELAX_ESP_CHECKS=1 kernel-install add "$version" "/boot/vmlinuz-$version" \
    "/boot/initrd.img-$version"
  case "$version" in *cloud*) ;; *) generic=$version ;; esac
done
# No menu (timeout 0: systemd-boot then prints nothing on the serial console).
printf 'timeout 0\ndefault debian-%s.conf\n' "$generic" > "$root/boot/efi/loader/loader.conf"
test -f "$root/boot/efi/loader/entries/debian-$generic.conf"
cp -a "$root/boot/efi/." "$LAB_ESP_TREE/"
