# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Installed kernels, their initramfs by distribution naming, and the selectors default/latest/running."""

from __future__ import annotations

import os
import stat
import typing as t
from dataclasses import asdict, dataclass, field

from ansible_collections.fastreboot.kexec.plugins.module_utils._boot_entry import ESP_MOUNTS, BootEntry, BootLoaderError
from ansible_collections.fastreboot.kexec.plugins.module_utils._bootloader import BootLoader
from ansible_collections.fastreboot.kexec.plugins.module_utils._host import CommandRunner, HostFiles
from ansible_collections.fastreboot.kexec.plugins.module_utils._paths import MODULE_DIRS, OSRELEASE, PROC_CMDLINE
from ansible_collections.fastreboot.kexec.plugins.module_utils._kernel_image import (
    HEADER_READ_SIZE,
    KernelImageError,
    parse_kernel_image,
    release_from_file_name,
    version_key,
)

SELECTORS = ("default", "latest", "running")
BOOT_DIR = "/boot"
# In order of preference when one release has several files (SUSE ships vmlinux-KVER.gz next to vmlinuz-KVER).
IMAGE_PREFIXES = ("vmlinuz-", "Image-", "vmlinux-")
SKIPPED_SUFFIXES = (
    ".old", ".bak", ".sig", ".hmac", ".gz", ".xz", ".zst", ".bz2", ".efi.signed",
    ".dpkg-old", ".dpkg-new", ".dpkg-tmp", ".dpkg-dist", ".dpkg-bak", ".rpmsave", ".rpmnew",
)
RESCUE_MARKER = "-0-rescue-"  # EL's generic rescue kernel is not an installed release
MICROCODE_IMAGES = ("intel-ucode.img", "amd-ucode.img")
KERNEL_INSTALL_SKIP = ("EFI", "efi", "loader", "grub", "grub2", "lost+found")


class KernelSelectionError(ValueError):
    """No kernel matches the request."""


@dataclass
class InstalledKernel:
    release: str
    image: str
    initrds: t.List[str]
    naming: str

    def as_dict(self) -> dict[str, t.Any]:
        return asdict(self)


@dataclass
class KernelChoice:
    """The kernel a request resolves to; initrds/options are the boot entry's when it came from one."""

    image: str
    release: t.Optional[str]
    selected_by: str
    entry: t.Optional[BootEntry] = None
    warnings: t.List[str] = field(default_factory=list)
    # The path as given (option or boot entry), before symlinks were resolved: whoever can write a
    # directory on that way decides what boots, so the file checks start from here.
    requested: t.Optional[str] = None

    @property
    def path_to_check(self) -> str:
        return self.requested or self.image

    @property
    def initrds(self) -> list[str] | None:
        return list(self.entry.initrds) if self.entry else None

    @property
    def options(self) -> str | None:
        return self.entry.options if self.entry else None


def running_release(host: HostFiles) -> str | None:
    """uname -r of the running kernel."""
    return host.read_first_line(OSRELEASE) or None


def module_dirs(host: HostFiles) -> list[str]:
    """The kernel modules directories (one per installed release), each once when /lib is a symlink to /usr/lib."""
    seen: dict[str, str] = {}
    for base in MODULE_DIRS:
        for path in host.glob(base, "*"):
            seen.setdefault(host.resolve(path), path)
    return list(seen.values())


def _image_suffix(name: str) -> str | None:
    for prefix in IMAGE_PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix):]
    return None


class KernelInventory:
    """Kernels installed on the host below host.root."""

    def __init__(self, host: HostFiles, runner: CommandRunner | None = None) -> None:
        self.host = host
        self.runner = runner
        self._installed: list[InstalledKernel] | None = None

    # The running kernel -----------------------------------------------------------------------

    def running_release(self) -> str | None:
        return running_release(self.host)

    def running_cmdline(self) -> str | None:
        text = self.host.read_text(PROC_CMDLINE)
        return None if text is None else text.strip()

    # Releases and initramfs by naming ----------------------------------------------------------

    def release_of(self, image: str, header_release: str | None = None) -> str | None:
        """The release of a kernel image (a resolved path), the one place it is derived.

        The version string in its header (what uname -r will say; header_release when the caller has read
        the header already), else its file name, else the modules directory that matches its flavour.
        """
        if header_release is None:
            stat_result = self.host.stat(image)
            data = self.host.read_bytes(image, HEADER_READ_SIZE)
            if stat_result is not None and data:
                try:
                    header_release = parse_kernel_image(image, data, stat_result.st_size).release
                except KernelImageError:
                    header_release = None
        release = header_release or release_from_file_name(image)
        if release:
            return release
        flavor = _image_suffix(os.path.basename(image))
        if not flavor:
            return None
        installed_module_dirs = module_dirs(self.host)
        for path in installed_module_dirs:
            # Arch: /usr/lib/modules/KVER/pkgbase names the package (linux, linux-lts).
            if (self.host.read_first_line(f"{path}/pkgbase") or "") == flavor:
                return os.path.basename(path)
        # Alpine: vmlinuz-lts belongs to modules directory 6.6.58-0-lts.
        matches = [os.path.basename(path) for path in installed_module_dirs if os.path.basename(path).endswith("-" + flavor)]
        return matches[0] if len(matches) == 1 else None

    def release_or_name(self, image: str, header_release: str | None = None) -> str:
        """release_of, or the file name when no release can be told (what the record and kexec_info then show)."""
        return self.release_of(image, header_release) or os.path.basename(image)

    def initrds_for(self, image: str) -> tuple[list[str], str, list[str]]:
        """(initrds in load order, naming scheme, paths looked for) for a resolved kernel image path."""
        directory, name = os.path.split(image)
        if name == "linux":
            candidates = [(f"{directory}/initrd", "kernel-install")]
            flavor = False
        else:
            suffix = _image_suffix(name)
            if suffix is None:
                return [], "none", []
            flavor = not suffix[:1].isdigit()
            candidates = [
                (f"{directory}/initrd.img-{suffix}", "debian"),
                (f"{directory}/initramfs-{suffix}.img", "arch" if flavor else "el"),
                (f"{directory}/initrd-{suffix}", "suse"),
                (f"{directory}/initramfs-{suffix}", "alpine"),
            ]
        for path, naming in candidates:
            if self.host.is_file(path):
                microcode = [f"{directory}/{ucode}" for ucode in MICROCODE_IMAGES if flavor and self.host.is_file(f"{directory}/{ucode}")]
                return microcode + [path], naming, [candidate for candidate, _naming in candidates]
        return [], "none", [candidate for candidate, _naming in candidates]

    # Discovery ---------------------------------------------------------------------------------

    def _is_kernel_file(self, path: str) -> bool:
        name = os.path.basename(path)
        if name.endswith(SKIPPED_SUFFIXES) or RESCUE_MARKER in name:
            return False
        info = self.host.stat(path)
        return info is not None and stat.S_ISREG(info.st_mode)

    def installed(self) -> list[InstalledKernel]:
        """Installed kernels, newest first."""
        if self._installed is not None:
            return self._installed
        found: dict[str, InstalledKernel] = {}
        releases: set[str] = set()

        def add(path: str, release: str | None) -> None:
            resolved = self.host.resolve(path)
            if resolved in found:
                return
            release = release or self.release_or_name(resolved)
            if release in releases:
                return  # vmlinux-KVER next to vmlinuz-KVER: keep the preferred one
            initrds, naming, _looked = self.initrds_for(resolved)
            found[resolved] = InstalledKernel(release=release, image=resolved, initrds=initrds, naming=naming)
            releases.add(release)

        for prefix in IMAGE_PREFIXES:
            for path in self.host.glob(BOOT_DIR, prefix + "*"):
                if self._is_kernel_file(path):
                    add(path, None)
        # kernel-install / systemd-boot layout: $BOOT/ENTRY-TOKEN/KVER/linux
        for esp in ESP_MOUNTS:
            for token_dir in self.host.glob(esp, "*"):
                if os.path.basename(token_dir) in KERNEL_INSTALL_SKIP or not self.host.is_dir(token_dir):
                    continue
                for version_dir in self.host.glob(token_dir, "*"):
                    if self.host.is_file(f"{version_dir}/linux"):
                        add(f"{version_dir}/linux", None)
        self._installed = sorted(found.values(), key=lambda kernel: (version_key(kernel.release), kernel.image), reverse=True)
        return self._installed

    def _installed_or_fail(self, selector: str) -> list[InstalledKernel]:
        kernels = self.installed()
        if not kernels:
            raise KernelSelectionError(
                f"kernel={selector}: no installed kernel found (looked for /boot/vmlinuz-*, /boot/Image-*, "
                "/boot/vmlinux-* and ENTRY-TOKEN/KVER/linux in /efi, /boot, /boot/efi): install a kernel "
                "package or pass kernel as a path"
            )
        return kernels

    def latest(self) -> InstalledKernel:
        return self._installed_or_fail("latest")[0]

    def running(self) -> InstalledKernel:
        release = self.running_release()
        kernels = self._installed_or_fail("running")
        for kernel in kernels:
            if kernel.release == release:
                return kernel
        raise KernelSelectionError(
            f"kernel=running: the running release {release} has no installed image (installed: "
            f"{', '.join(kernel.release for kernel in kernels)}): its package was probably removed; "
            "use kernel=latest, kernel=default or a path"
        )

    def default_entry(self) -> BootEntry:
        """The boot loader's default entry; BootLoaderError when unknown or when its kernel is missing."""
        entry = BootLoader(self.host, self.runner).default_entry()
        if not self.host.is_file(entry.image):
            raise BootLoaderError(
                f"the default boot entry '{entry.title}' ({entry.config}) points to {entry.image}, which does not exist"
            )
        return entry

    # Selection ---------------------------------------------------------------------------------

    def select(self, kernel: str) -> KernelChoice:
        """Resolve the kernel option: a selector or an absolute path (symlinks resolved)."""
        if kernel == "default":
            try:
                entry = self.default_entry()
            except BootLoaderError as error:
                latest = self.latest()
                note = f"boot loader unreadable: {error}"
                return KernelChoice(
                    image=latest.image,
                    release=latest.release,
                    selected_by=f"latest ({note})",
                    warnings=[f"kernel=default: {note}; using the newest installed kernel {latest.release} instead"],
                )
            image = self.host.resolve(entry.image)
            return KernelChoice(image=image, release=self.release_of(image), selected_by="default", entry=entry, requested=entry.image)
        if kernel == "latest":
            chosen = self.latest()
            return KernelChoice(image=chosen.image, release=chosen.release, selected_by="latest")
        if kernel == "running":
            chosen = self.running()
            return KernelChoice(image=chosen.image, release=chosen.release, selected_by="running")
        if not kernel.startswith("/"):
            raise KernelSelectionError(
                f"kernel={kernel!r} is neither an absolute path nor one of {', '.join(SELECTORS)}: "
                "pass e.g. kernel=/boot/vmlinuz-6.1.0-26-amd64 or kernel=latest"
            )
        image = self.host.resolve(kernel)
        return KernelChoice(image=image, release=self.release_of(image), selected_by="path", requested=kernel)

    # Facts for kexec_info ----------------------------------------------------------------------

    def describe(self) -> dict[str, t.Any]:
        """running release/cmdline, installed kernels and the boot loader default, for kexec_info."""
        default: dict[str, t.Any] | None = None
        default_error = None
        try:
            entry = self.default_entry()
            default = entry.as_dict()
            default["release"] = self.release_of(self.host.resolve(entry.image))
        except BootLoaderError as error:
            default_error = str(error)
        return {
            "running_release": self.running_release(),
            "running_cmdline": self.running_cmdline(),
            "installed": [kernel.as_dict() for kernel in self.installed()],
            "default": default,
            "default_error": default_error,
        }
