# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The role's shutdown helper and guard (_shutdown.py, run by roles/kexec/files/fastreboot-kexec), issue 13.

They run against the fixture trees of layouts.py with the fake kexec of hosttree.py, like kexec_load's
tests; load-default is compared with the kexec_load module itself on every layout.
"""

from __future__ import annotations

import inspect
import io
import json
import os
import subprocess
import time
import typing as t
from pathlib import Path

import pytest

from ansible_collections.fastreboot.kexec.plugins.module_utils import _shutdown
from ansible_collections.fastreboot.kexec.plugins.module_utils._host import SubprocessRunner
from ansible_collections.fastreboot.kexec.plugins.module_utils._loader import KexecLoader, LoadRequest
from ansible_collections.fastreboot.kexec.plugins.module_utils._paths import (
    BOOT_ID,
    KEXEC_REQUESTED_FILE,
    KEXEC_REQUESTED_MAX_AGE,
    NO_KEXEC_REBOOT,
    RECORD_DIR,
    RECORD_FILE,
)
from ansible_collections.fastreboot.kexec.plugins.modules import kexec_load
from ansible_collections.fastreboot.kexec.plugins.plugin_utils._trigger import mark_requested_command
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils import layouts
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils.hosttree import BOOT_ID as FIXTURE_BOOT_ID
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils.hosttree import OTHER_BOOT_ID, FakeKexec, HostTree
from ansible_collections.fastreboot.kexec.tests.unit.plugins.modules.moduletest import run_module

KEXEC = "/usr/sbin/kexec"
NOW = 1767607200.0

# Every layout builder of layouts.py (a function of the tree alone).
LAYOUTS = {
    name: builder
    for name, builder in inspect.getmembers(layouts, inspect.isfunction)
    if builder.__module__ == layouts.__name__
    and [parameter.name for parameter in inspect.signature(builder).parameters.values() if parameter.default is inspect.Parameter.empty] == ["tree"]
}


class ShutdownHost(FakeKexec):
    """The fake kexec, plus systemctl list-jobs printing the jobs given."""

    def __init__(self, tree: HostTree, jobs: str = "", **kwargs: t.Any) -> None:
        super().__init__(tree, **kwargs)
        self.programs.setdefault("systemctl", "/usr/bin/systemctl")
        self.jobs = jobs

    def run(self, argv: list[str]) -> tuple[int, str, str]:
        if argv == ["/usr/bin/systemctl", "list-jobs", "--no-legend"]:
            self.calls.append(list(argv))
            return 0, self.jobs, ""
        return super().run(argv)


def shutdown(tree: HostTree, runner: FakeKexec, clock: float = NOW) -> tuple[_shutdown.Shutdown, io.StringIO]:
    out = io.StringIO()
    return _shutdown.Shutdown(runner, root=str(tree.root), trusted_uid=os.getuid(), clock=lambda: clock, machine="x86_64", out=out), out


def run(tree: HostTree, argv: list[str], runner: FakeKexec | None = None, clock: float = NOW) -> tuple[int, list[str], FakeKexec]:
    runner = runner or ShutdownHost(tree)
    context, out = shutdown(tree, runner, clock)
    rc = _shutdown.main(argv, context)
    return rc, out.getvalue().splitlines(), runner


def private_record_dir(tree: HostTree) -> Path:
    return tree.mkdir(RECORD_DIR, mode=0o700)


def write_marker(tree: HostTree, text: str) -> Path:
    private_record_dir(tree)
    return tree.write(KEXEC_REQUESTED_FILE, text, mode=0o600)


def without_time(record: dict[str, t.Any]) -> dict[str, t.Any]:
    return {key: value for key, value in record.items() if key != "loaded_at"}


# load-default is kexec_load kernel=default ----------------------------------------------------------


def test_every_layout_is_compared() -> None:
    # A layout added to layouts.py joins the comparison below by itself; this says which ones it covers.
    assert set(LAYOUTS) >= {"debian", "el9", "suse", "arch", "alpine", "systemd_boot"}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_item13_load_default_loads_what_kexec_load_kernel_default_loads(layout: str, tmp_path: Path) -> None:
    module_tree, helper_tree = HostTree(tmp_path / "module"), HostTree(tmp_path / "helper")
    LAYOUTS[layout](module_tree)
    LAYOUTS[layout](helper_tree)
    module_runner = FakeKexec(module_tree)
    exit_ = run_module(kexec_load.main, module_runner, {"kernel": "default"})
    assert not exit_.failed, exit_.result["msg"]

    rc, lines, helper_runner = run(helper_tree, ["load-default"])

    assert rc == 0
    assert helper_runner.kexec_calls() == module_runner.kexec_calls()  # same kernel, initrd, command line, syscall order
    assert helper_runner.kexec_calls()[0][:3] == [KEXEC, "-l", "-s"]  # kexec_file_load first (lockdown refuses kexec_load)
    module_record, helper_record = (json.loads(tree.read(RECORD_FILE)) for tree in (module_tree, helper_tree))
    assert without_time(helper_record) == without_time(module_record)  # kexec_info and kexec_reboot see what it loaded
    assert helper_record["loaded_at"] == "2026-01-05T10:00:00Z"
    warnings = f" (warnings: {'; '.join(exit_.result['warnings'])})" if exit_.result["warnings"] else ""
    assert lines == [f"fastreboot-kexec-load: {exit_.result['msg']}{warnings}"]


def test_item13_load_default_keeps_the_microcode_initrd(tmp_path: Path) -> None:
    # The sh helper kept only the last word of GRUB's initrd line; the boot entry's whole list is loaded.
    tree = HostTree(tmp_path)
    layouts.systemd_boot(tree)
    tree.write("/efi/intel-ucode.img", layouts.cpio("intel-ucode"))
    entry = tree.path(f"/efi/loader/entries/{layouts.MACHINE_ID}-{layouts.SDBOOT_RELEASES[1]}.conf")
    entry.write_text(entry.read_text().replace("initrd     /", "initrd     /intel-ucode.img\ninitrd     /"))
    rc, dummy, runner = run(tree, ["load-default"])
    assert rc == 0
    record = json.loads(tree.read(RECORD_FILE))
    assert record["initrd_sources"] == ["/efi/intel-ucode.img", f"/efi/{layouts.MACHINE_ID}/{layouts.SDBOOT_RELEASES[1]}/initrd"]
    assert f"--initrd={RECORD_DIR}/initrd-staged.img" in runner.kexec_calls()[0]


def test_item13_load_default_follows_a_grub_default_pinned_to_an_older_kernel(tmp_path: Path) -> None:
    # The sh helper fell back to /vmlinuz (the newest kernel) when it missed GRUB's entry.
    tree = HostTree(tmp_path)
    older = "6.1.0-25-amd64"
    pinned = f"gnulinux-advanced-{layouts.ROOT_UUID}>gnulinux-{older}-advanced-{layouts.ROOT_UUID}"
    layouts.debian(tree, default_line=f'set default="{pinned}"')
    rc, dummy, runner = run(tree, ["load-default"])
    assert rc == 0
    assert runner.kexec_calls()[0][3] == f"/boot/vmlinuz-{older}"
    assert runner.kexec_calls()[0][-1] == f"--append=root=UUID={layouts.ROOT_UUID} ro quiet"  # the entry's line, no BOOT_IMAGE=
    assert json.loads(tree.read(RECORD_FILE))["kernel_release"] == older


@pytest.fixture(name="debian")
def debian_fixture(tmp_path: Path) -> HostTree:
    tree = HostTree(tmp_path)
    layouts.debian(tree)
    return tree


def test_item13_an_image_fastreboot_kexec_loaded_in_this_boot_is_kept(debian: HostTree) -> None:
    runner = ShutdownHost(debian)
    KexecLoader(runner, root=str(debian.root), machine="x86_64", trusted_uid=os.getuid()).run(LoadRequest(kernel="/boot/vmlinuz-6.1.0-25-amd64"))
    loads = len(runner.kexec_calls())
    rc, lines, dummy = run(debian, ["load-default"], runner)
    assert rc == 0 and len(runner.kexec_calls()) == loads  # not replaced by the default kernel
    assert lines == ["fastreboot-kexec-load: /boot/vmlinuz-6.1.0-25-amd64 (6.1.0-25-amd64), loaded by fastreboot.kexec in this boot, stays loaded"]
    assert json.loads(debian.read(RECORD_FILE))["kernel_release"] == "6.1.0-25-amd64"


def test_item13_an_image_kexec_reboot_asked_for_is_kept(debian: HostTree) -> None:
    debian.write("/sys/kernel/kexec_loaded", "1\n")  # loaded with use_loaded, no record of ours
    write_marker(debian, f"{FIXTURE_BOOT_ID} {int(NOW)}\n")
    rc, lines, runner = run(debian, ["load-default"])
    assert rc == 0 and runner.kexec_calls() == []
    assert lines == ["fastreboot-kexec-load: the loaded image stays: fastreboot.kexec.kexec_reboot asked for this kexec"]


@pytest.mark.parametrize("record_boot_id", [None, OTHER_BOOT_ID])
def test_item13_an_image_loaded_by_someone_else_is_replaced_by_the_default(debian: HostTree, record_boot_id: str | None) -> None:
    debian.write("/sys/kernel/kexec_loaded", "1\n")
    if record_boot_id:
        private_record_dir(debian)
        debian.write(RECORD_FILE, json.dumps({"version": 1, "boot_id": record_boot_id, "kernel": "/boot/vmlinuz-6.1.0-25-amd64"}), mode=0o600)
    write_marker(debian, f"{OTHER_BOOT_ID} {int(NOW)}\n")  # a marker of another boot asks for nothing
    rc, lines, runner = run(debian, ["load-default"])
    assert rc == 0
    assert runner.kexec_calls()[0][:4] == [KEXEC, "-l", "-s", "/boot/vmlinuz-6.1.0-26-amd64"]
    assert lines[0].startswith("fastreboot-kexec-load: loaded /boot/vmlinuz-6.1.0-26-amd64 (6.1.0-26-amd64) with kexec_file_load")


def test_item13_no_kexec_reboot_makes_one_reboot_cold(debian: HostTree) -> None:
    debian.write(NO_KEXEC_REBOOT, "")
    rc, lines, runner = run(debian, ["load-default", "--if-rebooting"], ShutdownHost(debian, jobs="  2314 reboot.target  start waiting\n"))
    assert rc == 0 and runner.kexec_calls() == []
    assert not debian.path(NO_KEXEC_REBOOT).exists()
    assert lines == ["fastreboot-kexec-load: /no-kexec-reboot asked for one cold reboot: removed it, loaded nothing"]
    rc, dummy, runner = run(debian, ["load-default"])  # the next reboot kexecs again
    assert rc == 0 and runner.kexec_calls()[0][1] == "-l"


@pytest.mark.parametrize(
    ("jobs", "loads"),
    [
        ("  2314 reboot.target                  start waiting\n", True),
        ("  2402 kexec.target                   start waiting\n", True),
        ("  2290 poweroff.target                start waiting\n", False),
        ("", False),
    ],
)
def test_item13_only_a_reboot_loads(debian: HostTree, jobs: str, loads: bool) -> None:
    rc, lines, runner = run(debian, ["load-default", "--if-rebooting"], ShutdownHost(debian, jobs=jobs))
    assert rc == 0
    assert bool(runner.kexec_calls()) is loads
    assert len(lines) == 1


def test_item13_a_failed_load_never_stops_the_shutdown(debian: HostTree) -> None:
    runner = ShutdownHost(debian, results={"-s": (255, "kexec_file_load failed: Required key not available"), "-c": (255, "boom")})
    rc, lines, dummy = run(debian, ["load-default"], runner)
    assert rc == 0
    assert lines[0].startswith("fastreboot-kexec-load: loaded nothing, this reboot goes through firmware: the kernel refused to load")
    assert not debian.path(RECORD_FILE).exists()


def test_item13_an_unexpected_error_never_stops_the_shutdown(debian: HostTree) -> None:
    class Broken(ShutdownHost):
        def run(self, argv: list[str]) -> tuple[int, str, str]:
            raise RuntimeError("the runner broke")

    rc, lines, dummy = run(debian, ["load-default"], Broken(debian))
    assert rc == 0
    assert lines == ["fastreboot-kexec-load: loaded nothing, this reboot goes through firmware: RuntimeError: the runner broke"]


def test_item13_commands_have_a_time_limit() -> None:
    started = time.monotonic()
    rc, dummy, err = SubprocessRunner(timeout=0.3).run(["sleep", "10"])
    assert rc == SubprocessRunner.EXIT_TIMED_OUT and "did not finish within 0.3 s" in err
    assert time.monotonic() - started < 5
    assert SubprocessRunner().run(["/nonexistent/kexec", "-u"])[0] == 127
    assert SubprocessRunner().run(["sh", "-c", "echo out; echo err >&2; exit 3"]) == (3, "out\n", "err\n")


def test_unknown_arguments_print_the_usage(debian: HostTree) -> None:
    assert run(debian, ["load-default", "grub"])[:2] == (0, [_shutdown.USAGE])  # the sh helper's old METHOD words
    assert run(debian, ["unload"])[:2] == (2, [_shutdown.USAGE])


# The guard (kexec_every_reboot: false) ---------------------------------------------------------------


def test_item13_guard_lets_through_the_marker_kexec_reboot_writes(debian: HostTree) -> None:
    # The trigger's own marker command (controller side) and the guard's check agree on the format.
    private_record_dir(debian)
    completed = subprocess.run(
        ["/bin/sh", "-c", mark_requested_command(str(debian.path(KEXEC_REQUESTED_FILE)), 30, str(debian.path(BOOT_ID)))],
        capture_output=True, text=True, timeout=20, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    debian.write("/sys/kernel/kexec_loaded", "1\n")
    rc, lines, runner = run(debian, ["guard"], clock=time.time())
    assert (rc, runner.kexec_calls()) == (0, [])
    assert lines == ["fastreboot-kexec-guard: kexec requested by fastreboot.kexec.kexec_reboot in this boot; the image stays loaded"]


@pytest.mark.parametrize(
    ("marker", "why"),
    [
        (None, "is missing"),
        (f"{OTHER_BOOT_ID} {int(NOW)}", f"was written in another boot ({OTHER_BOOT_ID})"),
        (f"{FIXTURE_BOOT_ID} {int(NOW) - KEXEC_REQUESTED_MAX_AGE - 1}", f"is more than {KEXEC_REQUESTED_MAX_AGE} s past due"),
        (f"{FIXTURE_BOOT_ID}", "holds no due time"),
        (f"{FIXTURE_BOOT_ID} 12; reboot", "holds no due time"),
        ("symlink", "is not a root-owned file in a root-owned folder"),
        ("group-writable", "is not a root-owned file in a root-owned folder"),
    ],
)
def test_item13_guard_unloads_for_any_other_marker(debian: HostTree, tmp_path: Path, marker: str | None, why: str) -> None:
    debian.write("/sys/kernel/kexec_loaded", "1\n")
    fresh = f"{FIXTURE_BOOT_ID} {int(NOW)}\n"
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "kexec-requested").write_text(fresh)
    if marker == "symlink":
        private_record_dir(debian)
        debian.symlink(KEXEC_REQUESTED_FILE, str(planted / "kexec-requested"))
    elif marker == "group-writable":
        write_marker(debian, fresh).chmod(0o660)
    elif marker is not None:
        write_marker(debian, marker + "\n")
    rc, lines, runner = run(debian, ["guard"])
    assert rc == 0, lines
    assert runner.kexec_calls() == [[KEXEC, "-u", "-s"]]  # kexec_file_load's unload first, as kexec_load state=unloaded
    assert len(lines) == 1 and lines[0].startswith(f"fastreboot-kexec-guard: no kexec was requested ({KEXEC_REQUESTED_FILE} {why}")
    assert lines[0].endswith("); unloaded the image, this reboot goes through firmware")
    assert debian.read("/sys/kernel/kexec_loaded") == "0\n"
    assert (planted / "kexec-requested").read_text() == fresh  # what a symlink named is never touched
    assert not os.path.lexists(debian.path(KEXEC_REQUESTED_FILE))  # a stale marker lets no later reboot through


def test_item13_guard_unloads_past_a_symlinked_record_folder(debian: HostTree, tmp_path: Path) -> None:
    # Only root can plant it in /run. The marker behind it counts for nothing, nothing is read or removed
    # through it, and the unload goes on regardless: unloading only makes the reboot colder.
    debian.write("/sys/kernel/kexec_loaded", "1\n")
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "kexec-requested").write_text(f"{FIXTURE_BOOT_ID} {int(NOW)}\n")
    debian.symlink(RECORD_DIR, str(planted))
    rc, lines, runner = run(debian, ["guard"])
    assert rc == 0 and runner.kexec_calls() == [[KEXEC, "-u", "-s"]]
    assert lines[0].startswith(f"fastreboot-kexec-guard: no kexec was requested ({KEXEC_REQUESTED_FILE} is not a root-owned file in a root-owned folder)")
    assert "unloaded the image" in lines[0]
    assert (planted / "kexec-requested").exists() and debian.path(RECORD_DIR).is_symlink()


def test_item13_guard_removes_the_record_of_the_image_it_unloads(debian: HostTree) -> None:
    runner = ShutdownHost(debian)
    KexecLoader(runner, root=str(debian.root), machine="x86_64", trusted_uid=os.getuid()).run(LoadRequest())
    rc, lines, dummy = run(debian, ["guard"], runner)
    assert rc == 0 and runner.kexec_calls()[-1] == [KEXEC, "-u", "-s"]
    assert not debian.path(RECORD_FILE).exists()
    assert "unloaded the image" in lines[0]


def test_item13_guard_with_nothing_loaded_unloads_nothing(debian: HostTree) -> None:
    rc, lines, runner = run(debian, ["guard"])
    assert (rc, runner.kexec_calls()) == (0, [])
    assert lines == [
        f"fastreboot-kexec-guard: no kexec was requested ({KEXEC_REQUESTED_FILE} is missing); no image is loaded, this reboot goes through firmware"
    ]


class NoFileUnload(ShutdownHost):
    """kexec-tools whose kexec_file_load unload fails (an old kernel): only kexec_load's works, or none."""

    def __init__(self, tree: HostTree, legacy_works: bool) -> None:
        super().__init__(tree)
        self.legacy_works = legacy_works

    def run(self, argv: list[str]) -> tuple[int, str, str]:
        if argv[1:] == ["-u", "-s"] or (argv[1:] == ["-u", "-c"] and not self.legacy_works):
            self.calls.append(list(argv))
            return 255, "", "kexec_file_load failed: Function not implemented\n"
        return super().run(argv)


def test_item13_guard_falls_back_to_the_legacy_unload(debian: HostTree) -> None:
    debian.write("/sys/kernel/kexec_loaded", "1\n")
    rc, lines, runner = run(debian, ["guard"], NoFileUnload(debian, legacy_works=True))
    assert rc == 0 and runner.kexec_calls() == [[KEXEC, "-u", "-s"], [KEXEC, "-u", "-c"]]
    assert "unloaded the image" in lines[0]


def test_item13_guard_says_when_the_image_stays_loaded(debian: HostTree) -> None:
    debian.write("/sys/kernel/kexec_loaded", "1\n")
    rc, lines, dummy = run(debian, ["guard"], NoFileUnload(debian, legacy_works=False))
    assert rc == 1
    assert lines[0].startswith(f"fastreboot-kexec-guard: no kexec was requested ({KEXEC_REQUESTED_FILE} is missing), "
                               "but the image could not be unloaded")
    assert lines[0].endswith(": this reboot may kexec")


def test_item13_guard_under_lockdown_never_tries_kexec_load(debian: HostTree) -> None:
    debian.write("/sys/kernel/kexec_loaded", "1\n")
    debian.write("/sys/kernel/security/lockdown", "none [integrity] confidentiality\n")
    rc, dummy, runner = run(debian, ["guard"], NoFileUnload(debian, legacy_works=True))
    assert rc == 1 and runner.kexec_calls() == [[KEXEC, "-u", "-s"]]
