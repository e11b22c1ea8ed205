# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Initramfs files: is this file something the kernel unpacks as its initramfs.

The kernel (init/initramfs.c) takes a sequence of cpio "newc"/"crc" archives, each plain or
compressed (lib/decompress.c: gzip, bzip2, lzma, xz, lzo, lz4, zstd), and skips zero padding between
them. Only the start of the file is checked: an uncompressed early-microcode cpio followed by a
compressed main archive (Debian, EL, Arch) starts like a cpio, and so does what dracut and
mkinitcpio build. A kernel image given as initrd, or any other file, is refused: the new kernel
would find no init and panic. An old-style initrd (a bare file-system image) is refused too;
compress it or build an initramfs.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from ansible_collections.fastreboot.kexec.plugins.module_utils._host import HostFiles
from ansible_collections.fastreboot.kexec.plugins.module_utils._kernel_image import (
    HEADER_READ_SIZE,
    X86_HEADER_MAGIC,
    X86_HEADER_MAGIC_OFFSET,
    KernelImageError,
    parse_kernel_image,
)

# (magic at the start, format name), as the kernel recognises them.
INITRD_MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"070701", "cpio (newc)"),
    (b"070702", "cpio (newc with crc)"),
    (b"\x1f\x8b", "gzip"),
    (b"\x1f\x9e", "gzip (old)"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x5d\x00\x00", "lzma"),
    (b"\x02\x21\x4c\x18", "lz4 (legacy)"),
    (b"\x89LZO\x00", "lzo"),
    (b"BZh", "bzip2"),
)
FORMAT_LIST = "cpio, gzip, zstd, xz, lzma, lz4, lzo or bzip2"
INITRD_FIX = "pass the initramfs (/boot/initrd.img-RELEASE, /boot/initramfs-RELEASE.img) as initrd, the kernel as kernel"


class InitrdImageError(ValueError):
    """The file is not an initramfs the kernel can unpack."""


@dataclass
class InitrdImageInfo:
    path: str
    image_format: str
    size: int


def parse_initrd_image(path: str, data: bytes, file_size: int) -> InitrdImageInfo:
    """Identify an initramfs from its first bytes (data) and its size. path is only used in messages."""
    if file_size == 0:
        raise InitrdImageError(f"initrd {path} is empty: {INITRD_FIX}, or initrd=false for no initramfs")
    if data[X86_HEADER_MAGIC_OFFSET:X86_HEADER_MAGIC_OFFSET + 4] == X86_HEADER_MAGIC:
        raise InitrdImageError(f"initrd {path} is a kernel image (bzImage), not an initramfs: {INITRD_FIX}")
    try:
        kernel = parse_kernel_image(path, data, file_size)
    except KernelImageError:
        kernel = None
    if kernel is not None:  # arm64/RISC-V Image, Image.gz, EFI zboot, ELF vmlinux
        raise InitrdImageError(f"initrd {path} is a kernel image ({kernel.image_format}), not an initramfs: {INITRD_FIX}")
    start = data.lstrip(b"\0")  # the kernel skips zero padding before an archive
    for magic, image_format in INITRD_MAGICS:
        if start.startswith(magic):
            return InitrdImageInfo(path=path, image_format=image_format, size=file_size)
    shown = start[:8].hex(" ") if start else "only zero bytes"
    raise InitrdImageError(
        f"initrd {path} is not an initramfs (it starts with {shown}, not a {FORMAT_LIST} magic): {INITRD_FIX}"
    )


def read_initrd_image(host: HostFiles, path: str) -> InitrdImageInfo:
    """Read and check the initramfs at host path (already resolved); raise InitrdImageError when unusable."""
    info = host.stat(path)
    data: t.Optional[bytes] = host.read_bytes(path, HEADER_READ_SIZE)
    if info is None or data is None:
        raise InitrdImageError(f"initrd {path} cannot be read: check the path and the permissions")
    return parse_initrd_image(path, data, info.st_size)
