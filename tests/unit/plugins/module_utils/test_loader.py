# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import hashlib
import json
import os
import re

import pytest

from ansible_collections.fastreboot.kexec.plugins.module_utils._loader import (
    KexecLoader,
    LoadError,
    LoadRequest,
    parse_initrd_option,
)
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils import layouts
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils.hosttree import (
    CAPEFF_NO_SYS_BOOT,
    OTHER_BOOT_ID,
    ROOT_UUID,
    FakeKexec,
    HostTree,
)

KEXEC = "/usr/sbin/kexec"
NEW_KERNEL = "/boot/vmlinuz-6.1.0-26-amd64"
NEW_INITRD = "/boot/initrd.img-6.1.0-26-amd64"
ENTRY_CMDLINE = f"root=UUID={ROOT_UUID} ro quiet"
RECORD = "/run/fastreboot-kexec/loaded.json"
SECURE_BOOT = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"


@pytest.fixture
def tree(tmp_path):
    tree = HostTree(tmp_path)
    layouts.debian(tree)
    return tree


def loader(tree, runner):
    return KexecLoader(runner, root=str(tree.root), machine="x86_64", trusted_uid=os.getuid(), clock=lambda: 1767607200.0)


def load(tree, runner=None, check_mode=False, **options):
    runner = runner or FakeKexec(tree)
    return loader(tree, runner).run(LoadRequest(**options), check_mode=check_mode), runner


def failing_load(tree, runner=None, **options):
    runner = runner or FakeKexec(tree)
    with pytest.raises(LoadError) as caught:
        loader(tree, runner).run(LoadRequest(**options))
    return caught.value, runner


def sha256(tree, path):
    return hashlib.sha256(tree.path(path).read_bytes()).hexdigest()


# A first load ----------------------------------------------------------------------------------------


def test_default_load_uses_boot_entry_and_writes_record(tree):
    outcome, runner = load(tree)
    result = outcome.result
    assert runner.kexec_calls() == [[KEXEC, "-l", "-s", NEW_KERNEL, f"--initrd={NEW_INITRD}", f"--append={ENTRY_CMDLINE}"]]
    assert result["changed"] is True and result["loaded"] is True
    assert (result["kernel"], result["kernel_release"], result["kernel_selected_by"]) == (NEW_KERNEL, "6.1.0-26-amd64", "default")
    assert (result["initrd"], result["cmdline"], result["cmdline_source"]) == (NEW_INITRD, ENTRY_CMDLINE, "boot_entry")
    assert (result["syscall"], result["reloaded_reason"]) == ("file", "not loaded")
    assert result["kernel_sha256"] == sha256(tree, NEW_KERNEL)
    assert result["running_release"] == "6.1.0-25-amd64"
    record = json.loads(tree.read(RECORD))
    assert record["boot_id"] == result["boot_id"]
    assert (record["kernel_sha256"], record["initrd_sha256"]) == (sha256(tree, NEW_KERNEL), sha256(tree, NEW_INITRD))
    assert (record["cmdline"], record["syscall"], record["loaded_at"]) == (ENTRY_CMDLINE, "file", "2026-01-05T10:00:00Z")
    assert result["record"] == record
    assert outcome.diff == {
        "before": dict.fromkeys(("kernel", "kernel_release", "kernel_sha256", "initrd", "initrd_sha256", "cmdline", "syscall"), None) | {"loaded": False},
        "after": {
            "kernel": NEW_KERNEL, "kernel_release": "6.1.0-26-amd64", "kernel_sha256": record["kernel_sha256"], "initrd": NEW_INITRD,
            "initrd_sha256": record["initrd_sha256"], "cmdline": ENTRY_CMDLINE, "syscall": "file", "loaded": True,
        },
    }


def test_latest_reuses_proc_cmdline_without_boot_image(tree):
    outcome, runner = load(tree, kernel="latest", append=["console=ttyS0,115200"], remove=["quiet"])
    assert outcome.result["cmdline_source"] == "proc"
    assert outcome.result["cmdline"] == f"root=UUID={ROOT_UUID} ro console=ttyS0,115200"
    assert runner.kexec_calls()[0][-1] == f"--append=root=UUID={ROOT_UUID} ro console=ttyS0,115200"


def test_explicit_cmdline_with_quoted_value_reaches_kexec_intact(tree):
    outcome, runner = load(tree, kernel="/vmlinuz", cmdline='root=/dev/vda1 foo="a b" quiet')
    assert outcome.result["kernel"] == NEW_KERNEL
    assert outcome.result["cmdline_source"] == "cmdline"
    assert runner.kexec_calls()[0][-1] == '--append=root=/dev/vda1 foo="a b" quiet'


def test_initrd_false_loads_without_initrd(tree):
    outcome, runner = load(tree, kernel="latest", initrd=False)
    assert outcome.result["initrd"] is None and outcome.result["initrd_sha256"] is None
    assert not any(arg.startswith("--initrd") for arg in runner.kexec_calls()[0])


def test_initrd_list_is_concatenated_privately(tree):
    tree.write("/boot/intel-ucode.img", b"MICROCODE")
    outcome, runner = load(tree, kernel="latest", initrd=["/boot/intel-ucode.img", NEW_INITRD])
    concatenated = "/run/fastreboot-kexec/initrd.img"
    assert outcome.result["initrd"] == concatenated
    assert outcome.result["initrd_sources"] == ["/boot/intel-ucode.img", NEW_INITRD]
    content = tree.path(concatenated).read_bytes()
    assert content == b"MICROCODE" + tree.path(NEW_INITRD).read_bytes()
    assert oct(os.stat(tree.path(concatenated)).st_mode & 0o777) == "0o600"
    assert outcome.result["initrd_sha256"] == hashlib.sha256(content).hexdigest()
    assert f"--initrd={concatenated}" in runner.kexec_calls()[0]


def test_arch_default_initrds_include_microcode(tmp_path):
    tree = HostTree(tmp_path)
    layouts.arch(tree)
    outcome, runner = load(tree, kernel="latest")
    assert outcome.result["initrd_sources"] == ["/boot/intel-ucode.img", "/boot/initramfs-linux.img"]
    assert outcome.result["kernel_selected_by"].startswith("latest")
    assert outcome.result["cmdline"] == f"root=UUID={ROOT_UUID} rw"  # initrd=\intel-ucode.img etc. stripped


# Idempotency ----------------------------------------------------------------------------------------


def test_same_request_twice_is_unchanged(tree):
    load(tree)
    outcome, runner = load(tree)
    assert outcome.result["changed"] is False
    assert outcome.result["reloaded_reason"] is None
    assert outcome.result["syscall"] == "file"
    assert runner.kexec_calls() == []
    assert outcome.diff["before"] == outcome.diff["after"]


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"append": ["nomodeset"]}, "request differs"),
        ({"kernel": "/boot/vmlinuz-6.1.0-25-amd64"}, "request differs"),
        ({"initrd": False}, "request differs"),
        ({"syscall": "legacy"}, "request differs"),
    ],
)
def test_changed_request_reloads(tree, change, reason):
    load(tree)
    outcome, runner = load(tree, **change)
    assert (outcome.result["changed"], outcome.result["reloaded_reason"]) == (True, reason)
    assert len(runner.kexec_calls()) == 1


def test_explicit_file_syscall_matches_record_of_auto_file_load(tree):
    load(tree)
    outcome, runner = load(tree, syscall="file")
    assert outcome.result["changed"] is False and runner.kexec_calls() == []


def test_kernel_file_changed_on_disk_reloads(tree):
    load(tree)
    tree.kernel("6.1.0-26-amd64", payload=8192)  # package reinstalled with different bytes
    outcome, _runner = load(tree)
    assert outcome.result["reloaded_reason"] == "request differs"
    assert "kernel_sha256" in outcome.result["msg"]


def test_image_unloaded_behind_our_back_reloads(tree):
    load(tree)
    tree.write("/sys/kernel/kexec_loaded", "0\n")
    outcome, _runner = load(tree)
    assert (outcome.result["changed"], outcome.result["reloaded_reason"]) == (True, "not loaded")


def test_image_loaded_by_someone_else_is_replaced_with_warning(tree):
    tree.write("/sys/kernel/kexec_loaded", "1\n")
    outcome, _runner = load(tree)
    assert (outcome.result["changed"], outcome.result["reloaded_reason"]) == (True, "no record")
    assert any("loaded by something else" in warning for warning in outcome.warnings)


def test_record_of_earlier_boot_reloads(tree):
    load(tree)
    tree.write("/proc/sys/kernel/random/boot_id", OTHER_BOOT_ID + "\n")
    outcome, _runner = load(tree)
    assert outcome.result["reloaded_reason"] == "record of an earlier boot"
    assert json.loads(tree.read(RECORD))["boot_id"] == OTHER_BOOT_ID


# Check mode -----------------------------------------------------------------------------------------


def test_check_mode_loads_and_writes_nothing(tree):
    outcome, runner = load(tree, check_mode=True)
    assert outcome.result["changed"] is True
    assert outcome.result["loaded"] is False
    assert outcome.result["msg"].startswith("would load /boot/vmlinuz-6.1.0-26-amd64")
    assert runner.kexec_calls() == []
    assert not tree.path("/run/fastreboot-kexec").exists()
    assert outcome.diff["after"]["cmdline"] == ENTRY_CMDLINE


def test_check_mode_with_list_does_not_write_concatenation(tree):
    tree.write("/boot/amd-ucode.img", b"AMD")
    outcome, runner = load(tree, check_mode=True, initrd=["/boot/amd-ucode.img", NEW_INITRD])
    assert outcome.result["initrd"] == "/run/fastreboot-kexec/initrd.img"
    assert not tree.path("/run/fastreboot-kexec").exists() and runner.kexec_calls() == []


# Validation: nothing is run, nothing is dropped -------------------------------------------------------


def assert_untouched(tree, runner, record_before):
    assert runner.kexec_calls() == []
    assert tree.read("/sys/kernel/kexec_loaded").strip() == "1"
    assert tree.read(RECORD) == record_before


@pytest.mark.parametrize(
    "options, message",
    [
        ({"kernel": "/boot/vmlinuz-9.9.9"}, r"kernel /boot/vmlinuz-9\.9\.9 does not exist: check the path"),
        ({"kernel": "/boot"}, r"is a directory: pass the file itself"),
        ({"kernel": NEW_INITRD}, r"is not a kernel image .* not an initramfs"),
        ({"kernel": "latest", "initrd": "/boot/initrd.img-missing"}, r"initrd /boot/initrd.img-missing does not exist"),
        ({"kernel": "latest", "initrd": True}, r"initrd=True is not understood"),
        ({"append": ["foo=bar\nbaz"]}, r"contains a line break"),
        ({"append": ["x" * 2100]}, r"accepts at most 2047 on x86_64"),
        ({"append": ['foo="a']}, r"unbalanced double quote"),
        ({"kernel": "vmlinuz"}, r"neither an absolute path"),
    ],
)
def test_bad_input_never_calls_kexec_nor_drops_loaded_image(tree, options, message):
    load(tree)
    record_before = tree.read(RECORD)
    error, runner = failing_load(tree, **options)
    assert re.search(message, error.msg), error.msg
    assert_untouched(tree, runner, record_before)
    assert error.result["loaded"] is True


def test_truncated_kernel_is_refused(tree):
    tree.kernel("6.1.0-27-amd64", initrd="/boot/initrd.img-6.1.0-27-amd64", truncate_by=512)
    error, runner = failing_load(tree, kernel="latest")
    assert "is truncated" in error.msg and "reinstall" in error.msg
    assert runner.kexec_calls() == []


def test_header_cmdline_size_limits_the_line(tree):
    tree.kernel("6.1.0-27-amd64", initrd="/boot/initrd.img-6.1.0-27-amd64", cmdline_size=255)
    error, _runner = failing_load(tree, kernel="latest", cmdline="a" * 256)
    assert "256 bytes but the kernel accepts at most 255" in error.msg


def test_no_initramfs_found_is_an_error_with_fix(tree):
    tree.kernel("6.1.0-27-amd64")
    error, runner = failing_load(tree, kernel="latest")
    assert "no initramfs found for kernel /boot/vmlinuz-6.1.0-27-amd64" in error.msg
    assert "/boot/initrd.img-6.1.0-27-amd64" in error.msg and "initrd=false" in error.msg
    assert runner.kexec_calls() == []


def test_group_writable_kernel_is_refused_unless_allowed(tree):
    os.chmod(tree.path(NEW_KERNEL), 0o664)
    error, runner = failing_load(tree)
    assert "writable by group or others (mode 0664)" in error.msg and "allow_unsafe_files=true" in error.msg
    assert runner.kexec_calls() == []
    outcome, runner = load(tree, allow_unsafe_files=True)
    assert outcome.result["loaded"] is True
    assert any("allowed by allow_unsafe_files" in warning for warning in outcome.warnings)


def test_kernel_not_owned_by_trusted_user_is_refused(tree):
    runner = FakeKexec(tree)
    strict = KexecLoader(runner, root=str(tree.root), machine="x86_64", trusted_uid=os.getuid() + 1)
    with pytest.raises(LoadError, match=rf"owned by uid {os.getuid()} instead of root"):
        strict.run(LoadRequest())
    assert runner.kexec_calls() == []


def test_symlinked_initrd_is_checked_at_its_target(tree):
    tree.symlink("/boot/initrd-link", "initrd.img-6.1.0-26-amd64")
    outcome, runner = load(tree, kernel="latest", initrd="/boot/initrd-link")
    assert outcome.result["initrd"] == NEW_INITRD


def test_symlink_loop_is_a_clear_error_and_nothing_is_loaded(tree):
    tree.symlink("/boot/loop-a", "loop-b")
    tree.symlink("/boot/loop-b", "loop-a")
    error, runner = failing_load(tree, kernel="/boot/loop-a")
    assert "too many levels of symbolic links in /boot/loop-a" in error.msg
    assert "nothing was loaded" in error.msg
    assert runner.kexec_calls() == []


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda tree: tree.write("/.dockerenv", ""), "docker container"),
        (lambda tree: tree.write("/proc/self/status", f"CapEff:\t{CAPEFF_NO_SYS_BOOT}\n"), "CAP_SYS_BOOT: run as root"),
        (lambda tree: tree.write("/proc/sys/kernel/kexec_load_disabled", "1\n"), "kexec_load_disabled=1"),
    ],
)
def test_host_that_cannot_kexec_fails_before_anything(tree, setup, message):
    setup(tree)
    error, runner = failing_load(tree)
    assert message in error.msg
    assert runner.kexec_calls() == []
    assert error.result["support"]["supported"] is False


def test_missing_kexec_points_to_role(tree):
    error, _runner = failing_load(tree, FakeKexec(tree, programs={}))
    assert "fastreboot.kexec.kexec role" in error.msg


def test_missing_kexec_only_warns_in_check_mode(tree):
    # The role that installs kexec-tools changes nothing in check mode either.
    outcome, _runner = load(tree, FakeKexec(tree, programs={}), check_mode=True)
    assert outcome.result["changed"] is True
    assert any("fastreboot.kexec.kexec role" in warning and "check mode" in warning for warning in outcome.warnings)


def test_container_fails_even_in_check_mode(tree):
    tree.write("/.dockerenv", "")
    with pytest.raises(LoadError, match="container"):
        loader(tree, FakeKexec(tree)).run(LoadRequest(), check_mode=True)


def test_legacy_under_lockdown_is_refused(tree):
    tree.write("/sys/kernel/security/lockdown", "none [integrity] confidentiality\n")
    error, runner = failing_load(tree, syscall="legacy")
    assert "syscall=legacy but lockdown=integrity refuses kexec_load" in error.msg
    assert runner.kexec_calls() == []


# Syscalls -------------------------------------------------------------------------------------------


def syscall_flags(runner):
    return [argv[2] for argv in runner.kexec_calls()]


def test_auto_falls_back_to_legacy_when_file_load_unavailable(tree):
    runner = FakeKexec(tree, results={"-s": (253, "syscall kexec_file_load not available.")})
    outcome, runner = load(tree, runner)
    assert syscall_flags(runner) == ["-s", "-c"]
    assert outcome.result["syscall"] == "legacy"
    assert [attempt["rc"] for attempt in outcome.result["attempts"]] == [253, 0]
    assert json.loads(tree.read(RECORD))["syscall"] == "legacy"


def test_auto_falls_back_on_old_kexec_tools_exec_format_error(tree):
    runner = FakeKexec(tree, results={"-s": (255, "kexec_file_load failed: Exec format error")})
    outcome, runner = load(tree, runner)
    assert syscall_flags(runner) == ["-s", "-c"] and outcome.result["syscall"] == "legacy"


def test_signature_error_is_reported_not_retried(tree):
    load(tree)
    runner = FakeKexec(tree, results={"-s": (255, "kexec_file_load failed: Key was rejected by service")})
    error, runner = failing_load(tree, runner, append=["nomodeset"])
    assert syscall_flags(runner) == ["-s"]
    assert "rejected the signature" in error.msg and "Key was rejected by service" in error.msg
    assert "nothing is loaded any more" in error.msg
    assert (error.result["loaded"], error.result["changed"]) == (False, True)
    assert not tree.path(RECORD).exists()


def test_lockdown_auto_never_tries_legacy(tree):
    tree.write("/sys/kernel/security/lockdown", "none [integrity] confidentiality\n")
    runner = FakeKexec(tree, results={"-s": (253, "syscall kexec_file_load not available.")})
    error, runner = failing_load(tree, runner)
    assert syscall_flags(runner) == ["-s"]
    assert "refused under lockdown/Secure Boot" in error.msg


def test_secure_boot_without_lockdown_file_still_skips_legacy(tree):
    tree.path("/sys/kernel/security/lockdown").unlink()
    tree.write(SECURE_BOOT, b"\x06\x00\x00\x00\x01")
    runner = FakeKexec(tree, results={"-s": (253, "")})
    failing_load(tree, runner)
    assert syscall_flags(runner) == ["-s"]


def test_explicit_legacy_uses_only_kexec_load(tree):
    outcome, runner = load(tree, syscall="legacy")
    assert syscall_flags(runner) == ["-c"] and outcome.result["syscall"] == "legacy"


def test_explicit_file_does_not_fall_back(tree):
    runner = FakeKexec(tree, results={"-s": (253, "syscall kexec_file_load not available.")})
    error, runner = failing_load(tree, runner, syscall="file")
    assert syscall_flags(runner) == ["-s"]
    assert "try syscall=auto" in error.msg


def test_failure_after_both_syscalls_removes_record(tree):
    load(tree)
    runner = FakeKexec(tree, results={"-s": (253, ""), "-c": (255, "kexec_load failed: Cannot allocate memory")})
    error, runner = failing_load(tree, runner, append=["mem=1G"])
    assert syscall_flags(runner) == ["-s", "-c"]
    assert "Cannot allocate memory" in error.msg and "nothing is loaded any more" in error.msg
    assert error.result["record"] is None and not tree.path(RECORD).exists()


# Unload ----------------------------------------------------------------------------------------------


def test_unload_when_loaded(tree):
    load(tree)
    outcome, runner = load(tree, state="unloaded")
    assert runner.kexec_calls() == [[KEXEC, "-u", "-s"]]
    assert (outcome.result["changed"], outcome.result["loaded"]) == (True, False)
    assert not tree.path(RECORD).exists()


def test_unload_when_nothing_loaded_is_unchanged_and_clears_stale_record(tree):
    load(tree)
    tree.write("/sys/kernel/kexec_loaded", "0\n")
    outcome, runner = load(tree, state="unloaded")
    assert outcome.result["changed"] is False and runner.kexec_calls() == []
    assert not tree.path(RECORD).exists()


def test_unload_check_mode(tree):
    load(tree)
    outcome, runner = load(tree, state="unloaded", check_mode=True)
    assert outcome.result["changed"] is True and runner.kexec_calls() == []
    assert tree.path(RECORD).exists()


# Option parsing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, parsed",
    [
        ("auto", ("auto", [])),
        (None, ("auto", [])),
        (False, ("none", [])),
        ("none", ("none", [])),
        ("/boot/initrd.img", ("paths", ["/boot/initrd.img"])),
        (["/boot/a", "/boot/b"], ("paths", ["/boot/a", "/boot/b"])),
    ],
)
def test_parse_initrd_option(value, parsed):
    assert parse_initrd_option(value) == parsed


@pytest.mark.parametrize("value", [True, [], [""], 3])
def test_parse_initrd_option_refuses(value):
    with pytest.raises(LoadError, match="is not understood"):
        parse_initrd_option(value)
