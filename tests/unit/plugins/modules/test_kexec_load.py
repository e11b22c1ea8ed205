# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json

import pytest

from ansible_collections.fastreboot.kexec.plugins.modules import kexec_load
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils import layouts
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils.hosttree import ROOT_UUID, FakeKexec, HostTree
from ansible_collections.fastreboot.kexec.tests.unit.plugins.modules.moduletest import run_module

ACTION_PLUGIN_FIELDS = (
    "changed", "loaded", "kernel", "kernel_release", "cmdline", "initrd", "syscall",
    "boot_id", "running_release", "kernel_selected_by", "msg", "support",
)


@pytest.fixture
def tree(tmp_path):
    tree = HostTree(tmp_path)
    layouts.debian(tree)
    return tree


def test_load_returns_the_fields_the_action_plugin_reads(tree):
    runner = FakeKexec(tree)
    exit_ = run_module(kexec_load.main, runner, {"kernel": "default"})
    assert not exit_.failed, exit_.result["msg"]
    assert set(ACTION_PLUGIN_FIELDS) <= set(exit_.result)
    assert exit_.result["kernel_release"] == "6.1.0-26-amd64"
    assert runner.kexec_calls() == [[
        "/usr/sbin/kexec", "-l", "-s", "/boot/vmlinuz-6.1.0-26-amd64",
        "--initrd=/boot/initrd.img-6.1.0-26-amd64", f"--append=root=UUID={ROOT_UUID} ro quiet",
    ]]
    assert json.loads(tree.read("/run/fastreboot-kexec/loaded.json"))["kernel_release"] == "6.1.0-26-amd64"
    assert "diff" not in exit_.result


def test_check_and_diff_mode(tree):
    runner = FakeKexec(tree)
    exit_ = run_module(kexec_load.main, runner, {"_ansible_check_mode": True, "_ansible_diff": True, "append": ["nomodeset"]})
    assert exit_.result["changed"] is True
    assert runner.kexec_calls() == []
    assert exit_.result["diff"]["before"]["loaded"] is False
    assert exit_.result["diff"]["after"]["cmdline"].endswith("quiet nomodeset")


def test_failure_is_reported_with_state(tree):
    tree.write("/sys/kernel/kexec_loaded", "1\n")
    runner = FakeKexec(tree, results={"-s": (255, "kexec_file_load failed: Required key not available")})
    exit_ = run_module(kexec_load.main, runner, {})
    assert exit_.failed
    assert "it is signed by a key the kernel does not trust" in exit_.result["msg"]
    assert exit_.result["loaded"] is True  # a failed load replaces nothing: the foreign image stays
    assert any("loaded by something else" in warning for warning in exit_.result["warnings"])


def test_bad_option_value_is_refused_by_argument_spec(tree):
    runner = FakeKexec(tree)
    exit_ = run_module(kexec_load.main, runner, {"syscall": "both"})
    assert exit_.failed and "syscall" in exit_.result["msg"]
    assert runner.kexec_calls() == []


def test_fallback_warning_reaches_ansible(tree):
    tree.path("/boot/grub/grub.cfg").unlink()
    exit_ = run_module(kexec_load.main, FakeKexec(tree), {})
    assert exit_.result["kernel_selected_by"].startswith("latest (boot loader unreadable")
    assert any("using the newest installed kernel" in warning for warning in exit_.result["warnings"])


def test_unload(tree):
    run_module(kexec_load.main, FakeKexec(tree), {})
    runner = FakeKexec(tree)
    exit_ = run_module(kexec_load.main, runner, {"state": "unloaded"})
    assert (exit_.result["changed"], exit_.result["loaded"]) == (True, False)
    assert runner.kexec_calls() == [["/usr/sbin/kexec", "-u", "-s"]]


def test_item03_force_is_an_option_and_reloads(tree):
    run_module(kexec_load.main, FakeKexec(tree), {})
    runner = FakeKexec(tree)
    exit_ = run_module(kexec_load.main, runner, {"force": True})
    assert not exit_.failed, exit_.result["msg"]
    assert (exit_.result["changed"], exit_.result["reloaded_reason"]) == (True, "forced")
    assert len(runner.kexec_calls()) == 1


def test_item12_unload_under_lockdown_with_kexec_tools_2_0_25(tree):
    run_module(kexec_load.main, FakeKexec(tree), {})
    tree.write("/sys/kernel/security/lockdown", "none [integrity] confidentiality\n")
    runner = FakeKexec(tree, version="kexec-tools 2.0.25")
    exit_ = run_module(kexec_load.main, runner, {"state": "unloaded"})
    assert not exit_.failed, exit_.result["msg"]
    assert runner.kexec_calls() == [["/usr/sbin/kexec", "-u", "-s"]]
    assert (exit_.result["changed"], exit_.result["loaded"]) == (True, False)


def test_item13_check_mode_without_kexec_returns_would_fail_because(tree):
    exit_ = run_module(kexec_load.main, FakeKexec(tree, programs={}), {"_ansible_check_mode": True})
    assert not exit_.failed and exit_.result["changed"] is True
    assert exit_.result["would_fail_because"] == [
        "the kexec program (kexec-tools) is not installed: install it with the fastreboot.kexec.kexec role (or the kexec-tools package)"
    ]
