# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""After converge: data survived the reboots, the launcher that carries the collection code is root's, and
the policy the converge ended with: with SUITE=all (make test-all) kexec_every_reboot: true, whose last
ordinary reboot was a kexec into the boot loader's default kernel; in make test the default policy, after
the cold fallback's reboot through GRUB."""
from __future__ import annotations

import os
import re

import pytest
import testinfra.utils.ansible_runner

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(
    os.environ["MOLECULE_INVENTORY_FILE"]
).get_hosts("all")

EVERY_REBOOT = os.environ.get("SUITE") == "all"  # converge applies kexec_every_reboot: true last
every_reboot_only = pytest.mark.skipif(not EVERY_REBOOT, reason="make test-all only (SUITE=all)")
default_policy_only = pytest.mark.skipif(EVERY_REBOOT, reason="make test only: converge keeps the default policy")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def test_file_written_before_the_kexec_is_intact(host):
    written = host.file("/var/lib/fastreboot-test/written-before").content_string.strip()
    assert UUID.match(written), written
    assert written != host.file("/proc/sys/kernel/random/boot_id").content_string.strip()


@every_reboot_only
def test_last_ordinary_reboot_was_a_kexec_into_the_default_kernel(host):
    # converge ends with kexec_every_reboot: true and an ansible.builtin.reboot
    assert "BOOT_IMAGE=" not in host.file("/proc/cmdline").content_string
    default = host.run("grub-editenv list").stdout
    release = host.run("uname -r").stdout.strip()
    assert f"gnulinux-{release}-advanced" in default, (release, default)
    assert host.file("/sys/kernel/kexec_loaded").content_string.strip() == "0"


@every_reboot_only
def test_every_reboot_policy_is_in_place(host):
    assert host.file("/etc/systemd/system/reboot.target").is_symlink
    assert host.file("/etc/systemd/system/reboot.target").linked_to.endswith("/kexec.target")
    assert host.run("systemctl is-enabled fastreboot-kexec-load.service").stdout.strip() == "enabled"
    assert not host.file("/etc/systemd/system/fastreboot-kexec-guard.service").exists


@default_policy_only
def test_last_reboot_was_the_cold_fallback_into_the_default_kernel_and_the_policy_is_the_default(host):
    # converge ends with kexec_reboot cold_fallback: true on a host with kernel.kexec_load_disabled
    assert "BOOT_IMAGE=" in host.file("/proc/cmdline").content_string
    release = host.run("uname -r").stdout.strip()
    assert f"gnulinux-{release}-advanced" in host.run("grub-editenv list").stdout
    assert not host.file("/etc/systemd/system/reboot.target").exists
    assert host.file("/etc/systemd/system/fastreboot-kexec-guard.service").exists
    assert host.run("systemctl is-enabled fastreboot-kexec-load.service").rc != 0


def test_system_is_healthy_after_all_reboots(host):
    assert host.run("systemctl is-system-running --wait").stdout.strip() in ("running", "degraded")
    assert host.service("ssh").is_running


def test_the_launcher_of_the_collection_code_is_root_only(host):
    # The guard and the shutdown helper run the collection's module_utils, carried by the launcher (issue 13).
    base = "/usr/local/lib/fastreboot-kexec"
    launcher = host.file(f"{base}/fastreboot-kexec")
    assert launcher.user == "root" and launcher.mode == 0o755
    python = host.run("readlink -f /usr/bin/python3").stdout.strip()
    text = launcher.content_string
    assert text.splitlines()[0] in (f"#!{python} -IB", "#!/usr/bin/python3 -IB")
    assert '"_shutdown": "' in text and '"_loader": "' in text
    for entry in host.run(f"find {base} -printf '%u %m %p\\n'").stdout.splitlines():
        owner, mode = entry.split(" ")[:2]
        assert owner == "root" and int(mode, 8) & 0o022 == 0, entry
    # only the launcher: no tree of earlier versions, no bytecode written by -B
    assert host.run(f"find {base} -mindepth 1").stdout.split() == [f"{base}/fastreboot-kexec"]
    assert not host.file("/usr/local/sbin/fastreboot-kexec-load").exists
