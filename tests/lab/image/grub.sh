#!/bin/sh
# GRUB of the images that boot through it (BIOS, and UEFI with Secure Boot): its settings with the
# lab's marker line, and the first boot that installs it (firstboot.sh, run by a unit).
#   sh grub.sh ROOT    (run from a customize hook; ROOT is the bootstrapped tree)
# Environment: LAB_RECIPE_DIR (this folder), LAB_GRUB_TERMINAL (serial: the BIOS console; console:
# under OVMF the firmware's console is the serial port already, and both would print every line
# twice), LAB_GRUB_INSTALL (grub-install's arguments on the first boot).
set -eu
root="$1"
in_root() { chroot "$root" "$@"; }

case "$LAB_GRUB_TERMINAL" in
  serial) terminal='GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"' ;;
  console) terminal='GRUB_TERMINAL=console' ;;
  *) echo "grub.sh: LAB_GRUB_TERMINAL must be serial or console" >&2; exit 1 ;;
esac
# No menu timeout (nobody picks an entry on a lab console); the saved entry is the generic kernel.
cat > "$root/etc/default/grub" <<GRUB
GRUB_DEFAULT=saved
GRUB_TIMEOUT=0
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=ttyS0,115200n8"
$terminal
GRUB_DISABLE_OS_PROBER=true
GRUB
# A marker line that proves a boot went through the boot loader (a kexec does not print it).
cat > "$root/etc/grub.d/01_lab_marker" <<'MARK'
#!/bin/sh
echo 'echo "LAB-GRUB: boot loader running"'
MARK
chmod 0755 "$root/etc/grub.d/01_lab_marker"

# First boot (direct kernel boot by the lab): install GRUB, make the generic kernel the saved default
# entry, power off. Only the grub-install line differs between the flavours.
sed "s|^grub-install .*|grub-install $LAB_GRUB_INSTALL|" "$LAB_RECIPE_DIR/firstboot.sh" \
  | install -m 0755 /dev/stdin "$root/usr/local/sbin/lab-firstboot"
grep -qxF "grub-install $LAB_GRUB_INSTALL" "$root/usr/local/sbin/lab-firstboot"
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
