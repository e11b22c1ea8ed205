# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The boot loader's default entry: what a cold boot would start.

BootLoader only orders the readers, one module per format: GRUB (_boot_grub: grub.cfg + grubenv,
also with blscfg/BLS entries as on EL), systemd-boot (_boot_bls: loader.conf, BLS entries, EFI
variables), extlinux (_boot_extlinux, Alpine) and, last, `grubby --info=DEFAULT` (_boot_grubby).
Internal to fastreboot.kexec, not a public API.
"""

from __future__ import annotations

import typing as t

from ansible_collections.fastreboot.kexec.plugins.module_utils._boot_bls import read_systemd_boot_default
from ansible_collections.fastreboot.kexec.plugins.module_utils._boot_entry import BootEntry, BootLoaderError, read_efi_string
from ansible_collections.fastreboot.kexec.plugins.module_utils._boot_extlinux import read_extlinux_default
from ansible_collections.fastreboot.kexec.plugins.module_utils._boot_grub import read_grub_default
from ansible_collections.fastreboot.kexec.plugins.module_utils._boot_grubby import read_grubby_default
from ansible_collections.fastreboot.kexec.plugins.module_utils._host import CommandRunner, HostFiles


class BootLoader:
    """Find the default boot entry. Files are read through host; grubby runs through runner."""

    def __init__(self, host: HostFiles, runner: CommandRunner | None = None) -> None:
        self.host = host
        self.runner = runner

    def readers(self) -> list[t.Callable[[], BootEntry | None]]:
        """The readers in the order they are asked: the first that finds a configuration decides."""
        readers: dict[str, t.Callable[[], BootEntry | None]] = {
            "grub": lambda: read_grub_default(self.host),
            "systemd-boot": lambda: read_systemd_boot_default(self.host),
            "extlinux": lambda: read_extlinux_default(self.host),
            "grubby": lambda: read_grubby_default(self.runner),
        }
        order = ["grub", "systemd-boot", "extlinux", "grubby"]
        if (read_efi_string(self.host, "LoaderInfo") or "").startswith("systemd-boot"):
            # This boot came through systemd-boot: its configuration wins over a stale grub.cfg.
            order = ["systemd-boot", "grub", "extlinux", "grubby"]
        return [readers[name] for name in order]

    def default_entry(self) -> BootEntry:
        """The entry a cold boot would start, or BootLoaderError saying why it is unknown."""
        problems: list[str] = []
        for reader in self.readers():
            try:
                entry = reader()
            except BootLoaderError as error:
                problems.append(str(error))
                continue
            if entry is not None:
                return entry
        if problems:
            raise BootLoaderError("; ".join(problems))
        raise BootLoaderError(
            "no boot loader configuration found (looked for grub.cfg in /boot/grub, /boot/grub2 and "
            "/boot/efi/EFI/*, loader.conf and loader/entries in /efi, /boot, /boot/efi, extlinux.conf, grubby)"
        )
