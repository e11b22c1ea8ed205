# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One reboot's timeline from its witnesses, on the host's CLOCK_MONOTONIC (pure logic, no VM).

Witnesses:
  events   the benchmark callback's JSON lines (task starts and results, controller clock)
  console  the VM's serial console lines with host stamps (console.times, ANSI escapes stripped)
  journal  the new boot's journal entries (journalctl -o json): sshd and systemd (PID 1)

The journal's times are the guest's CLOCK_MONOTONIC; they are moved to the host clock at one anchor
close to them: the console line LAB-SSHD-READY, which ssh.service's ExecStartPost writes just before
systemd logs "Started ssh.service" (a clock that drifts under a busy TCG moves the events near that
anchor by milliseconds, not seconds).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from tests.lab.fastreboot_lab.measure import GRUB_MARKER, SSHD_MARKER, first

# The milestones in the order a reboot passes them; each is optional (a method or a boot may lack it).
MILESTONES = (
    "trigger",           # the reboot was asked for (kexec_reboot: exact; ansible.builtin.reboot: whole seconds)
    "shutdown_started",  # the old boot's systemd printed its first Stopping/Stopped status line
    "old_kernel_last",   # the old kernel's last console line (kexec_core: Starting new kernel / reboot: ...)
    "boot_loader",       # GRUB's lab marker: only a firmware boot passes it
    "new_kernel_first",  # the new kernel's clock zero on the host clock (its console lines' minimum lag)
    "sshd_listening",    # the new boot's sshd: "Server listening on" (journal)
    "banner_seen",       # kexec_reboot's banner probe saw the new sshd (timings.sshd_answered)
    "login_accepted",    # the new boot's sshd accepted the method's first login (journal)
    "new_boot_proven",   # kexec_reboot's first login returned the new boot_id (timings.new_boot_seen)
    "boot_finished",     # systemd (PID 1): "Startup finished in ..." (journal)
    "task_end",          # the reboot task's result reached the controller
)
SHUTDOWN_STATUS = re.compile(r"^\s*(?:\[\s*OK\s*\]\s*)?(?:Stopping|Stopped) ")
KERNEL_STAMP = re.compile(r"^\[\s*(\d+\.\d+)\] ")
NEW_KERNEL = "Linux version "
# How many of the new kernel's first stamped lines decide its clock zero (enough to reach a line the
# console printed as it was written, few enough that a drifting guest clock does not matter).
KERNEL_LINES_FOR_ZERO = 400


@dataclass
class Timeline:
    """Milestones in host seconds since the timed task's start, with the console or journal line of each."""

    task_start: float
    result: dict = field(default_factory=dict)  # the last timed task's result
    moments: dict[str, float] = field(default_factory=dict)
    evidence: dict[str, str] = field(default_factory=dict)

    def mark(self, name: str, moment: float | None, line: str = "") -> None:
        if moment is None:
            return
        self.moments[name] = round(moment - self.task_start, 3)
        if line:
            self.evidence[name] = line[:160]


def timed_window(events: list[dict], timed_prefix: str) -> tuple[float, float, dict] | None:
    """The timed tasks that ran (not skipped): the first one's start, the last one's end and its result."""
    starts = {}
    window = None
    for event in events:
        task = event.get("task", "")
        if not task.startswith(timed_prefix):
            continue
        if event["event"] == "task_start":
            starts[task] = event["t"]
        elif event["event"] == "task_end" and event.get("status") != "skipped":
            begin = window[0] if window else starts[task]
            window = (begin, event["t"], event.get("result") or {})
    return window


def first_after(console: list[tuple[float, str]], after: float, test) -> tuple[float, str] | None:
    for stamp, line in console:
        if stamp >= after and test(line):
            return stamp, line
    return None


def kernel_zero(console: list[tuple[float, str]], start_index: int) -> float | None:
    """The new kernel's clock zero on the host clock: the smallest (host stamp - printk time) over its
    first stamped lines. A line can reach the host late (buffered before the console existed), never early."""
    lags = []
    for stamp, line in console[start_index:]:
        match = KERNEL_STAMP.match(line)
        if match:
            lags.append(stamp - float(match.group(1)))
            if len(lags) >= KERNEL_LINES_FOR_ZERO:
                break
    return min(lags) if lags else None


def journal_moments(journal: list[dict]) -> dict[str, float]:
    """Guest CLOCK_MONOTONIC seconds of the journal's milestones in one boot."""
    found: dict[str, float] = {}
    for entry in journal:
        message = entry.get("MESSAGE")
        if not isinstance(message, str) or "__MONOTONIC_TIMESTAMP" not in entry:
            continue
        moment = int(entry["__MONOTONIC_TIMESTAMP"]) / 1e6
        ident = entry.get("SYSLOG_IDENTIFIER")
        from_pid1 = entry.get("_PID") == "1"
        if ident == "sshd" and message.startswith("Server listening on"):
            found.setdefault("sshd_listening", moment)
        elif ident in ("sshd", "sshd-session") and message.startswith("Accepted publickey for"):
            found.setdefault("login_accepted", moment)
        elif from_pid1 and entry.get("UNIT") == "ssh.service" and message.startswith("Started "):
            found.setdefault("anchor", moment)
        elif from_pid1 and message.startswith("Startup finished in "):
            found.setdefault("boot_finished", moment)
    return found


def build(events: list[dict], console: list[tuple[float, str]], journal: list[dict], timed_prefix: str) -> Timeline | None:
    """The reboot's timeline, or None when the timed tasks did not run."""
    window = timed_window(events, timed_prefix)
    if window is None:
        return None
    start, end, result = window
    timeline = Timeline(start, result)
    timeline.mark("task_end", end)
    if result.get("elapsed") not in (None, ""):
        # kexec_reboot and ansible.builtin.reboot both count elapsed from their reboot command.
        trigger = end - float(result["elapsed"])
        timeline.mark("trigger", trigger)
        for step, name in (("sshd_answered", "banner_seen"), ("new_boot_seen", "new_boot_proven")):
            if (result.get("timings") or {}).get(step) is not None:
                timeline.mark(name, trigger + float(result["timings"][step]))
    shutdown = first_after(console, start, SHUTDOWN_STATUS.search)
    if shutdown is None:
        return timeline
    timeline.mark("shutdown_started", *shutdown)
    new_index = next((i for i, (stamp, line) in enumerate(console) if stamp >= shutdown[0] and NEW_KERNEL in line), None)
    if new_index is None:
        return timeline
    last_old = next(((stamp, line) for stamp, line in reversed(console[:new_index])
                     if stamp >= shutdown[0] and KERNEL_STAMP.match(line)), None)
    if last_old is not None:
        timeline.mark("old_kernel_last", *last_old)
    loader = first_after(console, last_old[0] if last_old else shutdown[0], lambda line: GRUB_MARKER in line)
    if loader is not None and loader[0] <= console[new_index][0]:
        timeline.mark("boot_loader", *loader)
    timeline.mark("new_kernel_first", kernel_zero(console, new_index), console[new_index][1])
    ready = first(console, lambda line: SSHD_MARKER in line, after=console[new_index][0])
    guest = journal_moments(journal)
    if ready is not None and "anchor" in guest:
        offset = ready - guest["anchor"]
        for name in ("sshd_listening", "login_accepted", "boot_finished"):
            if name in guest:
                timeline.mark(name, guest[name] + offset)
    return timeline
