#!/usr/bin/env bash
# Installs the Debian packages the lab needs (QEMU, mmdebstrap, ...). Root only; idempotent.
set -euo pipefail
# ovmf: the UEFI firmware of the uefi-* lab images (with and without Secure Boot); dosfstools and
# mtools make their ESP without a loop device; sbsigntool strips or checks a kernel's Secure Boot
# signature (sbattach --remove, sbverify) for the lockdown tests.
packages=(qemu-system-x86 qemu-utils seabios ipxe-qemu mmdebstrap e2fsprogs fdisk openssh-client
          arch-test ca-certificates rsync git make ovmf dosfstools mtools sbsigntool)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-host: missing Debian packages: ${missing[*]}" >&2
  echo "setup-host: run 'sudo make setup' once (or install them with apt-get) and try again." >&2
  exit 1
fi
echo "setup-host: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
