# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Proof that the host booted the image that was loaded.

systemd-shutdown silently falls back to a normal (firmware) reboot when `kexec -e` returns, so a
new boot_id alone proves nothing about kexec. The running release and /proc/cmdline of the new
boot must equal what was loaded. A boot loader that started the kernel adds its own parameters
(GRUB's BOOT_IMAGE=), so the command line also tells a firmware boot of the same kernel apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from ansible_collections.fastreboot.kexec.plugins.plugin_utils._hoststate import HostState


def normalize_cmdline(cmdline: str) -> str:
    """Command lines compare equal when they differ only in whitespace."""
    return " ".join(cmdline.split())


@dataclass(frozen=True)
class Expectation:
    """What the loaded image must look like once booted; None = unknown, not compared."""

    release: str | None
    cmdline: str | None

    def describe(self) -> str:
        release = self.release if self.release is not None else "an unknown release"
        cmdline = f"cmdline '{normalize_cmdline(self.cmdline)}'" if self.cmdline is not None else "an unknown cmdline"
        return f"{release} with {cmdline}"


@dataclass(frozen=True)
class BootProof:
    """The outcome of comparing the new boot with the expectation."""

    matches: bool  # everything that could be compared is equal
    compared: tuple[str, ...]  # "release", "cmdline": what was compared
    mismatched: tuple[str, ...]  # the subset that differed
    message: str


def prove_boot(expected: Expectation, booted: HostState) -> BootProof:
    """Compare the booted release and command line with what was loaded."""
    compared: list[str] = []
    mismatched: list[str] = []
    if expected.release is not None:
        compared.append("release")
        if booted.release != expected.release:
            mismatched.append("release")
    if expected.cmdline is not None:
        compared.append("cmdline")
        if booted.cmdline is None or normalize_cmdline(booted.cmdline) != normalize_cmdline(expected.cmdline):
            mismatched.append("cmdline")

    booted_text = f"{booted.release} with cmdline '{normalize_cmdline(booted.cmdline or '')}'"
    if not compared:
        message = f"booted {booted_text}; what was loaded is unknown, so only the new boot_id proves the reboot"
    elif mismatched:
        message = (
            f"expected {expected.describe()}, booted {booted_text}: the host did not come back in the loaded "
            "image but through firmware (the kexec failed, or the new kernel crashed and the machine reset); "
            "see its console"
        )
    else:
        message = f"booted the loaded image: {booted_text}"
    return BootProof(matches=not mismatched, compared=tuple(compared), mismatched=tuple(mismatched), message=message)
