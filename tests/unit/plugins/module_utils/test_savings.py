# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.fastreboot.kexec.plugins.module_utils._host import HostFiles
from ansible_collections.fastreboot.kexec.plugins.module_utils._info import gather_info
from ansible_collections.fastreboot.kexec.plugins.module_utils._savings import (
    LOADER_TIME_EXEC,
    LOADER_TIME_INIT,
    kernel_start,
    parse_boot_list,
    savings_estimate,
)
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils import journals, layouts
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils.hosttree import HostTree


@pytest.fixture
def tree(tmp_path):
    """The trixie systemd-boot lab VM's layout with its persistent journal's directory."""
    tree = HostTree(tmp_path)
    layouts.debian13_systemd_boot(tree)
    tree.write("/etc/machine-id", journals.MACHINE_ID + "\n")
    tree.mkdir(f"/var/log/journal/{journals.MACHINE_ID}", 0o2755)
    return tree


def estimate(tree, runner):
    return savings_estimate(HostFiles(str(tree.root)), runner)


def test_cold_boot_after_a_reboot_is_the_gap_before_its_kernel_start(tree):
    # As of boot -1: the cold boot that followed boot -2's reboot.target.
    runner = journals.FakeJournalctl(current=3)
    result = estimate(tree, runner)
    cold = journals.COMMAND_LINES["d9c49b8872b34376a1a9d87b62b7768f"]
    expected = (int(cold["__REALTIME_TIMESTAMP"]) - int(cold["__MONOTONIC_TIMESTAMP"])) / 1e6 - journals.BOOTS[1]["last_entry"] / 1e6
    assert result == {
        "seconds": round(expected, 1), "firmware": None, "loader": None, "source": "journal",
        "boot_id": "d9c49b8872b34376a1a9d87b62b7768f", "reason": None,
    }
    assert result["seconds"] == 14.1  # VM exit, the lab's restart, OVMF and systemd-boot (no firmware delay)
    assert len(runner.calls) == 3  # the boot list, the cold boot's command line, how the boot before ended


def test_kexec_boot_looks_back_to_the_cold_boot_before_it(tree):
    # As of boot -2 (kexec'd): the cold boot -3 is the oldest in the journal, nothing before it to measure.
    result = estimate(tree, journals.FakeJournalctl(current=2))
    assert result["seconds"] is None and result["source"] is None
    assert "holds no cold reboot" in result["reason"]


def test_cold_boot_after_a_killed_boot_has_no_gap(tree):
    # As recorded: boot 0 is cold, but boot -1 was killed (QEMU stopped), so no reboot ended it.
    result = estimate(tree, journals.FakeJournalctl())
    assert result["seconds"] is None
    assert "b1d0685c8d2f4e6487dbf2f7d1f86903" in result["reason"]
    assert "did not end in a reboot" in result["reason"]


def test_a_cold_boot_after_a_kexec_that_fell_back_counts(tree, monkeypatch):
    # kexec.target ended boot -3; were boot -2 cold (a kexec that fell back to the firmware), its gap counts.
    kexecd = journals.COMMAND_LINES["f8319824180748c4a9152487adaf580c"]
    monkeypatch.setitem(journals.COMMAND_LINES, "f8319824180748c4a9152487adaf580c", dict(kexecd, MESSAGE=journals.SDBOOT_COLD_CMDLINE))
    result = estimate(tree, journals.FakeJournalctl(current=2))
    assert result["source"] == "journal" and result["boot_id"] == "f8319824180748c4a9152487adaf580c"
    assert result["seconds"] == round((1796276856403272 - 32618302) / 1e6 - 1796276817899788 / 1e6, 1)


def test_volatile_journal_gives_null_with_the_reason_and_runs_nothing(tree):
    tree.path(f"/var/log/journal/{journals.MACHINE_ID}").rmdir()
    runner = journals.FakeJournalctl()
    result = estimate(tree, runner)
    assert result["seconds"] is None
    assert "volatile" in result["reason"] and "Storage=persistent" in result["reason"]
    assert not runner.calls


def test_no_journalctl(tree):
    class NoJournalctl(journals.FakeJournalctl):
        def find(self, name):
            return None

    result = estimate(tree, NoJournalctl())
    assert result["seconds"] is None and "journalctl is not installed" in result["reason"]


def efi_usec(tree, path, usec):
    """A Boot Loader Interface time variable: attributes (non-volatile off, boot + runtime access), UTF-16LE, NUL."""
    tree.write(path, b"\x06\x00\x00\x00" + f"{usec}\0".encode("utf-16-le"))


def test_efi_loader_variables_win_over_the_journal(tree):
    # Format of systemd-boot's variables (Boot Loader Interface); no lab VM has them: under TCG
    # systemd-boot finds no usable timer and sets neither.
    efi_usec(tree, LOADER_TIME_INIT, 2_345_678)
    efi_usec(tree, LOADER_TIME_EXEC, 3_100_000)
    runner = journals.FakeJournalctl(current=3)
    result = estimate(tree, runner)
    assert result == {"seconds": 3.1, "firmware": 2.346, "loader": 0.754, "source": "efi_loader_variables", "boot_id": None, "reason": None}
    assert not runner.calls


def test_efi_variables_out_of_order_fall_back_to_the_journal(tree):
    efi_usec(tree, LOADER_TIME_INIT, 5_000_000)
    efi_usec(tree, LOADER_TIME_EXEC, 1_000_000)
    assert estimate(tree, journals.FakeJournalctl(current=3))["source"] == "journal"


def test_boot_list_and_kernel_start_parsers():
    text = journals.FakeJournalctl().run([journals.FakeJournalctl.PATH, "--list-boots", "-o", "json"])[1]
    boots = parse_boot_list(text)
    assert [boot["index"] for boot in boots] == [0, -1, -2, -3]
    assert parse_boot_list("not json") == [] and parse_boot_list("") == []
    assert kernel_start(journals.COMMAND_LINES["b1d0685c8d2f4e6487dbf2f7d1f86903"]) == pytest.approx(1796277152.019119)
    assert kernel_start({"MESSAGE": "no clocks"}) is None


def test_kexec_info_reports_it_and_can_leave_it_out(tree):
    runner = journals.FakeJournalctl(current=3)
    assert gather_info(HostFiles(str(tree.root)), runner)["savings_estimate"]["seconds"] == 14.1
    assert "savings_estimate" not in gather_info(HostFiles(str(tree.root)), runner, savings=False)
