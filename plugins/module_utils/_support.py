# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Can this host kexec? kexec-tools, syscalls, kexec_load_disabled, lockdown, Secure Boot, container, CAP_SYS_BOOT."""

from __future__ import annotations

import gzip
import platform
import re
import typing as t

from ansible_collections.fastreboot.kexec.plugins.module_utils import _codes as codes
from ansible_collections.fastreboot.kexec.plugins.module_utils._host import CommandRunner, HostFiles
from ansible_collections.fastreboot.kexec.plugins.module_utils._kernels import running_release
from ansible_collections.fastreboot.kexec.plugins.module_utils._paths import KEXEC_CRASH_LOADED, KEXEC_LOAD_DISABLED, KEXEC_LOADED
from ansible_collections.fastreboot.kexec.plugins.module_utils._record import read_flag

KEXEC_ROLE_HINT = "install it with the fastreboot.kexec.kexec role (or the kexec-tools package)"
# The text of the problem coded _codes.LOAD_DISABLED (compare the code, not this text).
LOAD_DISABLED_PROBLEM = (
    "kernel.kexec_load_disabled=1 forbids kexec until the next cold boot (the switch is one-way): "
    "reboot normally, and do not set it in sysctl.d if you want kexec"
)
LOCKDOWN = "/sys/kernel/security/lockdown"
EFI_DIR = "/sys/firmware/efi"
SECURE_BOOT_VAR = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
PROC_STATUS = "/proc/self/status"
CAP_SYS_BOOT = 22
CONTAINER_FILES = {"/run/.containerenv": "podman", "/.dockerenv": "docker"}
CGROUP_HINTS = ("docker", "kubepods", "lxc", "containerd", "libpod")
PROC_CONFIG = "/proc/config.gz"
LOCKDOWN_ACTIVE = ("integrity", "confidentiality")


def _kernel_config(host: HostFiles, release: str | None) -> str | None:
    text = host.read_text(f"/boot/config-{release}") if release else None
    if text is None:
        data = host.read_bytes(PROC_CONFIG)
        if data:
            try:
                text = gzip.decompress(data).decode("utf-8", errors="replace")
            except (OSError, EOFError):
                text = None
    return text


def _config_enabled(config: str | None, option: str) -> bool | None:
    if config is None:
        return None
    return re.search(rf"^{option}=y$", config, re.MULTILINE) is not None


class SupportProbe:
    """Collect the facts that decide whether this host can kexec, and a verdict."""

    def __init__(self, host: HostFiles, runner: CommandRunner, machine: str | None = None) -> None:
        self.host = host
        self.runner = runner
        self.machine = machine or platform.machine()

    def kexec_path(self) -> str | None:
        return self.runner.find("kexec")

    def kexec_tools_version(self, kexec_path: str | None) -> str | None:
        if not kexec_path:
            return None
        rc, out, err = self.runner.run([kexec_path, "--version"])
        match = re.search(r"kexec-tools[ -]v?([0-9][\w.+~-]*)", out + err)
        return match.group(1) if rc == 0 and match else None

    def lockdown(self) -> str | None:
        """The lockdown mode ('none', 'integrity', 'confidentiality'), None when the LSM is absent."""
        text = self.host.read_first_line(LOCKDOWN)
        match = re.search(r"\[(\w+)\]", text or "")
        return match.group(1) if match else None

    def secure_boot(self) -> str:
        """'enabled', 'disabled', or 'unsupported' (legacy BIOS boot or no SecureBoot variable)."""
        data = self.host.read_bytes(SECURE_BOOT_VAR)
        if data is not None and len(data) >= 5:
            # efivarfs: 4 attribute bytes, then the one-byte value.
            return "enabled" if data[4] == 1 else "disabled"
        return "unsupported"

    def container(self) -> str | None:
        """The container technology this runs in, or None on a (virtual) machine."""
        detect_virt = self.runner.find("systemd-detect-virt")
        if detect_virt:
            rc, out, _err = self.runner.run([detect_virt, "--container"])
            name = out.strip()
            if rc == 0 and name and name != "none":
                return name
        for path, name in CONTAINER_FILES.items():
            if self.host.exists(path):
                return name
        environ = self.host.read_bytes("/proc/1/environ") or b""
        for variable in environ.split(b"\0"):
            if variable.startswith(b"container="):
                return variable.split(b"=", 1)[1].decode("utf-8", errors="replace") or "container"
        cgroup = self.host.read_text("/proc/1/cgroup") or ""
        for hint in CGROUP_HINTS:
            if f"/{hint}" in cgroup:
                return hint
        return None

    def cap_sys_boot(self) -> bool | None:
        status = self.host.read_text(PROC_STATUS) or ""
        match = re.search(r"^CapEff:\s*([0-9a-fA-F]+)$", status, re.MULTILINE)
        if not match:
            return None
        return bool(int(match.group(1), 16) >> CAP_SYS_BOOT & 1)

    def probe(self) -> dict[str, t.Any]:
        kexec_path = self.kexec_path()
        release = running_release(self.host)
        config = _kernel_config(self.host, release)
        disabled = read_flag(self.host, KEXEC_LOAD_DISABLED)
        lockdown = self.lockdown()
        secure_boot = self.secure_boot()
        file_syscall = _config_enabled(config, "CONFIG_KEXEC_FILE")
        legacy_syscall = _config_enabled(config, "CONFIG_KEXEC")
        if lockdown in LOCKDOWN_ACTIVE:
            legacy_syscall = False  # the kernel refuses kexec_load under lockdown (EPERM)
        if disabled:
            file_syscall = legacy_syscall = False
        facts: dict[str, t.Any] = {
            "arch": self.machine,
            "kexec_path": kexec_path,
            "kexec_tools_version": self.kexec_tools_version(kexec_path),
            "syscalls": {"file": file_syscall, "legacy": legacy_syscall},
            "kexec_load_disabled": disabled,
            "lockdown": lockdown,
            "secure_boot": secure_boot,
            "efi": self.host.is_dir(EFI_DIR),
            "container": self.container(),
            "cap_sys_boot": self.cap_sys_boot(),
            "kexec_loaded": read_flag(self.host, KEXEC_LOADED),
            "kexec_crash_loaded": read_flag(self.host, KEXEC_CRASH_LOADED),
        }
        coded = coded_support_problems(facts)
        problems = [text for _code, text in coded]
        facts["problems"] = problems
        facts["problem_codes"] = [code for code, _text in coded]
        facts["supported"] = not problems
        facts["verdict"] = support_verdict(facts, problems)
        return facts


def legacy_blocked(facts: dict[str, t.Any]) -> bool:
    """kexec_load is refused under lockdown, which Secure Boot turns on in distribution kernels."""
    return facts.get("lockdown") in LOCKDOWN_ACTIVE or facts.get("secure_boot") == "enabled"


def coded_support_problems(facts: dict[str, t.Any]) -> list[tuple[str, str]]:
    """Everything that stops a kexec on this host: (code from _codes, text saying what to do about it)."""
    problems = []
    if facts.get("container"):
        problems.append((codes.CONTAINER, (
            f"this is a {facts['container']} container: kexec replaces the host's kernel and needs the host; "
            "run the task against the host (or VM) instead"
        )))
    if facts.get("cap_sys_boot") is False:
        problems.append((codes.NO_CAP_SYS_BOOT, "the process lacks CAP_SYS_BOOT: run as root (become: true)"))
    if facts.get("kexec_load_disabled"):
        problems.append((codes.LOAD_DISABLED, LOAD_DISABLED_PROBLEM))
    syscalls = facts.get("syscalls") or {}
    if not facts.get("kexec_load_disabled") and syscalls.get("file") is False and syscalls.get("legacy") is False:
        if facts.get("lockdown") in LOCKDOWN_ACTIVE:
            problems.append((codes.LOCKDOWN_WITHOUT_FILE_SYSCALL, (
                f"lockdown={facts['lockdown']} forbids kexec_load and the kernel lacks kexec_file_load "
                "(CONFIG_KEXEC_FILE): use a kernel with CONFIG_KEXEC_FILE or reboot normally"
            )))
        else:
            problems.append((codes.KERNEL_WITHOUT_KEXEC, "the kernel has neither CONFIG_KEXEC nor CONFIG_KEXEC_FILE: use a kernel built with kexec support"))
    if not facts.get("kexec_path"):
        problems.append((codes.KEXEC_TOOLS_MISSING, f"the kexec program (kexec-tools) is not installed: {KEXEC_ROLE_HINT}"))
    return problems


def support_problems(facts: dict[str, t.Any]) -> list[str]:
    """The texts of coded_support_problems."""
    return [text for _code, text in coded_support_problems(facts)]


def support_verdict(facts: dict[str, t.Any], problems: list[str]) -> str:
    if problems:
        return "kexec not possible: " + "; ".join(problems)
    syscalls = facts.get("syscalls") or {}
    usable = [name for name in ("file", "legacy") if syscalls.get(name) is not False]
    if legacy_blocked(facts) and "legacy" in usable:
        usable.remove("legacy")
    note = " (signed kernels only: Secure Boot/lockdown)" if legacy_blocked(facts) else ""
    return f"kexec possible with kexec-tools {facts.get('kexec_tools_version') or '(unknown version)'}, syscalls: {', '.join(usable)}{note}"
