# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.fastreboot.kexec.plugins.module_utils._boot_grub import GrubConfig, parse_grubenv
from ansible_collections.fastreboot.kexec.plugins.module_utils._boot_entry import BootLoaderError
from ansible_collections.fastreboot.kexec.plugins.module_utils._bootloader import BootLoader
from ansible_collections.fastreboot.kexec.plugins.module_utils._host import HostFiles
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils import layouts
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils.hosttree import ROOT_UUID, FakeKexec, HostTree


@pytest.fixture
def tree(tmp_path):
    return HostTree(tmp_path)


def default_entry(tree, runner=None):
    return BootLoader(HostFiles(str(tree.root)), runner).default_entry()


# GRUB on Debian ---------------------------------------------------------------------------------


def test_grub_default_zero_is_the_simple_entry(tree):
    layouts.debian(tree)
    entry = default_entry(tree)
    assert (entry.loader, entry.title) == ("grub", "Debian GNU/Linux")
    assert entry.image == "/boot/vmlinuz-6.1.0-26-amd64"
    assert entry.initrds == ["/boot/initrd.img-6.1.0-26-amd64"]
    assert entry.options == f"root=UUID={ROOT_UUID} ro quiet"
    assert entry.found_by == "grub.cfg set default='0'"
    assert entry.config == "/boot/grub/grub.cfg"


def test_grub_saved_entry_by_title_path_into_submenu(tree):
    layouts.debian(tree, default_line='set default="${saved_entry}"')
    tree.write(
        "/boot/grub/grubenv",
        layouts.grubenv(saved_entry="Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-25-amd64"),
    )
    entry = default_entry(tree)
    assert entry.image == "/boot/vmlinuz-6.1.0-25-amd64"
    assert entry.title == "Debian GNU/Linux, with Linux 6.1.0-25-amd64"
    assert entry.found_by.startswith("grubenv saved_entry")


def test_grub_saved_entry_by_ids(tree):
    layouts.debian(tree, default_line='set default="${saved_entry}"')
    saved = f"gnulinux-advanced-{ROOT_UUID}>gnulinux-6.1.0-25-amd64-recovery-{ROOT_UUID}"
    tree.write("/boot/grub/grubenv", layouts.grubenv(saved_entry=saved))
    entry = default_entry(tree)
    assert entry.image == "/boot/vmlinuz-6.1.0-25-amd64"
    assert entry.options == f"root=UUID={ROOT_UUID} ro single"


def test_grub_numeric_submenu_path(tree):
    layouts.debian(tree, default_line='set default="1>2"')
    entry = default_entry(tree)
    assert entry.title == "Debian GNU/Linux, with Linux 6.1.0-25-amd64"


def test_grub_default_by_id_path_literal(tree):
    # GRUB_DEFAULT=submenu-id>entry-id is copied into grub.cfg as is.
    layouts.debian(tree, default_line=f'set default="gnulinux-advanced-{ROOT_UUID}>gnulinux-6.1.0-25-amd64-advanced-{ROOT_UUID}"')
    assert default_entry(tree).image == "/boot/vmlinuz-6.1.0-25-amd64"


def test_grub_bare_id_of_submenu_entry_is_not_found_like_grub(tree):
    # GRUB looks a default up in the top-level menu only; nested entries need the "submenu>" path.
    layouts.debian(tree, default_line=f'set default="gnulinux-6.1.0-25-amd64-advanced-{ROOT_UUID}"')
    entry = default_entry(tree)
    assert entry.image == "/boot/vmlinuz-6.1.0-26-amd64"
    assert entry.found_by.startswith("first menu entry")


def test_grub_next_entry_wins_once(tree):
    layouts.debian(tree, default_line='set default="0"')
    tree.write("/boot/grub/grubenv", layouts.grubenv(next_entry="1>2"))
    entry = default_entry(tree)
    assert entry.image == "/boot/vmlinuz-6.1.0-25-amd64"
    assert "next_entry" in entry.found_by


def test_grub_stale_saved_entry_falls_back_to_first_entry_like_grub(tree):
    layouts.debian(tree, default_line='set default="${saved_entry}"')
    tree.write("/boot/grub/grubenv", layouts.grubenv(saved_entry="Debian GNU/Linux, with Linux 5.10.0-20-amd64"))
    entry = default_entry(tree)
    assert entry.title == "Debian GNU/Linux"
    assert "matches no menu entry" in entry.found_by


def test_grub_default_pointing_at_submenu_boots_its_first_entry(tree):
    layouts.debian(tree, default_line='set default="1"')
    assert default_entry(tree).title == "Debian GNU/Linux, with Linux 6.1.0-26-amd64"


def test_grub_separate_boot_partition_paths(tree):
    layouts.debian(tree)
    cfg = tree.read("/boot/grub/grub.cfg").replace("linux\t/boot/", "linux\t/").replace("initrd\t/boot/", "initrd\t/")
    tree.write("/boot/grub/grub.cfg", cfg)
    entry = default_entry(tree)
    # /vmlinuz exists too (a symlink to the newest), but GRUB's "/vmlinuz-X" is on the /boot partition.
    assert entry.image == "/boot/vmlinuz-6.1.0-26-amd64"
    assert entry.initrds == ["/boot/initrd.img-6.1.0-26-amd64"]


def test_grub_variables_and_quotes_in_linux_line(tree):
    layouts.debian(tree)
    cfg = tree.read("/boot/grub/grub.cfg").replace(
        "ro  quiet\n", "ro  quiet $vt_handoff 'acpi_osi=Windows 2020' \"dyndbg=+p\"\n", 1
    )
    cfg = cfg.replace("set linux_gfx_mode=\n", "set linux_gfx_mode=\nif [ x = x ]; then\n  set vt_handoff=vt.handoff=7\nelse\n  set vt_handoff=\nfi\n")
    tree.write("/boot/grub/grub.cfg", cfg)
    assert default_entry(tree).options == f'root=UUID={ROOT_UUID} ro quiet vt.handoff=7 "acpi_osi=Windows 2020" dyndbg=+p'


def test_grub_efi_stub_is_skipped_for_real_config(tree):
    layouts.debian(tree)
    tree.write("/boot/efi/EFI/debian/grub.cfg", "search.fs_uuid x root\nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n")
    assert default_entry(tree).config == "/boot/grub/grub.cfg"


def test_grub_default_from_etc_default_grub_when_cfg_sets_none(tree):
    layouts.debian(tree)
    cfg = tree.read("/boot/grub/grub.cfg").replace('   set default="0"\n', "   true\n")
    tree.write("/boot/grub/grub.cfg", cfg)
    tree.write("/etc/default/grub", 'GRUB_DEFAULT="Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-25-amd64"\n')
    entry = default_entry(tree)
    assert entry.image == "/boot/vmlinuz-6.1.0-25-amd64"
    assert "GRUB_DEFAULT" in entry.found_by


def test_grubenv_parsing_ignores_padding():
    assert parse_grubenv(layouts.grubenv(saved_entry="a>b", next_entry="")) == {"saved_entry": "a>b", "next_entry": ""}


def test_grub_config_ignores_menuentries_in_functions():
    config = GrubConfig("function f {\n menuentry 'inside' {\n linux /x\n }\n}\nmenuentry 'real' {\n linux /vmlinuz-1 ro\n}\n", {})
    assert [item.title for item in config.menu] == ["real"]


# GRUB with BLS (EL) --------------------------------------------------------------------------------


def test_el_bls_saved_entry(tree):
    layouts.el9(tree, saved_entry=f"{layouts.MACHINE_ID}-{layouts.EL_RELEASES[0]}")
    entry = default_entry(tree)
    assert entry.loader == "grub-bls"
    assert entry.image == f"/boot/vmlinuz-{layouts.EL_RELEASES[0]}"
    assert entry.initrds == [f"/boot/initramfs-{layouts.EL_RELEASES[0]}.img"]  # $tuned_initrd is empty
    assert entry.options.startswith("root=/dev/mapper/rl-root ro crashkernel=1G-4G:192M,4G-64G:256M")
    assert "$" not in entry.options


def test_el_bls_without_saved_entry_boots_newest(tree):
    layouts.el9(tree)
    entry = default_entry(tree)
    assert entry.image == f"/boot/vmlinuz-{layouts.EL_RELEASES[1]}"
    assert entry.found_by.startswith("first menu entry")


def test_el_bls_tuned_params_from_grubenv(tree):
    layouts.el9(tree)
    tree.write("/boot/grub2/grubenv", layouts.grubenv(tuned_params="skew_tick=1 nohz=on"))
    assert default_entry(tree).options.endswith("rd.lvm.lv=rl/swap skew_tick=1 nohz=on")


# systemd-boot -----------------------------------------------------------------------------------------


def test_systemd_boot_without_default_picks_newest(tree):
    layouts.systemd_boot(tree)
    entry = default_entry(tree)
    assert entry.loader == "systemd-boot"
    assert entry.image == f"/efi/{layouts.MACHINE_ID}/{layouts.SDBOOT_RELEASES[1]}/linux"
    assert entry.initrds == [f"/efi/{layouts.MACHINE_ID}/{layouts.SDBOOT_RELEASES[1]}/initrd"]
    assert entry.options == f"root=UUID={ROOT_UUID} rw rhgb quiet"


def test_systemd_boot_loader_conf_glob(tree):
    layouts.systemd_boot(tree, loader_default=f"{layouts.MACHINE_ID}-6.8*")
    entry = default_entry(tree)
    assert entry.image.endswith(f"/{layouts.SDBOOT_RELEASES[0]}/linux")
    assert "loader.conf default" in entry.found_by


def test_systemd_boot_efi_variable_overrides_loader_conf(tree):
    layouts.systemd_boot(tree, loader_default=f"{layouts.MACHINE_ID}-6.10*")
    layouts.efi_loader_var(tree, "LoaderEntryDefault", f"{layouts.MACHINE_ID}-{layouts.SDBOOT_RELEASES[0]}.conf")
    entry = default_entry(tree)
    assert entry.image.endswith(f"/{layouts.SDBOOT_RELEASES[0]}/linux")
    assert entry.found_by == "EFI variable LoaderEntryDefault"


def test_systemd_boot_preferred_over_stale_grub_when_it_booted(tree):
    layouts.systemd_boot(tree)
    tree.write("/boot/grub/grub.cfg", "menuentry 'old' {\n linux /boot/vmlinuz-old ro\n}\n")
    assert default_entry(tree).loader == "grub"
    layouts.efi_loader_var(tree, "LoaderInfo", "systemd-boot 255.4-1")
    assert default_entry(tree).loader == "systemd-boot"


@pytest.mark.parametrize(
    ("loader_default", "efi_variables", "expected", "found_by"),
    [
        # what `SYSTEMD_LOG_LEVEL=debug systemctl kexec --dry-run` and `bootctl list` chose on the VM, state by state
        ("debian-6.12.118+deb13-amd64.conf", {}, "6.12.118+deb13-amd64", "/boot/efi/loader/loader.conf default"),
        (None, {}, "6.12.118+deb13-cloud-amd64", "first entry"),
        ("debian-6.12.118+deb13-cloud-amd64.conf", {}, "6.12.118+deb13-cloud-amd64", "/boot/efi/loader/loader.conf default"),
        ("debian-6.12.118+deb13-cloud-amd64.conf", {"LoaderEntryDefault": "debian-6.12.118+deb13-amd64.conf"},
         "6.12.118+deb13-amd64", "EFI variable LoaderEntryDefault"),
        ("debian-6.12.118+deb13-cloud-amd64.conf",
         {"LoaderEntryDefault": "debian-6.12.118+deb13-amd64.conf", "LoaderEntryOneShot": "debian-6.12.118+deb13-cloud-amd64.conf"},
         "6.12.118+deb13-cloud-amd64", "EFI variable LoaderEntryOneShot"),
    ],
)
def test_systemd_boot_default_as_systemd_chose_it_on_debian13(tree, loader_default, efi_variables, expected, found_by):
    layouts.debian13_systemd_boot(tree, loader_default=loader_default)
    for name, value in efi_variables.items():
        layouts.efi_loader_var(tree, name, value)
    entry = default_entry(tree)
    assert entry.loader == "systemd-boot"
    assert entry.entry_id == f"debian-{expected}"
    # the files on the ESP, as systemd's "Would run /usr/sbin/kexec --load" named them
    assert entry.image == f"/boot/efi/debian/{expected}/linux"
    assert entry.initrds == [f"/boot/efi/debian/{expected}/initrd.img-{expected}"]
    assert entry.options == layouts.DEBIAN13_SDBOOT_OPTIONS
    assert entry.found_by.startswith(found_by)


# extlinux, grubby, nothing ---------------------------------------------------------------------------


def test_alpine_extlinux_menu_default(tree):
    layouts.alpine(tree)
    entry = default_entry(tree)
    assert (entry.loader, entry.image, entry.initrds) == ("extlinux", "/boot/vmlinuz-lts", ["/boot/initramfs-lts"])
    assert entry.options == f"root=UUID={ROOT_UUID} modules=sd-mod,usb-storage,ext4 quiet rootfstype=ext4"
    assert entry.found_by == "/boot/extlinux.conf MENU DEFAULT"


def test_grubby_fallback(tree):
    runner = FakeKexec(tree, programs={"grubby": "/usr/sbin/grubby"})
    output = (
        'index=0\nkernel="/boot/vmlinuz-5.14.0-503.14.1.el9_5.x86_64"\nargs="ro crashkernel=auto $tuned_params"\n'
        'root="/dev/mapper/rl-root"\ninitrd="/boot/initramfs-5.14.0-503.14.1.el9_5.x86_64.img $tuned_initrd"\n'
        'title="Rocky Linux (5.14.0-503.14.1.el9_5.x86_64) 9.5 (Blue Onyx)"\nid="abc-5.14.0-503.14.1.el9_5.x86_64"\n'
    )
    runner.run = lambda argv: (runner.calls.append(argv) or (0, output, ""))  # type: ignore[method-assign]
    entry = default_entry(tree, runner)
    assert runner.calls == [["/usr/sbin/grubby", "--info=DEFAULT"]]
    assert entry.image == "/boot/vmlinuz-5.14.0-503.14.1.el9_5.x86_64"
    assert entry.initrds == ["/boot/initramfs-5.14.0-503.14.1.el9_5.x86_64.img"]
    assert entry.options.startswith("root=/dev/mapper/rl-root ro crashkernel=auto")


def test_no_boot_loader_says_where_it_looked(tree):
    tree.kernel("6.1.0-26-amd64")
    with pytest.raises(BootLoaderError, match="no boot loader configuration found"):
        default_entry(tree)


def test_grub_cfg_without_linux_line_is_an_error(tree):
    tree.write("/boot/grub/grub.cfg", "menuentry 'Windows Boot Manager' {\n chainloader /EFI/Microsoft/Boot/bootmgfw.efi\n}\n")
    with pytest.raises(BootLoaderError, match="boots no Linux kernel"):
        default_entry(tree)
