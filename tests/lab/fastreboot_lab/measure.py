# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where a lab VM's boot spends its time: `lab.py measure` (tests/lab/README.md shows the results).

Each boot is a fresh VM (`up`); the phases are measured on the host clock, from the console lines'
arrival (console.times, ANSI escapes stripped) and the login:
  firmware    QEMU start -> GRUB's marker line (BIOS images: SeaBIOS, the MBR, GRUB's core), or
              -> OVMF's `BdsDxe: starting Boot` (UEFI images: the firmware hands over to the ESP)
  loader      -> the kernel's first console line (BIOS: GRUB reading kernel and initrd through the
              BIOS; UEFI: systemd-boot, or shim + GRUB, the EFI stub; then the kernel decompressing
              itself and its early setup)
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
import shlex
import statistics
import subprocess
import time
from pathlib import Path

from .base import LabError, log, run_dir
from .collection import parse_startup_times
from .console import read_times
from .images import image_for, spec_for
from .vm import VM, down, ssh_cmd, up, wait_for_ssh

GRUB_MARKER = "LAB-GRUB: boot loader running"
OVMF_MARKER = "BdsDxe: starting Boot"  # OVMF starts the boot loader (its console is the serial port)
EFI_STUB_LINE = "EFI stub: "  # the kernel's EFI stub: a firmware boot, never a kexec
SDBOOT_CMDLINE = "Command line: initrd=\\"  # systemd-boot prepends the ESP path of the initrd
KEXEC_LINE = "kexec_core: Starting new kernel"
SSHD_MARKER = "LAB-SSHD-READY"
# CSI sequences (colours, cursor moves, OVMF's screen clears such as ESC[=3h) and two-byte escapes.
ANSI = re.compile(r"\x1b(?:\[[0-9;?=]*[ -/]*[@-~]|[@-Z\\-_])")
KERNEL_LINE = re.compile(r"^\[\s*\d+\.\d+\] |Linux version ")
SYSTEMD_LINE = re.compile(r"systemd\[1\]: systemd \d+|Welcome to ")
PHASES = ("firmware", "loader", "kernel", "userspace", "login", "to_sshd", "to_login")
GUEST_REPORT = (
    "systemd-analyze time; echo '--- blame'; systemd-analyze blame --no-pager | head -n 15; "
    "echo '--- critical-chain'; systemd-analyze critical-chain --no-pager ssh.service; "
    "echo '--- cmdline'; cat /proc/cmdline; "
    "echo '--- initrd'; ls -l /boot/initrd.img-* | awk '{print $5, $9}'; "
    # Secure Boot state (the EFI variable's last byte) and the kernel's lockdown mode, on UEFI images.
    "echo \"--- secure-boot $(od -An -tu1 /sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c "
    "2>/dev/null | awk '{print $NF}') lockdown $(cat /sys/kernel/security/lockdown 2>/dev/null)\"; "
    "echo \"--- sshd-ready-us $(systemctl show -P ActiveEnterTimestampMonotonic ssh.service)\""
)


def startup_phases(report: str) -> dict[str, float]:
    """systemd-analyze time's parts, parsed by the collection's own reader (kexec_reboot's startup_times)."""
    return parse_startup_times(report) or {}


def console_records(vm: VM) -> list[tuple[float, str]]:
    return [(stamp, ANSI.sub("", line)) for stamp, line in read_times(vm.console_times)]


def first(records: list[tuple[float, str]], test, after: float = 0.0) -> float | None:
    for stamp, line in records:
        if stamp >= after and test(line):
            return stamp
    return None


def one_boot(name: str, image: str, smp: int, memory: int) -> dict:
    vm: VM = up(name, image, smp=smp, memory=memory)
    logged_in = time.monotonic()
    try:
        report = subprocess.run(ssh_cmd(vm) + [GUEST_REPORT], capture_output=True, text=True, timeout=120,
                                check=False).stdout
    finally:
        down(name)
    time.sleep(0.5)  # the console logger writes its last line once QEMU is gone
    records = console_records(vm)
    marker = GRUB_MARKER if vm.firmware == "bios" else OVMF_MARKER
    firmware_done = first(records, lambda line: marker in line)
    kernel_console = first(records, KERNEL_LINE.search, after=firmware_done or 0.0)
    sshd = first(records, lambda line: SSHD_MARKER in line)
    guest = startup_phases(report)
    kernel_phase = guest["kernel"] + guest.get("initrd", 0.0) if "kernel" in guest else None
    ready_us = re.search(r"--- sshd-ready-us (\d+)", report)
    kernel_start = kernel_console
    if kernel_start is None and sshd is not None and ready_us:
        kernel_start = sshd - int(ready_us.group(1)) / 1e6
    systemd = first(records, SYSTEMD_LINE.search, after=kernel_start or 0.0)
    if systemd is None and kernel_start is not None and kernel_phase is not None:
        systemd = kernel_start + kernel_phase
    # Where the boot went, for the record: which loader ran (UEFI), and the marker lines' times.
    markers = {"grub": first(records, lambda line: GRUB_MARKER in line),
               "ovmf": first(records, lambda line: OVMF_MARKER in line),
               "efi_stub": first(records, lambda line: EFI_STUB_LINE in line),
               "sdboot_cmdline": first(records, lambda line: SDBOOT_CMDLINE in line)}
    # "dist" is the lab image's name (the key of older measurements, when each image was a release).
    result = {"dist": image, "image": image_for(image).disk.name, "started": vm.started, "report": report,
              "guest_kernel": kernel_phase, "console": records, "firmware_type": vm.firmware,
              "markers": {key: span(vm.started, value) for key, value in markers.items()},
              "firmware": span(vm.started, firmware_done),
              "loader": span(firmware_done, kernel_start),
              "kernel": span(kernel_start, systemd),
              "userspace": span(systemd, sshd),
              "login": span(sshd, logged_in),
              "to_sshd": span(vm.started, sshd),
              "to_login": logged_in - vm.started}
    return result


def span(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else end - start


RESTART_LINE = "reboot: Restarting system"  # the old kernel's last line before a firmware reset
KERNEL_FIRST_LINE = "Linux version "


def last_cold_boot(vm: VM) -> dict:
    """The console's account of the VM's last firmware reboot: from the old kernel's restart line to the next
    kernel's first line (firmware, firmware delay, boot loader, loading and decompressing the kernel), in seconds.

    What kexec_info's savings_estimate is checked against (host clock, not the guest's)."""
    records = console_records(vm)
    restarts = [stamp for stamp, line in records if RESTART_LINE in line]
    for restart in reversed(restarts):
        kernel = first(records, lambda line: KERNEL_FIRST_LINE in line, after=restart)
        if kernel is not None:
            return {"restart": restart, "kernel": kernel, "seconds": round(kernel - restart, 1)}
    raise LabError(f"{vm.name}: no '{RESTART_LINE}' followed by a kernel's first line on the console")


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
    """Boot phases of fresh VMs of each image (dists: lab image names), one VM at a time."""
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


# ---- kexec reboots: `systemctl kexec` on a fresh VM, from the trigger to the next login ----------

KEXEC_PHASES = ("shutdown", "purgatory", "kernel", "userspace", "login", "to_sshd", "to_login")
KEXEC_HEAD = ("trigger to `Starting new kernel` | purgatory (-> first kernel line) | kernel + initramfs "
              "| userspace to sshd | sshd to login | **trigger to sshd** | trigger to login")
# systemd >= 255 loads the default boot loader entry itself when nothing is loaded (BLS entries:
# systemd-boot). GRUB hosts have none ("refusing to guess"): load the running kernel first, with
# kexec_file_load (-s), which Secure Boot's lockdown requires.
KEXEC_LOAD_RUNNING = ("kexec -s -l /boot/vmlinuz-$(uname -r) --initrd=/boot/initrd.img-$(uname -r) "
                      "--reuse-cmdline --append={append} && ")
# With systemd-boot the options come from the entries: the experiment's arguments go there.
SDBOOT_APPEND = "sed -i '/^options/ s|$| '{append}'|' /boot/efi/loader/entries/*.conf && "


def one_kexec(name: str, image: str, smp: int, memory: int, append: str = "", timeout: float = 900) -> dict:
    """One fresh VM (with kexec-tools), one `systemctl kexec`; phases on the host clock. append: kernel
    arguments for the kexec'd kernel only (an experiment, e.g. a clocksource)."""
    spec = spec_for(image)
    vm = up(name, image, smp=smp, memory=memory, kexec_tools=True)
    try:
        before = subprocess.run(ssh_cmd(vm) + ["cat /proc/sys/kernel/random/boot_id"], capture_output=True,
                                text=True, timeout=60, check=False).stdout.strip()
        if spec.boot_loader == "grub":
            load = KEXEC_LOAD_RUNNING.format(append=shlex.quote(append))
        else:
            load = SDBOOT_APPEND.format(append=shlex.quote(append)) if append else ""
        trigger = time.monotonic()
        # --no-block: systemctl returns once the job is queued (it has loaded the kernel by then), so
        # the SSH session ends cleanly before the shutdown kills it.
        issued = subprocess.run(ssh_cmd(vm) + [load + "systemctl --no-block kexec"], capture_output=True,
                                text=True, timeout=120, check=False)
        returned = time.monotonic()
        sshd = None
        deadline = trigger + timeout
        while sshd is None and time.monotonic() < deadline and vm.pid() is not None:
            time.sleep(1)
            sshd = first(console_records(vm), lambda line: SSHD_MARKER in line, after=trigger)
        if sshd is None:
            why = "QEMU ended" if vm.pid() is None else f"no sshd within {timeout:.0f}s"
            log(f"{name}: the kexec reboot failed ({why}); console {vm.console}")
        logged_in = None
        report = ""
        if sshd is not None:
            wait_for_ssh(vm, max(60.0, deadline - time.monotonic()))
            logged_in = time.monotonic()
            report = subprocess.run(ssh_cmd(vm) + ["cat /proc/sys/kernel/random/boot_id; " + GUEST_REPORT],
                                    capture_output=True, text=True, timeout=120, check=False).stdout
    finally:
        down(name)
    time.sleep(0.5)
    records = console_records(vm)
    started_new = first(records, lambda line: KEXEC_LINE in line, after=trigger)
    # The new kernel's first line (the old kernel's own lines match KERNEL_LINE up to the last one).
    kernel_start = first(records, lambda line: "Linux version " in line, after=started_new or trigger)
    systemd = first(records, SYSTEMD_LINE.search, after=kernel_start or trigger)
    firmware = first(records, lambda line: OVMF_MARKER in line or GRUB_MARKER in line or EFI_STUB_LINE in line,
                     after=trigger)
    return {"dist": image, "image": image_for(image).disk.name, "smp": smp, "append": append, "trigger": trigger,
            "command_returned": returned - trigger, "command_rc": issued.returncode,
            "command_output": (issued.stdout + issued.stderr)[-2000:],
            "boot_id_changed": bool(report) and before not in report.splitlines()[:1],
            "firmware_seen": firmware is not None, "report": report, "console": records,
            "guest": startup_phases(report),
            "shutdown": span(trigger, started_new),
            "purgatory": span(started_new, kernel_start),
            "kernel": span(kernel_start, systemd),
            "userspace": span(systemd, sshd),
            "login": span(sshd, logged_in),
            "to_sshd": span(trigger, sshd),
            "to_login": span(trigger, logged_in)}


def measure_kexec(images: list[str], boots: int = 3, smp: int = 2, memory: int = 1024,  # pylint: disable=too-many-locals
                  prefix: str = "kexec-measure", append: str = "") -> str:
    """`systemctl kexec` on fresh VMs of each image, one at a time: medians of the phases."""
    load_before = os.getloadavg()
    runs: dict[str, list[dict]] = {}
    for image in images:
        runs[image] = []
        for number in range(boots):
            result = one_kexec(f"{prefix}-{image}", image, smp, memory, append)
            log(f"{image} kexec {number + 1}/{boots}: " + ", ".join(
                f"{p} {result[p]:.1f}" for p in KEXEC_PHASES if result[p] is not None)
                + ("" if not result["firmware_seen"] else ", FIRMWARE BOOT (the kexec fell back)"))
            runs[image].append(result)
    load_after = os.getloadavg()
    lines = [f"| image | {KEXEC_HEAD} | guest kernel | guest userspace |", "|" + "---|" * (3 + len(KEXEC_PHASES))]
    for image, results in runs.items():
        cells = []
        for phase in KEXEC_PHASES:
            value = median([r[phase] for r in results])
            text = "?" if value is None else f"{value:.1f} s"
            cells.append(f"**{text}**" if phase == "to_sshd" else text)
        for part in ("kernel", "userspace"):
            value = median([r["guest"].get(part) for r in results])
            cells.append("?" if value is None else f"{value:.1f} s")
        lines.append(f"| {image} | " + " | ".join(cells) + " |")
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    extra = f", kexec'd kernel + `{append}`" if append else ""
    summary = (f"{stamp}, `systemctl kexec`{extra}, medians of {boots} (a fresh VM each), {smp} vCPU, {memory} MiB; host "
               f"load average (1 min) {load_before[0]:.1f} before, {load_after[0]:.1f} after\n\n" + "\n".join(lines) + "\n")
    out = run_dir() / f"kexec-measure-{datetime.datetime.now():%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps({"summary": summary, "runs": runs}, indent=2) + "\n")
    for image, results in runs.items():
        summary += f"\n### {image}: the guest's view after its last kexec\n\n```\n{results[-1]['report'].strip()}\n```\n"
    return summary + f"\n(all runs: {out})\n"
