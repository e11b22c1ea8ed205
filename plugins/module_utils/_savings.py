# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""How much a kexec would save on this host: the firmware and boot-loader time of its last cold boot.

Internal to fastreboot.kexec, not a public API. Reads only. Two sources, the first that knows wins:
  efi_loader_variables  LoaderTimeInitUSec / LoaderTimeExecUSec, which a boot loader such as
                        systemd-boot sets at a cold boot and which survive a kexec (systemd-analyze
                        reads the same); GRUB does not set them, nor does systemd-boot without a TSC
  journal               a persistent journal: the gap between the last entry of the boot before the
                        last cold one (it ended in a reboot) and that cold boot's kernel start; the gap
                        also holds the end of the shutdown after journald stopped and the kernel's
                        decompression, which a kexec has too
A cold boot is one whose kernel command line carries a boot loader's parameter (GRUB's BOOT_IMAGE=,
systemd-boot's initrd=, _cmdline.BOOT_LOADER_KEYS); a kexec'd kernel gets the command line it was
loaded with, which kexec_load strips of them.
"""

from __future__ import annotations

import json
import typing as t

from ansible_collections.fastreboot.kexec.plugins.module_utils._cmdline import has_boot_loader_params
from ansible_collections.fastreboot.kexec.plugins.module_utils._host import CommandRunner, HostFiles

LOADER_VENDOR = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"  # the Boot Loader Interface's EFI vendor GUID
EFIVARS = "/sys/firmware/efi/efivars"
LOADER_TIME_INIT = f"{EFIVARS}/LoaderTimeInitUSec-{LOADER_VENDOR}"
LOADER_TIME_EXEC = f"{EFIVARS}/LoaderTimeExecUSec-{LOADER_VENDOR}"
MACHINE_ID = "/etc/machine-id"
PERSISTENT_JOURNAL = "/var/log/journal"
MAX_BOOTS = 5  # boots looked at, newest first: one journalctl call each, one more for the cold one
KERNEL_CMDLINE_PREFIX = "Command line: "  # the kernel's first lines of a boot include its command line
MAX_PLAUSIBLE_GAP = 3600.0  # seconds: a longer gap was the host switched off, not a reboot
EFI_SOURCE = "efi_loader_variables"
JOURNAL_SOURCE = "journal"


def _usec_variable(host: HostFiles, path: str) -> int | None:
    """An EFI variable holding a decimal microsecond count as UTF-16LE text (after 4 attribute bytes)."""
    data = host.read_bytes(path)
    if not data or len(data) < 6:
        return None
    text = data[4:].decode("utf-16-le", errors="replace").split("\0", 1)[0].strip()
    return int(text) if text.isdigit() else None


def efi_estimate(host: HostFiles) -> dict[str, t.Any] | None:
    """Firmware and loader time from the boot loader's EFI variables, None when it set none."""
    init = _usec_variable(host, LOADER_TIME_INIT)
    execute = _usec_variable(host, LOADER_TIME_EXEC)
    if init is None or execute is None or execute < init:
        return None
    return {
        "seconds": round(execute / 1e6, 3),
        "firmware": round(init / 1e6, 3),
        "loader": round((execute - init) / 1e6, 3),
        "source": EFI_SOURCE,
        "boot_id": None,
        "reason": None,
    }


def unknown(reason: str) -> dict[str, t.Any]:
    return {"seconds": None, "firmware": None, "loader": None, "source": None, "boot_id": None, "reason": reason}


def _json_lines(text: str) -> list[dict[str, t.Any]]:
    entries = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
    return entries


def parse_boot_list(text: str) -> list[dict[str, t.Any]]:
    """`journalctl --list-boots -o json` (one JSON array, or one object per line): newest first."""
    text = text.strip()
    try:
        boots = json.loads(text) if text.startswith("[") else _json_lines(text)
    except ValueError:
        return []
    boots = [boot for boot in boots if isinstance(boot, dict) and {"index", "boot_id", "last_entry"} <= set(boot)]
    return sorted(boots, key=lambda boot: int(boot["index"]), reverse=True)


def kernel_start(entry: dict[str, t.Any]) -> float | None:
    """The wall-clock time (seconds) of a boot's kernel start, from any of its journal entries.

    journald stamps an entry with both clocks at once; CLOCK_MONOTONIC starts with the kernel.
    """
    try:
        return (int(entry["__REALTIME_TIMESTAMP"]) - int(entry["__MONOTONIC_TIMESTAMP"])) / 1e6
    except (KeyError, TypeError, ValueError):
        return None


class JournalEstimate:
    """The journal source: reads the boot list, then per boot its kernel command line and how it ended."""

    def __init__(self, host: HostFiles, runner: CommandRunner, journalctl: str) -> None:
        self.host = host
        self.runner = runner
        self.journalctl = journalctl

    def _query(self, argv: list[str]) -> list[dict[str, t.Any]]:
        rc, out, _err = self.runner.run([self.journalctl, *argv])
        return _json_lines(out) if rc == 0 else []

    def _cold(self, boot_id: str) -> dict[str, t.Any] | None:
        """The kernel's command-line entry of a boot that a boot loader started, else None (a kexec, or no entry)."""
        found = self._query(["-b", boot_id, "-k", "-o", "json", "-n", "1", "--no-pager", "--grep", f"^{KERNEL_CMDLINE_PREFIX}"])
        message = str(found[-1].get("MESSAGE", "")) if found else ""
        return found[-1] if message.startswith(KERNEL_CMDLINE_PREFIX) and has_boot_loader_params(message[len(KERNEL_CMDLINE_PREFIX):]) else None

    def estimate(self) -> dict[str, t.Any]:
        machine_id = (self.host.read_first_line(MACHINE_ID) or "").strip()
        if not machine_id or not self.host.is_dir(f"{PERSISTENT_JOURNAL}/{machine_id}"):
            return unknown(
                f"no boot loader time in EFI variables, and the journal is volatile ({PERSISTENT_JOURNAL}/<machine-id> does not exist): "
                "the boot before this one left no entries; set Storage=persistent in journald.conf to get an estimate after the next cold boot"
            )
        rc, out, err = self.runner.run([self.journalctl, "--list-boots", "-o", "json", "--no-pager"])
        boots = parse_boot_list(out) if rc == 0 else []
        if not boots:
            return unknown(f"journalctl --list-boots gave no boots ({(err or out).strip() or f'exit code {rc}'})")
        pairs = list(zip(boots, boots[1:]))  # (a boot, the boot before it), newest first
        for newer, older in pairs[:MAX_BOOTS]:
            cold = self._cold(str(newer["boot_id"]))
            if cold is None:
                continue  # a kexec'd boot (or its kernel log is gone): look further back
            start = kernel_start(cold)
            if start is None:
                return unknown(f"the journal entries of boot {newer['boot_id']} lack their timestamps")
            # reboot.target, or kexec.target where the kexec fell back to the firmware; two matches of one field: either
            if not self._query(["-b", str(older["boot_id"]), "-o", "json", "-n", "1", "--no-pager", "UNIT=reboot.target", "UNIT=kexec.target"]):
                return unknown(
                    f"the last cold boot ({newer['boot_id']}) followed a boot that did not end in a reboot (a power-off, a crash "
                    "or a reset), so the journal holds no firmware and boot loader gap to measure"
                )
            gap = start - int(older["last_entry"]) / 1e6
            if not 0 < gap <= MAX_PLAUSIBLE_GAP:
                return unknown(f"the gap before the last cold boot ({newer['boot_id']}) is {gap:.0f} s, not a reboot's: the clock was set or the host was off")
            return {"seconds": round(gap, 1), "firmware": None, "loader": None, "source": JOURNAL_SOURCE, "boot_id": str(newer["boot_id"]), "reason": None}
        if len(pairs) > MAX_BOOTS:
            return unknown(f"none of the last {MAX_BOOTS} boots in the journal was a cold reboot (each started without a boot loader's parameter)")
        return unknown("the journal holds no cold reboot: no boot in it followed an earlier one and started through a boot loader")


def savings_estimate(host: HostFiles, runner: CommandRunner) -> dict[str, t.Any]:
    """kexec_info's savings_estimate: seconds a kexec skips, the source, or None with the reason."""
    estimate = efi_estimate(host)
    if estimate:
        return estimate
    journalctl = runner.find("journalctl")
    if not journalctl:
        return unknown("no boot loader time in EFI variables, and journalctl is not installed")
    return JournalEstimate(host, runner, journalctl).estimate()
