# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The inputs of a load (issue 18 items 2, 6, 9): refused or warned before any kexec call, nothing changed."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from ansible_collections.fastreboot.kexec.plugins.modules import kexec_load
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils import layouts
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils.hosttree import ROOT_UUID, FakeKexec, HostTree, cpio
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils.test_kernel_image import elf64
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils.test_loader import (
    ENTRY_CMDLINE,
    NEW_INITRD,
    NEW_KERNEL,
    RECORD,
    failing_load,
    load,
    syscall_flags,
)
from ansible_collections.fastreboot.kexec.tests.unit.plugins.modules.moduletest import run_module

LOCKDOWN_INTEGRITY = "none [integrity] confidentiality\n"
# Debian's bzImage header: cmdline_size 2047, so kexec_load takes 2046 bytes and kexec_file_load 2016.


def line_of(size):
    """A bootable command line of size bytes."""
    prefix = f"root=UUID={ROOT_UUID} ro "
    return prefix + "x" * (size - len(prefix))


FILE_LOAD_TOO_LONG = line_of(2030)


@pytest.fixture
def tree(tmp_path):
    tree = HostTree(tmp_path)
    layouts.debian(tree)
    return tree


@pytest.fixture
def loaded(tree):
    """A host with our image loaded and its record: what bad input must leave as it is."""
    load(tree)
    return tree.read(RECORD)


def refused(tree, record_before, **options):
    """Load with options, expect a refusal before any kexec call, the loaded image and record kept."""
    error, runner = failing_load(tree, **options)
    assert runner.kexec_calls() == []
    assert tree.read("/sys/kernel/kexec_loaded").strip() == "1"
    assert tree.read(RECORD) == record_before
    assert error.result["loaded"] is True
    return error.msg


# Item 2: the command-line limit per syscall -------------------------------------------------------------


def test_item02_line_too_long_for_file_load_uses_kexec_load_and_says_so(tree):
    assert len(FILE_LOAD_TOO_LONG) == 2030
    outcome, runner = load(tree, cmdline=FILE_LOAD_TOO_LONG)
    assert syscall_flags(runner) == ["-c"]
    assert outcome.result["syscall"] == "legacy"
    assert any("2030 bytes but kexec_file_load accepts at most 2016 on x86_64" in warning for warning in outcome.warnings)


def test_item02_under_lockdown_a_line_too_long_for_file_load_is_refused_not_blamed_on_lockdown(tree, loaded):
    tree.write("/sys/kernel/security/lockdown", LOCKDOWN_INTEGRITY)
    message = refused(tree, loaded, cmdline=FILE_LOAD_TOO_LONG)
    assert message.startswith("the command line is 2030 bytes but kexec_file_load accepts at most 2016 on x86_64")
    assert "shorten it with remove or cmdline; kexec_load, which takes up to 2046 bytes, is refused here" in message


def test_item02_syscall_file_refuses_a_line_too_long_for_it(tree, loaded):
    message = refused(tree, loaded, cmdline=FILE_LOAD_TOO_LONG, syscall="file")
    assert "2030 bytes but kexec_file_load accepts at most 2016" in message and "syscall=legacy" in message


def test_item02_kexec_load_limit_counts_the_nul_like_kexec_tools(tree, loaded):
    # kexec-tools (kexec-bzImage64.c) refuses strlen + 1 > cmdline_size: 2047 bytes do not fit a 2047 header.
    message = refused(tree, loaded, cmdline=line_of(2047))
    assert message.startswith("the command line is 2047 bytes but kexec_load accepts at most 2046 on x86_64")


def test_line_at_the_file_load_limit_uses_file_load(tree):
    outcome, runner = load(tree, cmdline=line_of(2016))
    assert len(outcome.result["cmdline"]) == 2016
    assert syscall_flags(runner) == ["-s"]


# Item 6: inputs that would make the host unbootable ----------------------------------------------------


def test_item06_kernel_as_initrd_refused(tree, loaded):
    message = refused(tree, loaded, kernel="latest", initrd=NEW_KERNEL)
    assert message == (
        f"initrd {NEW_KERNEL} is a kernel image (bzImage), not an initramfs: pass the initramfs "
        "(/boot/initrd.img-RELEASE, /boot/initramfs-RELEASE.img) as initrd, the kernel as kernel"
    )


def test_item06_kernel_in_an_initrd_list_refused(tree, loaded):
    message = refused(tree, loaded, kernel="latest", initrd=[NEW_INITRD, "/vmlinuz"])
    assert message.startswith(f"initrd {NEW_KERNEL} is a kernel image (bzImage)")


def test_item06_text_file_as_initrd_refused(tree, loaded):
    tree.write("/boot/initrd.txt", "this is not an initramfs\n")
    message = refused(tree, loaded, kernel="latest", initrd="/boot/initrd.txt")
    assert "initrd /boot/initrd.txt is not an initramfs (it starts with 74 68 69 73" in message


def test_microcode_and_main_initrd_load(tree):
    tree.write("/boot/intel-ucode.img", cpio("kernel/x86/microcode/GenuineIntel.bin"))
    outcome, _runner = load(tree, kernel="latest", initrd=["/boot/intel-ucode.img", NEW_INITRD])
    assert outcome.result["initrd_sources"] == ["/boot/intel-ucode.img", NEW_INITRD]


@pytest.mark.skipif(not os.path.isfile("/usr/bin/ls") or open("/usr/bin/ls", "rb").read(4) != b"\x7fELF", reason="needs an ELF /usr/bin/ls")
def test_item06_program_as_kernel_refused(tree, loaded):
    shutil.copyfile("/usr/bin/ls", tree.write("/usr/bin/ls", b""))
    message = refused(tree, loaded, kernel="/usr/bin/ls", initrd=NEW_INITRD)
    assert re.match(r"/usr/bin/ls is an ELF program \(it asks for the interpreter /lib.*\), not a Linux kernel: pass", message), message


def test_item06_elf_vmlinux_loads_with_kexec_load_only_on_x86_64(tree):
    tree.write("/boot/vmlinux-6.1.0-26-amd64", elf64())
    outcome, runner = load(tree, kernel="/boot/vmlinux-6.1.0-26-amd64", initrd=NEW_INITRD)
    assert syscall_flags(runner) == ["-c"]
    assert any("kexec_file_load on x86 takes no ELF vmlinux" in warning for warning in outcome.warnings)


def test_item06_elf_vmlinux_under_lockdown_refused(tree, loaded):
    tree.write("/boot/vmlinux-6.1.0-26-amd64", elf64())
    tree.write("/sys/kernel/security/lockdown", LOCKDOWN_INTEGRITY)
    message = refused(tree, loaded, kernel="/boot/vmlinux-6.1.0-26-amd64", initrd=NEW_INITRD)
    assert "takes no ELF vmlinux" in message and "kexec_load, which loads it, is refused here" in message


@pytest.mark.parametrize("cmdline", ["", "   ", "\t"])
def test_item06_empty_cmdline_refused(tree, loaded, cmdline):
    message = refused(tree, loaded, cmdline=cmdline)
    assert message.startswith("cmdline is empty: the new kernel would get no root= and no other parameter")


def test_item06_line_emptied_by_remove_refused(tree, loaded):
    message = refused(tree, loaded, remove=["root", "ro", "quiet"])
    assert message.startswith("the command line is empty once remove is applied (cmdline_source boot_entry)")


def test_item06_missing_root_warned_not_refused(tree):
    outcome, runner = load(tree, remove="root")
    assert outcome.result["cmdline"] == "ro quiet"
    assert len(runner.kexec_calls()) == 1
    assert any(warning.startswith("the command line has no root= parameter") for warning in outcome.warnings)
    outcome, _runner = load(tree)
    assert not any("root=" in warning for warning in outcome.warnings)


@pytest.mark.parametrize(
    "initrd",
    ["boot/initrd.img-6.1.0-26-amd64", "./boot/initrd.img-6.1.0-26-amd64", ["/boot/initrd.img-6.1.0-26-amd64", "boot/initrd.img-6.1.0-25-amd64"]],
)
def test_item06_relative_initrd_refused(tree, loaded, initrd):
    message = refused(tree, loaded, kernel="latest", initrd=initrd)
    assert re.match(r"initrd '\.?/?boot/initrd\.img-6\.1\.0-2[56]-amd64' is a relative path: give an absolute path, e\.g\. /boot/initrd", message), message


def test_relative_kernel_refused(tree, loaded):
    message = refused(tree, loaded, kernel="boot/vmlinuz-6.1.0-26-amd64")
    assert "is neither an absolute path" in message


# Item 9: append/remove are split like a command line, through the real option types --------------------


def module_cmdline(tree, **args):
    exit_ = run_module(kexec_load.main, FakeKexec(tree), args)
    assert not exit_.failed, exit_.result["msg"]
    return exit_.result["cmdline"]


def test_item09_append_string_with_comma_is_one_parameter(tree):
    assert module_cmdline(tree, append="console=ttyS0,115200") == f"{ENTRY_CMDLINE} console=ttyS0,115200"


def test_item09_append_item_with_space_is_two_parameters(tree):
    assert module_cmdline(tree, append=["quiet splash"]) == f"root=UUID={ROOT_UUID} ro quiet splash"


def test_item09_each_parameter_of_an_item_replaces_by_its_key(tree):
    tree.write("/proc/cmdline", f"BOOT_IMAGE=/vmlinuz root=UUID={ROOT_UUID} ro init=/sbin/init foo=x\n")
    cmdline = module_cmdline(tree, kernel="latest", append=['foo="a" init=/bin/sh'])
    assert cmdline == f'root=UUID={ROOT_UUID} ro foo="a" init=/bin/sh'


def test_item09_remove_string_is_split_the_same_way(tree):
    assert module_cmdline(tree, remove="quiet ro") == f"root=UUID={ROOT_UUID}"
