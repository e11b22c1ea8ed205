# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The QEMU lab's command line: `python3 tests/lab/lab.py COMMAND ...` (see tests/lab/README.md).

The lab itself is the package fastreboot_lab beside this file (importable from here because a
script's folder is the first entry of its import path).
"""
from __future__ import annotations

import sys

from fastreboot_lab.cli import main

if __name__ == "__main__":
    sys.exit(main())
