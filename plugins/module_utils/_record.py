# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The load record: what this collection loaded in this boot.

The kernel only says that *something* is loaded (/sys/kernel/kexec_loaded), so idempotency needs a
record of our own. It lives on /run (tmpfs), which dies with the boot like the loaded image does.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import typing as t

from ansible_collections.fastreboot.kexec.plugins.module_utils._host import HostFiles

RECORD_DIR = "/run/fastreboot-kexec"
RECORD_FILE = f"{RECORD_DIR}/loaded.json"
# Several initrds (microcode + main) are concatenated here: kexec takes one --initrd.
CONCATENATED_INITRD = f"{RECORD_DIR}/initrd.img"
# Written by kexec_reboot just before `systemctl kexec`: the role's guard unit (kexec_every_reboot:
# false) unloads the image at kexec.target unless this file says the kexec was asked for.
KEXEC_REQUESTED_FILE = f"{RECORD_DIR}/kexec-requested"
RECORD_VERSION = 1
BOOT_ID = "/proc/sys/kernel/random/boot_id"
KEXEC_LOADED = "/sys/kernel/kexec_loaded"
KEXEC_CRASH_LOADED = "/sys/kernel/kexec_crash_loaded"
FILE_MODE = 0o600
DIR_MODE = 0o700
CHUNK = 1024 * 1024

# Fields that decide whether a loaded image is the one requested.
IDENTITY_FIELDS = ("kernel", "kernel_sha256", "initrd_sha256", "cmdline")


class RecordError(OSError):
    """The record directory or file cannot be used safely."""


def read_flag(host: HostFiles, path: str) -> bool | None:
    """A 0/1 file such as /sys/kernel/kexec_loaded; None when absent or unreadable."""
    value = host.read_first_line(path)
    if value in ("0", "1"):
        return value == "1"
    return None


def current_boot_id(host: HostFiles) -> str | None:
    return host.read_first_line(BOOT_ID) or None


def sha256_of(host: HostFiles, paths: t.Sequence[str]) -> str | None:
    """sha256 of the files concatenated in order (what a list of initrds becomes); None for no files."""
    if not paths:
        return None
    digest = hashlib.sha256()
    for path in paths:
        with open(host.real(host.resolve(path)), "rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                digest.update(chunk)
    return digest.hexdigest()


def record_problem(record: dict[str, t.Any] | None, boot_id: str | None, loaded: bool | None) -> str | None:
    """Why a record does not describe the loaded image (a reloaded_reason), or None when it does."""
    if not loaded:
        return "not loaded"
    if record is None:
        return "no record"
    if record.get("boot_id") != boot_id:
        return "record of an earlier boot"
    return None


def differing_fields(record: dict[str, t.Any], wanted: dict[str, t.Any], syscall: str) -> list[str]:
    """Identity fields where the record and the request differ; syscall counts unless it is auto."""
    fields = [name for name in IDENTITY_FIELDS if record.get(name) != wanted.get(name)]
    if syscall != "auto" and record.get("syscall") != syscall:
        fields.append("syscall")
    return fields


class RecordStore:
    """Read and write the record and the concatenated initrd below host.root."""

    def __init__(self, host: HostFiles) -> None:
        self.host = host

    def _ensure_dir(self) -> str:
        directory = self.host.real(RECORD_DIR)
        try:
            os.makedirs(directory, mode=DIR_MODE, exist_ok=True)
        except FileExistsError:
            pass  # a file or a dangling symlink: refused below
        info = os.lstat(directory)
        if not stat.S_ISDIR(info.st_mode):
            raise RecordError(f"{RECORD_DIR} is not a directory: remove it so the record can be written")
        if stat.S_IMODE(info.st_mode) != DIR_MODE:
            os.chmod(directory, DIR_MODE)
        return directory

    def _atomic_write(self, host_path: str, writer: t.Callable[[t.BinaryIO], None]) -> None:
        directory = self._ensure_dir()
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        try:
            os.fchmod(handle, FILE_MODE)
            with os.fdopen(handle, "wb") as stream:
                writer(stream)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, self.host.real(host_path))
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise

    def read(self) -> dict[str, t.Any] | None:
        """The record, or None when there is none or it is unreadable/of another version."""
        text = self.host.read_text(RECORD_FILE)
        if text is None:
            return None
        try:
            record = json.loads(text)
        except ValueError:
            return None
        if not isinstance(record, dict) or record.get("version") != RECORD_VERSION:
            return None
        return record

    def write(self, record: dict[str, t.Any]) -> None:
        payload = json.dumps(dict(record, version=RECORD_VERSION), indent=2, sort_keys=True).encode("utf-8")
        self._atomic_write(RECORD_FILE, lambda stream: stream.write(payload))

    def write_concatenated_initrd(self, sources: t.Sequence[str]) -> str:
        """Concatenate sources (cpio archives concatenate into one valid initrd); returns the host path."""

        def copy(stream: t.BinaryIO) -> None:
            for source in sources:
                with open(self.host.real(self.host.resolve(source)), "rb") as handle:
                    for chunk in iter(lambda: handle.read(CHUNK), b""):
                        stream.write(chunk)

        self._atomic_write(CONCATENATED_INITRD, copy)
        return CONCATENATED_INITRD

    def _remove(self, host_path: str) -> bool:
        try:
            os.unlink(self.host.real(host_path))
        except FileNotFoundError:
            return False
        return True

    def remove_concatenated_initrd(self) -> bool:
        return self._remove(CONCATENATED_INITRD)

    def remove(self) -> bool:
        """Remove the record and the concatenated initrd; True when a record existed."""
        self.remove_concatenated_initrd()
        return self._remove(RECORD_FILE)
