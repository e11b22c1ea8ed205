# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import bz2
import gzip
import lzma

import pytest

from ansible_collections.fastreboot.kexec.plugins.module_utils._host import HostFiles
from ansible_collections.fastreboot.kexec.plugins.module_utils._initrd_image import (
    InitrdImageError,
    parse_initrd_image,
    read_initrd_image,
)
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils.hosttree import (
    HostTree,
    arm64_image,
    bzimage,
    cpio,
)
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils.test_kernel_image import elf64

ARCHIVE = cpio("init") * 20

# The first bytes of real initramfs files: what Python's gzip/xz/lzma/bzip2 write, and for zstd and lz4
# the first 8 bytes zstd 1.5 and "lz4 -l" (legacy frames, as the kernel wants) wrote here.
REAL_STARTS = {
    "cpio (newc)": ARCHIVE,
    "cpio (newc with crc)": b"070702" + ARCHIVE[6:],
    "gzip": gzip.compress(ARCHIVE, mtime=0),
    "xz": lzma.compress(ARCHIVE, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32),
    "lzma": lzma.compress(ARCHIVE, format=lzma.FORMAT_ALONE),
    "bzip2": bz2.compress(ARCHIVE),
    "zstd": bytes.fromhex("28b52ffd24052900") + b"\0" * 64,
    "lz4 (legacy)": bytes.fromhex("02214c1806000000") + b"\0" * 64,
    "lzo": b"\x89LZO\x00\r\n\x1a\n" + b"\0" * 64,
}


@pytest.mark.parametrize("image_format", sorted(REAL_STARTS))
def test_every_format_the_kernel_unpacks_is_accepted(image_format):
    data = REAL_STARTS[image_format]
    assert parse_initrd_image("/boot/initrd.img", data, len(data)).image_format == image_format


def test_microcode_cpio_then_compressed_archive_is_accepted():
    # Debian/EL/Arch early microcode: an uncompressed cpio first, the compressed main archive appended.
    data = cpio("kernel/x86/microcode/GenuineIntel.bin") + b"\0" * 400 + gzip.compress(ARCHIVE, mtime=0)
    assert parse_initrd_image("/boot/initrd.img", data, len(data)).image_format == "cpio (newc)"


def test_zero_padding_before_the_archive_is_skipped_like_the_kernel_does():
    data = b"\0" * 512 + ARCHIVE
    assert parse_initrd_image("/boot/initrd.img", data, len(data)).image_format == "cpio (newc)"


@pytest.mark.parametrize(
    "data, message",
    [
        (bzimage(), r"initrd /boot/x is a kernel image \(bzImage\), not an initramfs: pass the initramfs .* as initrd, the kernel as kernel"),
        (bzimage(truncate_by=1000), r"is a kernel image \(bzImage\)"),
        (arm64_image(), r"is a kernel image \(arm64 Image\)"),
        (gzip.compress(arm64_image(), mtime=0), r"is a kernel image \(arm64 Image\.gz\)"),
        (elf64(note_offset=0x2000), r"is a kernel image \(ELF vmlinux\)"),
    ],
    ids=["bzImage", "truncated-bzImage", "arm64-Image", "arm64-Image.gz", "vmlinux"],
)
def test_item06_kernel_as_initrd_refused(data, message):
    with pytest.raises(InitrdImageError, match=message):
        parse_initrd_image("/boot/x", data, len(data))


@pytest.mark.parametrize(
    "data, message",
    [
        (b"#!/bin/sh\nexec /sbin/init\n", r"not an initramfs \(it starts with 23 21 2f 62 69 6e 2f 73, not a cpio, gzip"),
        (b"\0" * 4096, r"it starts with only zero bytes"),
        (b"070707" + b"0" * 200, r"not an initramfs"),  # old "odc" cpio: the kernel does not unpack it
        (elf64(interpreter=b"/lib64/ld-linux-x86-64.so.2", note_offset=0x2000), r"not an initramfs \(it starts with 7f 45 4c 46"),
        (b"", r"initrd /boot/x is empty: .*initrd=false"),
    ],
    ids=["script", "zeros", "odc-cpio", "program", "empty"],
)
def test_item06_other_files_as_initrd_refused(data, message):
    with pytest.raises(InitrdImageError, match=message):
        parse_initrd_image("/boot/x", data, len(data))


def test_read_initrd_image_reads_the_host_file(tmp_path):
    tree = HostTree(tmp_path)
    tree.write("/boot/initrd.img-6.1.0-26-amd64", REAL_STARTS["zstd"])
    tree.symlink("/initrd.img", "boot/initrd.img-6.1.0-26-amd64")
    assert read_initrd_image(HostFiles(str(tmp_path)), "/initrd.img").image_format == "zstd"
    with pytest.raises(InitrdImageError, match="cannot be read"):
        read_initrd_image(HostFiles(str(tmp_path)), "/boot/missing")
