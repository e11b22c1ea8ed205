# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.fastreboot.kexec.plugins.modules import kexec_info
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils import layouts
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils.hosttree import FakeKexec, HostTree
from ansible_collections.fastreboot.kexec.tests.unit.plugins.modules.moduletest import run_module


def test_info_reports_without_changing_anything(tmp_path):
    tree = HostTree(tmp_path)
    layouts.el9(tree)
    runner = FakeKexec(tree)
    exit_ = run_module(kexec_info.main, runner, {"_ansible_check_mode": True})
    result = exit_.result
    assert not exit_.failed and result["changed"] is False
    assert set(result) >= {"support", "loaded", "kernels", "reboot_required", "reboot_required_reasons"}
    assert "ansible_facts" not in result
    assert result["support"]["supported"] is True
    assert result["kernels"]["default"]["release"] == layouts.EL_RELEASES[1]
    assert result["reboot_required_reasons"] == [
        f"the boot loader's default kernel is {layouts.EL_RELEASES[1]} but {layouts.EL_RELEASES[0]} is running"
    ]
    assert runner.kexec_calls() == []
    assert not tree.path("/run/fastreboot-kexec").exists()
