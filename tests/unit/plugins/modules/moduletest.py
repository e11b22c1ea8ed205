# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Run a module's main() against a fixture tree with a fake kexec; only the boundaries are patched."""

from __future__ import annotations

import json
import os
import platform
import typing as t
from unittest import mock

from ansible.module_utils import basic

from ansible_collections.fastreboot.kexec.plugins.module_utils._host import HostFiles
from ansible_collections.fastreboot.kexec.plugins.module_utils._loader import KexecLoader
from ansible_collections.fastreboot.kexec.plugins.module_utils._record import RecordStore
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils.hosttree import FakeKexec

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core < 2.19

    def patch_module_args(args: dict[str, t.Any] | None = None) -> t.Any:  # type: ignore[misc]
        payload = json.dumps({"ANSIBLE_MODULE_ARGS": args or {}}).encode()
        return mock.patch.object(basic, "_ANSIBLE_ARGS", payload)


class ModuleExit(Exception):
    def __init__(self, result: dict[str, t.Any], failed: bool) -> None:
        super().__init__(result)
        self.result = result
        self.failed = failed


def run_module(main: t.Callable[[], None], runner: FakeKexec, args: dict[str, t.Any]) -> ModuleExit:
    """Call main() with args; return what it passed to exit_json/fail_json."""

    def exit_json(_module: t.Any, **result: t.Any) -> None:
        raise ModuleExit(result, False)

    def fail_json(_module: t.Any, msg: str, **result: t.Any) -> None:
        raise ModuleExit(dict(result, msg=msg), True)

    def run_command(_module: t.Any, argv: list[str], **_kwargs: t.Any) -> tuple[int, str, str]:
        return runner.run(argv)

    def get_bin_path(_module: t.Any, name: str, *_args: t.Any, **_kwargs: t.Any) -> str | None:
        return runner.find(name)

    warnings: list[str] = []
    with patch_module_args(args), \
            mock.patch.object(basic.AnsibleModule, "exit_json", exit_json), \
            mock.patch.object(basic.AnsibleModule, "fail_json", fail_json), \
            mock.patch.object(basic.AnsibleModule, "run_command", run_command), \
            mock.patch.object(basic.AnsibleModule, "get_bin_path", get_bin_path), \
            mock.patch.object(basic.AnsibleModule, "warn", lambda _module, warning: warnings.append(warning)), \
            mock.patch.object(HostFiles, "DEFAULT_ROOT", str(runner.tree.root)), \
            mock.patch.object(KexecLoader, "TRUSTED_UID", os.getuid()), \
            mock.patch.object(RecordStore, "TRUSTED_UID", os.getuid()), \
            mock.patch.object(platform, "machine", lambda: "x86_64"):
        try:
            main()
        except ModuleExit as exit_:
            exit_.result["warnings"] = warnings
            return exit_
    raise AssertionError("the module returned without exit_json or fail_json")
