# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The host paths that more than one part of the collection reads or writes, spelled once.

Internal to fastreboot.kexec, not a public API. Standard library only (no imports at all), so that
the controller side (action plugin, plugin_utils) may import it as well as the target side and the
role's shutdown helper and guard (plugins/module_utils/_shutdown.py).
"""

from __future__ import annotations

# The running kernel.
BOOT_ID = "/proc/sys/kernel/random/boot_id"
OSRELEASE = "/proc/sys/kernel/osrelease"
PROC_CMDLINE = "/proc/cmdline"
MODULE_DIRS = ("/usr/lib/modules", "/lib/modules")

# What the kernel says about kexec: 0/1 flags.
KEXEC_LOADED = "/sys/kernel/kexec_loaded"
KEXEC_CRASH_LOADED = "/sys/kernel/kexec_crash_loaded"
KEXEC_LOAD_DISABLED = "/proc/sys/kernel/kexec_load_disabled"

# The record of what this collection loaded in this boot (tmpfs: it dies with the boot, like the image).
RECORD_DIR = "/run/fastreboot-kexec"
RECORD_FILE = f"{RECORD_DIR}/loaded.json"
# Several initrds (microcode + main) are concatenated here: kexec takes one --initrd.
CONCATENATED_INITRD = f"{RECORD_DIR}/initrd.img"
# A load in progress reads its concatenation from here; it becomes CONCATENATED_INITRD only once the load
# succeeded, so that a failed load leaves the file of the image still loaded as it was.
STAGED_INITRD = f"{RECORD_DIR}/initrd-staged.img"

# Written by kexec_reboot just before `systemctl kexec`: one line "BOOT_ID DUE_EPOCH". The role's guard
# (kexec_every_reboot: false) unloads the image at kexec.target unless this marker is of the current
# boot and at most KEXEC_REQUESTED_MAX_AGE seconds past due; the shutdown helper (true) keeps an image
# such a marker asked for.
KEXEC_REQUESTED_FILE = f"{RECORD_DIR}/kexec-requested"
KEXEC_REQUESTED_MAX_AGE = 600

# Debian's coldreboot creates it: the next reboot is cold (the shutdown helper removes it and loads nothing).
NO_KEXEC_REBOOT = "/no-kexec-reboot"
