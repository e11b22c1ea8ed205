# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Boot Loader Specification entries (type #1 .conf files) and systemd-boot's default among them.

GRUB's blscfg (EL, Fedora) reads the same entries: _boot_grub uses read_bls_entries.
Internal to fastreboot.kexec, not a public API.
"""

from __future__ import annotations

import fnmatch
import os
import re
import typing as t

from ansible_collections.fastreboot.kexec.plugins.module_utils._boot_entry import ESP_MOUNTS, BootEntry, BootLoaderError, boot_path, read_efi_string
from ansible_collections.fastreboot.kexec.plugins.module_utils._cmdline import join_cmdline, split_cmdline, strip_boot_loader_params
from ansible_collections.fastreboot.kexec.plugins.module_utils._host import HostFiles
from ansible_collections.fastreboot.kexec.plugins.module_utils._kernel_image import version_key

BLS_DIRS = ("/boot/loader/entries",)


def parse_bls_entry(text: str) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _sep, value = line.partition(" ")
        fields.setdefault(key, []).append(value.strip())
    return fields


def _expand_bls_options(options: str, variables: dict[str, str]) -> str:
    # EL writes "options ... $tuned_params", "initrd ... $tuned_initrd"; GRUB expands them from grubenv.
    return re.sub(r"\$\{?([A-Za-z0-9_]+)\}?", lambda match: variables.get(match.group(1), ""), options)


def read_bls_entries(
    host: HostFiles, directories: t.Sequence[tuple[str, str]], loader: str, variables: dict[str, str]
) -> list[BootEntry]:
    """BLS entries of (entries directory, partition mount point) pairs, in menu order (newest first)."""
    parsed = []
    for entries_dir, partition in directories:
        for path in host.glob(entries_dir, "*.conf"):
            fields = parse_bls_entry(host.read_text(path) or "")
            linux = _expand_bls_options((fields.get("linux") or [""])[0], variables).strip()
            if not linux:
                continue  # "efi" entries (UKIs, chainloaders) are no kernel+initrd kexec can load
            entry_id = os.path.basename(path)[: -len(".conf")]
            options = _expand_bls_options(" ".join(fields.get("options", [])), variables)
            entry = BootEntry(
                loader=loader,
                title=(fields.get("title") or [entry_id])[0],
                entry_id=entry_id,
                image=boot_path(host, linux, partition),
                initrds=[
                    boot_path(host, item, partition)
                    for value in fields.get("initrd", [])
                    for item in _expand_bls_options(value, variables).split()
                ],
                options=join_cmdline(split_cmdline(strip_boot_loader_params(options))),
                found_by="",
                config=path,
            )
            sort_key = (fields.get("sort-key") or [""])[0]
            version = (fields.get("version") or [""])[0]
            parsed.append((sort_key, version, entry_id, entry))
    # Newest version first (GRUB's blscfg and systemd-boot agree); entries with a sort-key come first.
    parsed.sort(key=lambda item: (version_key(item[1]), version_key(item[2])), reverse=True)
    parsed.sort(key=lambda item: (not item[0], item[0]))
    return [item[3] for item in parsed]


def read_systemd_boot_default(host: HostFiles) -> BootEntry | None:
    """systemd-boot's default entry (EFI variables, loader.conf, BLS entries); None without systemd-boot."""
    loader_conf = next((f"{esp}/loader/loader.conf" for esp in ESP_MOUNTS if host.is_file(f"{esp}/loader/loader.conf")), None)
    directories: list[tuple[str, str]] = []
    seen: set[str] = set()
    for esp in ESP_MOUNTS:
        entries_dir = f"{esp}/loader/entries"
        # /efi and /boot/efi may be the same mount through a symlink: read each directory once.
        if host.is_dir(entries_dir) and host.resolve(entries_dir) not in seen:
            seen.add(host.resolve(entries_dir))
            directories.append((entries_dir, esp))
    if loader_conf is None and not directories:
        return None
    entries = read_bls_entries(host, directories, "systemd-boot", {})
    if not entries:
        raise BootLoaderError(f"{loader_conf or directories[0][0]}: no loader entry boots a Linux kernel")
    conf = {}
    for line in (host.read_text(loader_conf) if loader_conf else "").splitlines():
        key, _sep, value = line.strip().partition(" ")
        if key and not key.startswith("#"):
            conf[key] = value.strip()
    choices = [
        (read_efi_string(host, "LoaderEntryOneShot"), "EFI variable LoaderEntryOneShot (one-time)"),
        (read_efi_string(host, "LoaderEntryDefault"), "EFI variable LoaderEntryDefault"),
    ]
    pattern = conf.get("default")
    if pattern == "@saved":
        choices.append((read_efi_string(host, "LoaderEntryLastBooted"), "loader.conf default @saved"))
    elif pattern:
        choices.append((pattern, f"{loader_conf} default '{pattern}'"))
    for wanted, source in choices:
        if not wanted:
            continue
        for entry in entries:
            names = (entry.entry_id or "", f"{entry.entry_id}.conf")
            if any(fnmatch.fnmatch(name.lower(), wanted.lower()) for name in names):
                entry.found_by = source
                return entry
    entries[0].found_by = "first entry in systemd-boot order (newest)"
    return entries[0]
