# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The role's shutdown helper and guard: what roles/kexec/files/fastreboot-kexec runs on the host.

Internal to fastreboot.kexec, not a public API. The role installs a launcher that carries
module_utils (/usr/local/lib/fastreboot-kexec/fastreboot-kexec), so both run the modules' own code:

load-default (kexec_every_reboot: true; fastreboot-kexec-load.service runs it when a reboot stops
  it): the same KexecLoader request as `kexec_load kernel=default` with every other option at its
  default (same boot-loader reading, initrd list, command line, syscall order, record). It keeps an
  image fastreboot.kexec loaded or asked for in this boot (a valid record, or the kexec-requested
  marker of kexec_reboot), and loads nothing once when /no-kexec-reboot exists (Debian's
  coldreboot). It never stops a shutdown: it exits 0 whatever happens, and every command it runs
  has a time limit (SubprocessRunner).
guard (kexec_every_reboot: false; fastreboot-kexec-guard.service in kexec.target): unless the
  kexec-requested marker lets this kexec through, it removes the marker and unloads the image the
  way `kexec_load state=unloaded` does (kexec_file_load's unload first: lockdown refuses kexec_load's).

Each prints one line for the console and the journal saying what it did.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import time
import typing as t

from ansible_collections.fastreboot.kexec.plugins.module_utils._host import CommandRunner, HostFiles, SubprocessRunner, ownership_problems
from ansible_collections.fastreboot.kexec.plugins.module_utils._loader import KexecLoader, LoadError, LoadRequest
from ansible_collections.fastreboot.kexec.plugins.module_utils._paths import (
    KEXEC_LOADED,
    KEXEC_REQUESTED_FILE,
    KEXEC_REQUESTED_MAX_AGE,
    NO_KEXEC_REBOOT,
    RECORD_DIR,
)
from ansible_collections.fastreboot.kexec.plugins.module_utils._record import RecordError, RecordStore, current_boot_id, read_flag, record_problem

LOAD_PREFIX = "fastreboot-kexec-load: "
GUARD_PREFIX = "fastreboot-kexec-guard: "
USAGE = "usage: fastreboot-kexec load-default [--if-rebooting] | guard"
# With the role's alias systemctl lists a reboot as kexec.target; without it, as reboot.target.
REBOOT_JOB = re.compile(r"\s(reboot|kexec)\.target\s")
MARKER_READ_LIMIT = 256
TRUSTED_UID = 0


class Shutdown:
    """What both commands need: the host (files below root), a runner, who must own the files, a clock."""

    def __init__(
        self,
        runner: CommandRunner,
        root: str | None = None,
        trusted_uid: int | None = None,
        clock: t.Callable[[], float] = time.time,
        machine: str | None = None,
        out: t.TextIO | None = None,
    ) -> None:
        self.runner = runner
        self.root = root
        self.host = HostFiles(root)
        self.trusted_uid = TRUSTED_UID if trusted_uid is None else trusted_uid
        self.clock = clock
        self.machine = machine
        self.out = out or sys.stdout

    def loader(self) -> KexecLoader:
        return KexecLoader(self.runner, root=self.root, machine=self.machine, trusted_uid=self.trusted_uid, clock=self.clock)

    def say(self, line: str) -> None:
        # The launcher's one line for the console and the journal (systemd: StandardOutput=journal+console).
        print(line, file=self.out, flush=True)  # pylint: disable=ansible-bad-function

    # The kexec-requested marker ------------------------------------------------------------------

    def marker_problem(self) -> str | None:
        """Why the kexec-requested marker does not let this kexec through; None when it does.

        It must be a regular file (not a symlink) owned by root in root's folder (not a symlink), hold
        "BOOT_ID DUE_EPOCH" of the current boot, and be at most KEXEC_REQUESTED_MAX_AGE s past due.
        """
        marker = KEXEC_REQUESTED_FILE
        if self.host.lstat(marker) is None:
            return f"{marker} is missing"
        untrusted = f"{marker} is not a root-owned file in a root-owned folder"
        folder = self.host.lstat(RECORD_DIR)
        if folder is None or not stat.S_ISDIR(folder.st_mode) or self.host.trust_problems(RECORD_DIR, self.trusted_uid):
            return untrusted  # lstat: a symlinked folder is no directory here
        try:
            handle = os.open(self.host.real(marker), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return untrusted  # a symlink (ELOOP), or unreadable
        with os.fdopen(handle, "rb") as stream:
            info = os.fstat(stream.fileno())
            if not stat.S_ISREG(info.st_mode) or ownership_problems(info, self.trusted_uid):
                return untrusted
            text = stream.read(MARKER_READ_LIMIT).decode("ascii", errors="replace")
        boot_id, _sep, due = ((text.splitlines() or [""])[0]).strip().partition(" ")
        due = due.strip()
        if not re.fullmatch(r"[0-9]+", due):
            return f"{marker} holds no due time"
        if boot_id != current_boot_id(self.host):
            return f"{marker} was written in another boot ({boot_id})"
        if self.clock() > int(due) + KEXEC_REQUESTED_MAX_AGE:
            return f"{marker} is more than {KEXEC_REQUESTED_MAX_AGE} s past due (a reboot that never started)"
        return None

    def remove_marker(self) -> None:
        """Remove the marker entry itself (a symlink, not what it names); nothing behind a symlinked folder."""
        folder = self.host.lstat(RECORD_DIR)
        if folder is None or not stat.S_ISDIR(folder.st_mode):
            return
        try:
            os.unlink(self.host.real(KEXEC_REQUESTED_FILE))
        except FileNotFoundError:
            pass

    # load-default --------------------------------------------------------------------------------

    def reboot_under_way(self) -> bool:
        systemctl = self.runner.find("systemctl")
        if not systemctl:
            return False
        rc, out, _err = self.runner.run([systemctl, "list-jobs", "--no-legend"])
        return rc == 0 and any(REBOOT_JOB.search(f" {line} ") for line in out.splitlines())

    def kept_image(self) -> str | None:
        """What makes the loaded image stay: fastreboot.kexec loaded it in this boot, or kexec_reboot asked for it."""
        try:
            record = RecordStore(self.host, self.trusted_uid).read()
        except RecordError:
            record = None  # an untrusted record keeps nothing; the load below reports it
        if record is not None and record_problem(record, current_boot_id(self.host), True) is None:
            return f"{record.get('kernel')} ({record.get('kernel_release')}), loaded by fastreboot.kexec in this boot, stays loaded"
        if self.marker_problem() is None:
            return "the loaded image stays: fastreboot.kexec.kexec_reboot asked for this kexec"
        return None

    def load_default(self, if_rebooting: bool) -> int:
        if if_rebooting and not self.reboot_under_way():
            self.say(f"{LOAD_PREFIX}no reboot under way (a poweroff, or the unit was stopped): nothing loaded")
            return 0
        if read_flag(self.host, KEXEC_LOADED):
            kept = self.kept_image()
            if kept:
                self.say(f"{LOAD_PREFIX}{kept}")
                return 0
        if self.host.lstat(NO_KEXEC_REBOOT) is not None:
            os.unlink(self.host.real(NO_KEXEC_REBOOT))
            self.say(f"{LOAD_PREFIX}{NO_KEXEC_REBOOT} asked for one cold reboot: removed it, loaded nothing")
            return 0
        try:
            outcome = self.loader().run(LoadRequest())
        except LoadError as error:
            self.say(f"{LOAD_PREFIX}loaded nothing, this reboot goes through firmware: {error.msg}")
            return 0
        warnings = f" (warnings: {'; '.join(outcome.warnings)})" if outcome.warnings else ""
        self.say(f"{LOAD_PREFIX}{outcome.result['msg']}{warnings}")
        return 0

    # guard ---------------------------------------------------------------------------------------

    def guard(self) -> int:
        problem = self.marker_problem()
        if problem is None:
            self.say(f"{GUARD_PREFIX}kexec requested by fastreboot.kexec.kexec_reboot in this boot; the image stays loaded")
            return 0
        self.remove_marker()
        try:
            outcome = self.loader().run(LoadRequest(state="unloaded"))
        except LoadError as error:
            self.say(f"{GUARD_PREFIX}no kexec was requested ({problem}), but the image could not be unloaded ({error.msg}): this reboot may kexec")
            return 1
        done = "unloaded the image" if outcome.result["changed"] else "no image is loaded"
        self.say(f"{GUARD_PREFIX}no kexec was requested ({problem}); {done}, this reboot goes through firmware")
        return 0


def main(argv: t.Sequence[str], shutdown: Shutdown | None = None) -> int:
    """The launcher's entry point. load-default always exits 0; guard exits 1 when the image could not be unloaded."""
    shutdown = shutdown or Shutdown(SubprocessRunner())
    command, options = (argv[0], list(argv[1:])) if argv else ("", [])
    if command == "load-default" and set(options) <= {"--if-rebooting"}:
        try:
            return shutdown.load_default("--if-rebooting" in options)
        except Exception as error:  # pylint: disable=broad-except
            # Whatever went wrong, the shutdown goes on (cold).
            shutdown.say(f"{LOAD_PREFIX}loaded nothing, this reboot goes through firmware: {type(error).__name__}: {error}")
            return 0
    if command == "guard" and not options:
        try:
            return shutdown.guard()
        except Exception as error:  # pylint: disable=broad-except
            shutdown.say(f"{GUARD_PREFIX}could not check the marker or unload the image ({type(error).__name__}: {error}): this reboot may kexec")
            return 1
    shutdown.say(USAGE)
    return 0 if command == "load-default" else 2
