#!/bin/sh
# mmdebstrap customize hook: turns the bootstrapped tree "$1" into a lab guest.
# Environment from lab.py: LAB_DIST, LAB_ROOT_UUID, LAB_PUBKEY (the build's SSH public key),
# LAB_RECIPE_DIR (this folder).
set -eu
root="$1"
in_root() { chroot "$root" "$@"; }

echo "lab-$LAB_DIST" > "$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tlab-%s\n' "$LAB_DIST" > "$root/etc/hosts"
printf 'UUID=%s / ext4 errors=remount-ro 0 1\n' "$LAB_ROOT_UUID" > "$root/etc/fstab"

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
mkdir -p "$root/var/log/journal"

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

# GRUB on the serial console, with a marker line that proves a boot went through the boot loader.
cat > "$root/etc/default/grub" <<'GRUB'
GRUB_DEFAULT=saved
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=ttyS0,115200n8"
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_OS_PROBER=true
GRUB
cat > "$root/etc/grub.d/01_lab_marker" <<'MARK'
#!/bin/sh
echo 'echo "LAB-GRUB: boot loader running"'
MARK
chmod 0755 "$root/etc/grub.d/01_lab_marker"

# First boot (direct kernel boot by lab.py): install GRUB to the disk, make the generic kernel the
# saved default entry, power off.
install -m 0755 /dev/stdin "$root/usr/local/sbin/lab-firstboot" < "$LAB_RECIPE_DIR/firstboot.sh"
cat > "$root/etc/systemd/system/lab-firstboot.service" <<'UNIT'
[Unit]
Description=Lab image first boot: install the boot loader
ConditionPathExists=/usr/local/sbin/lab-firstboot
After=local-fs.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/lab-firstboot
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
UNIT
in_root systemctl enable lab-firstboot.service

# kexec-tools is not installed (the role installs it), but its package waits in apt's cache so that
# the install needs no network; the package lists are kept for the same reason.
in_root apt-get clean
in_root sh -c 'cd /var/cache/apt/archives && apt-get download kexec-tools'
