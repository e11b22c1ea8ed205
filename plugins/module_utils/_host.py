# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Host access for the target-side code: files below a root directory and an injected command runner.

Every host fact is read through HostFiles so that unit tests run the real logic against a fixture
tree (root=tmp_path); every command goes through a runner: ModuleRunner (AnsibleModule.run_command)
in the modules, SubprocessRunner in the role's shutdown helper and guard (_shutdown.py).
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import stat
import subprocess
import typing as t

MAX_SYMLINK_HOPS = 40
WRITABLE_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH


def ownership_problems(info: os.stat_result, trusted_uid: int) -> list[str]:
    """Why a file or directory whose content decides what root runs could be changed by someone else.

    Like sshd's StrictModes: owned by trusted_uid and not writable by group or others. The sticky bit
    does not make a directory safe (anyone can still create entries in /tmp).
    """
    problems = []
    if info.st_uid != trusted_uid:
        problems.append(f"owned by uid {info.st_uid} instead of root")
    if info.st_mode & WRITABLE_BY_OTHERS:
        sticky = ", sticky or not" if stat.S_ISDIR(info.st_mode) else ""
        problems.append(f"writable by group or others (mode {stat.S_IMODE(info.st_mode):04o}{sticky})")
    return problems


class CommandRunner(t.Protocol):
    """What the target-side code needs to run programs. Arguments are argv lists, never shell strings."""

    def run(self, argv: list[str]) -> tuple[int, str, str]:
        """Run argv and return (exit code, stdout, stderr)."""

    def find(self, name: str) -> str | None:
        """Return the absolute path of program name, or None when it is not installed."""


class ModuleRunner:
    """CommandRunner backed by an AnsibleModule."""

    # kexec and friends live in sbin, which is not always in a non-login PATH.
    EXTRA_DIRS = ["/usr/local/sbin", "/usr/sbin", "/sbin"]

    def __init__(self, module: t.Any) -> None:
        self._module = module

    def run(self, argv: list[str]) -> tuple[int, str, str]:
        # C locale: failures are classified by their (English) strerror text.
        rc, out, err = self._module.run_command(argv, check_rc=False, environ_update={"LC_ALL": "C", "LANG": "C"})
        return rc, out, err

    def find(self, name: str) -> str | None:
        return self._module.get_bin_path(name, required=False, opt_dirs=self.EXTRA_DIRS)


class SubprocessRunner:
    """CommandRunner for code that runs outside Ansible (the role's shutdown helper and guard).

    Every command gets a time limit: a shutdown must go on, whatever hangs. C locale and a fixed PATH,
    as under ModuleRunner; stdin is /dev/null.
    """

    PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    EXIT_TIMED_OUT = 124  # what timeout(1) exits with

    def __init__(self, timeout: float = 30.0, path: str | None = None) -> None:
        self.timeout = timeout
        self.path = path or self.PATH

    def run(self, argv: list[str]) -> tuple[int, str, str]:
        environment = {"PATH": self.path, "LC_ALL": "C", "LANG": "C"}
        try:
            # Not a module: the role's launcher runs this at shutdown, where no AnsibleModule exists.
            completed = subprocess.run(  # pylint: disable=ansible-bad-function
                argv, stdin=subprocess.DEVNULL, capture_output=True, env=environment, timeout=self.timeout, check=False,
            )
        except subprocess.TimeoutExpired:
            return self.EXIT_TIMED_OUT, "", f"{argv[0]} did not finish within {self.timeout:g} s and was killed"
        except OSError as error:
            return 127, "", f"cannot run {argv[0]}: {error}"
        return completed.returncode, completed.stdout.decode("utf-8", "replace"), completed.stderr.decode("utf-8", "replace")

    def find(self, name: str) -> str | None:
        return shutil.which(name, path=self.path)


class HostFiles:
    """Read host files below root; paths given and returned are host paths ("/boot/vmlinuz").

    DEFAULT_ROOT is "/" in production; module unit tests point it at a fixture tree.
    """

    DEFAULT_ROOT = "/"

    def __init__(self, root: str | None = None) -> None:
        self.root = os.path.abspath(root or self.DEFAULT_ROOT)

    def real(self, host_path: str) -> str:
        """The path on this machine of host_path (without resolving symlinks)."""
        relative = host_path.lstrip("/")
        return os.path.join(self.root, relative) if relative else self.root

    def resolve(self, host_path: str) -> str:
        """Resolve symlinks like the host would (absolute targets stay below root). Returns a host path.

        Missing components are kept as they are, like os.path.realpath(strict=False).
        """
        return self.resolve_traversed(host_path)[0]

    def resolve_traversed(self, host_path: str) -> tuple[str, list[str]]:
        """resolve(), plus every directory looked into on the way, in order, "/" first.

        These are the directories whose owners could swap what the path ends at: each parent of the
        file and of every symlink followed (a symlink's target is looked up from its own directory).
        """
        parts = [part for part in host_path.split("/") if part not in ("", ".")]
        resolved: list[str] = []
        traversed: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            directory = "/" + "/".join(resolved)
            if directory not in traversed:
                traversed.append(directory)
            candidate = "/" + "/".join(resolved + [part])
            try:
                target = os.readlink(self.real(candidate))
            except OSError:
                resolved.append(part)
                continue
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                raise OSError(f"too many levels of symbolic links in {host_path}")
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
        return "/" + "/".join(resolved), traversed

    def trust_problems(self, host_path: str, trusted_uid: int) -> list[tuple[str, str]]:
        """Why what host_path resolves to could be swapped by someone other than trusted_uid: (host path, problem).

        Checks what the path resolves to, then every directory looked into on the way (see resolve_traversed),
        "/" first. Parts that do not exist are skipped: the caller reports a missing file. [] when safe.
        """
        resolved, traversed = self.resolve_traversed(host_path)
        problems = []
        for path in [resolved] + [directory for directory in traversed if directory != resolved]:
            info = self.lstat(path)
            if info is not None:
                problems.extend((path, problem) for problem in ownership_problems(info, trusted_uid))
        return problems

    def lstat(self, host_path: str) -> os.stat_result | None:
        try:
            return os.lstat(self.real(host_path))
        except OSError:
            return None

    def stat(self, host_path: str) -> os.stat_result | None:
        try:
            return os.lstat(self.real(self.resolve(host_path)))
        except OSError:
            return None

    def exists(self, host_path: str) -> bool:
        return self.stat(host_path) is not None

    def is_file(self, host_path: str) -> bool:
        info = self.stat(host_path)
        return info is not None and stat.S_ISREG(info.st_mode)

    def is_dir(self, host_path: str) -> bool:
        info = self.stat(host_path)
        return info is not None and stat.S_ISDIR(info.st_mode)

    def read_bytes(self, host_path: str, limit: int | None = None) -> bytes | None:
        try:
            with open(self.real(self.resolve(host_path)), "rb") as handle:
                return handle.read() if limit is None else handle.read(limit)
        except OSError:
            return None

    def read_text(self, host_path: str) -> str | None:
        data = self.read_bytes(host_path)
        return None if data is None else data.decode("utf-8", errors="replace")

    def read_first_line(self, host_path: str) -> str | None:
        text = self.read_text(host_path)
        return None if text is None else (text.splitlines() or [""])[0].strip()

    def listdir(self, host_path: str) -> list[str]:
        try:
            return sorted(os.listdir(self.real(self.resolve(host_path))))
        except OSError:
            return []

    def glob(self, host_dir: str, pattern: str) -> list[str]:
        """Host paths of the entries of host_dir whose name matches pattern, sorted by name."""
        base = host_dir.rstrip("/")
        return [f"{base}/{name}" for name in self.listdir(host_dir) if fnmatch.fnmatchcase(name, pattern)]
