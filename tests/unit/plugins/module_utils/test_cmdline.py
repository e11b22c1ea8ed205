# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.fastreboot.kexec.plugins.module_utils._cmdline import (
    CmdlineError,
    cmdline_warnings,
    command_line_limit,
    edit_cmdline,
    has_boot_loader_params,
    option_params,
    split_cmdline,
    strip_boot_loader_params,
    syscalls_for_length,
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


@pytest.mark.parametrize(
    "text, booted_by_loader",
    [
        ("BOOT_IMAGE=/boot/vmlinuz-6.1.0-57-amd64 root=UUID=x ro console=ttyS0,115200n8", True),  # GRUB (lab VM)
        ("initrd=\\debian\\6.12.118+deb13-amd64\\initrd.img-6.12.118+deb13-amd64 root=UUID=x ro", True),  # systemd-boot (lab VM)
        ("root=UUID=x ro console=ttyS0,115200n8 fastreboot.test=sdboot", False),  # kexec'd (lab VM)
        ("root=UUID=x ro -- initrd=kept-for-init", False),  # an init argument, not the boot loader's
    ],
)
def test_boot_loader_params_tell_a_cold_boot(text, booted_by_loader):
    assert has_boot_loader_params(text) is booted_by_loader


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


def test_append_keeps_user_quotes():
    assert edit_cmdline('ro foo="x y"', append=['foo="a b"']) == 'ro foo="a b"'


def test_remove_key_of_quoted_parameter():
    assert edit_cmdline('ro foo="a b" bar', remove=["foo"]) == "ro bar"


def test_append_goes_before_init_arguments():
    assert edit_cmdline("ro quiet -- single", append=["nomodeset"], remove=["quiet"]) == "ro nomodeset -- single"


def test_remove_then_append_same_key():
    assert edit_cmdline("ro quiet", append=["quiet"], remove=["quiet"]) == "ro quiet"


@pytest.mark.parametrize(
    "machine, header, syscall, limit",
    [
        # kexec-tools and the kernel's bzImage64 loader count the NUL against cmdline_size; kexec_file_load keeps 30 more.
        ("x86_64", 2047, "legacy", 2046),
        ("x86_64", 2047, "file", 2016),
        ("x86_64", 255, "legacy", 254),
        ("x86_64", 255, "file", 224),
        ("x86_64", 4095, "legacy", 2046),  # never more than COMMAND_LINE_SIZE
        ("x86_64", None, "legacy", 2047),  # no header field (ELF vmlinux, boot protocol < 2.06)
        ("aarch64", None, "file", 2047),
        ("aarch64", None, "legacy", 2047),
        ("riscv64", None, "file", 1023),
        ("riscv64", None, "legacy", 1023),
        ("ppc64le", None, "file", 2047),
    ],
)
def test_command_line_limit(machine, header, syscall, limit):
    assert command_line_limit(machine, header, syscall) == limit


def test_item02_file_load_limit_is_header_size_minus_nul_and_elfcorehdr_room():
    # arch/x86/kernel/kexec-bzimage64.c refuses len + 1 + 30 > cmdline_size (EINVAL): 2016 bytes, not 2047.
    assert command_line_limit("x86_64", 2047, "file") == 2016
    assert syscalls_for_length("a" * 2016, "x86_64", 2047, ["file"]) == (["file"], [])
    with pytest.raises(CmdlineError, match=r"2017 bytes but kexec_file_load accepts at most 2016 on x86_64 \(cmdline_size 2047 .*elfcorehdr"):
        syscalls_for_length("a" * 2017, "x86_64", 2047, ["file"])


def test_item02_riscv64_limit_is_1024_with_the_nul():
    with pytest.raises(CmdlineError, match=r"1024 bytes but kexec_file_load accepts at most 1023 on riscv64 \(COMMAND_LINE_SIZE 1024"):
        syscalls_for_length("a" * 1024, "riscv64", None, ["file", "legacy"])


def test_item02_auto_drops_file_load_with_a_warning_when_only_kexec_load_fits():
    fitting, warnings = syscalls_for_length("a" * 2030, "x86_64", 2047, ["file", "legacy"])
    assert fitting == ["legacy"]
    assert warnings == [
        "the command line is 2030 bytes but kexec_file_load accepts at most 2016 on x86_64 (cmdline_size 2047 in the bzImage "
        "header, minus the NUL and 30 bytes the kernel keeps for elfcorehdr=), so kexec_file_load is not tried; kexec_load loads it"
    ]


def test_item02_under_lockdown_a_line_only_kexec_load_takes_is_refused_naming_the_length():
    with pytest.raises(CmdlineError) as caught:
        syscalls_for_length("a" * 2030, "x86_64", 2047, ["file"], "lockdown/Secure Boot is active")
    assert str(caught.value) == (
        "the command line is 2030 bytes but kexec_file_load accepts at most 2016 on x86_64 (cmdline_size 2047 in the bzImage header, "
        "minus the NUL and 30 bytes the kernel keeps for elfcorehdr=): shorten it with remove or cmdline; kexec_load, which takes "
        "up to 2046 bytes, is refused here (lockdown/Secure Boot is active)"
    )


def test_item02_explicit_file_names_legacy_as_the_alternative():
    with pytest.raises(CmdlineError, match=r"2030 bytes .* or use syscall=legacy \(kexec_load takes up to 2046 bytes"):
        syscalls_for_length("a" * 2030, "x86_64", 2047, ["file"])


def test_item02_too_long_for_both_names_the_wider_limit():
    with pytest.raises(CmdlineError, match=r"^the command line is 2047 bytes but kexec_load accepts at most 2046 on x86_64 .*shorten"):
        syscalls_for_length("a" * 2047, "x86_64", 2047, ["file", "legacy"])


def test_length_counts_bytes_not_characters():
    with pytest.raises(CmdlineError, match="2048 bytes"):
        syscalls_for_length("é" * 1024, "aarch64", None, ["file"])


@pytest.mark.parametrize("text, problem", [("ro\nquiet", "line break"), ("ro\0quiet", "NUL"), ('foo="a b quiet', "unbalanced")])
def test_validate_refuses_broken_lines(text, problem):
    with pytest.raises(CmdlineError, match=problem):
        validate_cmdline(text)


# Item 9: append/remove values are split like a command line -------------------------------------------


def test_item09_string_append_is_one_parameter_with_its_comma():
    assert edit_cmdline("ro console=tty0", append="console=ttyS0,115200") == "ro console=ttyS0,115200"


def test_item09_list_item_with_a_space_is_two_parameters():
    assert edit_cmdline("ro quiet", append=["quiet splash"]) == "ro quiet splash"
    assert option_params(["quiet splash"], "append") == ["quiet", "splash"]


def test_item09_every_parameter_of_an_item_replaces_by_its_key():
    text = 'ro foo="x" init=/sbin/init quiet'
    assert edit_cmdline(text, append=['foo="a" init=/bin/sh']) == 'ro quiet foo="a" init=/bin/sh'


@pytest.mark.parametrize(
    "value, params",
    [
        ("console=ttyS0,115200", ["console=ttyS0,115200"]),
        ('foo="a b" quiet', ['foo="a b"', "quiet"]),
        (["console=ttyS0,115200", "nomodeset rd.break"], ["console=ttyS0,115200", "nomodeset", "rd.break"]),
        ([3], ["3"]),  # YAML turns a bare runlevel into an int
        ("", []),
        ([], []),
        (None, []),
    ],
)
def test_option_params(value, params):
    assert option_params(value, "append") == params


def test_item09_remove_string_and_items_are_split_the_same_way():
    text = "ro quiet splash console=tty0 console=ttyS0,115200"
    assert edit_cmdline(text, remove="quiet splash") == "ro console=tty0 console=ttyS0,115200"
    assert edit_cmdline(text, remove=["console=ttyS0,115200 quiet"]) == "ro splash console=tty0"


def test_item09_value_with_space_must_be_quoted():
    assert edit_cmdline("ro", append=['foo="a b"']) == 'ro foo="a b"'
    assert edit_cmdline("ro", append=["foo=a b"]) == "ro foo=a b"  # two parameters, like the kernel reads them


@pytest.mark.parametrize(
    "value, message",
    [
        ({"console": "ttyS0"}, r"append=\{'console': 'ttyS0'\} is not understood"),
        ([True], r"append item True is not a kernel parameter"),
        ([{"console": "ttyS0"}], r"is not a kernel parameter"),
        (["foo=bar\nbaz"], r"contains a line break"),
        (['foo="a'], r"unbalanced double quote"),
        ("-- single", r"contains '--'.*cmdline"),
    ],
)
def test_option_params_refuses(value, message):
    with pytest.raises(CmdlineError, match=message):
        option_params(value, "append")


# Item 6: root= missing is a warning, not an error ------------------------------------------------------


def test_item06_missing_root_is_warned():
    assert any("no root= parameter" in warning for warning in cmdline_warnings("ro quiet -- root=/dev/sda1"))
    assert cmdline_warnings("root=UUID=x ro quiet") == []
