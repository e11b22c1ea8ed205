# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.fastreboot.kexec.plugins.module_utils._host import HostFiles
from ansible_collections.fastreboot.kexec.plugins.module_utils._kernels import KernelInventory, KernelSelectionError
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils import layouts
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils.hosttree import HostTree


@pytest.fixture
def tree(tmp_path):
    return HostTree(tmp_path)


def inventory(tree):
    return KernelInventory(HostFiles(str(tree.root)))


def summary(tree):
    return [(kernel.release, kernel.image, kernel.initrds, kernel.naming) for kernel in inventory(tree).installed()]


# Discovery and initramfs naming per distribution ----------------------------------------------------


def test_debian_layout(tree):
    layouts.debian(tree, releases=("6.1.0-9-amd64", "6.1.0-10-amd64"))
    assert summary(tree) == [
        ("6.1.0-10-amd64", "/boot/vmlinuz-6.1.0-10-amd64", ["/boot/initrd.img-6.1.0-10-amd64"], "debian"),
        ("6.1.0-9-amd64", "/boot/vmlinuz-6.1.0-9-amd64", ["/boot/initrd.img-6.1.0-9-amd64"], "debian"),
    ]


def test_el_layout_skips_rescue_and_kdump(tree):
    layouts.el9(tree)
    newest, older = layouts.EL_RELEASES[1], layouts.EL_RELEASES[0]
    assert summary(tree) == [
        (newest, f"/boot/vmlinuz-{newest}", [f"/boot/initramfs-{newest}.img"], "el"),
        (older, f"/boot/vmlinuz-{older}", [f"/boot/initramfs-{older}.img"], "el"),
    ]


def test_suse_layout_prefers_vmlinuz_over_compressed_vmlinux(tree):
    layouts.suse(tree)
    release = layouts.SUSE_RELEASE
    assert summary(tree) == [(release, f"/boot/vmlinuz-{release}", [f"/boot/initrd-{release}"], "suse")]


def test_arch_layout_release_from_header_and_microcode_first(tree):
    layouts.arch(tree)
    assert summary(tree) == [
        ("6.11.5-arch1-1", "/boot/vmlinuz-linux", ["/boot/intel-ucode.img", "/boot/initramfs-linux.img"], "arch"),
        ("6.6.58-1-lts", "/boot/vmlinuz-linux-lts", ["/boot/intel-ucode.img", "/boot/initramfs-linux-lts.img"], "arch"),
    ]


def test_arch_release_from_pkgbase_when_header_has_none(tree):
    layouts.arch(tree)
    tree.write("/boot/vmlinuz-linux-zen", b"\0" * 8192)  # no bzImage header (e.g. another architecture)
    tree.write("/usr/lib/modules/6.11.5-zen1-1-zen/pkgbase", "linux-zen\n")
    assert inventory(tree).release_of("/boot/vmlinuz-linux-zen") == "6.11.5-zen1-1-zen"


def test_alpine_layout(tree):
    layouts.alpine(tree)
    assert summary(tree) == [("6.6.58-0-lts", "/boot/vmlinuz-lts", ["/boot/initramfs-lts"], "alpine")]


def test_alpine_release_from_modules_dir_without_header(tree):
    layouts.alpine(tree)
    tree.write("/boot/vmlinuz-lts", b"\0" * 8192)
    assert inventory(tree).release_of("/boot/vmlinuz-lts") == "6.6.58-0-lts"


def test_systemd_boot_layout(tree):
    layouts.systemd_boot(tree)
    base = f"/efi/{layouts.MACHINE_ID}"
    newest, older = layouts.SDBOOT_RELEASES[1], layouts.SDBOOT_RELEASES[0]
    assert summary(tree) == [
        (newest, f"{base}/{newest}/linux", [f"{base}/{newest}/initrd"], "kernel-install"),
        (older, f"{base}/{older}/linux", [f"{base}/{older}/initrd"], "kernel-install"),
    ]


def test_kernel_without_initramfs_lists_none(tree):
    tree.kernel("6.12.1-custom")
    assert summary(tree) == [("6.12.1-custom", "/boot/vmlinuz-6.12.1-custom", [], "none")]


# Selectors ------------------------------------------------------------------------------------------


def test_latest_uses_version_order_not_name_order(tree):
    layouts.debian(tree, releases=("6.1.0-9-amd64", "6.1.0-10-amd64"))
    tree.kernel("6.1.0-rc7", initrd="/boot/initrd.img-6.1.0-rc7")
    choice = inventory(tree).select("latest")
    assert (choice.image, choice.release, choice.selected_by) == ("/boot/vmlinuz-6.1.0-10-amd64", "6.1.0-10-amd64", "latest")


def test_rc_sorts_before_release(tree):
    tree.kernel("6.8.0-rc3")
    tree.kernel("6.8.0")
    assert inventory(tree).select("latest").release == "6.8.0"


def test_running_selects_installed_image_of_uname_r(tree):
    layouts.debian(tree, running="6.1.0-25-amd64")
    choice = inventory(tree).select("running")
    assert (choice.image, choice.selected_by) == ("/boot/vmlinuz-6.1.0-25-amd64", "running")


def test_running_without_installed_image_says_so(tree):
    layouts.debian(tree, running="6.1.0-21-amd64")
    with pytest.raises(KernelSelectionError, match="running release 6.1.0-21-amd64 has no installed image"):
        inventory(tree).select("running")


def test_default_uses_boot_entry_with_its_initrd_and_options(tree):
    layouts.debian(tree, default_line='set default="1>3"')  # 6.1.0-25 recovery mode
    choice = inventory(tree).select("default")
    assert choice.selected_by == "default"
    assert (choice.image, choice.release) == ("/boot/vmlinuz-6.1.0-25-amd64", "6.1.0-25-amd64")
    assert choice.initrds == ["/boot/initrd.img-6.1.0-25-amd64"]
    assert choice.options is not None and choice.options.endswith("ro single")


def test_default_falls_back_to_latest_when_boot_loader_unreadable(tree):
    tree.kernel("6.1.0-26-amd64", initrd="/boot/initrd.img-6.1.0-26-amd64")
    tree.kernel("6.1.0-25-amd64", initrd="/boot/initrd.img-6.1.0-25-amd64")
    choice = inventory(tree).select("default")
    assert choice.image == "/boot/vmlinuz-6.1.0-26-amd64"
    assert choice.selected_by.startswith("latest (boot loader unreadable: no boot loader configuration found")
    assert choice.options is None and choice.initrds is None
    assert len(choice.warnings) == 1 and "newest installed kernel 6.1.0-26-amd64" in choice.warnings[0]


def test_default_entry_with_missing_kernel_falls_back(tree):
    layouts.debian(tree)
    tree.path("/boot/vmlinuz-6.1.0-26-amd64").unlink()
    choice = inventory(tree).select("default")
    assert choice.image == "/boot/vmlinuz-6.1.0-25-amd64"
    assert "does not exist" in choice.selected_by


def test_selector_without_any_kernel(tree):
    tree.write("/boot/grub/grubenv", "")
    with pytest.raises(KernelSelectionError, match="no installed kernel found"):
        inventory(tree).select("latest")


def test_path_is_resolved_through_symlinks(tree):
    layouts.debian(tree)
    choice = inventory(tree).select("/vmlinuz")
    assert (choice.image, choice.release, choice.selected_by) == ("/boot/vmlinuz-6.1.0-26-amd64", "6.1.0-26-amd64", "path")


def test_absolute_symlink_stays_inside_root(tree):
    layouts.suse(tree)
    tree.symlink("/boot/abs", f"/boot/vmlinuz-{layouts.SUSE_RELEASE}")
    assert inventory(tree).select("/boot/abs").image == f"/boot/vmlinuz-{layouts.SUSE_RELEASE}"


def test_relative_path_is_refused(tree):
    with pytest.raises(KernelSelectionError, match="neither an absolute path nor one of default, latest, running"):
        inventory(tree).select("vmlinuz")


def test_describe_for_kexec_info(tree):
    layouts.el9(tree, saved_entry=f"{layouts.MACHINE_ID}-{layouts.EL_RELEASES[0]}")
    facts = inventory(tree).describe()
    assert facts["running_release"] == layouts.EL_RELEASES[0]
    assert facts["default"]["release"] == layouts.EL_RELEASES[0]
    assert facts["default"]["loader"] == "grub-bls"
    assert facts["default_error"] is None
    assert [kernel["release"] for kernel in facts["installed"]] == [layouts.EL_RELEASES[1], layouts.EL_RELEASES[0]]
