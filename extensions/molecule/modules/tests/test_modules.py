# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""After side_effect: the other kernel is loaded, recorded under /run with mode 0600, and the role's
default policy holds (ordinary reboots stay cold)."""
from __future__ import annotations

import json
import os

import testinfra.utils.ansible_runner

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(
    os.environ["MOLECULE_INVENTORY_FILE"]
).get_hosts("all")

RECORD = "/run/fastreboot-kexec/loaded.json"
GUARD = "fastreboot-kexec-guard.service"


def test_an_image_is_loaded(host):
    assert host.file("/sys/kernel/kexec_loaded").content_string.strip() == "1"


def test_record_is_private(host):
    record = host.file(RECORD)
    assert record.is_file
    assert record.user == "root" and record.group == "root"
    assert record.mode == 0o600
    directory = host.file("/run/fastreboot-kexec")
    assert directory.mode == 0o700


def test_record_describes_the_loaded_image(host):
    record = json.loads(host.file(RECORD).content_string)
    assert record["boot_id"] == host.file("/proc/sys/kernel/random/boot_id").content_string.strip()
    running = host.run("uname -r").stdout.strip()
    assert record["kernel_release"] != running
    assert record["kernel"] == f"/boot/vmlinuz-{record['kernel_release']}"
    assert record["kernel_sha256"] == host.run(f"sha256sum {record['kernel']}").stdout.split()[0]
    assert record["initrd"] == f"/boot/initrd.img-{record['kernel_release']}"
    assert record["initrd_sha256"] == host.run(f"sha256sum {record['initrd']}").stdout.split()[0]
    assert "fastreboot.test=converge" in record["cmdline"].split()
    assert "BOOT_IMAGE=" not in record["cmdline"]
    assert record["syscall"] in ("file", "legacy")


def test_loading_is_disabled_now(host):
    # side_effect's last step: the one-way switch, which refused a load and kept the image.
    assert host.file("/proc/sys/kernel/kexec_load_disabled").content_string.strip() == "1"


def test_role_installed_kexec_tools_without_a_prompt(host):
    assert host.package("kexec-tools").is_installed
    assert host.exists("kexec")
    if host.system_info.codename == "bookworm":
        # The question that would have prompted was answered before the install.
        assert "kexec-tools/load_kexec: false" in host.run("debconf-show kexec-tools").stdout


def test_default_policy_keeps_reboots_cold(host):
    if host.system_info.codename == "bookworm":
        assert "LOAD_KEXEC=false" in host.file("/etc/default/kexec").content_string
        assert host.run("systemctl is-enabled kexec.service").stdout.strip() == "masked"
    assert "SYSTEMCTL_SKIP_AUTO_KEXEC=1" in host.file("/etc/environment").content_string
    assert "SYSTEMCTL_SKIP_AUTO_KEXEC=1" in host.run("systemctl show-environment").stdout
    assert not host.file("/etc/systemd/system/reboot.target").exists
    assert not host.file("/etc/systemd/system/fastreboot-kexec-load.service").exists
    # The guard sits in kexec.target and lets through only a kexec that kexec_reboot requested.
    assert host.run(f"systemctl is-enabled {GUARD}").stdout.strip() == "enabled"
    assert GUARD in host.run("systemctl show -p Wants --value kexec.target").stdout.split()
    unit = host.file(f"/etc/systemd/system/{GUARD}")
    assert unit.mode == 0o644 and unit.user == "root"
