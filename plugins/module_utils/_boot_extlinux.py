# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""extlinux / syslinux configuration (Alpine): the default LABEL.

Internal to fastreboot.kexec, not a public API.
"""

from __future__ import annotations

import os

from ansible_collections.fastreboot.kexec.plugins.module_utils._boot_entry import BootEntry, BootLoaderError, boot_path
from ansible_collections.fastreboot.kexec.plugins.module_utils._cmdline import split_cmdline, strip_boot_loader_params
from ansible_collections.fastreboot.kexec.plugins.module_utils._host import HostFiles

EXTLINUX_CONFIGS = ("/boot/extlinux/extlinux.conf", "/boot/extlinux.conf", "/extlinux/extlinux.conf")


def read_extlinux_default(host: HostFiles) -> BootEntry | None:
    """extlinux's DEFAULT (or MENU DEFAULT, or first) LABEL; None without an extlinux.conf."""
    path = next((candidate for candidate in EXTLINUX_CONFIGS if host.is_file(candidate)), None)
    if path is None:
        return None
    labels: list[dict[str, str]] = []
    default = None
    for line in (host.read_text(path) or "").splitlines():
        keyword, _sep, value = line.strip().partition(" ")
        keyword = keyword.upper()
        value = value.strip()
        if keyword == "DEFAULT":
            default = value
        elif keyword == "LABEL":
            labels.append({"label": value})
        elif labels and keyword in ("KERNEL", "LINUX"):
            labels[-1]["kernel"] = value
        elif labels and keyword in ("INITRD", "APPEND"):
            labels[-1][keyword.lower()] = value
        elif labels and keyword == "MENU" and value.upper() == "DEFAULT":
            labels[-1]["menu_default"] = "yes"
    bootable = [label for label in labels if label.get("kernel")]
    if not bootable:
        raise BootLoaderError(f"{path} has no LABEL with a KERNEL/LINUX line")
    chosen = next((label for label in bootable if label["label"] == default), None)
    found_by = f"{path} DEFAULT {default}"
    if chosen is None:
        chosen = next((label for label in bootable if label.get("menu_default")), None)
        found_by = f"{path} MENU DEFAULT"
    if chosen is None:
        chosen, found_by = bootable[0], f"{path} first LABEL"
    base = os.path.dirname(path)

    def resolve(item: str) -> str:
        return boot_path(host, item) if item.startswith("/") else f"{base}/{item}"

    params = split_cmdline(chosen.get("append", ""))
    initrds = [item for item in chosen.get("initrd", "").split(",") if item]
    initrds += [param.split("=", 1)[1] for param in params if param.startswith("initrd=")]
    return BootEntry(
        loader="extlinux",
        title=chosen["label"],
        entry_id=chosen["label"],
        image=resolve(chosen["kernel"]),
        initrds=[resolve(item) for initrd in initrds for item in initrd.split(",") if item],
        options=strip_boot_loader_params(chosen.get("append", "")),
        found_by=found_by,
        config=path,
    )
