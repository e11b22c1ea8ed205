# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The codes of kexec_load's failures (its `failure_code`) and of a host's support problems
(kexec_info's and kexec_load's `support.problem_codes`, parallel to `support.problems`).

Internal to fastreboot.kexec, not a public API. Callers decide by the code, never by the message
text, which is written for people and may change. No imports at all, so the controller-side
action plugin imports it too.
"""

from __future__ import annotations

# The host cannot kexec: kexec-tools missing, kernel.kexec_load_disabled, no kexec in the kernel
# config, a container, no CAP_SYS_BOOT, lockdown without kexec_file_load.
UNSUPPORTED = "unsupported"
# The kernel refused the image's signature, or lockdown/IMA refused kexec_load.
SIGNATURE = "signature"
# The request cannot work: a file, an option, the command line. The operator's to fix.
INPUT = "input"
# kexec itself failed otherwise (or reported success that the kernel does not confirm).
KEXEC = "kexec"
# The record directory or files under /run/fastreboot-kexec could not be used or written.
RECORD = "record"

FAILURE_CODES = (UNSUPPORTED, SIGNATURE, INPUT, KEXEC, RECORD)

# Support problems -----------------------------------------------------------------------------

CONTAINER = "container"
NO_CAP_SYS_BOOT = "no_cap_sys_boot"
# The one problem that stops loading but not the jump into an image loaded before the switch was set.
LOAD_DISABLED = "kexec_load_disabled"
LOCKDOWN_WITHOUT_FILE_SYSCALL = "lockdown_without_kexec_file_load"
KERNEL_WITHOUT_KEXEC = "kernel_without_kexec"
KEXEC_TOOLS_MISSING = "kexec_tools_missing"

SUPPORT_PROBLEM_CODES = (CONTAINER, NO_CAP_SYS_BOOT, LOAD_DISABLED, LOCKDOWN_WITHOUT_FILE_SYSCALL, KERNEL_WITHOUT_KEXEC, KEXEC_TOOLS_MISSING)
