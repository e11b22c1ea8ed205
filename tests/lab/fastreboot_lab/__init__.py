# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The QEMU lab: Debian disk images that boot through SeaBIOS and GRUB, or UEFI (OVMF) with systemd-boot
or Secure Boot, and VMs started from them.

  images   build (or reuse) the cached image of a distribution or UEFI flavour (IMAGES)
  vm       start a VM on a copy-on-write overlay, wait for SSH; stop, reset, restart, inventory
  console  the serial console logger (console.log plus host timestamps in console.times)
  measure  where a boot spends its time
  cli      the command line of tests/lab/lab.py

Only the standard library: the lab runs before any virtual environment exists.
"""
from __future__ import annotations

from .base import DISTS, GUEST_USERS, LabError, cache_dir, run_dir
from .images import IMAGES, Image, build, image_for
from .vm import VM, down, down_all, inventory, load_vm, monitor, reset, restart, ssh_cmd, up, vm_dir, wait_for_ssh

__all__ = ["DISTS", "GUEST_USERS", "IMAGES", "Image", "LabError", "VM", "build", "cache_dir", "down", "down_all",
           "image_for", "inventory", "load_vm", "monitor", "reset", "restart", "run_dir", "ssh_cmd", "up", "vm_dir",
           "wait_for_ssh"]
