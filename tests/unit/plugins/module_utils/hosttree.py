# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Test helpers: host fixture trees with real layouts, real image header bytes, and a fake kexec."""

from __future__ import annotations

import os
import struct
import typing as t
from pathlib import Path

BOOT_ID = "0b9ad0a5-3f07-4c55-9d5c-6a6e4f1f2c11"
OTHER_BOOT_ID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
ROOT_UUID = "4f2a9c1e-8b7d-4e6f-a5c3-2d1b0e9f8a7c"
CAPEFF_ROOT = "000001ffffffffff"
CAPEFF_NO_SYS_BOOT = "000001ffffbfffff"  # bit 22 cleared


def bzimage(
    release: str = "6.1.0-26-amd64",
    setup_sects: int = 31,
    payload: int = 4096,
    protocol: int = 0x020F,
    cmdline_size: int = 2047,
    truncate_by: int = 0,
) -> bytes:
    """Bytes laid out like an x86 bzImage: boot sector + setup with the real-mode header, then payload.

    syssize counts 16-byte paragraphs of the protected-mode payload; the version string sits in the
    setup area at 0x200 + kernel_version, as in real kernels.
    """
    setup_size = (setup_sects + 1) * 512
    syssize = (payload + 15) // 16
    data = bytearray(setup_size + syssize * 16)
    data[0:2] = b"MZ"  # EFI stub images start with a PE header
    data[0x1F1] = setup_sects
    struct.pack_into("<I", data, 0x1F4, syssize)
    struct.pack_into("<H", data, 0x1FE, 0xAA55)
    data[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", data, 0x206, protocol)
    version_offset = 0x3C0
    version = f"{release} (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian {release}".encode()
    data[0x200 + version_offset:0x200 + version_offset + len(version) + 1] = version + b"\0"
    struct.pack_into("<H", data, 0x20E, version_offset)
    struct.pack_into("<I", data, 0x238, cmdline_size)
    for position in range(setup_size, len(data), 4096):
        data[position] = 0x1F  # non-zero payload so images of different releases hash differently
    if truncate_by:
        return bytes(data[:-truncate_by])
    return bytes(data)


def arm64_image(size: int = 8192) -> bytes:
    data = bytearray(size)
    data[0:2] = b"MZ"
    data[0x38:0x3C] = b"ARM\x64"
    return bytes(data)


def cpio(name: str) -> bytes:
    """A tiny newc cpio archive header with a distinctive name: stands in for an initramfs."""
    return b"070701" + name.encode() + b"\0" * 64


class HostTree:
    """Writes a host's files below root (a tmp_path)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, host_path: str) -> Path:
        return self.root / host_path.lstrip("/")

    def mkdir(self, host_path: str, mode: int = 0o755) -> Path:
        """A directory and its missing parents, each with mode (0755 like a real host, whatever the umask)."""
        path = self.path(host_path)
        missing = [directory for directory in [path, *path.parents] if not directory.exists()]
        for directory in reversed(missing):
            directory.mkdir()
            os.chmod(directory, mode)
        return path

    def write(self, host_path: str, content: t.Union[bytes, str], mode: int = 0o644) -> Path:
        path = self.path(host_path)
        self.mkdir(os.path.dirname(host_path.rstrip("/")) or "/")
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        os.chmod(path, mode)
        return path

    def symlink(self, host_path: str, target: str) -> None:
        path = self.path(host_path)
        self.mkdir(os.path.dirname(host_path.rstrip("/")) or "/")
        path.symlink_to(target)

    def read(self, host_path: str) -> str:
        return self.path(host_path).read_text()

    def kernel(self, release: str, image: t.Optional[str] = None, initrd: t.Optional[str] = None, **header: t.Any) -> str:
        """A bzImage at image (default /boot/vmlinuz-RELEASE) and, when given, an initramfs file."""
        image = image or f"/boot/vmlinuz-{release}"
        self.write(image, bzimage(release, **header))
        if initrd:
            self.write(initrd, cpio(os.path.basename(initrd)))
        return image

    def running(
        self,
        release: str,
        cmdline: str,
        boot_id: str = BOOT_ID,
        kexec_loaded: int = 0,
        capeff: str = CAPEFF_ROOT,
    ) -> None:
        self.write("/proc/sys/kernel/osrelease", release + "\n")
        self.write("/proc/cmdline", cmdline + "\n")
        self.write("/proc/sys/kernel/random/boot_id", boot_id + "\n")
        self.write("/proc/sys/kernel/kexec_load_disabled", "0\n")
        self.write("/proc/self/status", f"Name:\tpython3\nCapInh:\t0000000000000000\nCapEff:\t{capeff}\n")
        self.write("/proc/1/cgroup", "0::/init.scope\n")
        self.write("/proc/1/environ", b"HOME=/\0TERM=linux\0")
        self.write("/sys/kernel/kexec_loaded", f"{kexec_loaded}\n")
        self.write("/sys/kernel/kexec_crash_loaded", "0\n")
        self.write("/sys/kernel/security/lockdown", "[none] integrity confidentiality\n")
        self.write(f"/boot/config-{release}", "CONFIG_KEXEC=y\nCONFIG_KEXEC_FILE=y\nCONFIG_KEXEC_SIG=y\n")


class FakeKexec:
    """CommandRunner standing in for kexec-tools and the kernel: records argv, keeps /sys/kernel/kexec_loaded.

    Like the kernel, a failed load replaces nothing: the image loaded before stays loaded (the new image is
    built first and swapped in only on success). Like kexec-tools, -s uses kexec_file_load, -c kexec_load,
    and neither means kexec_load before 2.0.27 (bookworm's 2.0.25) and kexec_file_load first from 2.0.27
    on. kexec_load, to load or to unload, is refused under lockdown with the texts Debian's Secure Boot VMs
    print. results maps a syscall flag ("-s", "-c") to (rc, stderr) for kexec -l; the default is success.
    """

    LEGACY_REFUSED = {"-l": "kexec_load failed: Permission denied", "-u": "kexec unload failed: Permission denied"}

    def __init__(
        self,
        tree: HostTree,
        results: t.Optional[dict[str, tuple[int, str]]] = None,
        programs: t.Optional[dict[str, str]] = None,
        version: str = "kexec-tools 2.0.25",
    ) -> None:
        self.tree = tree
        self.results = results or {}
        self.programs = {"kexec": "/usr/sbin/kexec"} if programs is None else programs
        self.version = version
        self.calls: list[list[str]] = []

    def find(self, name: str) -> t.Optional[str]:
        return self.programs.get(name)

    def kexec_calls(self) -> list[list[str]]:
        return [argv for argv in self.calls if argv[0] == self.programs.get("kexec") and argv[1] != "--version"]

    def _syscall_flag(self, argv: list[str]) -> str:
        for flag in ("-s", "-c"):
            if flag in argv:
                return flag
        release = tuple(int(part) for part in self.version.split()[-1].split(".")[:3])
        return "-s" if release >= (2, 0, 27) else "-c"

    def _locked_down(self) -> bool:
        path = self.tree.path("/sys/kernel/security/lockdown")
        return path.exists() and ("[integrity]" in path.read_text() or "[confidentiality]" in path.read_text())

    def run(self, argv: list[str]) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        if argv[1:] == ["--version"]:
            return 0, self.version + "\n", ""
        if argv[1] not in ("-l", "-u"):
            raise AssertionError(f"unexpected command {argv}")
        flag = self._syscall_flag(argv)
        if flag == "-c" and self._locked_down():
            return 255, "", self.LEGACY_REFUSED[argv[1]] + "\n"
        if argv[1] == "-u":
            self.tree.write("/sys/kernel/kexec_loaded", "0\n")
            return 0, "", ""
        rc, err = self.results.get(flag, (0, ""))
        if rc == 0:
            self.tree.write("/sys/kernel/kexec_loaded", "1\n")
        return rc, "", err
