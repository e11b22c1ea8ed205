# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The boot entry a boot loader reader returns, and what the readers share (paths, EFI variables).

Internal to fastreboot.kexec, not a public API.
"""

from __future__ import annotations

import re
import typing as t
from dataclasses import asdict, dataclass

from ansible_collections.fastreboot.kexec.plugins.module_utils._host import HostFiles

ESP_MOUNTS = ("/efi", "/boot", "/boot/efi")
EFIVARS = "/sys/firmware/efi/efivars"
LOADER_GUID = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"
GRUB_DEVICE_PREFIX = re.compile(r"^\([^)]*\)")


class BootLoaderError(Exception):
    """The default boot entry cannot be determined."""


@dataclass
class BootEntry:
    """One boot entry. Paths are host paths; options is the kernel command line without BOOT_IMAGE/initrd."""

    loader: str
    title: str
    entry_id: t.Optional[str]
    image: str
    initrds: t.List[str]
    options: str
    found_by: str
    config: str

    def as_dict(self) -> dict[str, t.Any]:
        return asdict(self)


def boot_path(host: HostFiles, path: str, partition: str = "/boot") -> str:
    """Map a boot loader path to a host path.

    Loader paths are relative to the partition they live on: "/vmlinuz-X" on a separate /boot,
    "/boot/vmlinuz-X" on the root file system, "/@/boot/vmlinuz-X" on a btrfs subvolume.
    """
    path = GRUB_DEVICE_PREFIX.sub("", path)
    if not path.startswith("/"):
        path = "/" + path
    candidates = []
    if partition not in ("", "/"):
        candidates.append(partition.rstrip("/") + path)
    candidates.append(path)
    if "/boot/" in path:
        candidates.append(path[path.index("/boot/"):])
    for candidate in candidates:
        if host.exists(candidate):
            return candidate
    # Missing everywhere: report the path the way the loader most likely meant it.
    return path if path.startswith("/boot/") or partition in ("", "/") else candidates[0]


def read_efi_string(host: HostFiles, name: str) -> str | None:
    """A UTF-16 string EFI variable (4 attribute bytes, then the value), e.g. systemd-boot's LoaderEntryDefault."""
    data = host.read_bytes(f"{EFIVARS}/{name}-{LOADER_GUID}")
    if not data or len(data) < 6:
        return None
    text = data[4:].decode("utf-16-le", errors="replace").split("\0", 1)[0]
    return text or None
