#!/bin/sh
# Runs once, on the image's first boot: GRUB onto the disk, the generic kernel as the saved default.
set -eu
grub-install --target=i386-pc /dev/vda
update-grub
generic=$(ls /boot/vmlinuz-*-amd64 | grep -v cloud | sed 's|/boot/vmlinuz-||' | sort -V | tail -n 1)
uuid=$(findmnt -no UUID /)
grub-set-default "gnulinux-advanced-$uuid>gnulinux-$generic-advanced-$uuid"
systemctl disable lab-firstboot.service
rm -f /usr/local/sbin/lab-firstboot
sync
echo "LAB-FIRSTBOOT-OK generic=$generic" > /dev/ttyS0
systemctl poweroff
