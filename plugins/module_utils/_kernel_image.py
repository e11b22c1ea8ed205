# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Kernel image headers: is this file a kernel kexec can load, for which architecture, which release."""

from __future__ import annotations

import os
import re
import struct
import typing as t
import zlib
from dataclasses import asdict, dataclass

from ansible_collections.fastreboot.kexec.plugins.module_utils._host import HostFiles

# x86 boot protocol (Documentation/arch/x86/boot.rst), offsets in the real-mode header.
X86_SETUP_SECTS = 0x1F1
X86_SYSSIZE = 0x1F4
X86_HEADER_MAGIC_OFFSET = 0x202
X86_HEADER_MAGIC = b"HdrS"
X86_PROTOCOL_VERSION = 0x206
X86_KERNEL_VERSION = 0x20E
X86_CMDLINE_SIZE = 0x238
X86_CMDLINE_SIZE_MIN_PROTOCOL = 0x0206
X86_SYSSIZE_MIN_PROTOCOL = 0x0204
SECTOR = 512
PARAGRAPH = 16

ARM64_MAGIC_OFFSET = 0x38
ARM64_MAGIC = b"ARM\x64"
RISCV_MAGIC_OFFSET = 0x30
RISCV_MAGIC = b"RISCV\0\0\0"
RISCV_MAGIC2 = b"RSC\x05"
EFI_ZBOOT_MAGIC_OFFSET = 4
EFI_ZBOOT_MAGIC = b"zimg"
ELF_MAGIC = b"\x7fELF"
GZIP_MAGIC = b"\x1f\x8b"

# The setup area is at most 255 + 1 sectors; the version string lives inside it.
HEADER_READ_SIZE = 256 * SECTOR

# uname -m values -> the image architecture they boot.
MACHINE_IMAGE_ARCH = {
    "x86_64": "x86",
    "i386": "x86",
    "i686": "x86",
    "aarch64": "arm64",
    "arm64": "arm64",
    "riscv64": "riscv",
}

FILE_NAME_PREFIXES = ("vmlinuz-", "vmlinux-", "Image-", "bzImage-", "kernel-")
# systemd-boot / kernel-install layout: ENTRY-TOKEN/KVER/linux
KERNEL_INSTALL_IMAGE_NAME = "linux"


# Words that mark a pre-release: 6.8.0-rc3 sorts before 6.8.0.
PRE_RELEASE_WORDS = ("rc", "alpha", "beta", "pre")


def version_key(release: str) -> list[tuple[int, int, str]]:
    """Sort key for kernel releases: numbers numerically (6.1.0-9 < 6.1.0-10), -rcN before the release.

    Each token maps to (rank, number, word); the end of the string ranks between pre-release words
    and everything else, so 6.8.0-rc3 < 6.8.0 < 6.8.0-1.
    """
    key: list[tuple[int, int, str]] = []
    for token in re.findall(r"\d+|[A-Za-z]+|~", release):
        if token.isdigit():
            key.append((3, int(token), ""))
        elif token == "~" or token.lower() in PRE_RELEASE_WORDS:
            key.append((0, 0, token.lower()))
        else:
            key.append((2, 0, token.lower()))
    key.append((1, 0, ""))
    return key


class KernelImageError(ValueError):
    """The file is not a kernel image this host can load."""


@dataclass
class KernelImageInfo:
    path: str
    image_format: str
    arch: t.Optional[str]
    release: t.Optional[str]
    boot_protocol: t.Optional[str] = None
    cmdline_size: t.Optional[int] = None
    size: int = 0

    def as_dict(self) -> dict[str, t.Any]:
        return asdict(self)


def _u16(data: bytes, offset: int) -> int:
    return int(struct.unpack_from("<H", data, offset)[0])


def _u32(data: bytes, offset: int) -> int:
    return int(struct.unpack_from("<I", data, offset)[0])


def _c_string(data: bytes, offset: int) -> str | None:
    end = data.find(b"\0", offset)
    if offset >= len(data) or end < 0:
        return None
    text = data[offset:end].decode("ascii", errors="replace")
    return text if text.isprintable() else None


def _parse_bzimage(path: str, data: bytes, file_size: int) -> KernelImageInfo:
    protocol = _u16(data, X86_PROTOCOL_VERSION)
    setup_sects = data[X86_SETUP_SECTS] or 4  # 0 means 4 for ancient boot loaders
    expected = (setup_sects + 1) * SECTOR
    if protocol >= X86_SYSSIZE_MIN_PROTOCOL:
        expected += _u32(data, X86_SYSSIZE) * PARAGRAPH
    if file_size < expected:
        raise KernelImageError(
            f"{path} is truncated: its bzImage header says {expected} bytes (setup_sects={setup_sects}, "
            f"syssize) but the file has {file_size}: reinstall the kernel package or copy the image again"
        )
    release = None
    version_offset = _u16(data, X86_KERNEL_VERSION)
    if version_offset:
        version = _c_string(data, 0x200 + version_offset)
        if version:
            release = version.split()[0]
    cmdline_size = _u32(data, X86_CMDLINE_SIZE) if protocol >= X86_CMDLINE_SIZE_MIN_PROTOCOL else None
    return KernelImageInfo(
        path=path,
        image_format="bzImage",
        arch="x86",
        release=release,
        boot_protocol=f"{protocol >> 8}.{protocol & 0xFF:02d}",
        cmdline_size=cmdline_size,
        size=file_size,
    )


def _gunzip_start(data: bytes, size: int) -> bytes:
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, size)
    except zlib.error:
        return b""


def parse_kernel_image(path: str, data: bytes, file_size: int) -> KernelImageInfo:
    """Identify a kernel image from its first bytes (data) and its size. path is only used in messages."""
    if len(data) >= X86_HEADER_MAGIC_OFFSET + 4 and data[X86_HEADER_MAGIC_OFFSET:X86_HEADER_MAGIC_OFFSET + 4] == X86_HEADER_MAGIC:
        if len(data) < X86_CMDLINE_SIZE + 4:
            raise KernelImageError(f"{path} is truncated: it ends inside the bzImage header ({file_size} bytes)")
        return _parse_bzimage(path, data, file_size)
    if data[ARM64_MAGIC_OFFSET:ARM64_MAGIC_OFFSET + 4] == ARM64_MAGIC:
        return KernelImageInfo(path=path, image_format="arm64 Image", arch="arm64", release=None, size=file_size)
    if data[RISCV_MAGIC_OFFSET:RISCV_MAGIC_OFFSET + 8] == RISCV_MAGIC or data[ARM64_MAGIC_OFFSET:ARM64_MAGIC_OFFSET + 4] == RISCV_MAGIC2:
        return KernelImageInfo(path=path, image_format="RISC-V Image", arch="riscv", release=None, size=file_size)
    if data[:2] == b"MZ" and data[EFI_ZBOOT_MAGIC_OFFSET:EFI_ZBOOT_MAGIC_OFFSET + 4] == EFI_ZBOOT_MAGIC:
        return KernelImageInfo(path=path, image_format="EFI zboot", arch=None, release=None, size=file_size)
    if data[:4] == ELF_MAGIC:
        return KernelImageInfo(path=path, image_format="ELF vmlinux", arch=None, release=None, size=file_size)
    if data[:2] == GZIP_MAGIC:
        inner = _gunzip_start(data, ARM64_MAGIC_OFFSET + 4)
        if inner[ARM64_MAGIC_OFFSET:ARM64_MAGIC_OFFSET + 4] == ARM64_MAGIC:
            return KernelImageInfo(path=path, image_format="arm64 Image.gz", arch="arm64", release=None, size=file_size)
        raise KernelImageError(f"{path} is gzip data but not a compressed kernel Image: pass a kernel image (vmlinuz)")
    raise KernelImageError(
        f"{path} is not a kernel image (no bzImage 'HdrS', arm64/RISC-V Image, EFI zboot or ELF header): "
        "pass the kernel (vmlinuz), not an initramfs or another file"
    )


def release_from_file_name(path: str) -> str | None:
    """The release a kernel file name carries (vmlinuz-6.1.0-26-amd64, .../6.8.9-300.fc40.x86_64/linux)."""
    name = os.path.basename(path)
    for prefix in FILE_NAME_PREFIXES:
        if name.startswith(prefix) and name[len(prefix):][:1].isdigit():
            return name[len(prefix):]
    if name == KERNEL_INSTALL_IMAGE_NAME:
        parent = os.path.basename(os.path.dirname(path))
        if re.match(r"\d", parent):
            return parent
    return None


def read_kernel_image(host: HostFiles, path: str, machine: str = "") -> KernelImageInfo:
    """Read and check the image at host path (already resolved); raise KernelImageError when unusable.

    machine (uname -m) enables the architecture check; unknown machines accept any format.
    """
    info = host.stat(path)
    data = host.read_bytes(path, HEADER_READ_SIZE)
    if info is None or data is None:
        raise KernelImageError(f"{path} cannot be read: check the path and the permissions")
    image_arch = MACHINE_IMAGE_ARCH.get(machine)
    try:
        image = parse_kernel_image(path, data, info.st_size)
    except KernelImageError:
        if machine and image_arch is None:
            # s390x/ppc64le images have no header we check; kexec itself judges them.
            return KernelImageInfo(path=path, image_format="unknown", arch=None, release=None, size=info.st_size)
        raise
    if image_arch and image.arch and image.arch != image_arch:
        raise KernelImageError(
            f"{path} is a kernel for {image.arch} ({image.image_format}) but this host is {machine}: "
            f"pass a kernel built for {machine}"
        )
    return image
