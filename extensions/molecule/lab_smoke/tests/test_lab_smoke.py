# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""After converge: every VM rebooted cold, through SeaBIOS and GRUB."""
from __future__ import annotations

import os
from pathlib import Path

import testinfra.utils.ansible_runner

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(
    os.environ["MOLECULE_INVENTORY_FILE"]
).get_hosts("all")

LAB_RUN = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"]) / "tests" / "output" / "lab"


def console_log(host) -> str:
    name = f"{os.environ['MOLECULE_SCENARIO_NAME']}-{host.backend.get_hostname()}"
    return (LAB_RUN / name / "console.log").read_text(errors="replace")


def test_boot_id_changed(host):
    before = host.file("/var/lib/lab-smoke-boot-id-before").content_string.strip()
    now = host.file("/proc/sys/kernel/random/boot_id").content_string.strip()
    assert len(now) == 36 and len(before) == 36
    assert now != before


def test_booted_through_grub(host):
    cmdline = host.file("/proc/cmdline").content_string
    assert "BOOT_IMAGE=" in cmdline, cmdline
    assert "console=ttyS0" in cmdline


def test_console_shows_two_firmware_boots(host):
    # The first boot and the reboot both passed through GRUB: its marker line appears twice.
    assert console_log(host).count("LAB-GRUB: boot loader running") == 2


def test_guest_is_what_the_lab_promises(host):
    assert host.user("lab").exists
    assert host.run("sudo -n -u lab sudo -n true").rc == 0
    kernels = sorted(p for p in host.file("/boot").listdir() if p.startswith("vmlinuz-"))
    assert len(kernels) == 2 and any("cloud" in k for k in kernels), kernels
    assert not host.package("kexec-tools").is_installed
    assert host.service("ssh").is_running
    assert host.run("systemctl is-system-running --wait").stdout.strip() in ("running", "degraded")
