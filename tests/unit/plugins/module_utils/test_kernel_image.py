# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import gzip

import pytest

from ansible_collections.fastreboot.kexec.plugins.module_utils._host import HostFiles
from ansible_collections.fastreboot.kexec.plugins.module_utils._kernel_image import (
    KernelImageError,
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
