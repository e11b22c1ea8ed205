# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.fastreboot.kexec.plugins.module_utils._cmdline import (
    CmdlineError,
    command_line_limit,
    edit_cmdline,
    split_cmdline,
    strip_boot_loader_params,
    validate_cmdline,
)


@pytest.mark.parametrize(
    "text, params",
    [
        ("root=/dev/sda1 ro quiet", ["root=/dev/sda1", "ro", "quiet"]),
        ('foo="a b" bar', ['foo="a b"', "bar"]),
        ('"foo=a b" bar', ['"foo=a b"', "bar"]),
        ("  ro\tquiet\n", ["ro", "quiet"]),
        ('dyndbg="file drivers/usb/* +p" quiet', ['dyndbg="file drivers/usb/* +p"', "quiet"]),
        ("", []),
    ],
)
def test_split_keeps_quoted_values_whole(text, params):
    assert split_cmdline(text) == params


def test_strip_removes_boot_image_and_initrd_only():
    text = 'BOOT_IMAGE=/boot/vmlinuz-6.1.0-25-amd64 root=UUID=x ro initrd=\\initramfs-linux.img foo="a b" quiet'
    assert strip_boot_loader_params(text) == 'root=UUID=x ro foo="a b" quiet'


def test_strip_leaves_init_arguments_alone():
    text = "BOOT_IMAGE=/vmlinuz ro -- initrd=kept-for-init single"
    assert strip_boot_loader_params(text) == "ro -- initrd=kept-for-init single"


def test_remove_by_key_drops_every_instance():
    text = "root=/dev/vda1 console=tty0 console=ttyS0,115200 quiet splash"
    assert edit_cmdline(text, remove=["console", "quiet"]) == "root=/dev/vda1 splash"


def test_remove_exact_parameter_keeps_other_values():
    text = "console=tty0 console=ttyS0,115200 quiet"
    assert edit_cmdline(text, remove=["console=tty0"]) == "console=ttyS0,115200 quiet"


def test_remove_treats_dash_and_underscore_alike_like_the_kernel():
    assert edit_cmdline("ro rd.lvm.lv=a nvme_core.io_timeout=30", remove=["nvme-core.io-timeout"]) == "ro rd.lvm.lv=a"


def test_append_replaces_same_key_and_keeps_order_of_others():
    text = "root=/dev/vda1 console=tty0 console=ttyS1 quiet"
    assert edit_cmdline(text, append=["console=ttyS0,115200"]) == "root=/dev/vda1 quiet console=ttyS0,115200"


def test_append_several_values_of_one_key_are_all_kept():
    assert edit_cmdline("ro console=tty1", append=["console=tty0", "console=ttyS0"]) == "ro console=tty0 console=ttyS0"


def test_append_quotes_value_with_spaces():
    assert edit_cmdline("ro", append=["foo=a b"]) == 'ro foo="a b"'


def test_append_keeps_user_quotes():
    assert edit_cmdline('ro foo="x y"', append=['foo="a b"']) == 'ro foo="a b"'


def test_remove_key_of_quoted_parameter():
    assert edit_cmdline('ro foo="a b" bar', remove=["foo"]) == "ro bar"


def test_append_goes_before_init_arguments():
    assert edit_cmdline("ro quiet -- single", append=["nomodeset"], remove=["quiet"]) == "ro nomodeset -- single"


def test_remove_then_append_same_key():
    assert edit_cmdline("ro quiet", append=["quiet"], remove=["quiet"]) == "ro quiet"


@pytest.mark.parametrize(
    "machine, header, limit",
    [("x86_64", None, 2047), ("x86_64", 255, 255), ("x86_64", 4095, 2047), ("aarch64", None, 2047), ("ppc64le", None, 2047)],
)
def test_command_line_limit(machine, header, limit):
    assert command_line_limit(machine, header) == limit


def test_validate_accepts_line_at_limit():
    validate_cmdline("a" * 2047, 2047)


def test_validate_refuses_line_over_limit_and_names_fix():
    with pytest.raises(CmdlineError, match=r"2048 bytes but the kernel accepts at most 2047.*shorten"):
        validate_cmdline("a" * 2048, 2047, "x86_64")


def test_validate_counts_bytes_not_characters():
    with pytest.raises(CmdlineError, match="2048 bytes"):
        validate_cmdline("é" * 1024, 2047)


@pytest.mark.parametrize("text, problem", [("ro\nquiet", "line break"), ("ro\0quiet", "NUL"), ('foo="a b quiet', "unbalanced")])
def test_validate_refuses_broken_lines(text, problem):
    with pytest.raises(CmdlineError, match=problem):
        validate_cmdline(text, 2047)
