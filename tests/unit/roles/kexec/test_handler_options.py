# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The kexec role's "kexec reboot" handler: which options reach fastreboot.kexec.kexec_reboot.

ansible-playbook runs the role's real handler file and argument spec against localhost. The test's
collection tree is this repository except for the kexec_reboot action, which a stand-in replaces:
it writes the options the handler passed to a JSON file and reboots nothing.
"""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import pytest
import yaml

from ansible_collections.fastreboot.kexec.plugins.action.kexec_reboot import ARGUMENT_SPEC
from ansible_collections.fastreboot.kexec.tests.unit.roles.kexec.playbook import run_playbook

REPO_ROOT = Path(__file__).resolve().parents[4]
ROLE_DIR = REPO_ROOT / "roles" / "kexec"
PLAYBOOK = Path(__file__).resolve().parent / "notify_handler.yml"

DEBIAN12_FACTS = {
    "system": "Linux",
    "os_family": "Debian",
    "distribution": "Debian",
    "distribution_version": "12.7",
    "distribution_major_version": "12",
    "service_mgr": "systemd",
    "python": {"executable": "/usr/bin/python3", "version": {"major": 3, "minor": 11, "micro": 2, "releaselevel": "final", "serial": 0}},
}

# Every option of the action reaches it through the handler (reboot_command too: with cold_fallback).
NOT_PASSED: set[str] = set()
ACTION_OPTIONS = set(ARGUMENT_SPEC) - NOT_PASSED

STAND_IN_ACTION = '''
import json
import os

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    """Records the options of the task instead of rebooting."""

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        with open(os.environ["HANDLER_OPTIONS_PATH"], "w", encoding="utf-8") as handle:
            json.dump(dict(self._task.args), handle)
        result["changed"] = False
        return result
'''

# One value per action option, none of them the action's default, so a dropped option shows.
EVERY_OPTION = {
    "kernel": "/boot/vmlinuz-6.1.0-26-amd64",
    "initrd": ["/boot/intel-ucode.img", "/boot/initrd.img-6.1.0-26-amd64"],
    "cmdline": "root=/dev/vda1 ro quiet",
    "append": ["console=ttyS0"],
    "remove": ["splash"],
    "syscall": "file",
    "allow_unsafe_files": True,
    "use_loaded": False,
    "expect_release": "6.1.0-26-amd64",
    "method": "systemd",
    "pre_reboot_delay": 3,
    "post_reboot_delay": 2,
    "reboot_timeout": 1200,
    "connect_timeout": 7,
    "test_command": "systemctl is-active ssh",
    "wait_for_boot_finished": False,
    "boot_time_command": "cat /proc/sys/kernel/random/boot_id",
    "search_paths": ["/usr/sbin", "/usr/bin"],
    "allow_fallback": True,
    "cold_fallback": True,
    "reboot_command": "systemctl reboot",
    "msg": "",
}


@pytest.fixture(scope="module")
def collections_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ansible_collections tree: this repository's roles and meta, the stand-in kexec_reboot action."""
    root = tmp_path_factory.mktemp("collections")
    collection = root / "ansible_collections" / "fastreboot" / "kexec"
    (collection / "plugins" / "action").mkdir(parents=True)
    (collection / "plugins" / "action" / "kexec_reboot.py").write_text(STAND_IN_ACTION, encoding="utf-8")
    for name in ("roles", "meta", "plugins/modules", "plugins/module_utils", "plugins/doc_fragments"):
        # the real modules: set_vars runs kexec_info (read-only) for the deprecated kexec_paths
        (collection / name).symlink_to(REPO_ROOT / name, target_is_directory=True)
    return root


class HandlerRun(t.NamedTuple):
    returncode: int
    output: str
    passed: dict[str, t.Any] | None


def notify(collections_path: Path, tmp_path: Path, role_vars: dict[str, t.Any]) -> HandlerRun:
    """Run the handler with these role variables; passed: the options kexec_reboot received (None: not run)."""
    passed_path = tmp_path / "passed.json"
    extra = {
        **role_vars,
        "role_vars": role_vars,
        "ansible_facts": DEBIAN12_FACTS,
        "argument_specs_path": str(ROLE_DIR / "meta" / "argument_specs.yml"),
    }
    completed = run_playbook(PLAYBOOK, collections_path, tmp_path, extra, HANDLER_OPTIONS_PATH=str(passed_path))
    passed = json.loads(passed_path.read_text(encoding="utf-8")) if passed_path.exists() else None
    return HandlerRun(completed.returncode, completed.stdout + completed.stderr, passed)


def as_templated(options: dict[str, t.Any] | None) -> dict[str, t.Any] | None:
    """Integers as strings: ansible-core 2.16 templates them so, and the action's argument spec converts them back."""
    if options is None:
        return None
    return {name: str(value) if isinstance(value, int) and not isinstance(value, bool) else value for name, value in options.items()}


def handler_options() -> set[str]:
    handlers = yaml.safe_load((ROLE_DIR / "handlers" / "main.yml").read_text(encoding="utf-8"))
    (reboot,) = [handler for handler in handlers if handler.get("listen") == "kexec reboot"]
    return set(reboot["fastreboot.kexec.kexec_reboot"])


def role_spec_options() -> set[str]:
    specs = yaml.safe_load((ROLE_DIR / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))
    return set(specs["argument_specs"]["main"]["options"]["kexec_reboot_options"]["options"])


def test_handler_parity_handler_and_role_spec_name_every_action_option() -> None:
    assert EVERY_OPTION.keys() == ACTION_OPTIONS
    assert handler_options() == ACTION_OPTIONS
    assert role_spec_options() == ACTION_OPTIONS


def test_handler_parity_every_option_reaches_the_action(collections_path: Path, tmp_path: Path) -> None:
    run = notify(collections_path, tmp_path, {"kexec_reboot_options": EVERY_OPTION})
    assert run.returncode == 0, run.output
    assert as_templated(run.passed) == as_templated(EVERY_OPTION)


def test_handler_parity_nothing_set_passes_nothing(collections_path: Path, tmp_path: Path) -> None:
    """The action's own defaults apply."""
    run = notify(collections_path, tmp_path, {})
    assert run.returncode == 0, run.output
    assert run.passed == {}


def test_handler_parity_use_loaded_alone_passes_no_load_option(collections_path: Path, tmp_path: Path) -> None:
    """use_loaded=true refuses any load option that is set, so the handler must not add any."""
    run = notify(collections_path, tmp_path, {"kexec_reboot_options": {"use_loaded": True, "expect_release": "6.12.57+deb13-amd64"}})
    assert run.returncode == 0, run.output
    assert run.passed == {"use_loaded": True, "expect_release": "6.12.57+deb13-amd64"}


def test_handler_parity_single_option_variables_still_apply(collections_path: Path, tmp_path: Path) -> None:
    role_vars = {
        "kexec_reboot_kernel": "latest",
        "kexec_reboot_initrd": False,
        "kexec_reboot_cmdline": "",
        "kexec_reboot_append": ["console=ttyS0"],
        "kexec_reboot_remove": ["quiet"],
        "kexec_reboot_syscall": "legacy",
        "kexec_reboot_timeout": 1200,
        "kexec_reboot_method": "immediate",
    }
    run = notify(collections_path, tmp_path, role_vars)
    assert run.returncode == 0, run.output
    # The empty cmdline means "let the module choose": left out.
    assert as_templated(run.passed) == as_templated({
        "kernel": "latest",
        "initrd": False,
        "append": ["console=ttyS0"],
        "remove": ["quiet"],
        "syscall": "legacy",
        "reboot_timeout": 1200,
        "method": "immediate",
    })


def test_handler_parity_options_dict_wins_over_single_variable(collections_path: Path, tmp_path: Path) -> None:
    role_vars = {"kexec_reboot_timeout": 1200, "kexec_reboot_method": "immediate", "kexec_reboot_options": {"reboot_timeout": 900}}
    run = notify(collections_path, tmp_path, role_vars)
    assert run.returncode == 0, run.output
    assert as_templated(run.passed) == as_templated({"reboot_timeout": 900, "method": "immediate"})


@pytest.mark.parametrize(
    ("options", "named"),
    [
        pytest.param({"reboot_timout": 900}, "reboot_timout", id="misspelt"),
        pytest.param({"cold_fallbak": True}, "cold_fallbak", id="misspelt-new-option"),
    ],
)
def test_handler_parity_unknown_key_fails_before_the_handler(collections_path: Path, tmp_path: Path, options: dict[str, t.Any], named: str) -> None:
    run = notify(collections_path, tmp_path, {"kexec_reboot_options": options})
    assert run.returncode != 0
    assert named in run.output
    assert run.passed is None
