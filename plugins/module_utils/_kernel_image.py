# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Kernel image headers: is this file a kernel kexec can load, for which architecture, which release.

ELF files: kexec-tools boots ELF vmlinux kernels on x86_64/i386 (elf-x86_64, elf-x86), arm64
(vmlinux) and riscv64 (elf-riscv), but any program is an ELF file too. An ELF is taken for a Linux
kernel only when it is an executable (ET_EXEC/ET_DYN; arm64 vmlinux is ET_DYN) for this machine,
asks for no program interpreter (PT_INTERP: /usr/bin/ls does, a kernel never does), and carries a
note named "Linux" in a PT_NOTE segment, which every vmlinux has had since 4.18 (BUILD_SALT in
init/version.c); kernel modules (ET_REL) and core files are refused. kexec_file_load takes ELF
kernels only on riscv (x86_64 takes bzImage, arm64 Image): see file_load_refusal.
"""

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
ELF_CLASS_32 = 1
ELF_CLASS_64 = 2
ELF_DATA_LSB = 1
ELF_DATA_MSB = 2
ET_EXEC = 2
ET_DYN = 3
ELF_TYPE_NAMES = {0: "ELF file of no type", 1: "relocatable ELF object (a kernel module or .o)", 4: "ELF core dump"}
PT_INTERP = 3
PT_NOTE = 4
ELF_LINUX_NOTE_NAME = b"Linux"
ELF_MAX_NOTE_BYTES = 64 * 1024
ELF_MAX_PROGRAM_HEADERS = 64
# e_machine -> the image architecture of MACHINE_IMAGE_ARCH.
ELF_MACHINE_ARCH = {3: "x86", 62: "x86", 183: "arm64", 243: "riscv", 20: "powerpc", 21: "powerpc", 22: "s390"}
# Image architectures whose kexec_file_load has no ELF loader (arch/*/kernel/machine_kexec_file.c).
ELF_FILE_LOAD_UNSUPPORTED = ("x86", "arm64")
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
    elf_machine: t.Optional[int] = None

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


def _elf_read(data: bytes, read_at: t.Callable[[int, int], bytes], offset: int, size: int) -> bytes:
    if offset + size <= len(data):
        return data[offset:offset + size]
    return read_at(offset, size) or data[offset:offset + size]


def _elf_has_linux_note(notes: bytes, order: str) -> bool:
    position = 0
    while position + 12 <= len(notes):
        namesz, descsz, _note_type = struct.unpack_from(order + "III", notes, position)
        position += 12
        name = notes[position:position + namesz].rstrip(b"\0")
        if name == ELF_LINUX_NOTE_NAME:
            return True
        position += (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return False


def _parse_elf(path: str, data: bytes, file_size: int, read_at: t.Callable[[int, int], bytes]) -> KernelImageInfo:
    """An ELF vmlinux, or KernelImageError naming what else the ELF file is (see the module docstring)."""
    not_kernel = "pass the kernel image (/boot/vmlinuz-RELEASE)"
    if len(data) < 52 or data[4] not in (ELF_CLASS_32, ELF_CLASS_64) or data[5] not in (ELF_DATA_LSB, ELF_DATA_MSB):
        raise KernelImageError(f"{path} has an ELF magic but no valid ELF header: {not_kernel}")
    order = "<" if data[5] == ELF_DATA_LSB else ">"
    is_64 = data[4] == ELF_CLASS_64
    e_type, e_machine = struct.unpack_from(order + "HH", data, 16)
    if e_type not in (ET_EXEC, ET_DYN):
        what = ELF_TYPE_NAMES.get(e_type, f"ELF file of type {e_type}")
        raise KernelImageError(f"{path} is a {what}, not a Linux kernel: {not_kernel}")
    if is_64:
        if len(data) < 64:
            raise KernelImageError(f"{path} is truncated: it ends inside the ELF header ({file_size} bytes)")
        phoff = int(struct.unpack_from(order + "Q", data, 32)[0])
        phentsize, phnum = struct.unpack_from(order + "HH", data, 54)
        entry_format, offset_field, size_field = order + "IIQQQQ", 2, 5  # p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz
    else:
        phoff = int(struct.unpack_from(order + "I", data, 28)[0])
        phentsize, phnum = struct.unpack_from(order + "HH", data, 42)
        entry_format, offset_field, size_field = order + "IIIII", 1, 4  # p_type, p_offset, p_vaddr, p_paddr, p_filesz
    entry_size = struct.calcsize(entry_format)
    headers = _elf_read(data, read_at, phoff, phentsize * min(phnum, ELF_MAX_PROGRAM_HEADERS)) if phentsize >= entry_size else b""
    linux_note = False
    for index in range(len(headers) // phentsize if phentsize else 0):
        fields = struct.unpack_from(entry_format, headers, index * phentsize)
        p_type, p_offset, p_filesz = fields[0], int(fields[offset_field]), int(fields[size_field])
        if p_type == PT_INTERP:
            interpreter = _elf_read(data, read_at, p_offset, min(p_filesz, 256)).split(b"\0")[0].decode("ascii", errors="replace")
            raise KernelImageError(
                f"{path} is an ELF program (it asks for the interpreter {interpreter or 'named in PT_INTERP'}), "
                f"not a Linux kernel: {not_kernel}"
            )
        if p_type == PT_NOTE and not linux_note:
            linux_note = _elf_has_linux_note(_elf_read(data, read_at, p_offset, min(p_filesz, ELF_MAX_NOTE_BYTES)), order)
    if not linux_note:
        raise KernelImageError(
            f"{path} is an ELF executable without the 'Linux' ELF note every vmlinux carries (since 4.18), "
            f"so it is not taken for a Linux kernel: {not_kernel}"
        )
    return KernelImageInfo(
        path=path, image_format="ELF vmlinux", arch=ELF_MACHINE_ARCH.get(e_machine), release=None, size=file_size, elf_machine=e_machine,
    )


def file_load_refusal(image: KernelImageInfo) -> str | None:
    """Why kexec_file_load cannot load image, or None when it may (the kernel has the last word)."""
    if image.image_format == "ELF vmlinux" and image.arch in ELF_FILE_LOAD_UNSUPPORTED:
        return f"kexec_file_load on {image.arch} takes no ELF vmlinux ({image.path}), only the compressed kernel image (vmlinuz)"
    return None


def parse_kernel_image(
    path: str, data: bytes, file_size: int, read_at: t.Optional[t.Callable[[int, int], bytes]] = None,
) -> KernelImageInfo:
    """Identify a kernel image from its first bytes (data) and its size. path is only used in messages.

    read_at(offset, size) reads beyond data (an ELF's notes); without it only data is looked at.
    """
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
        return _parse_elf(path, data, file_size, read_at or (lambda _offset, _size: b""))
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
    real = host.real(host.resolve(path))

    def read_at(offset: int, size: int) -> bytes:
        try:
            with open(real, "rb") as handle:
                handle.seek(offset)
                return handle.read(size)
        except (OSError, OverflowError, ValueError):
            return b""

    try:
        image = parse_kernel_image(path, data, info.st_size, read_at)
    except KernelImageError:
        if machine and image_arch is None and data[:4] != ELF_MAGIC:
            # s390x/ppc64le images have no header we check; kexec itself judges them.
            return KernelImageInfo(path=path, image_format="unknown", arch=None, release=None, size=info.st_size)
        raise
    if image_arch and image.arch != image_arch and (image.arch or image.elf_machine is not None):
        arch = image.arch or f"ELF machine {image.elf_machine}"
        raise KernelImageError(
            f"{path} is a kernel for {arch} ({image.image_format}) but this host is {machine}: "
            f"pass a kernel built for {machine}"
        )
    return image
