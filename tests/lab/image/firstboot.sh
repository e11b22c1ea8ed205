#!/bin/sh
# Runs once, on the image's first boot: GRUB onto the disk, the generic kernel as the saved default.
set -eu
grub-install --target=i386-pc /dev/vda
update-grub
generic=
for image in /boot/vmlinuz-*-amd64; do
  case "$image" in *cloud*) ;; *) generic=${image#/boot/vmlinuz-} ;; esac
done
uuid=$(findmnt -no UUID /)
grub-set-default "gnulinux-advanced-$uuid>gnulinux-$generic-advanced-$uuid"
systemctl disable lab-firstboot.service
rm -f /usr/local/sbin/lab-firstboot
sync
echo "LAB-FIRSTBOOT-OK generic=$generic" > /dev/ttyS0
systemctl poweroff
