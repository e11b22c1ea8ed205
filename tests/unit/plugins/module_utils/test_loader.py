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
from ansible_collections.fastreboot.kexec.plugins.module_utils._record import RecordStore
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils import layouts
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils.hosttree import (
    CAPEFF_NO_SYS_BOOT,
    OTHER_BOOT_ID,
    ROOT_UUID,
    FakeKexec,
    HostTree,
    cpio,
)

KEXEC = "/usr/sbin/kexec"
NEW_KERNEL = "/boot/vmlinuz-6.1.0-26-amd64"
NEW_INITRD = "/boot/initrd.img-6.1.0-26-amd64"
ENTRY_CMDLINE = f"root=UUID={ROOT_UUID} ro quiet"
RECORD = "/run/fastreboot-kexec/loaded.json"
CONCATENATED = "/run/fastreboot-kexec/initrd.img"
STAGED = "/run/fastreboot-kexec/initrd-staged.img"
INTEL_UCODE = "/boot/intel-ucode.img"
LOCKDOWN = "/sys/kernel/security/lockdown"
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


def test_debian13_systemd_boot_default_loads_the_entry_files_on_the_esp(tmp_path):
    # the uefi-sdboot-trixie VM: what systemd's own `systemctl kexec` ran there was
    # kexec --load /boot/efi/debian/V/linux --append "<the entry's options>" --initrd /boot/efi/debian/V/initrd.img-V
    tree = HostTree(tmp_path)
    layouts.debian13_systemd_boot(tree)
    release = layouts.DEBIAN13_SDBOOT_RELEASES[0]
    kernel, initrd = f"/boot/efi/debian/{release}/linux", f"/boot/efi/debian/{release}/initrd.img-{release}"
    outcome, runner = load(tree)
    assert runner.kexec_calls() == [[KEXEC, "-l", "-s", kernel, f"--initrd={initrd}", f"--append={layouts.DEBIAN13_SDBOOT_OPTIONS}"]]
    assert (outcome.result["kernel_release"], outcome.result["cmdline_source"]) == (release, "boot_entry")
    # reusing /proc/cmdline drops systemd-boot's initrd=\... word, which names the previous boot's initrd
    outcome, runner = load(tree, kernel="latest", append=["fastreboot.test=1"])
    assert outcome.result["cmdline"] == layouts.DEBIAN13_SDBOOT_OPTIONS + " fastreboot.test=1"


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
    tree.write(INTEL_UCODE, cpio("kernel/x86/microcode/GenuineIntel.bin"))
    outcome, runner = load(tree, kernel="latest", initrd=[INTEL_UCODE, NEW_INITRD])
    assert outcome.result["initrd"] == CONCATENATED
    assert outcome.result["initrd_sources"] == [INTEL_UCODE, NEW_INITRD]
    content = tree.path(CONCATENATED).read_bytes()
    assert content == tree.path(INTEL_UCODE).read_bytes() + tree.path(NEW_INITRD).read_bytes()
    assert oct(os.stat(tree.path(CONCATENATED)).st_mode & 0o777) == "0o600"
    assert outcome.result["initrd_sha256"] == hashlib.sha256(content).hexdigest()
    # kexec read the staged copy; it took the record's name only once the load had succeeded
    assert f"--initrd={STAGED}" in runner.kexec_calls()[0]
    assert not tree.path(STAGED).exists()
    assert json.loads(tree.read(RECORD))["initrd"] == CONCATENATED


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
    tree.write("/boot/amd-ucode.img", cpio("kernel/x86/microcode/AuthenticAMD.bin"))
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
        ({"append": ["x" * 2100]}, r"the command line is 2156 bytes but kexec_load accepts at most 2046 on x86_64"),
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
    assert "256 bytes but kexec_load accepts at most 254 on x86_64 (cmdline_size 255 in the bzImage header" in error.msg


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
    record_before = tree.read(RECORD)
    runner = FakeKexec(tree, results={"-s": (255, "kexec_file_load failed: Key was rejected by service")})
    error, runner = failing_load(tree, runner, append=["nomodeset"])
    assert syscall_flags(runner) == ["-s"]
    assert "its signature was rejected" in error.msg and "Key was rejected by service" in error.msg
    assert "kexec_load was not tried" in error.msg
    assert (error.result["loaded"], error.result["changed"]) == (True, False)
    assert tree.read(RECORD) == record_before


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


def test_failure_after_both_syscalls_keeps_previous_record(tree):
    load(tree)
    record_before = json.loads(tree.read(RECORD))
    runner = FakeKexec(tree, results={"-s": (253, ""), "-c": (255, "kexec_load failed: Cannot allocate memory")})
    error, runner = failing_load(tree, runner, append=["mem=1G"])
    assert syscall_flags(runner) == ["-s", "-c"]
    assert "Cannot allocate memory" in error.msg and "is still loaded and its record kept" in error.msg
    assert error.result["record"] == record_before == json.loads(tree.read(RECORD))


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


# Item 4: a failed load replaces nothing ---------------------------------------------------------------


def test_item04_failed_load_keeps_previous_image_and_record(tree):
    load(tree)
    record_before = tree.read(RECORD)
    runner = FakeKexec(tree, results={"-s": (255, "kexec_file_load failed: Cannot allocate memory")})
    error, runner = failing_load(tree, runner, append=["nomodeset"])
    assert len(runner.kexec_calls()) == 1
    assert tree.read("/sys/kernel/kexec_loaded").strip() == "1"
    assert tree.read(RECORD) == record_before
    assert (error.result["loaded"], error.result["changed"]) == (True, False)
    assert error.result["record"] == json.loads(record_before)
    assert error.msg.endswith(
        f"; the image loaded before ({NEW_KERNEL}, 6.1.0-26-amd64) is still loaded and its record kept: a failed load replaces nothing"
    )
    # The record still decides idempotency: the image loaded before is not loaded again.
    outcome, runner = load(tree)
    assert (outcome.result["changed"], runner.kexec_calls()) == (False, [])


def test_item04_failed_load_keeps_concatenated_initrd_of_previous_record(tree):
    tree.write(INTEL_UCODE, cpio("kernel/x86/microcode/GenuineIntel.bin"))
    load(tree, kernel="latest", initrd=[INTEL_UCODE, NEW_INITRD])
    record = json.loads(tree.read(RECORD))
    content_before = tree.path(CONCATENATED).read_bytes()
    tree.write(INTEL_UCODE, cpio("kernel/x86/microcode/GenuineIntel.bin, a newer release"))  # microcode package upgraded
    runner = FakeKexec(tree, results={"-s": (255, "kexec_file_load failed: Cannot allocate memory")})
    error, runner = failing_load(tree, runner, kernel="latest", initrd=[INTEL_UCODE, NEW_INITRD])
    assert tree.path(CONCATENATED).read_bytes() == content_before
    assert hashlib.sha256(content_before).hexdigest() == record["initrd_sha256"]
    assert json.loads(tree.read(RECORD)) == record
    assert f"--initrd={STAGED}" in runner.kexec_calls()[0]
    assert not tree.path(STAGED).exists()
    assert "is still loaded and its record kept" in error.msg


def test_item04_failed_first_load_says_nothing_is_loaded(tree):
    runner = FakeKexec(tree, results={"-s": (255, "kexec_file_load failed: Cannot allocate memory")})
    error, _runner = failing_load(tree, runner)
    assert error.msg.endswith("; nothing is loaded")
    assert (error.result["loaded"], error.result["changed"], error.result["record"]) == (False, False, None)
    assert not tree.path(RECORD).exists()


def test_item04_failed_load_over_foreign_image_says_it_is_still_loaded(tree):
    tree.write("/sys/kernel/kexec_loaded", "1\n")
    runner = FakeKexec(tree, results={"-s": (255, "kexec_file_load failed: Cannot allocate memory")})
    error, _runner = failing_load(tree, runner)
    assert error.msg.endswith("; the image loaded before (not by this collection) is still loaded: a failed load replaces nothing")
    assert (error.result["loaded"], error.result["changed"]) == (True, False)


def test_load_of_one_initrd_after_a_list_drops_the_concatenation(tree):
    tree.write(INTEL_UCODE, cpio("kernel/x86/microcode/GenuineIntel.bin"))
    load(tree, kernel="latest", initrd=[INTEL_UCODE, NEW_INITRD])
    outcome, _runner = load(tree, kernel="latest")
    assert outcome.result["initrd"] == NEW_INITRD
    assert sorted(os.listdir(tree.path("/run/fastreboot-kexec"))) == ["loaded.json"]


# Item 5: every directory on the way to kernel and initrd ------------------------------------------------


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o775, 0o757])
def test_item05_parent_directory_writable_refused(tree, mode):
    tree.kernel("6.1.0-27-amd64", image="/boot/kernels/vmlinuz-6.1.0-27-amd64")
    os.chmod(tree.path("/boot/kernels"), mode)
    load(tree)
    record_before = tree.read(RECORD)
    error, runner = failing_load(tree, kernel="/boot/kernels/vmlinuz-6.1.0-27-amd64", initrd=NEW_INITRD)
    assert error.msg == (
        "kernel /boot/kernels/vmlinuz-6.1.0-27-amd64 could be swapped by a user other than root: directory /boot/kernels "
        f"is writable by group or others (mode {mode:04o}, sticky or not); whoever can write there decides what this host boots; "
        "fix it (chmod go-w /boot/kernels) or set allow_unsafe_files=true"
    )
    assert_untouched(tree, runner, record_before)


def test_item05_symlink_parent_directory_refused(tree):
    # The initrd and its directories are safe, but the directory of the symlink followed is not: whoever
    # can write there points the link elsewhere.
    tree.symlink("/srv/boot-links/initrd.img", NEW_INITRD)
    os.chmod(tree.path("/srv/boot-links"), 0o777)
    error, runner = failing_load(tree, kernel="latest", initrd="/srv/boot-links/initrd.img")
    assert error.msg.startswith(
        f"initrd /srv/boot-links/initrd.img (-> {NEW_INITRD}) could be swapped by a user other than root: "
        "directory /srv/boot-links is writable by group or others (mode 0777, sticky or not)"
    )
    assert runner.kexec_calls() == []


def test_item05_kernel_symlink_in_writable_directory_refused(tree):
    # kernel given through a symlink whose own directory others can write: they could re-point it.
    tree.symlink("/srv/kernel-links/vmlinuz", NEW_KERNEL)
    os.chmod(tree.path("/srv/kernel-links"), 0o777)
    error, runner = failing_load(tree, kernel="/srv/kernel-links/vmlinuz", initrd=NEW_INITRD)
    assert error.msg.startswith(
        f"kernel /srv/kernel-links/vmlinuz (-> {NEW_KERNEL}) could be swapped by a user other than root: "
        "directory /srv/kernel-links is writable by group or others (mode 0777, sticky or not)"
    )
    assert runner.kexec_calls() == []


def test_item05_root_directory_writable_refused(tree):
    os.chmod(tree.root, 0o777)
    error, runner = failing_load(tree)
    assert f"kernel {NEW_KERNEL} could be swapped by a user other than root: directory / is writable by group or others" in error.msg
    assert runner.kexec_calls() == []


def test_item05_initrd_directory_writable_refused(tree):
    tree.write("/var/tmp/initrds/initrd.img", cpio("initramfs"))
    os.chmod(tree.path("/var/tmp"), 0o1777)
    error, runner = failing_load(tree, kernel="latest", initrd="/var/tmp/initrds/initrd.img")
    assert error.msg.startswith(
        "initrd /var/tmp/initrds/initrd.img could be swapped by a user other than root: directory /var/tmp is writable "
        "by group or others (mode 1777, sticky or not)"
    )
    assert runner.kexec_calls() == []


def test_item05_unsafe_directory_allowed_with_warning(tree):
    os.chmod(tree.path("/boot"), 0o777)
    outcome, runner = load(tree, allow_unsafe_files=True)
    assert outcome.result["loaded"] is True and len(runner.kexec_calls()) == 1
    unsafe = [warning for warning in outcome.warnings if "allowed by allow_unsafe_files" in warning]
    assert [warning.split(" could be swapped")[0] for warning in unsafe] == [f"kernel {NEW_KERNEL}", f"initrd {NEW_INITRD}"]
    assert all("directory /boot is writable by group or others (mode 0777, sticky or not)" in warning for warning in unsafe)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory to another user needs root")
def test_item05_parent_directory_of_another_owner_refused(tree):
    tree.kernel("6.1.0-27-amd64", image="/opt/kernels/vmlinuz-6.1.0-27-amd64")
    os.chown(tree.path("/opt/kernels"), 1000, 1000)
    error, runner = failing_load(tree, kernel="/opt/kernels/vmlinuz-6.1.0-27-amd64", initrd=NEW_INITRD)
    assert "directory /opt/kernels is owned by uid 1000 instead of root" in error.msg
    assert "fix it (chown root:root /opt/kernels)" in error.msg
    assert runner.kexec_calls() == []


# Item 8: the record directory must be root's ------------------------------------------------------------


def test_item08_symlinked_record_directory_refuses_load_before_kexec(tree):
    tree.mkdir("/var/lib/elsewhere", mode=0o700)
    tree.symlink("/run/fastreboot-kexec", "/var/lib/elsewhere")
    error, runner = failing_load(tree)
    assert error.msg.startswith("/run/fastreboot-kexec is a symlink (to /var/lib/elsewhere)")
    assert "remove it (rm -rf /run/fastreboot-kexec)" in error.msg
    assert runner.kexec_calls() == []
    assert os.listdir(tree.path("/var/lib/elsewhere")) == []


# Item 10: Secure Boot and lockdown refusals -------------------------------------------------------------


def secure_boot(tree):
    tree.write(LOCKDOWN, "none [integrity] confidentiality\n")
    tree.write(SECURE_BOOT, b"\x06\x00\x00\x00\x01")


@pytest.mark.parametrize(
    "stderr, why",
    [
        ("kexec_file_load failed: No data available", "it carries no signature"),
        ("kexec_file_load failed: Required key not available", "it is signed by a key the kernel does not trust"),
        ("kexec_file_load failed: Key was rejected by service", "its signature was rejected (a revoked key, or a signature that does not match)"),
        ("kexec_file_load failed: Bad message", "its signature is malformed"),
        ("kexec_file_load failed: Operation not permitted", "its signature does not verify, and lockdown refuses unverified kernels"),
    ],
)
def test_item10_secure_boot_refusal_names_file_and_signed_kernels(tree, stderr, why):
    secure_boot(tree)
    runner = FakeKexec(tree, results={"-s": (255, stderr)})
    error, runner = failing_load(tree, runner)
    assert syscall_flags(runner) == ["-s"]
    assert error.msg.startswith(f"the kernel refused to load {NEW_KERNEL}: {why} ({stderr}). ")
    assert (
        "Secure Boot/lockdown needs a kernel signed by a key the kernel trusts (Debian's kernels are) "
        "(lockdown=integrity, Secure Boot enabled)"
    ) in error.msg
    assert "kexec_load was not tried" in error.msg


@pytest.mark.parametrize("syscall", ["auto", "file"])
def test_item10_unsigned_kernel_without_lockdown_is_not_blamed_on_secure_boot(tree, syscall):
    runner = FakeKexec(tree, results={"-s": (255, "kexec_file_load failed: No data available")})
    error, runner = failing_load(tree, runner, syscall=syscall)
    assert syscall_flags(runner) == ["-s"]  # never retried with kexec_load
    assert error.msg.startswith(f"the kernel refused to load {NEW_KERNEL}: it carries no signature")
    assert "lockdown is off here (lockdown=none, Secure Boot unsupported), so this is not Secure Boot" in error.msg
    assert "CONFIG_KEXEC_SIG_FORCE" in error.msg


def test_item10_unknown_lockdown_state_says_so(tree):
    tree.path(LOCKDOWN).unlink()
    runner = FakeKexec(tree, results={"-s": (255, "kexec_file_load failed: Required key not available")})
    error, runner = failing_load(tree, runner)
    assert syscall_flags(runner) == ["-s"]
    assert "the lockdown state is unknown (lockdown=unknown, Secure Boot unsupported" in error.msg
    assert "Secure Boot/lockdown needs a kernel signed by a key the kernel trusts" in error.msg


def test_item10_refused_kexec_load_points_to_file_syscall(tree):
    # The kernel refuses kexec_load although no lockdown is visible (securityfs not mounted).
    tree.path(LOCKDOWN).unlink()
    runner = FakeKexec(tree, results={"-c": (255, "kexec_load failed: Permission denied")})
    error, runner = failing_load(tree, runner, syscall="legacy")
    assert error.msg.startswith(f"the kernel refused kexec_load for {NEW_KERNEL} (kexec_load failed: Permission denied)")
    assert "use syscall=file; Secure Boot/lockdown needs a kernel signed by a key the kernel trusts (Debian's kernels are)" in error.msg


# Item 12: unload under lockdown with kexec-tools 2.0.25 ---------------------------------------------------


def test_item12_fake_kexec_tools_2_0_25_refuses_plain_unload_under_lockdown(tree):
    secure_boot(tree)
    tree.write("/sys/kernel/kexec_loaded", "1\n")
    runner = FakeKexec(tree, version="kexec-tools 2.0.25")
    assert runner.run([KEXEC, "-u"]) == (255, "", "kexec unload failed: Permission denied\n")
    assert tree.read("/sys/kernel/kexec_loaded").strip() == "1"


def test_item12_unload_under_lockdown_uses_kexec_file_load(tree):
    load(tree)
    secure_boot(tree)
    outcome, runner = load(tree, FakeKexec(tree, version="kexec-tools 2.0.25"), state="unloaded")
    assert runner.kexec_calls() == [[KEXEC, "-u", "-s"]]
    assert (outcome.result["changed"], outcome.result["loaded"], outcome.result["syscall"]) == (True, False, "file")
    assert tree.read("/sys/kernel/kexec_loaded").strip() == "0"
    assert not tree.path(RECORD).exists()


def test_item12_failed_unload_keeps_image_and_record(tree):
    load(tree)
    record_before = tree.read(RECORD)
    runner = FakeKexec(tree)
    runner.run = lambda argv: (255, "", "kexec_file_load(unload) failed: Device or resource busy\n")  # type: ignore[method-assign]
    runner.find = lambda name: KEXEC if name == "kexec" else None  # type: ignore[method-assign]
    with pytest.raises(LoadError) as caught:
        loader(tree, runner).run(LoadRequest(state="unloaded"))
    assert "kexec -u failed, the image is still loaded and its record kept" in caught.value.msg
    assert tree.read(RECORD) == record_before


# Item 13: check mode without kexec-tools says what a real run needs --------------------------------------


def test_item13_check_mode_without_kexec_says_what_a_real_run_would_need(tree):
    outcome, runner = load(tree, FakeKexec(tree, programs={}), check_mode=True)
    assert outcome.result["changed"] is True
    assert outcome.result["would_fail_because"] == [
        "the kexec program (kexec-tools) is not installed: install it with the fastreboot.kexec.kexec role (or the kexec-tools package)"
    ]
    assert runner.calls == []


def test_item13_check_mode_on_a_ready_host_would_not_fail(tree):
    outcome, _runner = load(tree, check_mode=True)
    assert outcome.result["would_fail_because"] is None


def test_item13_unload_check_mode_without_kexec_says_what_a_real_run_would_need(tree):
    load(tree)
    outcome, _runner = load(tree, FakeKexec(tree, programs={}), check_mode=True, state="unloaded")
    assert outcome.result["changed"] is True
    assert outcome.result["would_fail_because"] == [
        "the kexec program (kexec-tools) is not installed: install it with the fastreboot.kexec.kexec role (or the kexec-tools package)"
    ]
    assert any("check mode goes on; a real run fails here" in warning for warning in outcome.warnings)


# Item 3: force reloads although the record matches --------------------------------------------------------


def test_item03_force_reloads_when_record_matches(tree):
    load(tree)
    outcome, runner = load(tree, force=True)
    assert len(runner.kexec_calls()) == 1
    assert (outcome.result["changed"], outcome.result["reloaded_reason"]) == (True, "forced")
    assert "force=true reloads although the record says it is loaded" in outcome.result["msg"]


def test_item03_force_keeps_the_real_reason_when_there_is_one(tree):
    outcome, _runner = load(tree, force=True)
    assert outcome.result["reloaded_reason"] == "not loaded"


def test_item03_force_in_check_mode_would_reload(tree):
    load(tree)
    outcome, runner = load(tree, force=True, check_mode=True)
    assert (outcome.result["changed"], outcome.result["reloaded_reason"], runner.kexec_calls()) == (True, "forced", [])


def test_item04_record_not_written_after_a_successful_load_drops_the_old_one(tree, monkeypatch):
    load(tree)

    def full(_store, _record):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(RecordStore, "write", full)
    error, _runner = failing_load(tree, append=["nomodeset"])
    assert error.msg.startswith(f"{NEW_KERNEL} was loaded, but its record could not be written ([Errno 28] No space left on device)")
    assert (error.result["loaded"], error.result["changed"], error.result["record"]) == (True, True, None)
    assert not tree.path(RECORD).exists()  # it described the image that was replaced


# Issue 19 (with issue 13): every failure carries a failure_code; callers decide by it, not by the text ----


def locked_down_without_file_load(tree):
    tree.write(LOCKDOWN, "none [integrity] confidentiality\n")
    tree.write("/boot/config-6.1.0-25-amd64", "CONFIG_KEXEC=y\n")


@pytest.mark.parametrize(
    "setup, runner_options",
    [
        (lambda tree: tree.write("/proc/sys/kernel/kexec_load_disabled", "1\n"), {}),
        (lambda tree: tree.write("/.dockerenv", ""), {}),
        (lambda tree: tree.write("/proc/self/status", f"CapEff:\t{CAPEFF_NO_SYS_BOOT}\n"), {}),
        (lambda tree: tree.write("/boot/config-6.1.0-25-amd64", "# CONFIG_KEXEC is not set\n"), {}),
        (locked_down_without_file_load, {}),
        (lambda tree: None, {"programs": {}}),
    ],
    ids=["kexec_load_disabled", "container", "no CAP_SYS_BOOT", "no kexec in the kernel", "lockdown without kexec_file_load", "no kexec-tools"],
)
def test_item19_host_that_cannot_kexec_is_unsupported(tree, setup, runner_options):
    setup(tree)
    error, runner = failing_load(tree, FakeKexec(tree, **runner_options))
    assert error.result["failure_code"] == "unsupported", error.msg
    assert runner.kexec_calls() == []


def test_item19_unsupported_in_check_mode_too(tree):
    tree.write("/proc/sys/kernel/kexec_load_disabled", "1\n")
    with pytest.raises(LoadError) as caught:
        loader(tree, FakeKexec(tree)).run(LoadRequest(), check_mode=True)
    assert caught.value.result["failure_code"] == "unsupported" and "kexec_load_disabled=1" in caught.value.msg


@pytest.mark.parametrize(
    "stderr, syscall",
    [
        ("kexec_file_load failed: No data available", "auto"),
        ("kexec_file_load failed: Required key not available", "file"),
        ("kexec_file_load failed: Key was rejected by service", "auto"),
    ],
)
def test_item19_signature_refusal_is_signature(tree, stderr, syscall):
    secure_boot(tree)
    error, _runner = failing_load(tree, FakeKexec(tree, results={"-s": (255, stderr)}), syscall=syscall)
    assert error.result["failure_code"] == "signature", error.msg


def test_item19_refused_kexec_load_is_signature(tree):
    tree.path(LOCKDOWN).unlink()
    error, _runner = failing_load(tree, FakeKexec(tree, results={"-c": (255, "kexec_load failed: Permission denied")}), syscall="legacy")
    assert error.result["failure_code"] == "signature", error.msg


@pytest.mark.parametrize(
    "options",
    [
        {"kernel": "/boot/vmlinuz-9.9.9"},
        {"kernel": "vmlinuz"},
        {"kernel": "latest", "initrd": True},
        {"append": ['foo="a']},
        {"append": ["x" * 2100]},
        {"cmdline": " "},
    ],
)
def test_item19_bad_request_is_input(tree, options):
    error, runner = failing_load(tree, **options)
    assert error.result["failure_code"] == "input", error.msg
    assert runner.kexec_calls() == []


def test_item19_legacy_asked_under_lockdown_is_input(tree):
    tree.write(LOCKDOWN, "none [integrity] confidentiality\n")
    error, _runner = failing_load(tree, syscall="legacy")
    assert error.result["failure_code"] == "input", error.msg


def test_item19_group_writable_kernel_is_input(tree):
    os.chmod(tree.path(NEW_KERNEL), 0o664)
    error, _runner = failing_load(tree)
    assert error.result["failure_code"] == "input", error.msg


def test_item19_other_kexec_failures_are_kexec(tree):
    runner = FakeKexec(tree, results={"-s": (253, ""), "-c": (255, "kexec_load failed: Cannot allocate memory")})
    error, _runner = failing_load(tree, runner)
    assert error.result["failure_code"] == "kexec", error.msg
    load(tree)
    failing_unload = FakeKexec(tree)
    failing_unload.run = lambda argv: (255, "", "kexec_file_load(unload) failed: Device or resource busy\n")  # type: ignore[method-assign]
    with pytest.raises(LoadError) as caught:
        loader(tree, failing_unload).run(LoadRequest(state="unloaded"))
    assert caught.value.result["failure_code"] == "kexec"


def test_item19_record_problems_are_record(tree, monkeypatch):
    tree.mkdir("/var/lib/elsewhere", mode=0o700)
    tree.symlink("/run/fastreboot-kexec", "/var/lib/elsewhere")
    error, _runner = failing_load(tree)
    assert error.result["failure_code"] == "record", error.msg
    tree.path("/run/fastreboot-kexec").unlink()

    def full(_store, _record):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(RecordStore, "write", full)
    error, _runner = failing_load(tree)
    assert error.result["failure_code"] == "record", error.msg


def test_item19_success_has_no_failure_code(tree):
    outcome, _runner = load(tree)
    assert "failure_code" not in outcome.result
