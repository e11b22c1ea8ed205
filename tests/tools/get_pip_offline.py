# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Stand-in for the get-pip.py that ansible-test downloads: bundled pip first, then the pinned one.

ansible-test runs this file with pip's install options and "pip==X" as arguments.
"""
from __future__ import annotations

import ensurepip
import os
import subprocess
import sys

# ensurepip points PIP_CONFIG_FILE at /dev/null in this process; pip must see the machine's
# configuration (certificates, indexes), so remember the environment first.
environment = dict(os.environ)
ensurepip.bootstrap(upgrade=True)
# get-pip.py's own switches; pip itself does not know them.
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}
arguments = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "--upgrade", *arguments], env=environment))
