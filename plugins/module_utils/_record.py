# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The load record: what this collection loaded in this boot.

The kernel only says that *something* is loaded (_paths.KEXEC_LOADED), so idempotency needs a
record of our own. It lives on /run (tmpfs), which dies with the boot like the loaded image does.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import tempfile
import typing as t

from ansible_collections.fastreboot.kexec.plugins.module_utils._host import HostFiles, ownership_problems
from ansible_collections.fastreboot.kexec.plugins.module_utils._paths import (
    BOOT_ID,
    CONCATENATED_INITRD,
    RECORD_DIR,
    RECORD_FILE,
    STAGED_INITRD,
)

RECORD_VERSION = 1
FILE_MODE = 0o600
DIR_MODE = 0o700
CHUNK = 1024 * 1024

# Fields that decide whether a loaded image is the one requested.
IDENTITY_FIELDS = ("kernel", "kernel_sha256", "initrd_sha256", "cmdline")


class RecordError(OSError):
    """The record directory or file cannot be used safely."""


REMOVE_HINT = f"remove it (rm -rf {RECORD_DIR}); it is created again, owned by root, mode 0700"


def read_flag(host: HostFiles, path: str) -> bool | None:
    """A 0/1 file such as _paths.KEXEC_LOADED; None when absent or unreadable."""
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
    """Read and write the record and the concatenated initrd below host.root.

    Everything in RECORD_DIR decides what root boots, so the directory must be root's (TRUSTED_UID; tests
    pass their own uid): not a symlink, owned by root, not writable by group or others, and so must be
    /run above it. Anything else is refused, never repaired: someone else may have planted files in it.
    """

    TRUSTED_UID = 0

    def __init__(self, host: HostFiles, trusted_uid: int | None = None) -> None:
        self.host = host
        self.trusted_uid = self.TRUSTED_UID if trusted_uid is None else trusted_uid

    def _checked_dir(self, create: bool) -> str | None:
        """The record directory (a path on this machine) once it is known to be root's; None when absent and not created."""
        directory = self.host.real(RECORD_DIR)
        if create:
            os.makedirs(os.path.dirname(directory), exist_ok=True)
            try:
                os.mkdir(directory, DIR_MODE)
            except FileExistsError:
                pass  # checked below like any directory found
        try:
            info = os.lstat(directory)
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(info.st_mode):
            raise RecordError(f"{RECORD_DIR} is a symlink (to {os.readlink(directory)}), which the record is never kept behind: {REMOVE_HINT}")
        if not stat.S_ISDIR(info.st_mode):
            raise RecordError(f"{RECORD_DIR} is not a directory: {REMOVE_HINT}")
        problems = self.host.trust_problems(RECORD_DIR, self.trusted_uid)
        if problems:
            found = "; ".join(f"{where} is {problem}" for where, problem in problems)
            others = sorted({where for where, _problem in problems if where != RECORD_DIR})
            fix = f"chown root:root and chmod go-w {' '.join(others)}, then " if others else ""
            raise RecordError(
                f"{RECORD_DIR} cannot be trusted ({found}): someone other than root could forge the record or swap "
                f"the initrd it names; {fix}{REMOVE_HINT}"
            )
        if stat.S_IMODE(info.st_mode) != DIR_MODE:
            os.chmod(directory, DIR_MODE)  # root's own directory, only too open for reading: tighten it
        return directory

    def _atomic_write(self, host_path: str, writer: t.Callable[[t.BinaryIO], None]) -> None:
        directory = t.cast(str, self._checked_dir(create=True))
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

    def _read_record_file(self, directory: str) -> bytes | None:
        """RECORD_FILE's bytes, opened without following a symlink and refused unless root wrote it."""
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:
            handle = os.open(os.path.join(directory, os.path.basename(RECORD_FILE)), flags)
        except FileNotFoundError:
            return None
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise RecordError(f"{RECORD_FILE} is a symlink, which the record never is: {REMOVE_HINT}") from error
            raise
        with os.fdopen(handle, "rb") as stream:
            info = os.fstat(stream.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise RecordError(f"{RECORD_FILE} is not a regular file: {REMOVE_HINT}")
            problems = ownership_problems(info, self.trusted_uid)
            if problems:
                raise RecordError(f"{RECORD_FILE} is {' and '.join(problems)}, so root did not write it and it cannot be trusted: {REMOVE_HINT}")
            return stream.read()

    def read(self) -> dict[str, t.Any] | None:
        """The record, or None when there is none or it is unreadable/of another version. RecordError when untrusted."""
        directory = self._checked_dir(create=False)
        data = None if directory is None else self._read_record_file(directory)
        if data is None:
            return None
        try:
            record = json.loads(data.decode("utf-8"))
        except ValueError:
            return None
        if not isinstance(record, dict) or record.get("version") != RECORD_VERSION:
            return None
        return record

    def write(self, record: dict[str, t.Any]) -> None:
        payload = json.dumps(dict(record, version=RECORD_VERSION), indent=2, sort_keys=True).encode("utf-8")
        self._atomic_write(RECORD_FILE, lambda stream: stream.write(payload))

    def stage_concatenated_initrd(self, sources: t.Sequence[str]) -> str:
        """Concatenate sources into STAGED_INITRD (cpio archives concatenate into one valid initrd); returns its host path.

        CONCATENATED_INITRD, which a loaded image's record may name, stays as it is until commit_staged_initrd.
        """

        def copy(stream: t.BinaryIO) -> None:
            for source in sources:
                with open(self.host.real(self.host.resolve(source)), "rb") as handle:
                    for chunk in iter(lambda: handle.read(CHUNK), b""):
                        stream.write(chunk)

        self._atomic_write(STAGED_INITRD, copy)
        return STAGED_INITRD

    def commit_staged_initrd(self) -> str:
        """After a successful load: the staged concatenation becomes CONCATENATED_INITRD (atomic rename)."""
        directory = t.cast(str, self._checked_dir(create=True))
        os.replace(os.path.join(directory, os.path.basename(STAGED_INITRD)), self.host.real(CONCATENATED_INITRD))
        return CONCATENATED_INITRD

    def _remove(self, host_path: str) -> bool:
        if self._checked_dir(create=False) is None:
            return False
        try:
            os.unlink(self.host.real(host_path))
        except FileNotFoundError:
            return False
        return True

    def remove_staged_initrd(self) -> bool:
        return self._remove(STAGED_INITRD)

    def remove_concatenated_initrd(self) -> bool:
        return self._remove(CONCATENATED_INITRD)

    def remove(self) -> bool:
        """Remove the record and the concatenated initrds; True when a record existed."""
        self.remove_staged_initrd()
        self.remove_concatenated_initrd()
        return self._remove(RECORD_FILE)
