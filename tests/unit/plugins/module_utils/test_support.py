# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import gzip
import os

import pytest

from ansible_collections.fastreboot.kexec.plugins.module_utils import _codes as codes
from ansible_collections.fastreboot.kexec.plugins.module_utils._host import HostFiles
from ansible_collections.fastreboot.kexec.plugins.module_utils._info import gather_info
from ansible_collections.fastreboot.kexec.plugins.module_utils._support import SupportProbe
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils import layouts
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils.hosttree import (
    BOOT_ID,
    CAPEFF_NO_SYS_BOOT,
    FakeKexec,
    HostTree,
)

SECURE_BOOT = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"


@pytest.fixture
def tree(tmp_path):
    tree = HostTree(tmp_path)
    layouts.debian(tree)
    return tree


def probe(tree, runner=None):
    return SupportProbe(HostFiles(str(tree.root)), runner or FakeKexec(tree), "x86_64").probe()


def test_healthy_host(tree):
    facts = probe(tree)
    assert facts["supported"] is True
    assert facts["problems"] == []
    assert facts["kexec_tools_version"] == "2.0.25"
    assert facts["syscalls"] == {"file": True, "legacy": True}
    assert (facts["lockdown"], facts["secure_boot"], facts["container"], facts["cap_sys_boot"]) == ("none", "unsupported", None, True)
    assert facts["verdict"] == "kexec possible with kexec-tools 2.0.25, syscalls: file, legacy"


def test_missing_kexec_points_to_role(tree):
    facts = probe(tree, FakeKexec(tree, programs={}))
    assert facts["supported"] is False
    assert facts["kexec_tools_version"] is None
    assert "fastreboot.kexec.kexec role" in facts["verdict"]


def test_no_cap_sys_boot(tree):
    tree.write("/proc/self/status", f"CapEff:\t{CAPEFF_NO_SYS_BOOT}\n")
    facts = probe(tree)
    assert facts["cap_sys_boot"] is False
    assert any("CAP_SYS_BOOT: run as root" in problem for problem in facts["problems"])


def test_kexec_load_disabled_blocks_both_syscalls(tree):
    tree.write("/proc/sys/kernel/kexec_load_disabled", "1\n")
    facts = probe(tree)
    assert facts["syscalls"] == {"file": False, "legacy": False}
    assert facts["problems"] == [problem for problem in facts["problems"] if "kexec_load_disabled=1" in problem]
    assert len(facts["problems"]) == 1


def test_lockdown_and_secure_boot(tree):
    tree.write("/sys/kernel/security/lockdown", "none [integrity] confidentiality\n")
    tree.write(SECURE_BOOT, b"\x06\x00\x00\x00\x01")
    facts = probe(tree)
    assert (facts["lockdown"], facts["secure_boot"]) == ("integrity", "enabled")
    assert facts["syscalls"] == {"file": True, "legacy": False}
    assert facts["supported"] is True
    assert facts["verdict"].endswith("syscalls: file (signed kernels only: Secure Boot/lockdown)")


def test_secure_boot_disabled_byte(tree):
    tree.write(SECURE_BOOT, b"\x06\x00\x00\x00\x00")
    assert probe(tree)["secure_boot"] == "disabled"


def test_lockdown_without_kexec_file_load_is_not_supported(tree):
    tree.write("/sys/kernel/security/lockdown", "none integrity [confidentiality]\n")
    tree.write("/boot/config-6.1.0-25-amd64", "CONFIG_KEXEC=y\n# CONFIG_KEXEC_FILE is not set\n")
    facts = probe(tree)
    assert facts["supported"] is False
    assert "lockdown=confidentiality forbids kexec_load" in facts["verdict"]


def test_kernel_config_from_proc_config_gz(tree):
    tree.path("/boot/config-6.1.0-25-amd64").unlink()
    tree.write("/proc/config.gz", gzip.compress(b"# CONFIG_KEXEC is not set\n# CONFIG_KEXEC_FILE is not set\n"))
    facts = probe(tree)
    assert facts["syscalls"] == {"file": False, "legacy": False}
    assert "neither CONFIG_KEXEC nor CONFIG_KEXEC_FILE" in facts["verdict"]


def test_unknown_kernel_config_is_not_a_problem(tree):
    tree.path("/boot/config-6.1.0-25-amd64").unlink()
    facts = probe(tree)
    assert facts["syscalls"] == {"file": None, "legacy": None}
    assert facts["supported"] is True


@pytest.mark.parametrize(
    "path, content, name",
    [
        ("/run/.containerenv", "", "podman"),
        ("/.dockerenv", "", "docker"),
        ("/proc/1/environ", b"PATH=/bin\0container=lxc\0", "lxc"),
        ("/proc/1/cgroup", "0::/kubepods/besteffort/pod1234/abcd\n", "kubepods"),
    ],
)
def test_container_hints(tree, path, content, name):
    tree.write(path, content)
    facts = probe(tree)
    assert facts["container"] == name
    assert facts["supported"] is False
    assert "container" in facts["verdict"]


def test_container_from_systemd_detect_virt(tree):
    runner = FakeKexec(tree, programs={"kexec": "/usr/sbin/kexec", "systemd-detect-virt": "/usr/bin/systemd-detect-virt"})
    original = runner.run
    runner.run = lambda argv: (0, "systemd-nspawn\n", "") if argv[0].endswith("systemd-detect-virt") else original(argv)  # type: ignore[method-assign]
    assert probe(tree, runner)["container"] == "systemd-nspawn"


def test_gather_info_reports_reboot_required_and_loaded_record(tree):
    tree.write("/run/reboot-required", "*** System restart required ***\n")
    tree.write("/run/reboot-required.pkgs", "linux-image-6.1.0-26-amd64\nlinux-image-6.1.0-26-amd64\n")
    tree.write("/sys/kernel/kexec_loaded", "1\n")
    tree.write("/run/fastreboot-kexec/loaded.json", '{"version": 1, "boot_id": "%s", "kernel": "/boot/vmlinuz-6.1.0-26-amd64"}' % BOOT_ID)
    info = gather_info(HostFiles(str(tree.root)), FakeKexec(tree), "x86_64", trusted_uid=os.getuid())
    assert info["reboot_required"] is True
    assert info["reboot_required_reasons"] == [
        "the boot loader's default kernel is 6.1.0-26-amd64 but 6.1.0-25-amd64 is running",
        "/run/reboot-required exists (packages: linux-image-6.1.0-26-amd64)",
    ]
    assert info["loaded"]["record"]["kernel"] == "/boot/vmlinuz-6.1.0-26-amd64"
    assert info["loaded"]["record_problem"] is None
    assert info["kernels"]["default"]["release"] == "6.1.0-26-amd64"


def test_gather_info_up_to_date_host(tree):
    tree.write("/proc/sys/kernel/osrelease", "6.1.0-26-amd64\n")
    tree.write("/usr/lib/modules/6.1.0-26-amd64/modules.dep", "")
    info = gather_info(HostFiles(str(tree.root)), FakeKexec(tree), "x86_64", trusted_uid=os.getuid())
    assert (info["reboot_required"], info["reboot_required_reasons"]) == (False, [])
    assert info["loaded"] == {"kexec_loaded": False, "kexec_crash_loaded": False, "record": None, "record_problem": None, "boot_id": BOOT_ID}


def test_gather_info_foreign_image_and_needs_restarting(tree):
    tree.write("/proc/sys/kernel/osrelease", "6.1.0-26-amd64\n")
    tree.write("/sys/kernel/kexec_loaded", "1\n")
    tree.write("/usr/lib/modules/6.1.0-25-amd64/modules.dep", "")
    runner = FakeKexec(tree, programs={"kexec": "/usr/sbin/kexec", "needs-restarting": "/usr/bin/needs-restarting"})
    original = runner.run
    runner.run = lambda argv: (1, "Reboot is required\n", "") if argv[0].endswith("needs-restarting") else original(argv)  # type: ignore[method-assign]
    info = gather_info(HostFiles(str(tree.root)), runner, "x86_64", trusted_uid=os.getuid())
    assert info["loaded"]["record_problem"] == "no record"
    assert info["reboot_required_reasons"] == [
        "needs-restarting -r says a reboot is required",
        "the modules of the running kernel 6.1.0-26-amd64 are gone (its package was removed or upgraded)",
    ]


def test_item08_gather_info_reports_an_untrusted_record_without_using_it(tree):
    tree.write("/sys/kernel/kexec_loaded", "1\n")
    tree.mkdir("/home/mallory/records")
    tree.write("/home/mallory/records/loaded.json", '{"version": 1, "boot_id": "%s", "kernel": "/tmp/evil"}' % BOOT_ID)
    tree.symlink("/run/fastreboot-kexec", "/home/mallory/records")
    info = gather_info(HostFiles(str(tree.root)), FakeKexec(tree), "x86_64", trusted_uid=os.getuid())
    assert info["loaded"]["record"] is None
    assert info["loaded"]["record_problem"].startswith(
        "untrusted record: /run/fastreboot-kexec is a symlink (to /home/mallory/records), which the record is never kept behind"
    )


def test_item13_each_problem_carries_a_code(tree):
    tree.write("/proc/self/status", f"CapEff:\t{CAPEFF_NO_SYS_BOOT}\n")
    tree.write("/proc/sys/kernel/kexec_load_disabled", "1\n")
    facts = probe(tree, FakeKexec(tree, programs={}))
    assert facts["problem_codes"] == [codes.NO_CAP_SYS_BOOT, codes.LOAD_DISABLED, codes.KEXEC_TOOLS_MISSING]
    assert len(facts["problems"]) == 3 and "kexec_load_disabled=1" in facts["problems"][1]
    assert set(facts["problem_codes"]) <= set(codes.SUPPORT_PROBLEM_CODES)
    tree.write("/proc/sys/kernel/kexec_load_disabled", "0\n")
    tree.write("/proc/self/status", "CapEff:\t000001ffffffffff\n")
    assert probe(tree)["problem_codes"] == []
