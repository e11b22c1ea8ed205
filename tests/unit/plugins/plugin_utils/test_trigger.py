# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The trigger command, run for real by /bin/sh against stub programs that log what they get."""

from __future__ import annotations

import os
import posixpath
import shlex
import stat
import subprocess
import time
from pathlib import Path

import pytest

from ansible_collections.fastreboot.kexec.plugins.plugin_utils._trigger import (
    COLD,
    EXIT_NO_SETSID,
    PROGRAMS,
    TriggerError,
    locate_command,
    lookup_folders,
    mark_requested_command,
    parse_located,
    required_programs,
    resolve_method,
    trigger_argv,
    trigger_command,
    trigger_never_ran,
    unmark_requested_command,
    unit_name,
)

BOOT_ID = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()

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
    # The marker that lets the role's guard unit pass this kexec: private, this boot's boot_id and the time it is due.
    assert stat.S_IMODE(requested.stat().st_mode) == 0o600
    assert stat.S_IMODE(requested.parent.stat().st_mode) == 0o700
    boot_id, due = requested.read_text().split()
    assert boot_id == BOOT_ID and abs(int(due) - time.time()) < 5
    assert os.listdir(requested.parent) == ["kexec-requested"]  # no temporary file left
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


# The kexec-requested marker and the role's guard (issue 18, item 1) ------------------------------


def test_item01_marker_carries_the_boot_id_and_when_the_kexec_is_due(stub_host: tuple[dict[str, str], Path], tmp_path: Path) -> None:
    env, dummy = stub_host
    requested = tmp_path / "run" / "fastreboot-kexec" / "kexec-requested"
    completed = run_trigger(trigger_command("systemd", True, 90, "0a1b2c3d", wall=False, requested_file=str(requested)), env, None)
    assert completed.returncode == 0, completed.stderr
    boot_id, due = requested.read_text().split()
    assert boot_id == BOOT_ID
    assert abs(int(due) - (time.time() + 90)) < 5  # the systemd timer fires in 90 s: the kexec is due then


@pytest.mark.parametrize("bad_folder", ["symlink", "group-writable", "file"])
def test_item01_marker_is_not_written_into_a_folder_someone_else_controls(
    bad_folder: str, stub_host: tuple[dict[str, str], Path], tmp_path: Path,
) -> None:
    env, log = stub_host
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    folder = tmp_path / "fastreboot-kexec"
    if bad_folder == "symlink":
        folder.symlink_to(elsewhere)
    elif bad_folder == "group-writable":
        folder.mkdir()
        folder.chmod(0o770)
    else:
        folder.write_text("")
    completed = run_trigger(trigger_command("systemd", True, 0, "0a1b2c3d", wall=False, requested_file=str(folder / "kexec-requested")), env, None)
    assert completed.returncode == 1
    assert "nothing was rebooted" in completed.stderr
    assert not log.exists()  # no systemctl kexec
    assert os.listdir(elsewhere) == []


def test_item01_planted_marker_symlink_is_replaced_not_followed(stub_host: tuple[dict[str, str], Path], tmp_path: Path) -> None:
    env, dummy = stub_host
    folder = tmp_path / "fastreboot-kexec"
    folder.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (folder / "kexec-requested").symlink_to(victim)
    completed = run_trigger(mark_requested_command(str(folder / "kexec-requested")), env, None)
    assert completed.returncode == 0, completed.stderr
    assert victim.read_text() == "precious\n"
    assert not (folder / "kexec-requested").is_symlink() and (folder / "kexec-requested").read_text().split()[0] == BOOT_ID
    # the same for removal: rm -f removes the entry, never what it points to
    (folder / "kexec-requested").unlink()
    (folder / "kexec-requested").symlink_to(victim)
    assert run_trigger(unmark_requested_command(str(folder / "kexec-requested")), env, None).returncode == 0
    assert victim.read_text() == "precious\n" and not (folder / "kexec-requested").exists()


# Trigger errors (issue 18, item 1) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "connection_failure", "never_ran"),
    [
        ("Timeout (12s) waiting for privilege escalation prompt: ", True, True),
        ("Timeout (12s) waiting for privilege escalation prompt: ", False, True),
        ("Incorrect sudo password", False, True),
        ("sudo: a password is required", True, True),
        ("Failed to connect to the host via ssh: ssh: connect to host web1 port 22: Connection timed out", True, True),
        ("Failed to connect to the host via ssh: kex_exchange_identification: read: Connection reset by peer", True, True),
        ("Failed to connect to the host via ssh: root@web1: Permission denied (publickey,password).", True, True),
        ("Failed to connect to the host via ssh: Host key verification failed.", True, True),
        # the host going down cuts the session that ran the command
        ("Failed to connect to the host via ssh: Shared connection to web1 closed.", True, False),
        ("Failed to connect to the host via ssh: Connection to web1 closed by remote host.", True, False),
        ('Data could not be sent to remote host "web1". Make sure this host can be reached over ssh: client_loop: send disconnect: Broken pipe',
         True, False),
    ],
)
def test_trigger_errors_that_prove_it_never_ran(text: str, connection_failure: bool, never_ran: bool) -> None:
    assert trigger_never_ran(text, connection_failure) is never_ran


# search_paths (issue 19) ----------------------------------------------------------------------------


def test_locate_finds_the_first_executable_in_order(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
        for name in ("systemctl", "kexec"):
            (folder / name).write_text("#!/bin/sh\n")
            (folder / name).chmod(0o755)
    (first / "kexec").chmod(0o644)  # not executable: skipped
    (first / "setsid").mkdir()  # a folder is no program
    folders = (str(first), str(second))
    completed = subprocess.run(["/bin/sh", "-c", locate_command(folders)], capture_output=True, text=True, timeout=20, check=False)
    assert completed.returncode == 0, completed.stderr
    assert parse_located(completed.stdout, folders) == {"systemctl": str(first / "systemctl"), "kexec": str(second / "kexec")}
    # lines that name a path nobody asked for, or a program we never run, are not taken
    assert parse_located("fastreboot-path-systemctl=/tmp/evil/systemctl\nfastreboot-path-rm=/bin/rm\n", folders) == {}


@pytest.mark.parametrize("path", ["usr/bin", "", "/usr/bin;reboot", "/usr/b in", "/usr/$(id)", "/usr/../tmp", "/usr/./bin", 7])
def test_search_paths_must_be_plain_absolute_folders(path: object) -> None:
    with pytest.raises(TriggerError, match="search_paths entries must be absolute folders"):
        lookup_folders([path])


def test_trigger_runs_the_located_programs(stub_host: tuple[dict[str, str], Path], tmp_path: Path) -> None:
    env, log = stub_host
    bin_dir = Path(env["PATH"].split(":")[0])
    programs = {name: str(bin_dir / name) for name in PROGRAMS if (bin_dir / name).exists()}
    command = trigger_command("immediate", False, 0, "0a1b2c3d", wall=False, programs=programs)
    completed = run_trigger(command, {"PATH": "/nonexistent", "STUB_LOG": env["STUB_LOG"]}, None)  # nothing from PATH but sync
    assert completed.returncode == 0, completed.stderr
    assert wait_for_lines(log, 2)[0] == "setsid /bin/sh -c"
    assert trigger_argv("systemd", True, 5, "0a1b2c3d", programs)[0] == str(bin_dir / "systemd-run")
    assert required_programs("systemd", True, 0) == ("systemctl",) and required_programs("immediate", True, 0) == ("systemd-run", "kexec")


# Issue 19: the cold reboot of cold_fallback -----------------------------------------------------------


def logging_environment(bin_dir: Path, name: str) -> None:
    """A stub that also logs whether SYSTEMCTL_SKIP_AUTO_KEXEC reached it."""
    (bin_dir / name).write_text(f'#!/bin/sh\necho "{name} $* skip=$SYSTEMCTL_SKIP_AUTO_KEXEC" >> "$STUB_LOG"\n')


def test_cold_reboot_removes_the_marker_then_reboots_without_auto_kexec(stub_host: tuple[dict[str, str], Path], tmp_path: Path) -> None:
    env, log = stub_host
    logging_environment(Path(env["PATH"].split(":")[0]), "systemctl")
    requested = tmp_path / "run" / "fastreboot-kexec" / "kexec-requested"
    requested.parent.mkdir(parents=True, mode=0o700)
    requested.write_text(f"{BOOT_ID} {int(time.time())}\n")  # left by an earlier kexec_reboot of this boot
    command = trigger_command(COLD, True, 0, "0a1b2c3d", wall=True, requested_file=str(requested))
    completed = run_trigger(command, env, MESSAGE + "\n")
    assert completed.returncode == 0, completed.stderr
    # systemd >= 255 kexecs on `systemctl reboot` while an image is loaded, unless told not to
    assert log.read_text().splitlines() == ["wall ", f"wall-stdin {MESSAGE}", "systemctl --no-block reboot skip=1"]
    assert not requested.exists()  # the role's guard unloads a loaded image at shutdown
    assert trigger_argv(COLD, True, 0, "0a1b2c3d") == ["SYSTEMCTL_SKIP_AUTO_KEXEC=1", "systemctl", "--no-block", "reboot"]


def test_cold_reboot_is_not_started_when_the_marker_stays(stub_host: tuple[dict[str, str], Path], tmp_path: Path) -> None:
    env, log = stub_host
    requested = tmp_path / "kexec-requested"
    (requested / "inside").mkdir(parents=True)  # rm -f cannot remove it
    completed = run_trigger(trigger_command(COLD, True, 0, "0a1b2c3d", wall=False, requested_file=str(requested)), env, None)
    assert completed.returncode == 1 and "could not remove the kexec-requested marker: nothing was rebooted" in completed.stderr
    assert not log.exists()


def test_cold_reboot_with_a_delay_runs_a_timer_unit_with_the_environment(stub_host: tuple[dict[str, str], Path]) -> None:
    env, log = stub_host
    completed = run_trigger(trigger_command(COLD, True, 30, "0a1b2c3d", wall=False, requested_file=str(log) + ".mark"), env, None)
    assert completed.returncode == 0, completed.stderr
    assert log.read_text().splitlines() == [
        "systemd-run --no-block --collect --quiet --unit=fastreboot-kexec-0a1b2c3d --description=fastreboot.kexec reboot "
        "--setenv=SYSTEMCTL_SKIP_AUTO_KEXEC=1 --on-active=30s systemctl reboot"
    ]


def test_cold_reboot_without_systemd_runs_shutdown_detached(stub_host: tuple[dict[str, str], Path], tmp_path: Path) -> None:
    env, log = stub_host
    sbin = tmp_path / "sbin"  # not in PATH: shutdown runs by its located path
    sbin.mkdir()
    (sbin / "shutdown").write_text('#!/bin/sh\necho "shutdown $*" >> "$STUB_LOG"\n')
    (sbin / "shutdown").chmod(stat.S_IRWXU)
    programs = {"setsid": posixpath.join(env["PATH"].split(":")[0], "setsid"), "shutdown": str(sbin / "shutdown")}
    command = trigger_command(COLD, False, 3, "0a1b2c3d", wall=False, requested_file=str(tmp_path / "kexec-requested"), programs=programs)
    completed = run_trigger(command, env, None)
    assert completed.returncode == 0, completed.stderr
    assert wait_for_lines(log, 3) == ["setsid /bin/sh -c", "sleep 3", "shutdown -r now"]
    assert required_programs(COLD, False, 0) == ("setsid", "shutdown") and required_programs(COLD, True, 5) == ("systemd-run", "systemctl")
