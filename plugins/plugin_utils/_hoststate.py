# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What one login reads from the managed host, and the strict parsing of that output.

The login output is not trusted to be clean: MOTD lines, "Connection to x closed.", shutdown
broadcasts (wall) and sudo noise can surround or even interleave with it. Every value is printed
on its own line behind a fixed key, and a value is taken only when its line is intact.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from ansible_collections.fastreboot.kexec.plugins.module_utils._paths import BOOT_ID, KEXEC_LOADED

# One fixed command (no user input): boot_id, kernel release and command line in ONE login, plus
# whether systemd runs and whether a kexec image is loaded, which the preflight needs anyway.
HOST_STATE_COMMAND = (
    f"printf 'fastreboot-boot-id=%s\\n' \"$(cat {shlex.quote(BOOT_ID)})\"; "
    "printf 'fastreboot-release=%s\\n' \"$(uname -r)\"; "
    "printf 'fastreboot-cmdline=%s\\n' \"$(cat /proc/cmdline)\"; "
    "if [ -d /run/systemd/system ]; then echo fastreboot-systemd=yes; else echo fastreboot-systemd=no; fi; "
    f"printf 'fastreboot-kexec-loaded=%s\\n' \"$(cat {shlex.quote(KEXEC_LOADED)} 2>/dev/null)\""
)

# `systemctl is-system-running` prints one of these words (systemd.1, is-system-running). Once the
# boot has finished, the same login reads `systemd-analyze time` (the new boot's firmware/loader/
# kernel/initrd/userspace split): no extra round trip, and no extra process while the boot goes on.
SYSTEM_STATE_COMMAND = (
    "state=$(systemctl is-system-running); echo \"$state\"; "
    "case $state in running|degraded) systemd-analyze time 2>/dev/null;; esac"
)
SYSTEM_STATES = ("initializing", "starting", "running", "degraded", "maintenance", "stopping", "offline", "unknown")
BOOT_FINISHED_STATES = ("running", "degraded")

# "Startup finished in 3.1s (firmware) + 2.0s (loader) + 9.179s (kernel) + 14.935s (userspace) = 24.114s";
# each span is systemd's format_timespan ("1min 2.144s", "873ms").
_STARTUP_LINE = re.compile(r"^Startup finished in (?P<parts>.+?) = (?P<total>[0-9][0-9a-zµ. ]*?)\s*$")
_STARTUP_PART = re.compile(r"^(?P<span>[0-9][0-9a-zµ. ]*?) \((?P<name>[a-z]+)\)$")
_TIMESPAN_UNIT = re.compile(r"([0-9]+(?:\.[0-9]+)?)(min|ms|us|µs|s|h|d)(?![a-z])")
_TIMESPAN_SECONDS = {"d": 86400.0, "h": 3600.0, "min": 60.0, "s": 1.0, "ms": 0.001, "us": 0.000001, "µs": 0.000001}
STARTUP_PARTS = ("firmware", "loader", "kernel", "initrd", "userspace")

_KEYED_LINE = re.compile(r"^fastreboot-(?P<key>[a-z-]+)=(?P<value>.*)$")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_RELEASE = re.compile(r"[0-9][0-9A-Za-z._+~-]*")


@dataclass(frozen=True)
class HostState:
    """The facts one HOST_STATE_COMMAND login returned. Only boot_id is guaranteed."""

    boot_id: str
    release: str | None
    cmdline: str | None
    systemd: bool | None
    kexec_loaded: bool | None

    @property
    def complete(self) -> bool:
        """True when every value the proof needs (release, command line) was read."""
        return self.release is not None and self.cmdline is not None


def _keyed_values(output: str) -> dict[str, str]:
    """Values of intact `fastreboot-KEY=VALUE` lines; a key seen with two different values is dropped."""
    values: dict[str, str] = {}
    conflicting: set[str] = set()
    for raw_line in output.splitlines():
        match = _KEYED_LINE.match(raw_line.rstrip("\r"))
        if not match:
            continue
        key, value = match.group("key"), match.group("value")
        if key in values and values[key] != value:
            conflicting.add(key)
        values.setdefault(key, value)
    for key in conflicting:
        del values[key]
    return values


def parse_boot_id(value: str | None) -> str | None:
    """A boot_id is exactly one UUID (any case, returned lower case); anything else is no boot_id."""
    if value is None:
        return None
    candidate = value.strip()
    if not _UUID.fullmatch(candidate):
        return None
    return candidate.lower()


def _flag(value: str | None, true_word: str, false_word: str) -> bool | None:
    if value is None:
        return None
    word = value.strip()
    if word == true_word:
        return True
    if word == false_word:
        return False
    return None


def parse_host_state(output: str) -> HostState | None:
    """Parse the output of HOST_STATE_COMMAND. None when no intact boot_id line is in it."""
    values = _keyed_values(output)
    boot_id = parse_boot_id(values.get("boot-id"))
    if boot_id is None:
        return None
    release = values.get("release", "").strip()
    cmdline = values.get("cmdline")
    return HostState(
        boot_id=boot_id,
        release=release if _RELEASE.fullmatch(release) else None,
        # An empty command line is legal; a missing line is not.
        cmdline=cmdline.strip() if cmdline is not None else None,
        systemd=_flag(values.get("systemd"), "yes", "no"),
        kexec_loaded=_flag(values.get("kexec-loaded"), "1", "0"),
    )


def parse_system_state(output: str) -> str | None:
    """The state word of `systemctl is-system-running` (last line that is one), or None."""
    state = None
    for line in output.splitlines():
        word = line.strip()
        if word in SYSTEM_STATES:
            state = word
    return state


def parse_timespan(text: str) -> float | None:
    """Seconds of one systemd time span ("1min 2.144s", "873ms", "24.114s"), or None when it is not one."""
    text = text.strip()
    units = _TIMESPAN_UNIT.findall(text)
    if not units or _TIMESPAN_UNIT.sub("", text).strip():
        return None
    return round(sum(float(value) * _TIMESPAN_SECONDS[unit] for value, unit in units), 6)


def parse_startup_times(output: str) -> dict[str, float] | None:
    """The split of `systemd-analyze time` in seconds: the parts it printed (firmware and loader only where the
    boot loader recorded them, initrd only with one) and the total; None without an intact line."""
    for raw_line in output.splitlines():
        match = _STARTUP_LINE.match(raw_line.strip())
        if not match:
            continue
        times: dict[str, float] = {}
        for part in match.group("parts").split(" + "):
            part_match = _STARTUP_PART.match(part.strip())
            seconds = parse_timespan(part_match.group("span")) if part_match else None
            if part_match is None or seconds is None or part_match.group("name") not in STARTUP_PARTS:
                break
            times[part_match.group("name")] = seconds
        else:
            total = parse_timespan(match.group("total"))
            if times and total is not None:
                times["total"] = total
                return times
    return None
