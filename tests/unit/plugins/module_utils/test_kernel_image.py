# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import gzip
import os
import shutil
import struct

import pytest

from ansible_collections.fastreboot.kexec.plugins.module_utils._host import HostFiles
from ansible_collections.fastreboot.kexec.plugins.module_utils._kernel_image import (
    HEADER_READ_SIZE,
    KernelImageError,
    file_load_refusal,
    parse_kernel_image,
    read_kernel_image,
    release_from_file_name,
    version_key,
)
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils.hosttree import (
    HostTree,
    arm64_image,
    bzimage,
    cpio,
)

EM_X86_64 = 62
EM_AARCH64 = 183
LINUX_BUILD_SALT_NOTE = (b"Linux", 0x100, b"6.1.0-26-amd64\0")
GNU_BUILD_ID_NOTE = (b"GNU", 3, bytes(range(20)))
# Past the part read_kernel_image reads first, as in a real vmlinux (its .notes sit after the text).
NOTE_OFFSET = HEADER_READ_SIZE + 0x4000


def _padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def elf_note(name: bytes, note_type: int, desc: bytes) -> bytes:
    name_z = name + b"\0"
    return struct.pack("<III", len(name_z), len(desc), note_type) + _padded(name_z) + _padded(desc)


def elf64(
    machine: int = EM_X86_64,
    e_type: int = 2,
    notes: tuple = (GNU_BUILD_ID_NOTE, LINUX_BUILD_SALT_NOTE),
    interpreter: bytes | None = None,
    note_offset: int = NOTE_OFFSET,
) -> bytes:
    """An ELF64 little-endian file laid out like vmlinux: ELF header, program headers (LOAD, NOTE), notes far in.

    interpreter adds a PT_INTERP like a dynamically linked program has.
    """
    note_data = b"".join(elf_note(*note) for note in notes)
    phdrs = [(1, 5, 0x200000, 0x1000000)]  # PT_LOAD: p_type, p_flags, p_offset, p_filesz
    if interpreter is not None:
        phdrs.insert(0, (3, 4, 0x1000, len(interpreter) + 1))
    if note_data:
        phdrs.append((4, 4, note_offset, len(note_data)))
    data = bytearray(max(note_offset + len(note_data), 0x1100))
    data[0:16] = b"\x7fELF\x02\x01\x01" + b"\0" * 9
    struct.pack_into("<HHIQQQIHHHHHH", data, 16, e_type, machine, 1, 0x1000000, 64, 0, 0, 64, 56, len(phdrs), 64, 0, 0)
    for index, (p_type, p_flags, p_offset, p_filesz) in enumerate(phdrs):
        struct.pack_into("<IIQQQQQQ", data, 64 + index * 56, p_type, p_flags, p_offset, 0, 0, p_filesz, p_filesz, 0x1000)
    if interpreter is not None:
        data[0x1000:0x1000 + len(interpreter) + 1] = interpreter + b"\0"
    data[note_offset:note_offset + len(note_data)] = note_data
    return bytes(data)


def test_bzimage_release_protocol_and_cmdline_size():
    data = bzimage("6.1.0-26-amd64", protocol=0x020F, cmdline_size=2047)
    image = parse_kernel_image("/boot/vmlinuz", data, len(data))
    assert (image.image_format, image.arch, image.release) == ("bzImage", "x86", "6.1.0-26-amd64")
    assert image.boot_protocol == "2.15"
    assert image.cmdline_size == 2047


def test_bzimage_before_protocol_2_06_has_no_cmdline_size():
    data = bzimage("2.6.10", protocol=0x0205, cmdline_size=4096)
    assert parse_kernel_image("/boot/vmlinuz", data, len(data)).cmdline_size is None


def test_bzimage_with_appended_signature_is_fine():
    data = bzimage() + b"\x30\x82" * 600  # Authenticode signature after the image
    assert parse_kernel_image("/boot/vmlinuz", data, len(data)).release == "6.1.0-26-amd64"


def test_truncated_bzimage_is_refused_with_sizes():
    data = bzimage(payload=8192, truncate_by=100)
    expected = 32 * 512 + 8192
    with pytest.raises(KernelImageError, match=rf"truncated: its bzImage header says {expected} bytes .* has {expected - 100}"):
        parse_kernel_image("/boot/vmlinuz", data, len(data))


def test_bzimage_cut_inside_header_is_truncated():
    data = bzimage()[:0x220]
    with pytest.raises(KernelImageError, match="ends inside the bzImage header"):
        parse_kernel_image("/boot/vmlinuz", data, len(data))


def test_setup_sects_zero_means_four():
    data = bytearray(bzimage(setup_sects=4, payload=64))
    data[0x1F1] = 0
    image = parse_kernel_image("/boot/vmlinuz", bytes(data), len(data))
    assert image.release == "6.1.0-26-amd64"


def test_arm64_image_and_gzip_compressed_image():
    raw = arm64_image()
    assert parse_kernel_image("Image", raw, len(raw)).arch == "arm64"
    packed = gzip.compress(raw)
    image = parse_kernel_image("/boot/vmlinuz-6.1.0-26-arm64", packed, len(packed))
    assert (image.image_format, image.arch) == ("arm64 Image.gz", "arm64")


@pytest.mark.parametrize(
    "data",
    [cpio("initrd.img"), b"#!/bin/sh\necho hi\n" * 40, b"\0" * 4096, gzip.compress(b"plain text" * 100, mtime=0)],
    ids=["cpio", "script", "zeros", "gzip"],
)
def test_other_files_are_not_kernels(data):
    with pytest.raises(KernelImageError, match="not a|gzip data"):
        parse_kernel_image("/boot/initrd.img-6.1.0-26-amd64", data, len(data))


def test_read_refuses_foreign_architecture(tmp_path):
    tree = HostTree(tmp_path)
    tree.write("/boot/Image-6.1.0", arm64_image())
    with pytest.raises(KernelImageError, match="kernel for arm64 .* this host is x86_64"):
        read_kernel_image(HostFiles(str(tmp_path)), "/boot/Image-6.1.0", "x86_64")


def test_read_accepts_any_format_on_unchecked_architecture(tmp_path):
    tree = HostTree(tmp_path)
    tree.write("/boot/vmlinuz-6.4.0-150600.23.25-default", b"\0" * 8192)
    image = read_kernel_image(HostFiles(str(tmp_path)), "/boot/vmlinuz-6.4.0-150600.23.25-default", "s390x")
    assert image.image_format == "unknown"


@pytest.mark.parametrize(
    "path, release",
    [
        ("/boot/vmlinuz-6.1.0-26-amd64", "6.1.0-26-amd64"),
        ("/boot/vmlinuz-5.14.0-427.13.1.el9_4.x86_64", "5.14.0-427.13.1.el9_4.x86_64"),
        ("/boot/Image-6.4.0-150600.23.25-default", "6.4.0-150600.23.25-default"),
        ("/efi/3e0f/6.8.5-301.fc40.x86_64/linux", "6.8.5-301.fc40.x86_64"),
        ("/boot/vmlinuz-linux-lts", None),
        ("/boot/vmlinuz-lts", None),
        ("/vmlinuz", None),
    ],
)
def test_release_from_file_name(path, release):
    assert release_from_file_name(path) == release


@pytest.mark.parametrize(
    "older, newer",
    [
        ("6.1.0-9-amd64", "6.1.0-10-amd64"),
        ("6.8.0-rc3", "6.8.0"),
        ("6.8.0-rc3", "6.8.0-rc10"),
        ("6.8.0", "6.8.0-1"),
        ("5.14.0-427.13.1.el9_4.x86_64", "5.14.0-503.14.1.el9_5.x86_64"),
        ("6.6.58-1-lts", "6.11.5-arch1-1"),
        ("6.8.0-060800rc3-generic", "6.8.0-060800-generic"),
        ("4.19.0-27-amd64", "6.1.0-9-amd64"),
    ],
)
def test_version_order(older, newer):
    assert version_key(older) < version_key(newer)
    assert sorted([newer, older], key=version_key) == [older, newer]


# Item 6: an ELF file is a kernel only with evidence ----------------------------------------------------


def read_elf(tmp_path, data, machine="x86_64", name="/boot/vmlinux-6.1.0-26-amd64"):
    HostTree(tmp_path).write(name, data)
    return read_kernel_image(HostFiles(str(tmp_path)), name, machine)


def test_item06_elf_vmlinux_with_linux_note_is_a_kernel(tmp_path):
    image = read_elf(tmp_path, elf64())
    assert (image.image_format, image.arch) == ("ELF vmlinux", "x86")


def test_arm64_vmlinux_is_position_independent_and_still_a_kernel(tmp_path):
    image = read_elf(tmp_path, elf64(machine=EM_AARCH64, e_type=3), machine="aarch64")
    assert (image.image_format, image.arch) == ("ELF vmlinux", "arm64")


@pytest.mark.skipif(not os.path.isfile("/usr/bin/ls") or open("/usr/bin/ls", "rb").read(4) != b"\x7fELF", reason="needs an ELF /usr/bin/ls")
def test_item06_real_program_as_kernel_refused(tmp_path):
    tree = HostTree(tmp_path)
    tree.path("/usr/bin").mkdir(parents=True)
    shutil.copyfile("/usr/bin/ls", tree.path("/usr/bin/ls"))
    with pytest.raises(KernelImageError, match=r"/usr/bin/ls is an ELF program \(it asks for the interpreter /lib.*ld-linux.*\), not a Linux kernel: pass"):
        read_kernel_image(HostFiles(str(tmp_path)), "/usr/bin/ls", os.uname().machine)


@pytest.mark.parametrize(
    "data, message",
    [
        (elf64(interpreter=b"/lib64/ld-linux-x86-64.so.2"), r"ELF program \(it asks for the interpreter /lib64/ld-linux-x86-64\.so\.2\)"),
        (elf64(notes=(GNU_BUILD_ID_NOTE,)), r"ELF executable without the 'Linux' ELF note"),  # a static program
        (elf64(notes=()), r"without the 'Linux' ELF note"),
        (elf64(e_type=1), r"relocatable ELF object \(a kernel module"),
        (elf64(e_type=4), r"ELF core dump"),
        (b"\x7fELF\x09" + b"\0" * 60, r"no valid ELF header"),
    ],
    ids=["dynamic-program", "static-program", "no-notes", "module", "core", "garbage"],
)
def test_item06_elf_without_kernel_evidence_refused(tmp_path, data, message):
    with pytest.raises(KernelImageError, match=message):
        read_elf(tmp_path, data)


def test_item06_elf_program_refused_on_unchecked_architecture_too(tmp_path):
    # s390x/ppc64le images we cannot parse are left to kexec, but an ELF program is identifiable anywhere.
    with pytest.raises(KernelImageError, match="ELF program"):
        read_elf(tmp_path, elf64(interpreter=b"/lib/ld64.so.1"), machine="ppc64le")


def test_item06_elf_kernel_for_another_architecture_refused(tmp_path):
    with pytest.raises(KernelImageError, match=r"kernel for arm64 \(ELF vmlinux\) but this host is x86_64"):
        read_elf(tmp_path, elf64(machine=EM_AARCH64))
    with pytest.raises(KernelImageError, match=r"kernel for ELF machine 8 \(ELF vmlinux\) but this host is x86_64"):
        read_elf(tmp_path, elf64(machine=8))


def test_elf_note_within_the_first_bytes_needs_no_second_read():
    data = elf64(note_offset=0x2000)
    assert parse_kernel_image("/boot/vmlinux", data, len(data)).image_format == "ELF vmlinux"


def test_item06_x86_elf_kernel_cannot_use_file_load():
    data = elf64(note_offset=0x2000)
    assert "takes no ELF vmlinux" in file_load_refusal(parse_kernel_image("/boot/vmlinux", data, len(data)))
    packed = bzimage()
    assert file_load_refusal(parse_kernel_image("/boot/vmlinuz", packed, len(packed))) is None
