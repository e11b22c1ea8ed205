# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the images and the VMs share: folders, the error type, the QEMU command's common part, the firmware."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

LAB_DIR = Path(__file__).resolve().parent.parent
RECIPE_DIR = LAB_DIR / "image"
REPO_DIR = LAB_DIR.parent.parent
DISTS = ("bookworm", "trixie")
GUEST_USERS = ("root", "lab")


class LabError(Exception):
    """A lab failure with a message meant for the person running the tests."""


def cache_dir() -> Path:
    """Images live outside the checkout so every clone and CI run on this machine reuses them."""
    base = os.environ.get("FASTREBOOT_LAB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "fastreboot-kexec", "lab"
    )
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_dir() -> Path:
    path = Path(os.environ.get("FASTREBOOT_LAB_RUN") or REPO_DIR / "tests" / "output" / "lab")
    path.mkdir(parents=True, exist_ok=True)
    return path


def log(message: str) -> None:
    print(f"lab: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Firmware:
    """How a VM starts: QEMU's machine type and, for UEFI, Debian's OVMF build (package ovmf)."""
    machine: str
    code: str = ""  # read-only firmware flash
    vars_template: str = ""  # the variable store; each VM writes to its own copy
    options: tuple[str, ...] = ()


OVMF_DIR = Path("/usr/share/OVMF")
FIRMWARES = {
    "bios": Firmware("pc"),  # SeaBIOS
    # q35: OVMF's 4 MiB builds want it (and SMM, below, needs it).
    "uefi": Firmware("q35", "OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"),
    # Secure Boot: the variable store with Microsoft's keys enrolled (so shim, signed by Microsoft,
    # runs), and the flash writable only from SMM, or the firmware refuses to enforce Secure Boot.
    "secureboot": Firmware("q35,smm=on", "OVMF_CODE_4M.secboot.fd", "OVMF_VARS_4M.ms.fd",
                           ("-global", "driver=cfi.pflash01,property=secure,value=on")),
}


def qemu_base_cmd(memory: int, smp: int, firmware: str = "bios") -> list[str]:
    # qemu64, not max: under TCG the guest kernels' early boot (before the console) took 2-3 times
    # longer with max, and udev loaded a dozen modules for its CPU features on every boot (kvm_amd,
    # AES-NI, SHA, CRC, GHASH). qemu64 has no RDRAND, so the VMs get a virtio-rng (vm.py) for early
    # entropy. FASTREBOOT_LAB_CPU overrides (e.g. a flavour that needs x86-64-v2).
    cpu = os.environ.get("FASTREBOOT_LAB_CPU", "qemu64")
    return ["qemu-system-x86_64", "-machine", f"{FIRMWARES[firmware].machine},accel=tcg", "-cpu", cpu,
            "-m", str(memory), "-smp", str(smp), "-display", "none", "-nodefaults"]


def firmware_options(firmware: str, vars_copy: Path | None) -> list[str]:
    """QEMU options that load the UEFI firmware, with the VM's own variable store (none for BIOS)."""
    spec = FIRMWARES[firmware]
    if not spec.code:
        return []
    if vars_copy is None:
        raise LabError(f"a {firmware} VM needs its own copy of {spec.vars_template}")
    return [*spec.options,
            "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={ovmf_file(spec.code)}",
            "-drive", f"if=pflash,format=raw,unit=1,file={vars_copy}"]


def ovmf_file(name: str) -> Path:
    path = OVMF_DIR / name
    if not path.exists():
        raise LabError(f"{path} is missing: the UEFI images need the Debian package ovmf "
                       "(tests/tools/setup-host.sh installs it)")
    return path
