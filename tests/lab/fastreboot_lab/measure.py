# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where a lab VM's boot spends its time: `lab.py measure` (tests/lab/README.md shows the results).

Each boot is a fresh VM (`up`); the phases are measured on the host clock, from the console lines'
arrival (console.times) and the login:
  firmware    QEMU start -> GRUB's marker line (SeaBIOS, the MBR, GRUB's core)
  loader      GRUB's marker -> the kernel's first console line (menu timeout, GRUB reading kernel
              and initrd through the BIOS, the kernel decompressing itself, its early setup)
  kernel      -> systemd starts on the root file system (kernel init, initramfs-tools: unpack,
              udev, modules, mounting the root)
  userspace   -> sshd ready (LAB-SSHD-READY, which ssh.service writes to the console)
  login       -> the lab's first root login done (banner probe, key exchange, session, `true`)
The guest's own view (systemd-analyze, on the guest's clock, which runs slow under a busy TCG) is
recorded beside. A phase whose console line is missing (e.g. a quiet kernel) is taken from the
guest's view instead: sshd's readiness minus the guest's uptime at that moment is the kernel's start.
"""
from __future__ import annotations

import datetime
import json
import os
import re
import statistics
import subprocess
import time
from pathlib import Path

from .base import log, run_dir
from .console import read_times
from .images import image_for
from .vm import VM, down, ssh_cmd, up

GRUB_MARKER = "LAB-GRUB: boot loader running"
SSHD_MARKER = "LAB-SSHD-READY"
KERNEL_LINE = re.compile(r"^\[\s*\d+\.\d+\] |Linux version ")
SYSTEMD_LINE = re.compile(r"systemd\[1\]: systemd \d+|Welcome to ")
PHASES = ("firmware", "loader", "kernel", "userspace", "login", "to_sshd", "to_login")
GUEST_REPORT = (
    "systemd-analyze time; echo '--- blame'; systemd-analyze blame --no-pager | head -n 15; "
    "echo '--- critical-chain'; systemd-analyze critical-chain --no-pager ssh.service; "
    "echo '--- cmdline'; cat /proc/cmdline; "
    "echo \"--- sshd-ready-us $(systemctl show -P ActiveEnterTimestampMonotonic ssh.service)\""
)


def seconds(text: str) -> float:
    """systemd's time span ('1min 2.345s', '873ms', '2.1s') in seconds."""
    units = {"min": 60.0, "s": 1.0, "ms": 0.001, "us": 0.000001, "µs": 0.000001, "h": 3600.0}
    return sum(float(value) * units[unit] for value, unit in re.findall(r"([\d.]+)(min|ms|us|µs|s|h)\b", text))


def first(records: list[tuple[float, str]], test, after: float = 0.0) -> float | None:
    for stamp, line in records:
        if stamp >= after and test(line):
            return stamp
    return None


def one_boot(name: str, dist: str, smp: int, memory: int) -> dict:
    vm: VM = up(name, dist, smp=smp, memory=memory)
    logged_in = time.monotonic()
    try:
        report = subprocess.run(ssh_cmd(vm) + [GUEST_REPORT], capture_output=True, text=True, timeout=120,
                                check=False).stdout
    finally:
        down(name)
    time.sleep(0.5)  # the console logger writes its last line once QEMU is gone
    records = read_times(vm.console_times)
    grub = first(records, lambda line: GRUB_MARKER in line)
    kernel_console = first(records, KERNEL_LINE.search, after=grub or 0.0)
    sshd = first(records, lambda line: SSHD_MARKER in line)
    startup = re.search(r"Startup finished in (.*?) \(kernel\)(?: \+ (.*?) \(initrd\))? \+ (.*?) \(userspace\)", report)
    kernel_phase = None
    if startup:
        kernel_phase = seconds(startup.group(1)) + (seconds(startup.group(2)) if startup.group(2) else 0.0)
    ready_us = re.search(r"--- sshd-ready-us (\d+)", report)
    kernel_start = kernel_console
    if kernel_start is None and sshd is not None and ready_us:
        kernel_start = sshd - int(ready_us.group(1)) / 1e6
    systemd = first(records, SYSTEMD_LINE.search, after=kernel_start or 0.0)
    if systemd is None and kernel_start is not None and kernel_phase is not None:
        systemd = kernel_start + kernel_phase
    result = {"dist": dist, "image": image_for(dist).disk.name, "started": vm.started, "report": report, "guest_kernel": kernel_phase, "console": records,
              "firmware": span(vm.started, grub),
              "loader": span(grub, kernel_start),
              "kernel": span(kernel_start, systemd),
              "userspace": span(systemd, sshd),
              "login": span(sshd, logged_in),
              "to_sshd": span(vm.started, sshd),
              "to_login": logged_in - vm.started}
    return result


def span(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else end - start


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


PHASE_HEAD = ("firmware | loader | kernel + initramfs | userspace to sshd | sshd to login "
              "| **start to sshd** | start to login")


def phase_cells(boots: list[dict]) -> list[str]:
    """The median of each phase over the boots, as table cells (start to sshd in bold)."""
    cells = []
    for phase in PHASES:
        value = median([b[phase] for b in boots])
        text = "?" if value is None else f"{value:.1f} s"
        cells.append(f"**{text}**" if phase == "to_sshd" else text)
    return cells


def table(runs: dict[str, list[dict]]) -> str:
    lines = [f"| image | {PHASE_HEAD} |", "|" + "---|" * (1 + len(PHASES))]
    lines += [f"| {dist} | " + " | ".join(phase_cells(boots)) + " |" for dist, boots in runs.items()]
    return "\n".join(lines)


def measure(dists: list[str], boots: int = 3, smp: int = 2, memory: int = 1024, prefix: str = "speed-measure") -> str:
    load_before = os.getloadavg()
    runs: dict[str, list[dict]] = {}
    for dist in dists:
        runs[dist] = []
        for number in range(boots):
            result = one_boot(f"{prefix}-{dist}", dist, smp, memory)
            log(f"{dist} boot {number + 1}/{boots}: " + ", ".join(
                f"{p} {result[p]:.1f}" for p in PHASES if result[p] is not None))
            runs[dist].append(result)
    load_after = os.getloadavg()
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    images = ", ".join(image_for(dist).disk.name for dist in dists)
    summary = (f"{stamp}, {images}, medians of {boots} boots, {smp} vCPU, {memory} MiB; host load average (1 min) "
               f"{load_before[0]:.1f} before, {load_after[0]:.1f} after; {os.cpu_count()} host cores\n\n{table(runs)}\n")
    out = run_dir() / f"measure-{datetime.datetime.now():%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps({"summary": summary, "runs": runs}, indent=2) + "\n")
    for dist, boots_of_dist in runs.items():
        summary += f"\n### {dist}: the guest's view of its last boot\n\n```\n{boots_of_dist[-1]['report'].strip()}\n```\n"
    return summary + f"\n(all boots: {out})\n"


def load_runs(directory: Path) -> dict[str, list[dict]]:
    """Every boot recorded by `measure` in a folder's measure-*.json files, by distribution."""
    runs: dict[str, list[dict]] = {}
    for path in sorted(directory.glob("measure-*.json")):
        for dist, boots in json.loads(path.read_text())["runs"].items():
            runs.setdefault(dist, []).extend(boots)
    return runs


def compare(variants: dict[str, Path]) -> str:
    """One table of several labs' measurements (label -> the FASTREBOOT_LAB_RUN folder of its boots),
    with the speed-up of each against the first label, median to median."""
    loaded = {label: load_runs(directory) for label, directory in variants.items()}
    first_label = next(iter(loaded))
    lines = [f"| image | lab | boots | {PHASE_HEAD} | speed-up to sshd | to login |", "|" + "---|" * (5 + len(PHASES))]
    for dist in sorted({dist for runs in loaded.values() for dist in runs}):
        base = loaded[first_label].get(dist, [])
        for label, runs in loaded.items():
            boots = runs.get(dist, [])
            if not boots:
                continue
            cells = phase_cells(boots)
            for phase in ("to_sshd", "to_login"):
                old, new = median([b[phase] for b in base]), median([b[phase] for b in boots])
                cells.append("?" if not old or not new else f"{old / new:.2f}x")
            lines.append(f"| {dist} | {label} | {len(boots)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
