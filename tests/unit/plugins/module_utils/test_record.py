# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import hashlib
import json
import os
import stat

import pytest

from ansible_collections.fastreboot.kexec.plugins.module_utils._host import HostFiles
from ansible_collections.fastreboot.kexec.plugins.module_utils._paths import CONCATENATED_INITRD, RECORD_DIR, RECORD_FILE, STAGED_INITRD
from ansible_collections.fastreboot.kexec.plugins.module_utils._record import (
    RecordError,
    RecordStore,
    differing_fields,
    record_problem,
    sha256_of,
)
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils.hosttree import BOOT_ID, OTHER_BOOT_ID, HostTree

RECORD = {
    "boot_id": BOOT_ID,
    "kernel": "/boot/vmlinuz-6.1.0-26-amd64",
    "kernel_sha256": "a" * 64,
    "initrd": "/boot/initrd.img-6.1.0-26-amd64",
    "initrd_sha256": "b" * 64,
    "cmdline": "root=/dev/vda1 ro",
    "syscall": "file",
}


@pytest.fixture
def store(tmp_path):
    return RecordStore(HostFiles(str(tmp_path)), trusted_uid=os.getuid())


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_write_is_private_and_readable_back(store, tmp_path):
    store.write(RECORD)
    assert mode(tmp_path / RECORD_DIR.lstrip("/")) == 0o700
    assert mode(tmp_path / RECORD_FILE.lstrip("/")) == 0o600
    assert store.read() == dict(RECORD, version=1)


def test_write_is_atomic_and_leaves_no_temporary_files(store, tmp_path):
    store.write(RECORD)
    store.write(dict(RECORD, cmdline="ro quiet"))
    assert os.listdir(tmp_path / RECORD_DIR.lstrip("/")) == ["loaded.json"]
    assert store.read()["cmdline"] == "ro quiet"


def test_failed_write_keeps_old_record(store, tmp_path):
    store.write(RECORD)
    with pytest.raises(TypeError):
        store.write(dict(RECORD, cmdline=object()))  # not serialisable: fails before the rename
    assert store.read()["cmdline"] == RECORD["cmdline"]
    assert os.listdir(tmp_path / RECORD_DIR.lstrip("/")) == ["loaded.json"]


def test_existing_directory_with_loose_mode_is_tightened(store, tmp_path):
    directory = tmp_path / RECORD_DIR.lstrip("/")
    directory.mkdir(parents=True, mode=0o755)
    os.chmod(directory, 0o755)
    store.write(RECORD)
    assert mode(directory) == 0o700


def test_record_path_that_is_a_file_is_refused(store, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / RECORD_DIR.lstrip("/")).write_text("")
    with pytest.raises(RecordError, match="is not a directory: remove it"):
        store.write(RECORD)


@pytest.mark.parametrize("content", ["{not json", json.dumps(["a"]), json.dumps(dict(RECORD, version=99))])
def test_unreadable_or_foreign_records_are_ignored(store, tmp_path, content):
    path = tmp_path / RECORD_FILE.lstrip("/")
    path.parent.mkdir(parents=True)
    path.write_text(content)
    assert store.read() is None


def test_concatenated_initrd_is_private_and_ordered(store, tmp_path):
    tree = HostTree(tmp_path)
    tree.write("/boot/intel-ucode.img", b"MICROCODE")
    tree.write("/boot/initramfs-linux.img", b"MAIN")
    path = store.stage_concatenated_initrd(["/boot/intel-ucode.img", "/boot/initramfs-linux.img"])
    assert path == STAGED_INITRD
    assert tree.path(path).read_bytes() == b"MICROCODEMAIN"
    assert mode(tree.path(path)) == 0o600
    expected = hashlib.sha256(b"MICROCODEMAIN").hexdigest()
    assert sha256_of(HostFiles(str(tmp_path)), ["/boot/intel-ucode.img", "/boot/initramfs-linux.img"]) == expected
    assert store.commit_staged_initrd() == CONCATENATED_INITRD
    assert tree.path(CONCATENATED_INITRD).read_bytes() == b"MICROCODEMAIN" and not tree.path(STAGED_INITRD).exists()


def test_remove_reports_whether_a_record_existed(store, tmp_path):
    assert store.remove() is False
    store.write(RECORD)
    store.stage_concatenated_initrd([])
    store.commit_staged_initrd()
    store.stage_concatenated_initrd([])
    assert store.remove() is True
    assert os.listdir(tmp_path / RECORD_DIR.lstrip("/")) == []


# Item 4: a staged concatenation leaves the one the record names alone ------------------------------------


def test_item04_staging_a_concatenation_keeps_the_recorded_one(store, tmp_path):
    tree = HostTree(tmp_path)
    tree.write("/boot/a.img", b"OLD")
    store.stage_concatenated_initrd(["/boot/a.img"])
    store.commit_staged_initrd()
    tree.write("/boot/a.img", b"NEW")
    store.stage_concatenated_initrd(["/boot/a.img"])
    assert tree.path(CONCATENATED_INITRD).read_bytes() == b"OLD"
    store.remove_staged_initrd()
    assert tree.path(CONCATENATED_INITRD).read_bytes() == b"OLD" and not tree.path(STAGED_INITRD).exists()


# Item 8: the record directory and file must be root's, never behind a symlink ---------------------------


def record_dir(tmp_path):
    return tmp_path / RECORD_DIR.lstrip("/")


def test_item08_symlinked_record_directory_refused(store, tmp_path):
    planted = tmp_path / "home" / "mallory" / "records"
    planted.mkdir(parents=True)
    (tmp_path / "run").mkdir()
    record_dir(tmp_path).symlink_to(planted)
    for operation in (lambda: store.write(RECORD), store.read, store.remove):
        with pytest.raises(RecordError, match=r"^/run/fastreboot-kexec is a symlink \(to .*/home/mallory/records\), which the record is never kept behind: "
                           r"remove it \(rm -rf /run/fastreboot-kexec\); it is created again, owned by root, mode 0700$"):
            operation()
    assert os.listdir(planted) == []


def test_item08_symlinked_record_file_refused(store, tmp_path):
    store.write(RECORD)
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(dict(RECORD, version=1, cmdline="init=/bin/sh")))
    (record_dir(tmp_path) / "loaded.json").unlink()
    (record_dir(tmp_path) / "loaded.json").symlink_to(forged)
    with pytest.raises(RecordError, match=r"^/run/fastreboot-kexec/loaded.json is a symlink, which the record never is: remove it"):
        store.read()


@pytest.mark.parametrize("loose_mode", [0o777, 0o1777, 0o770])
def test_item08_record_directory_writable_by_others_refused_not_repaired(store, tmp_path, loose_mode):
    record_dir(tmp_path).mkdir(parents=True)
    os.chmod(record_dir(tmp_path), loose_mode)
    with pytest.raises(RecordError) as caught:
        store.write(RECORD)
    assert caught.value.args[0] == (
        f"/run/fastreboot-kexec cannot be trusted (/run/fastreboot-kexec is writable by group or others (mode {loose_mode:04o}, sticky or not)): "
        "someone other than root could forge the record or swap the initrd it names; "
        "remove it (rm -rf /run/fastreboot-kexec); it is created again, owned by root, mode 0700"
    )
    assert mode(record_dir(tmp_path)) == loose_mode
    assert os.listdir(record_dir(tmp_path)) == []


def test_item08_run_writable_by_others_refused(store, tmp_path):
    (tmp_path / "run").mkdir()
    os.chmod(tmp_path / "run", 0o777)
    with pytest.raises(RecordError) as caught:
        store.write(RECORD)
    assert "(/run is writable by group or others (mode 0777, sticky or not))" in caught.value.args[0]
    assert "chown root:root and chmod go-w /run, then remove it" in caught.value.args[0]


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to another user needs root")
def test_item08_record_directory_of_another_user_refused_not_chmodded(tmp_path):
    store = RecordStore(HostFiles(str(tmp_path)))  # production trust: root
    record_dir(tmp_path).mkdir(parents=True)
    os.chmod(record_dir(tmp_path), 0o755)
    os.chown(record_dir(tmp_path), 1000, 1000)
    for operation in (lambda: store.write(RECORD), store.read):
        with pytest.raises(RecordError) as caught:
            operation()
        assert caught.value.args[0].startswith("/run/fastreboot-kexec cannot be trusted (/run/fastreboot-kexec is owned by uid 1000 instead of root): ")
        assert caught.value.args[0].endswith("remove it (rm -rf /run/fastreboot-kexec); it is created again, owned by root, mode 0700")
    assert mode(record_dir(tmp_path)) == 0o755 and os.listdir(record_dir(tmp_path)) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to another user needs root")
def test_item08_record_file_of_another_user_refused(tmp_path):
    store = RecordStore(HostFiles(str(tmp_path)))
    store.write(RECORD)
    os.chown(record_dir(tmp_path) / "loaded.json", 1000, 1000)
    with pytest.raises(RecordError, match=r"^/run/fastreboot-kexec/loaded.json is owned by uid 1000 instead of root, so root did not write it"):
        store.read()


@pytest.mark.parametrize(
    "record, boot_id, loaded, problem",
    [
        (RECORD, BOOT_ID, True, None),
        (RECORD, BOOT_ID, False, "not loaded"),
        (RECORD, BOOT_ID, None, "not loaded"),
        (None, BOOT_ID, True, "no record"),
        (RECORD, OTHER_BOOT_ID, True, "record of an earlier boot"),
    ],
)
def test_record_validity(record, boot_id, loaded, problem):
    assert record_problem(record, boot_id, loaded) == problem


def test_differing_fields_counts_syscall_only_when_requested():
    wanted = {name: RECORD[name] for name in ("kernel", "kernel_sha256", "initrd_sha256", "cmdline")}
    assert differing_fields(RECORD, wanted, "auto") == []
    assert differing_fields(RECORD, wanted, "file") == []
    assert differing_fields(RECORD, wanted, "legacy") == ["syscall"]
    assert differing_fields(RECORD, dict(wanted, cmdline="ro"), "auto") == ["cmdline"]
