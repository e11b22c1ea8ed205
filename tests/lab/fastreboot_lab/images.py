# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Lab disk images: mmdebstrap, a disk without loop devices, a first boot that installs GRUB.

  bookworm, trixie          SeaBIOS -> GRUB on the MBR -> kernel (customize.sh, firstboot.sh)
  uefi-sdboot-trixie        OVMF -> systemd-boot (ESP, BLS type 1 entries) -> kernel, GPT
  uefi-secureboot-DIST      OVMF with Secure Boot -> shim -> signed GRUB -> signed kernel, GPT

Cached under a hash of their recipe (their files in tests/lab/image/ and the build functions below).
"""
from __future__ import annotations

import hashlib
import inspect
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from .base import DISTS, RECIPE_DIR, LabError, cache_dir, log, qemu_base_cmd

DISK_SIZE = "4G"
FIRSTBOOT_TIMEOUT = 900
ROOT_SIZE_MIB = 4096
ESP_SIZE_MIB = 512
# GPT partition types: EFI System, and the x86-64 root of the Discoverable Partitions Specification.
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
ROOT_TYPE = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
# Smaller, faster images: no documentation or translations; the apt cache and lists stay (a package
# install in a test needs no network).
MMDEBSTRAP_OPTIONS = (
    "--variant=apt", "--mode=root", "--format=directory",
    "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright", "--dpkgopt=path-exclude=/usr/share/locale/*",
    "--skip=cleanup/apt/lists", "--skip=cleanup/apt/cache",
)
# Debian's own grub-install for Secure Boot: shim and the signed GRUB, also on the removable path
# EFI/BOOT/BOOTX64.EFI (a fresh OVMF variable store has no boot entry for the disk), no NVRAM writes.
GRUB_INSTALL_SECUREBOOT = ("--target=x86_64-efi --efi-directory=/boot/efi --uefi-secure-boot "
                           "--force-extra-removable --no-nvram")


@dataclass(frozen=True)
class ImageSpec:
    """One lab image: a Debian release, its firmware and boot loader, and the recipe files that make it."""
    name: str
    dist: str
    firmware: str  # a key of base.FIRMWARES
    boot_loader: str  # "grub" or "systemd-boot"
    recipe: tuple[str, ...]  # files of tests/lab/image/ that shape the image (hashed)
    hooks: tuple[str, ...] = ()  # mmdebstrap customize hooks in their order (the BIOS build names its own)
    packages: tuple[str, ...] = ()  # beyond packages.txt's
    firstboot: bool = True  # the guest installs its boot loader on a first boot (GRUB)


def bios_image(dist: str) -> ImageSpec:
    # The BIOS recipe files by name: the hash of these images must not change when files for other
    # images are added to the folder.
    return ImageSpec(dist, dist, "bios", "grub", ("customize.sh", "firstboot.sh", "grub.sh", "guest.sh", "packages.txt"))


def sdboot_image(dist: str) -> ImageSpec:
    hooks = ("uefi/esp.sh", "guest.sh", "uefi/sdboot.sh")
    return ImageSpec(f"uefi-sdboot-{dist}", dist, "uefi", "systemd-boot", (*hooks, "packages.txt"), hooks,
                     packages=("systemd-boot",), firstboot=False)


def secureboot_image(dist: str) -> ImageSpec:
    hooks = ("uefi/esp.sh", "guest.sh", "grub.sh", "uefi/secureboot.sh")
    # grub-efi-amd64 too, not only the signed binary: the kernel hooks that run update-grub,
    # grub-install's x86_64-efi files and the maintainer scripts, as the installer sets it up.
    return ImageSpec(f"uefi-secureboot-{dist}", dist, "secureboot", "grub", (*hooks, "packages.txt", "firstboot.sh"),
                     hooks, packages=("grub-efi-amd64", "grub-efi-amd64-signed", "shim-signed"))


IMAGES: dict[str, ImageSpec] = {spec.name: spec for spec in (
    *(bios_image(dist) for dist in DISTS),
    sdboot_image("trixie"),  # issue 16's flavour (Debian 13); bookworm's systemd-boot 252 is not tried
    *(secureboot_image(dist) for dist in DISTS),
)}
# Packages of packages.txt that only the BIOS images have.
BIOS_PACKAGES = ("grub-pc",)


def spec_for(name: str) -> ImageSpec:
    try:
        return IMAGES[name]
    except KeyError:
        raise LabError(f"unknown lab image {name!r}; choose one of {', '.join(IMAGES)}") from None


def host_apt_uris() -> tuple[str, str]:
    """The Debian archive and security URIs of the host's apt configuration (never hard-coded here)."""
    main_uri = security_uri = ""
    entries: list[tuple[str, list[str]]] = []
    sources_d = Path("/etc/apt/sources.list.d")
    for path in sorted(sources_d.glob("*.sources")):
        for stanza in path.read_text().split("\n\n"):
            fields = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                key, _sep, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if "deb" in fields.get("types", "").split() and "uris" in fields:
                entries.append((fields["uris"].split()[0], fields.get("suites", "").split()))
    for path in [Path("/etc/apt/sources.list"), *sorted(sources_d.glob("*.list"))]:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            words = [w for w in line.split() if not w.startswith("[")]
            if len(words) >= 3 and words[0] == "deb":
                entries.append((words[1], [words[2]]))
    for uri, suites in entries:
        if any(s.endswith("-security") or s.endswith("/updates") for s in suites):
            security_uri = security_uri or uri
        elif suites:
            main_uri = main_uri or uri
    if not main_uri:
        raise LabError("no Debian archive found in the host's apt sources (/etc/apt/sources.list*): "
                       "configure apt on this machine first")
    return main_uri, security_uri


def sources_for(dist: str) -> str:
    main_uri, security_uri = host_apt_uris()
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    text = (f"Types: deb\nURIs: {main_uri}\nSuites: {dist} {dist}-updates\nComponents: main\n"
            f"Signed-By: {keyring}\n")
    if security_uri:
        text += (f"\nTypes: deb\nURIs: {security_uri}\nSuites: {dist}-security\nComponents: main\n"
                 f"Signed-By: {keyring}\n")
    return text


def packages() -> list[str]:
    lines = (RECIPE_DIR / "packages.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def recipe_hash(name: str) -> str:
    """Hash of everything that shapes an image: its recipe files and the build code below."""
    spec = spec_for(name)
    digest = hashlib.sha256(name.encode())
    for relative in sorted(spec.recipe):
        digest.update(relative.encode() + b"\0" + (RECIPE_DIR / relative).read_bytes())
    if spec.firmware == "bios":
        functions = (build_rootfs, assemble_disk, run_firstboot)
    else:
        functions = (build_uefi_rootfs, make_esp, assemble_gpt_disk, run_firstboot)
        settings = (spec, MMDEBSTRAP_OPTIONS, BIOS_PACKAGES, GRUB_INSTALL_SECUREBOOT, ESP_SIZE_MIB, ROOT_SIZE_MIB)
        digest.update(repr(settings).encode())
    for func in functions:
        digest.update(inspect.getsource(func).encode())
    return digest.hexdigest()[:12]


@dataclass
class Image:
    dist: str  # the image's name (bookworm, trixie, uefi-...)
    disk: Path
    key: Path

    @property
    def ready(self) -> bool:
        return self.disk.exists() and self.key.exists()


def image_for(name: str) -> Image:
    stem = cache_dir() / f"{name}-{recipe_hash(name)}"
    return Image(name, stem.with_suffix(".qcow2"), stem.with_suffix(".key"))


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise LabError(f"{what} needs root (mmdebstrap, chroot, mkfs): run it as root, e.g. with sudo")


def build_rootfs(dist: str, rootdir: Path, root_uuid: str, pubkey: str, sources: Path) -> None:
    env = dict(os.environ, LAB_DIST=dist, LAB_ROOT_UUID=root_uuid, LAB_PUBKEY=pubkey,
               LAB_RECIPE_DIR=str(RECIPE_DIR))
    cmd = [
        "mmdebstrap", *MMDEBSTRAP_OPTIONS, "--include=" + ",".join(packages()),
        "--customize-hook=sh " + str(RECIPE_DIR / "customize.sh") + ' "$1"',
        dist, str(rootdir), str(sources),
    ]
    subprocess.run(cmd, check=True, env=env)


def assemble_disk(rootdir: Path, root_uuid: str, raw: Path) -> None:
    """One MBR partition holding an ext4 filesystem made from the tree, without loop devices."""
    part = raw.with_suffix(".part")
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "labroot", "-U", root_uuid, "-d", str(rootdir),
                    str(part), DISK_SIZE], check=True)
    offset_mib = 1
    part_bytes = part.stat().st_size
    with open(raw, "wb") as disk:
        disk.truncate(part_bytes + offset_mib * 1024 * 1024)
    subprocess.run(["sfdisk", "--quiet", str(raw)], input=b"label: dos\nstart=2048, type=83, bootable\n",
                   check=True)
    subprocess.run(["dd", f"if={part}", f"of={raw}", "bs=1M", f"seek={offset_mib}", "conv=notrunc,sparse",
                    "status=none"], check=True)
    part.unlink()


def build_uefi_rootfs(spec: ImageSpec, rootdir: Path, env: dict[str, str], sources: Path) -> None:
    """The tree of a UEFI image: packages.txt without the BIOS boot loader, the flavour's, its hooks."""
    include = [p for p in packages() if p not in BIOS_PACKAGES] + list(spec.packages)
    hooks = [f'--customize-hook=sh {RECIPE_DIR / hook} "$1"' for hook in spec.hooks]
    subprocess.run(["mmdebstrap", *MMDEBSTRAP_OPTIONS, "--include=" + ",".join(include), *hooks,
                    spec.dist, str(rootdir), str(sources)], check=True, env=env)


def make_esp(tree: Path, serial: str, img: Path) -> None:
    """A FAT32 file system with the given volume serial (fstab names it), filled from a tree by mtools:
    no mount, no loop device."""
    subprocess.run(["mkfs.vfat", "-F", "32", "-n", "ESP", "-i", serial, "-C", str(img), str(ESP_SIZE_MIB * 1024)],
                   check=True, stdout=subprocess.DEVNULL)
    entries = sorted(str(p) for p in tree.iterdir())
    if entries:
        # MTOOLS_SKIP_CHECK: mtools would refuse a file system that has no partition table around it.
        subprocess.run(["mcopy", "-s", "-p", "-m", "-i", str(img), *entries, "::/"], check=True,
                       env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))


def assemble_gpt_disk(esp: Path, rootdir: Path, root_uuid: str, raw: Path) -> None:
    """GPT: partition 1 the ESP, 2 an ext4 root made from the tree; without loop devices."""
    part = raw.with_suffix(".root")
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "labroot", "-U", root_uuid, "-d", str(rootdir), str(part),
                    f"{ROOT_SIZE_MIB}M"], check=True)
    esp_start = 1
    root_start = esp_start + ESP_SIZE_MIB
    with open(raw, "wb") as disk:
        disk.truncate((root_start + ROOT_SIZE_MIB + 1) * 1024 * 1024)  # + 1 MiB for the backup GPT
    table = (f"label: gpt\n"
             f"start={esp_start * 2048}, size={ESP_SIZE_MIB * 2048}, type={ESP_TYPE}, name=\"EFI System\"\n"
             f"start={root_start * 2048}, size={ROOT_SIZE_MIB * 2048}, type={ROOT_TYPE}, name=\"root\"\n")
    subprocess.run(["sfdisk", "--quiet", str(raw)], input=table.encode(), check=True)
    for img, start in ((esp, esp_start), (part, root_start)):
        subprocess.run(["dd", f"if={img}", f"of={raw}", "bs=1M", f"seek={start}", "conv=notrunc,sparse",
                        "status=none"], check=True)
    part.unlink()


def run_firstboot(disk: Path, rootdir: Path, root_uuid: str, workdir: Path) -> None:
    """Boot the new disk once, straight into its kernel, so the guest installs GRUB itself."""
    kernels = sorted(p for p in (rootdir / "boot").glob("vmlinuz-*") if "cloud" not in p.name)
    kernel = kernels[-1]
    initrd = rootdir / "boot" / kernel.name.replace("vmlinuz-", "initrd.img-")
    shutil.copy(kernel, workdir / "vmlinuz")
    shutil.copy(initrd, workdir / "initrd.img")
    console = workdir / "firstboot-console.log"
    cmd = qemu_base_cmd(memory=1024, smp=2) + [
        "-drive", f"file={disk},if=virtio,format=raw,cache=unsafe",
        "-kernel", str(workdir / "vmlinuz"), "-initrd", str(workdir / "initrd.img"),
        "-append", f"root=UUID={root_uuid} ro console=ttyS0,115200n8",
        "-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0",
        "-serial", f"file:{console}", "-no-reboot",
    ]
    try:
        subprocess.run(cmd, check=True, timeout=FIRSTBOOT_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"first boot did not finish in {FIRSTBOOT_TIMEOUT}s; console log: {console}") from exc
    text = console.read_text(errors="replace")
    if "LAB-FIRSTBOOT-OK" not in text:
        keep = cache_dir() / "last-firstboot-console.log"
        shutil.copy(console, keep)
        raise LabError(f"first boot did not install the boot loader; console log: {keep}")


def build(name: str, force: bool = False) -> Image:
    spec = spec_for(name)
    image = image_for(name)
    if image.ready and not force:
        return image
    require_root(f"building the {name} lab image")
    started = time.monotonic()
    steps: dict[str, float] = {}
    log(f"building the {name} image {image.disk.name} (a few minutes; cached afterwards)")
    with tempfile.TemporaryDirectory(prefix=f"lab-build-{name}-", dir=cache_dir()) as tmp:
        work = Path(tmp)
        key = work / "key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"fastreboot-lab-{name}",
                        "-f", str(key)], check=True)
        pubkey = key.with_suffix(".pub").read_text().strip()
        sources = work / "sources"
        sources.write_text(sources_for(spec.dist))
        root_uuid = str(uuid.uuid4())
        rootdir = work / "root"
        raw = work / "disk.raw"
        if spec.firmware == "bios":
            build_rootfs(spec.dist, rootdir, root_uuid, pubkey, sources)
            steps["rootfs"] = time.monotonic() - started
            assemble_disk(rootdir, root_uuid, raw)
        else:
            esp_serial = uuid.uuid4().hex[:8].upper()
            esp_tree = work / "esp"
            esp_tree.mkdir()
            env = dict(os.environ, LAB_DIST=spec.dist, LAB_IMAGE=name, LAB_ROOT_UUID=root_uuid,
                       LAB_ESP_UUID=f"{esp_serial[:4]}-{esp_serial[4:]}", LAB_ESP_TREE=str(esp_tree),
                       LAB_PUBKEY=pubkey, LAB_RECIPE_DIR=str(RECIPE_DIR),
                       LAB_GRUB_TERMINAL="console", LAB_GRUB_INSTALL=GRUB_INSTALL_SECUREBOOT)
            build_uefi_rootfs(spec, rootdir, env, sources)
            steps["rootfs"] = time.monotonic() - started
            esp = work / "esp.img"
            make_esp(esp_tree, esp_serial, esp)  # empty for GRUB: the first boot's grub-install fills it
            assemble_gpt_disk(esp, rootdir, root_uuid, raw)
            esp.unlink()
        steps["disk"] = time.monotonic() - started - sum(steps.values())
        if spec.firstboot:
            run_firstboot(raw, rootdir, root_uuid, work)
            steps["first boot"] = time.monotonic() - started - sum(steps.values())
        qcow = work / "disk.qcow2"
        subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(qcow)], check=True)
        # Old images of this name are stale now: remove them (and their kexec-tools layers).
        for old in cache_dir().glob(f"{name}-*.*"):
            old.unlink()
        os.replace(key, image.key)
        os.replace(qcow, image.disk)
        image.disk.chmod(0o444)
    took = ", ".join(f"{step} {seconds:.0f}s" for step, seconds in steps.items())
    log(f"built {image.disk} in {time.monotonic() - started:.0f}s ({took})")
    return image
