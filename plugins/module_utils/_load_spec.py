# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The load options shared by kexec_load (module) and kexec_reboot (action plugin).

Standard library only, so that the controller-side action plugin can import it too; the doc
fragment fastreboot.kexec.load_options documents these options.
"""

from __future__ import annotations

import typing as t

LOAD_ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "kernel": {"type": "str", "default": "default"},
    "initrd": {"type": "raw", "default": "auto"},
    "cmdline": {"type": "str"},
    # raw, not list: Ansible's list type splits a string on commas (console=ttyS0,115200); a string or
    # each list item is split like a command line instead (_cmdline.option_params).
    "append": {"type": "raw", "default": []},
    "remove": {"type": "raw", "default": []},
    "syscall": {"type": "str", "default": "auto", "choices": ["auto", "file", "legacy"]},
    "allow_unsafe_files": {"type": "bool", "default": False},
}
LOAD_OPTION_NAMES = tuple(LOAD_ARGUMENT_SPEC)
