# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The trigger command, run for real by /bin/sh against stub programs that log what they get."""

from __future__ import annotations

import shlex
import stat
import subprocess
import time
from pathlib import Path

import pytest

from ansible_collections.fastreboot.kexec.plugins.plugin_utils._trigger import (
    EXIT_NO_SETSID,
    TriggerError,
    resolve_method,
    trigger_argv,
    trigger_command,
    unmark_requested_command,
    unit_name,
)

MESSAGE = "Rebooting now; $(id) `id` 'quoted' \"double\" & | > <"
STUBS = {
    # each stub appends one line "name arg1 arg2 ..." to $STUB_LOG; wall also logs its stdin
    "systemd-run": 'echo "systemd-run $*" >> "$STUB_LOG"',
    "systemctl": 'echo "systemctl $*" >> "$STUB_LOG"',
    "wall": 'echo "wall $*" >> "$STUB_LOG"; echo "wall-stdin $(cat)" >> "$STUB_LOG"',
    "kexec": 'echo "kexec $*" >> "$STUB_LOG"',
    "sync": 'echo "sync" >> "$STUB_LOG"',
    "setsid": 'echo "setsid $1 $2" >> "$STUB_LOG"; exec "$@"',
    "sleep": 'echo "sleep $*" >> "$STUB_LOG"',
}


@pytest.fixture(name="stub_host")
def stub_host_fixture(tmp_path: Path) -> tuple[dict[str, str], Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in STUBS.items():
        script = bin_dir / name
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(stat.S_IRWXU)
    log = tmp_path / "log"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "STUB_LOG": str(log)}
    return env, log


def run_trigger(command: str, env: dict[str, str], stdin: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/sh", "-c", command], input=stdin, env=env, capture_output=True, text=True, timeout=20, check=False)


def wait_for_lines(log: Path, count: int) -> list[str]:
    for dummy in range(200):  # the detached part runs in the background
        if log.exists() and len(log.read_text().splitlines()) >= count:
            break
        time.sleep(0.02)
    return log.read_text().splitlines()


def test_resolve_method() -> None:
    assert resolve_method("auto", True) == "systemd"
    assert resolve_method("systemd", True) == "systemd"
    assert resolve_method("immediate", False) == "immediate"
    assert resolve_method("immediate", True) == "immediate"
    with pytest.raises(TriggerError, match="method=immediate"):
        resolve_method("auto", False)
    with pytest.raises(TriggerError, match="does not run systemd"):
        resolve_method("systemd", False)
    with pytest.raises(TriggerError, match="one of"):
        resolve_method("reboot", True)


def test_systemd_trigger_queues_the_kexec_job(stub_host: tuple[dict[str, str], Path], tmp_path: Path) -> None:
    env, log = stub_host
    requested = tmp_path / "run" / "fastreboot-kexec" / "kexec-requested"
    command = trigger_command("systemd", True, 0, "0a1b2c3d", wall=True, requested_file=str(requested))
    completed = run_trigger(command, env, MESSAGE + "\n")
    assert completed.returncode == 0, completed.stderr
    assert log.read_text().splitlines() == ["wall ", f"wall-stdin {MESSAGE}", "systemctl --no-block kexec"]
    # The marker that lets the role's guard unit pass this kexec: private, with a timestamp.
    assert stat.S_IMODE(requested.stat().st_mode) == 0o600
    assert stat.S_IMODE(requested.parent.stat().st_mode) == 0o700
    assert requested.read_text().strip().isdigit()
    completed = run_trigger(unmark_requested_command(str(requested)), env, None)
    assert completed.returncode == 0 and not requested.exists()


def test_no_marker_when_it_cannot_be_written(stub_host: tuple[dict[str, str], Path], tmp_path: Path) -> None:
    env, log = stub_host
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    command = trigger_command("systemd", True, 0, "0a1b2c3d", wall=False, requested_file=str(blocker / "kexec-requested"))
    completed = run_trigger(command, env, None)
    # Without the marker the guard would turn the kexec into a cold reboot: do not start it.
    assert completed.returncode == 1
    assert not log.exists()


def test_systemd_refusal_is_the_trigger_exit_code(stub_host: tuple[dict[str, str], Path]) -> None:
    env, log = stub_host
    (Path(env["PATH"].split(":")[0]) / "systemctl").write_text(
        '#!/bin/sh\necho "No kexec kernel loaded and autodetection failed." >&2\nexit 1\n'
    )
    completed = run_trigger(trigger_command("systemd", True, 0, "0a1b2c3d", wall=False, requested_file=str(log) + ".mark"), env, None)
    assert completed.returncode == 1
    assert "No kexec kernel loaded" in completed.stderr


def test_systemd_delay_runs_a_detached_timer_unit(stub_host: tuple[dict[str, str], Path]) -> None:
    env, log = stub_host
    completed = run_trigger(trigger_command("systemd", True, 30, "0a1b2c3d", wall=False, requested_file=str(log) + ".mark"), env, None)
    assert completed.returncode == 0, completed.stderr
    assert log.read_text().splitlines() == [
        "systemd-run --no-block --collect --quiet --unit=fastreboot-kexec-0a1b2c3d --description=fastreboot.kexec reboot "
        "--on-active=30s systemctl kexec"
    ]


def test_delay_is_exact_seconds_on_a_systemd_timer(stub_host: tuple[dict[str, str], Path]) -> None:
    env, log = stub_host
    completed = run_trigger(trigger_command("immediate", True, 90, "0a1b2c3d", wall=False), env, None)
    assert completed.returncode == 0, completed.stderr
    assert log.read_text().splitlines() == [
        "systemd-run --no-block --collect --quiet --unit=fastreboot-kexec-0a1b2c3d --description=fastreboot.kexec reboot "
        "--on-active=90s /bin/sh -c sync; exec kexec -e"
    ]


def test_immediate_without_systemd_detaches_then_syncs_and_jumps(stub_host: tuple[dict[str, str], Path]) -> None:
    env, log = stub_host
    completed = run_trigger(trigger_command("immediate", False, 7, "0a1b2c3d", wall=True), env, "bye\n")
    assert completed.returncode == 0, completed.stderr
    lines = wait_for_lines(log, 6)
    assert lines == ["wall ", "wall-stdin bye", "setsid /bin/sh -c", "sleep 7", "sync", "kexec -e"]


def test_immediate_without_setsid_fails_clearly(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    env = {"PATH": str(bin_dir)}  # no setsid anywhere
    completed = run_trigger(trigger_command("immediate", False, 0, "0a1b2c3d", wall=False), env, None)
    assert completed.returncode == EXIT_NO_SETSID
    assert "setsid not found" in completed.stderr


def test_command_is_fixed_words_only() -> None:
    command = trigger_command("systemd", True, 5, "0a1b2c3d", wall=True)
    # The systemd-run part is exactly the argv, each word quoted.
    assert command.endswith("exec " + " ".join(shlex.quote(word) for word in trigger_argv("systemd", True, 5, "0a1b2c3d")))
    # No other input than method, delay and token exists: the same inputs give the same command.
    assert command == trigger_command("systemd", True, 5, "0a1b2c3d", wall=True)


@pytest.mark.parametrize("delay", [-1, True, "5", 1.5, "5; reboot"])
def test_delay_must_be_a_non_negative_integer(delay: object) -> None:
    with pytest.raises(TriggerError, match="pre_reboot_delay"):
        trigger_command("systemd", True, delay, "0a1b2c3d", wall=False)  # type: ignore[arg-type]


@pytest.mark.parametrize("token", ["", "0A1B2C3D", "0a1b; reboot", "0a1b2c3", "x" * 8])
def test_unit_token_must_be_hex(token: str) -> None:
    with pytest.raises(TriggerError, match="unit token"):
        unit_name(token)


def test_unresolved_method_is_refused() -> None:
    with pytest.raises(TriggerError):
        trigger_argv("auto", True, 0, "0a1b2c3d")
    with pytest.raises(TriggerError, match="needs systemd"):
        trigger_argv("systemd", False, 0, "0a1b2c3d")
