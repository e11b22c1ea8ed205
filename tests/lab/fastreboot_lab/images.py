# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Lab disk images: mmdebstrap, an MBR disk without loop devices, a first boot that installs GRUB.

Cached under a hash of their recipe (tests/lab/image/* and the build functions below).
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


def recipe_hash(dist: str) -> str:
    """Hash of everything that shapes an image: the recipe folder and the build code below."""
    digest = hashlib.sha256(dist.encode())
    for path in sorted(RECIPE_DIR.iterdir()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for func in (build_rootfs, assemble_disk, run_firstboot):
        digest.update(inspect.getsource(func).encode())
    return digest.hexdigest()[:12]


@dataclass
class Image:
    dist: str
    disk: Path
    key: Path

    @property
    def ready(self) -> bool:
        return self.disk.exists() and self.key.exists()


def image_for(dist: str) -> Image:
    stem = cache_dir() / f"{dist}-{recipe_hash(dist)}"
    return Image(dist, stem.with_suffix(".qcow2"), stem.with_suffix(".key"))


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise LabError(f"{what} needs root (mmdebstrap, chroot, mkfs): run it as root, e.g. with sudo")


def build_rootfs(dist: str, rootdir: Path, root_uuid: str, pubkey: str, sources: Path) -> None:
    env = dict(os.environ, LAB_DIST=dist, LAB_ROOT_UUID=root_uuid, LAB_PUBKEY=pubkey,
               LAB_RECIPE_DIR=str(RECIPE_DIR))
    cmd = [
        "mmdebstrap", "--variant=apt", "--mode=root", "--format=directory",
        "--include=" + ",".join(packages()),
        # Smaller, faster images: no documentation or translations.
        "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-include=/usr/share/doc/*/copyright", "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--skip=cleanup/apt/lists", "--skip=cleanup/apt/cache",
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


def build(dist: str, force: bool = False) -> Image:
    if dist not in DISTS:
        raise LabError(f"unknown lab distribution {dist!r}; choose one of {', '.join(DISTS)}")
    image = image_for(dist)
    if image.ready and not force:
        return image
    require_root(f"building the {dist} lab image")
    started = time.monotonic()
    log(f"building the {dist} image {image.disk.name} (a few minutes; cached afterwards)")
    with tempfile.TemporaryDirectory(prefix=f"lab-build-{dist}-", dir=cache_dir()) as tmp:
        work = Path(tmp)
        key = work / "key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"fastreboot-lab-{dist}",
                        "-f", str(key)], check=True)
        sources = work / "sources"
        sources.write_text(sources_for(dist))
        root_uuid = str(uuid.uuid4())
        rootdir = work / "root"
        build_rootfs(dist, rootdir, root_uuid, key.with_suffix(".pub").read_text().strip(), sources)
        raw = work / "disk.raw"
        assemble_disk(rootdir, root_uuid, raw)
        run_firstboot(raw, rootdir, root_uuid, work)
        qcow = work / "disk.qcow2"
        subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(qcow)], check=True)
        # Old images of this distribution are stale now: remove them.
        for old in cache_dir().glob(f"{dist}-*.*"):
            old.unlink()
        os.replace(key, image.key)
        os.replace(qcow, image.disk)
        image.disk.chmod(0o444)
    log(f"built {image.disk} in {time.monotonic() - started:.0f}s")
    return image
