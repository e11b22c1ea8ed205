# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Runs one of this folder's playbooks against localhost with extra vars, the way the role tests do.

Internal to the tests. The ansible-playbook of the interpreter running the tests is used (the venv's
script, or the module when the scripts are not installed, as under ansible-test units), with a clean
ANSIBLE_* environment: only the collection tree and the settings given here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path

_PLAYBOOK_SCRIPT = Path(sys.executable).parent / "ansible-playbook"
ANSIBLE_PLAYBOOK = [str(_PLAYBOOK_SCRIPT)] if _PLAYBOOK_SCRIPT.exists() else [sys.executable, "-m", "ansible.cli.playbook"]


def run_playbook(
    playbook: Path, collections_path: Path, tmp_path: Path, extra_vars: dict[str, t.Any], **environment: str
) -> subprocess.CompletedProcess[str]:
    """ansible-playbook -i localhost, PLAYBOOK -e @extra_vars.json; environment adds variables (e.g. for a stand-in)."""
    extra_path = tmp_path / "extra_vars.json"
    extra_path.write_text(json.dumps(extra_vars), encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(collections_path),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        ANSIBLE_NOCOLOR="true",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        **environment,
    )
    return subprocess.run(
        [*ANSIBLE_PLAYBOOK, "-i", "localhost,", str(playbook), "-e", f"@{extra_path}"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )
