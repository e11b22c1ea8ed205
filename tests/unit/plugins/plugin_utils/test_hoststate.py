# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import subprocess

import pytest

from ansible_collections.fastreboot.kexec.plugins.plugin_utils._hoststate import (
    HOST_STATE_COMMAND,
    SYSTEM_STATE_COMMAND,
    parse_boot_id,
    parse_host_state,
    parse_startup_times,
    parse_system_state,
    parse_timespan,
)

BOOT_ID = "3e9b7a52-6c0d-4f1e-8b2a-9d4c5e6f7a81"
CMDLINE = 'root=UUID=0b7d6e2c-6e1f-4a58-9c52-3d1c1f0e2a77 ro quiet console=ttyS0,115200 foo="a b"'


def state_output(boot_id: str = BOOT_ID, release: str = "6.1.0-26-amd64", cmdline: str = CMDLINE, systemd: str = "yes", loaded: str = "1") -> str:
    return (
        f"fastreboot-boot-id={boot_id}\n"
        f"fastreboot-release={release}\n"
        f"fastreboot-cmdline={cmdline}\n"
        f"fastreboot-systemd={systemd}\n"
        f"fastreboot-kexec-loaded={loaded}\n"
    )


def test_clean_output_gives_every_field() -> None:
    state = parse_host_state(state_output())
    assert state is not None
    assert (state.boot_id, state.release, state.cmdline) == (BOOT_ID, "6.1.0-26-amd64", CMDLINE)
    assert state.systemd is True and state.kexec_loaded is True and state.complete


def test_noise_around_the_output_is_ignored() -> None:
    motd = "Linux web1 6.1.0-26-amd64 #1 SMP PREEMPT_DYNAMIC Debian\n\nThe programs included with Debian are free software;\n"
    tail = "Connection to 192.0.2.10 closed.\r\n"
    broadcast = "\r\nBroadcast message from root@web1 (Tue 2026-01-06 10:00:00 UTC):\r\n\r\nThe system will reboot now!\r\n"
    # a tty turns \n into \r\n
    body = state_output(systemd="no", loaded="0").replace("\n", "\r\n")
    state = parse_host_state(motd + broadcast + body + tail)
    assert state is not None
    assert state.boot_id == BOOT_ID and state.cmdline == CMDLINE
    assert state.systemd is False and state.kexec_loaded is False


def test_uppercase_boot_id_is_normalised() -> None:
    state = parse_host_state(state_output(boot_id=BOOT_ID.upper()))
    assert state is not None and state.boot_id == BOOT_ID


@pytest.mark.parametrize(
    "bad_boot_id",
    [
        "",
        "3e9b7a52-6c0d-4f1e-8b2a",  # partial (output cut off)
        "3e9b7a52-6c0d-4f1e-8b2a-9d4c5e6f7a8",  # one digit short
        "3e9b7a52-6c0d-4f1e-8b2a-9d4c5e6f7a81Broadcast message from root@web1",  # wall interleaved
        "3e9b7a52-6c0d-4f1e-8b2a-9d4c5e6f7a81 3e9b7a52-6c0d-4f1e-8b2a-9d4c5e6f7a82",
        "cat: /proc/sys/kernel/random/boot_id: No such file or directory",
        "3e9b7a52x6c0d-4f1e-8b2a-9d4c5e6f7a81",
    ],
)
def test_no_intact_uuid_means_no_state(bad_boot_id: str) -> None:
    assert parse_host_state(state_output(boot_id=bad_boot_id)) is None


def test_uuid_outside_the_keyed_line_is_not_taken() -> None:
    # A bare UUID in a MOTD (or the output of some other command) is not a boot_id.
    assert parse_host_state(f"{BOOT_ID}\nfastreboot-release=6.1.0-26-amd64\n") is None


def test_conflicting_repeated_key_is_dropped() -> None:
    other = "8c2d1c9a-1f7b-4d8e-9a3e-2b6f0c7d5e41"
    assert parse_host_state(state_output() + f"fastreboot-boot-id={other}\n") is None
    # the same value twice is fine
    assert parse_host_state(state_output() + f"fastreboot-boot-id={BOOT_ID}\n") is not None


def test_missing_or_garbled_release_makes_the_state_incomplete() -> None:
    garbled = parse_host_state(state_output(release="6.1.0-26-amd64 Broadcast message"))
    assert garbled is not None and garbled.release is None and not garbled.complete
    without_cmdline = parse_host_state(f"fastreboot-boot-id={BOOT_ID}\nfastreboot-release=6.1.0\n")
    assert without_cmdline is not None and without_cmdline.cmdline is None and not without_cmdline.complete


def test_unknown_flag_words_are_unknown() -> None:
    state = parse_host_state(state_output(systemd="maybe", loaded=""))
    assert state is not None and state.systemd is None and state.kexec_loaded is None


def test_parse_boot_id() -> None:
    assert parse_boot_id(f"  {BOOT_ID.upper()}\n") == BOOT_ID
    assert parse_boot_id(None) is None
    assert parse_boot_id(BOOT_ID[:-1]) is None


@pytest.mark.skipif(not os.path.exists("/proc/sys/kernel/random/boot_id"), reason="needs Linux /proc")
def test_the_real_command_parses_on_this_machine() -> None:
    completed = subprocess.run(["/bin/sh", "-c", HOST_STATE_COMMAND], capture_output=True, text=True, check=True)
    state = parse_host_state(completed.stdout)
    assert state is not None
    with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as boot_id_file:
        assert state.boot_id == boot_id_file.read().strip()
    assert state.release == os.uname().release
    with open("/proc/cmdline", encoding="utf-8") as cmdline_file:
        assert state.cmdline == cmdline_file.read().strip()
    assert state.systemd is os.path.isdir("/run/systemd/system")


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("running\n", "running"),
        ("starting\n", "starting"),
        ("Last login: Tue Jan  6 10:00:00 2026\r\ndegraded\r\n", "degraded"),
        ("maintenance\n", "maintenance"),
        ("Failed to connect to bus: No such file or directory\n", None),
        ("", None),
    ],
)
def test_parse_system_state(output: str, expected: str | None) -> None:
    assert parse_system_state(output) == expected


# `systemd-analyze time` as the lab VMs printed it (2026-12-02): BIOS + GRUB trixie, UEFI + systemd-boot trixie
# cold and after a kexec, UEFI + Secure Boot trixie after a kexec (the trailing blank is systemd's).
@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (
            "Startup finished in 9.179s (kernel) + 14.935s (userspace) = 24.114s \n"
            "graphical.target reached after 14.924s in userspace.\n",
            {"kernel": 9.179, "userspace": 14.935, "total": 24.114},
        ),
        (
            "Startup finished in 16.971s (kernel) + 50.093s (userspace) = 1min 7.065s \n"
            "graphical.target reached after 50.051s in userspace.\n",
            {"kernel": 16.971, "userspace": 50.093, "total": 67.065},
        ),
        (
            "running\nStartup finished in 2min 18.901s (kernel) + 55.148s (userspace) = 3min 14.050s \n",
            {"kernel": 138.901, "userspace": 55.148, "total": 194.05},
        ),
        (
            "Startup finished in 7min 11.139s (kernel) + 1min 55.166s (userspace) = 9min 6.305s \n",
            {"kernel": 431.139, "userspace": 115.166, "total": 546.305},
        ),
        # systemd-analyze(1)'s own example: an initramfs that runs systemd
        (
            "Startup finished in 2.584s (kernel) + 19.176s (initrd) + 47.847s (userspace) = 1min 9.608s\n",
            {"kernel": 2.584, "initrd": 19.176, "userspace": 47.847, "total": 69.608},
        ),
        # not finished yet (the message goes to stderr, which the command drops), or noise only
        ("starting\n", None),
        ("Startup finished in soon (kernel) = 1s\n", None),
        ("Startup finished in 3s (bogus) = 3s\n", None),
    ],
)
def test_parse_startup_times(output: str, expected: dict[str, float] | None) -> None:
    assert parse_startup_times(output) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("873ms", 0.873), ("1min 2.144s", 62.144), ("24.114s", 24.114), ("500us", 0.0005), ("2h", 7200.0), ("3 apples", None), ("", None)],
)
def test_parse_timespan(text: str, expected: float | None) -> None:
    assert parse_timespan(text) == expected


@pytest.mark.parametrize(("state", "startup"), [("running", {"kernel": 9.179, "userspace": 14.935, "total": 24.114}), ("starting", None)])
def test_system_state_command_reads_the_split_only_once_finished(tmp_path, state: str, startup: dict[str, float] | None) -> None:
    # The real command under /bin/sh, with systemctl and systemd-analyze standing in on PATH; systemd-analyze
    # prints what the trixie lab VM printed, and says "not yet finished" (stderr, rc 1) while the boot goes on.
    (tmp_path / "systemctl").write_text(f"#!/bin/sh\necho {state}\n[ {state} = running ]\n")
    (tmp_path / "systemd-analyze").write_text(
        "#!/bin/sh\necho 'Startup finished in 9.179s (kernel) + 14.935s (userspace) = 24.114s '\n"
        f"[ {state} = running ] || {{ echo called >> {tmp_path}/analyze-called; exit 1; }}\n"
    )
    for name in ("systemctl", "systemd-analyze"):
        (tmp_path / name).chmod(0o755)
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}")
    output = subprocess.run(["/bin/sh", "-c", SYSTEM_STATE_COMMAND], capture_output=True, text=True, env=env, check=False).stdout
    assert parse_system_state(output) == state
    assert parse_startup_times(output) == startup
    assert not (tmp_path / "analyze-called").exists()  # no systemd-analyze while the boot goes on
