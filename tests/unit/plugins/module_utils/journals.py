# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A real persistent journal, recorded on the uefi_sdboot lab VM (trixie, systemd 257, 2026-12-03), and a
journalctl that answers from it. Each entry keeps the fields that the savings estimate reads, values as
journalctl -o json printed them.

The four boots, oldest first:
  -3 cold (systemd-boot: initrd=\\...), ended in kexec.target
  -2 kexec'd (no boot loader word), ended in reboot.target
  -1 cold (firmware reset; QEMU -no-reboot ended the VM and the lab started it again), then killed
   0 cold (the lab started the stopped VM)
"""

from __future__ import annotations

import json
import typing as t

MACHINE_ID = "a517c9a3a63b4d6a9232897a179cff1f"
SDBOOT_COLD_CMDLINE = (
    "Command line: initrd=\\debian\\6.12.118+deb13-amd64\\initrd.img-6.12.118+deb13-amd64 "
    "root=UUID=508ba510-34a4-435a-8faf-18e39bd3f617 ro console=ttyS0,115200n8"
)
BOOTS = [  # journalctl --list-boots -o json, oldest first
    {"boot_id": "08aaea28acb0406c9b90b5a653c9d158", "first_entry": 1796276321408438, "last_entry": 1796276817899788},
    {"boot_id": "f8319824180748c4a9152487adaf580c", "first_entry": 1796276856378475, "last_entry": 1796276954700423},
    {"boot_id": "d9c49b8872b34376a1a9d87b62b7768f", "first_entry": 1796276995339975, "last_entry": 1796277053224126},
    {"boot_id": "b1d0685c8d2f4e6487dbf2f7d1f86903", "first_entry": 1796277183253117, "last_entry": 1796277222398311},
]
COMMAND_LINES = {  # journalctl -b ID -k -o json -n 1 --grep '^Command line:'
    "08aaea28acb0406c9b90b5a653c9d158": {
        "MESSAGE": SDBOOT_COLD_CMDLINE, "_TRANSPORT": "kernel",
        "__REALTIME_TIMESTAMP": "1796276321421026", "__MONOTONIC_TIMESTAMP": "42786505",
    },
    "f8319824180748c4a9152487adaf580c": {
        "MESSAGE": "Command line: root=UUID=508ba510-34a4-435a-8faf-18e39bd3f617 ro console=ttyS0,115200n8 fastreboot.test=sdboot",
        "_TRANSPORT": "kernel", "__REALTIME_TIMESTAMP": "1796276856403272", "__MONOTONIC_TIMESTAMP": "32618302",
    },
    "d9c49b8872b34376a1a9d87b62b7768f": {
        "MESSAGE": SDBOOT_COLD_CMDLINE, "_TRANSPORT": "kernel",
        "__REALTIME_TIMESTAMP": "1796276995355394", "__MONOTONIC_TIMESTAMP": "26526254",
    },
    "b1d0685c8d2f4e6487dbf2f7d1f86903": {
        "MESSAGE": SDBOOT_COLD_CMDLINE, "_TRANSPORT": "kernel",
        "__REALTIME_TIMESTAMP": "1796277183268839", "__MONOTONIC_TIMESTAMP": "31249720",
    },
}
SHUTDOWN_TARGETS = {  # journalctl -b ID -o json -n 1 UNIT=reboot.target UNIT=kexec.target
    "08aaea28acb0406c9b90b5a653c9d158": {
        "MESSAGE": "Reached target kexec.target - Reboot via kexec.", "MESSAGE_ID": "39f53479d3a045ac8e11786248231fbf",
        "UNIT": "kexec.target", "JOB_TYPE": "start", "__REALTIME_TIMESTAMP": "1796276817065751", "__MONOTONIC_TIMESTAMP": "538431232",
    },
    "f8319824180748c4a9152487adaf580c": {
        "MESSAGE": "Reached target reboot.target - System Reboot.", "MESSAGE_ID": "39f53479d3a045ac8e11786248231fbf",
        "UNIT": "reboot.target", "JOB_TYPE": "start", "__REALTIME_TIMESTAMP": "1796276953719359", "__MONOTONIC_TIMESTAMP": "129934390",
    },
}


class FakeJournalctl:
    """CommandRunner with journalctl answering from the recorded boots; current: how many boots exist then.

    The journal as it was when boot number current (1-based, oldest first) was the running one: the same
    entries, --list-boots indexed from that boot (0) backwards, as journalctl numbers them.
    """

    PATH = "/usr/bin/journalctl"

    def __init__(self, current: int = len(BOOTS)) -> None:
        self.boots = BOOTS[:current]
        self.calls: list[list[str]] = []

    def find(self, name: str) -> t.Optional[str]:
        return self.PATH if name == "journalctl" else None

    def run(self, argv: list[str]) -> tuple[int, str, str]:
        self.calls.append(argv)
        if argv[0] != self.PATH:
            return 127, "", f"{argv[0]}: not found"
        if "--list-boots" in argv:
            listed = [dict(boot, index=position - len(self.boots) + 1) for position, boot in enumerate(self.boots)]
            return 0, json.dumps(listed, separators=(",", ":")) + "\n", ""
        boot_id = argv[argv.index("-b") + 1]
        if boot_id not in {boot["boot_id"] for boot in self.boots}:
            return 1, "", f"Data from the specified boot ({boot_id}) is not available: No such boot ID in journal\n"
        table = COMMAND_LINES if "--grep" in argv else SHUTDOWN_TARGETS
        entry = table.get(boot_id)
        return 0, (json.dumps(dict(entry, _BOOT_ID=boot_id)) + "\n") if entry else "", ""
