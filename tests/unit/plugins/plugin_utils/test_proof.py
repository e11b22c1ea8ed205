# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.fastreboot.kexec.plugins.plugin_utils._hoststate import HostState, parse_host_state
from ansible_collections.fastreboot.kexec.plugins.plugin_utils._proof import Expectation, normalize_cmdline, prove_boot

LOADED_CMDLINE = "root=UUID=0b7d6e2c-6e1f-4a58-9c52-3d1c1f0e2a77 ro quiet console=ttyS0,115200"
# What GRUB passes on a firmware boot of the same entry: BOOT_IMAGE= in front.
GRUB_CMDLINE = "BOOT_IMAGE=/boot/vmlinuz-6.1.0-25-amd64 root=UUID=0b7d6e2c-6e1f-4a58-9c52-3d1c1f0e2a77 ro quiet console=ttyS0,115200"


def booted(release: str, cmdline: str) -> HostState:
    # Built through the real parser, as the action gets it.
    state = parse_host_state(
        "fastreboot-boot-id=3e9b7a52-6c0d-4f1e-8b2a-9d4c5e6f7a81\n"
        f"fastreboot-release={release}\nfastreboot-cmdline={cmdline}\nfastreboot-systemd=yes\n"
    )
    assert state is not None
    return state


def test_normalize_cmdline() -> None:
    assert normalize_cmdline("  ro\tquiet \n console=ttyS0  ") == "ro quiet console=ttyS0"


def test_kexec_proven_when_release_and_cmdline_match_up_to_whitespace() -> None:
    proof = prove_boot(Expectation("6.1.0-26-amd64", LOADED_CMDLINE), booted("6.1.0-26-amd64", LOADED_CMDLINE.replace(" ", "  ") + " "))
    assert proof.matches
    assert proof.compared == ("release", "cmdline") and proof.mismatched == ()
    assert "booted the loaded image" in proof.message


def test_same_kernel_different_cmdline_is_a_failure() -> None:
    proof = prove_boot(Expectation("6.1.0-26-amd64", LOADED_CMDLINE), booted("6.1.0-26-amd64", GRUB_CMDLINE))
    assert not proof.matches
    assert proof.mismatched == ("cmdline",)
    assert "BOOT_IMAGE=" in proof.message and LOADED_CMDLINE in proof.message


def test_firmware_fallback_names_both_kernels() -> None:
    proof = prove_boot(Expectation("6.1.0-26-amd64", LOADED_CMDLINE), booted("6.1.0-25-amd64", GRUB_CMDLINE))
    assert not proof.matches
    assert proof.mismatched == ("release", "cmdline")
    assert proof.message.startswith(f"expected 6.1.0-26-amd64 with cmdline '{LOADED_CMDLINE}', booted 6.1.0-25-amd64 with cmdline '{GRUB_CMDLINE}'")
    assert "did not come back in the loaded image but through firmware" in proof.message
    assert "see its console" in proof.message


def test_parameter_order_matters() -> None:
    # The kernel sees the command line in order (the last console= wins): a reordering is not the loaded one.
    proof = prove_boot(Expectation(None, "console=tty0 console=ttyS0"), booted("6.1.0-26-amd64", "console=ttyS0 console=tty0"))
    assert not proof.matches and proof.mismatched == ("cmdline",)


def test_release_only_expectation_ignores_the_cmdline() -> None:
    expected = Expectation("6.1.0-26-amd64", None)
    assert prove_boot(expected, booted("6.1.0-26-amd64", GRUB_CMDLINE)).compared == ("release",)
    assert prove_boot(expected, booted("6.1.0-26-amd64", GRUB_CMDLINE)).matches
    wrong = prove_boot(expected, booted("6.1.0-25-amd64", LOADED_CMDLINE))
    assert not wrong.matches and "an unknown cmdline" in wrong.message


def test_unknown_expectation_proves_only_the_boot() -> None:
    expected = Expectation(None, None)
    proof = prove_boot(expected, booted("6.1.0-25-amd64", GRUB_CMDLINE))
    assert proof.matches and proof.compared == ()
    assert "only the new boot_id" in proof.message
