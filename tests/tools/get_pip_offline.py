# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Stand-in for the get-pip.py that ansible-test downloads: bundled pip first, then the pinned one.

ansible-test runs this file with pip's install options and "pip==X" as arguments.
"""
from __future__ import annotations

import ensurepip
import runpy
import sys

ensurepip.bootstrap(upgrade=True)
sys.argv = ["pip", "install", "--upgrade", *sys.argv[1:]]
runpy.run_module("pip", run_name="__main__", alter_sys=True)
