# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the images and the VMs share: folders, the error type, the QEMU command's common part."""
from __future__ import annotations

import os
import sys
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


def qemu_base_cmd(memory: int, smp: int) -> list[str]:
    # qemu64, not max: under TCG the guest kernels' early boot (before the console) took 2-3 times
    # longer with max, and udev loaded a dozen modules for its CPU features on every boot (kvm_amd,
    # AES-NI, SHA, CRC, GHASH). qemu64 has no RDRAND, so the VMs get a virtio-rng (vm.py) for early
    # entropy. FASTREBOOT_LAB_CPU overrides (e.g. a flavour that needs x86-64-v2).
    cpu = os.environ.get("FASTREBOOT_LAB_CPU", "qemu64")
    return ["qemu-system-x86_64", "-machine", "pc,accel=tcg", "-cpu", cpu, "-m", str(memory),
            "-smp", str(smp), "-display", "none", "-nodefaults"]
