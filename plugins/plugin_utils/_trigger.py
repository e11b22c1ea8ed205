# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The command that starts the kexec reboot on the managed host.

It returns at once: systemd queues the kexec job (`systemctl --no-block kexec`), or the reboot runs
detached (a transient systemd unit for a delay or the immediate method, a new session without
systemd), so the login that sent it ends cleanly and a dropped connection means nothing. Every
command is built from argv lists of fixed words and validated integers, each word quoted with
shlex.quote; the only user text (the wall message) travels on stdin, never in the command.

Before a kexec through systemd the command writes KEXEC_REQUESTED_FILE (mode 0600 in a 0700
folder): the role's guard unit lets a kexec.target transaction jump only when that file exists, so
that an ordinary reboot with an image loaded stays cold.
"""

from __future__ import annotations

import posixpath
import re
import shlex
import typing as t

from ansible_collections.fastreboot.kexec.plugins.module_utils._record import KEXEC_REQUESTED_FILE

METHODS = ("auto", "systemd", "immediate")
UNIT_PREFIX = "fastreboot-kexec-"
WALL_TIMEOUT_SECONDS = 5  # wall blocks on a stuck terminal (its own default is 300 s)
# Exit code of the trigger when setsid is missing on a host without systemd (EX_UNAVAILABLE).
EXIT_NO_SETSID = 69

_UNIT_TOKEN = re.compile(r"[0-9a-f]{8,32}")
# The immediate reboot: flush, then jump. Fixed text, no user input.
IMMEDIATE_SCRIPT = "sync; exec kexec -e"


class TriggerError(ValueError):
    """The reboot cannot be triggered as asked; the message names the fix."""


def resolve_method(requested: str, host_has_systemd: bool) -> str:
    """Turn the method option into `systemd` or `immediate` for this host, or explain why not."""
    if requested not in METHODS:
        raise TriggerError(f"method must be one of {', '.join(METHODS)}, not {requested!r}")
    if requested == "immediate":
        return "immediate"
    if host_has_systemd:
        return "systemd"
    raise TriggerError(
        "this host does not run systemd (/run/systemd/system is missing), so there is no clean kexec "
        "shutdown (systemctl kexec). Use method=immediate to run `sync; kexec -e` without stopping "
        "services (unsafe for data: nothing is shut down cleanly)"
    )


def _validated_delay(delay: int) -> int:
    if isinstance(delay, bool) or not isinstance(delay, int) or delay < 0:
        raise TriggerError(f"pre_reboot_delay must be an integer of seconds >= 0, not {delay!r}")
    return delay


def unit_name(token: str) -> str:
    """The transient unit's name; the token is random hex from the caller."""
    if not _UNIT_TOKEN.fullmatch(token):
        raise TriggerError(f"unit token must be 8-32 lower-case hex digits, not {token!r}")
    return UNIT_PREFIX + token


def _words(argv: t.Sequence[str]) -> str:
    return " ".join(shlex.quote(word) for word in argv)


def trigger_argv(method: str, host_has_systemd: bool, delay: int, token: str) -> list[str]:
    """The detached reboot as an argv list (systemd hosts) - also what the result reports."""
    delay = _validated_delay(delay)
    if method not in ("systemd", "immediate"):
        raise TriggerError(f"resolve the method first: {method!r}")
    if not host_has_systemd:
        if method == "systemd":
            raise TriggerError("method=systemd needs systemd on the host; use method=immediate")
        script = f"sleep {delay}; {IMMEDIATE_SCRIPT}" if delay else IMMEDIATE_SCRIPT
        return ["setsid", "/bin/sh", "-c", script]
    if method == "systemd" and not delay:
        # systemctl queues the kexec job and returns at once, and a refusal (no image loaded,
        # an inhibitor) is its exit code now rather than a silent failure after the login ended.
        return ["systemctl", "--no-block", "kexec"]
    argv = [
        "systemd-run", "--no-block", "--collect", "--quiet",
        f"--unit={unit_name(token)}", "--description=fastreboot.kexec reboot",
    ]
    if delay:
        argv.append(f"--on-active={delay}s")
    if method == "systemd":
        argv += ["systemctl", "kexec"]
    else:
        argv += ["/bin/sh", "-c", IMMEDIATE_SCRIPT]
    return argv


def trigger_command(
    method: str, host_has_systemd: bool, delay: int, token: str, wall: bool, requested_file: str = KEXEC_REQUESTED_FILE
) -> str:
    """The shell command sent to the host: optional wall (message on stdin), then the detached reboot."""
    argv = trigger_argv(method, host_has_systemd, delay, token)
    parts = []
    if wall:
        # A failed broadcast must not stop the reboot.
        parts.append(_words(["timeout", str(WALL_TIMEOUT_SECONDS), "wall"]) + " 2>/dev/null || :")
    if host_has_systemd:
        if method == "systemd":
            parts.append(mark_requested_command(requested_file))
        parts.append("exec " + _words(argv))
    else:
        parts.append(
            f"command -v setsid >/dev/null 2>&1 || {{ echo 'setsid not found on the host' >&2; exit {EXIT_NO_SETSID}; }}"
        )
        # A new session, all descriptors closed: the login may end, the sleep and kexec go on.
        parts.append(_words(argv) + " </dev/null >/dev/null 2>&1 &")
    return "; ".join(parts)


def mark_requested_command(requested_file: str = KEXEC_REQUESTED_FILE) -> str:
    """Shell words that write the kexec-requested marker (0600, folder 0700); fixed text."""
    folder = posixpath.dirname(requested_file)
    return f"{{ umask 077 && {_words(['mkdir', '-p', folder])} && date +%s > {shlex.quote(requested_file)}; }} || exit 1"


def unmark_requested_command(requested_file: str = KEXEC_REQUESTED_FILE) -> str:
    """Shell words that remove the marker again (the trigger failed: no kexec was started)."""
    return _words(["rm", "-f", requested_file])
