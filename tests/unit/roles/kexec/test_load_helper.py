# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""roles/kexec/files/fastreboot-kexec-load, the shutdown helper of kexec_every_reboot: true.

The real script runs under /bin/sh against fixture files. Only the programs at its boundary are
stand-ins: kexec (records its argv), systemctl (prints a job list), grubby and the distribution
loaders; the script's PATH and loaded flag point at the fixtures.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

HELPER = Path(__file__).resolve().parents[4] / "roles" / "kexec" / "files" / "fastreboot-kexec-load"

REBOOT_JOB = "  2314 reboot.target                  start waiting\n"
KEXEC_JOB = "  2402 kexec.target                   start waiting\n"
POWEROFF_JOB = "  2290 poweroff.target                start waiting\n"

GRUBBY_INFO = """index=0
kernel="/boot/vmlinuz-5.14.0-427.13.1.el9_4.x86_64"
args="ro crashkernel=1G-4G:192M,4G-64G:256M resume=/dev/mapper/rhel-swap rd.lvm.lv=rhel/root $tuned_params"
root="/dev/mapper/rhel-root"
initrd="/boot/initramfs-5.14.0-427.13.1.el9_4.x86_64.img $tuned_initrd"
title="Red Hat Enterprise Linux (5.14.0-427.13.1.el9_4.x86_64) 9.4 (Plow)"
id="ffffffffffffffffffffffffffffffff-5.14.0-427.13.1.el9_4.x86_64"
"""


class Host:
    """A fixture host: a bin directory of stand-ins, a /sys flag and a log of kexec calls."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "bin"
        self.bin.mkdir()
        self.loaded_flag = root / "kexec_loaded"
        self.loaded_flag.write_text("0\n", encoding="utf-8")
        self.kexec_log = root / "kexec.log"
        self.jobs = root / "jobs"
        self.jobs.write_text("", encoding="utf-8")
        self.kexec_failures = root / "kexec_failures"
        self.kexec_failures.write_text("0", encoding="utf-8")
        self.no_kexec_file = root / "no-kexec-reboot"
        self.program(
            "systemctl",
            f'[ "$1 $2" = "list-jobs --no-legend" ] || exit 2\ncat {shlex.quote(str(self.jobs))}\n',
        )
        # Fails the first N calls (N from kexec_failures), like a refused syscall; a -l that succeeds
        # sets the loaded flag as the kernel would.
        self.program(
            "kexec",
            f"""printf '%s\\n' "$*" >> {shlex.quote(str(self.kexec_log))}
left=$(cat {shlex.quote(str(self.kexec_failures))})
if [ "$left" -gt 0 ]; then
    echo $((left - 1)) > {shlex.quote(str(self.kexec_failures))}
    echo "kexec_load failed: Operation not permitted" >&2
    exit 255
fi
echo 1 > {shlex.quote(str(self.loaded_flag))}
""",
        )

    def program(self, name: str, body: str) -> None:
        path = self.bin / name
        path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
        path.chmod(0o755)

    def file(self, relative: str) -> str:
        path = self.root / relative.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"HdrS fixture image")
        return str(path)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            # The stand-ins first; the script also needs cat, grep, sed and head.
            "FASTREBOOT_KEXEC_PATH": f"{self.bin}:/usr/bin:/bin",
            "FASTREBOOT_KEXEC_LOADED_FLAG": str(self.loaded_flag),
            "FASTREBOOT_KEXEC_NO_KEXEC_FILE": str(self.no_kexec_file),
            "FASTREBOOT_KEXEC_GRUB_DIR": str(self.root / "grub"),
        }
        return subprocess.run(["/bin/sh", str(HELPER), *args], env=env, capture_output=True, text=True, timeout=30, check=False)

    def kexec_calls(self) -> list[str]:
        if not self.kexec_log.exists():
            return []
        return self.kexec_log.read_text(encoding="utf-8").splitlines()

    def loaded(self) -> bool:
        return self.loaded_flag.read_text(encoding="utf-8").strip() == "1"


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


def test_outside_a_reboot_nothing_is_loaded(host: Host) -> None:
    kernel, initrd = host.file("/boot/vmlinuz-linux"), host.file("/boot/initramfs-linux.img")
    host.jobs.write_text(POWEROFF_JOB, encoding="utf-8")

    result = host.run("--if-rebooting", "paths", kernel, initrd)

    assert result.returncode == 0
    assert host.kexec_calls() == []
    assert not host.loaded()


@pytest.mark.parametrize("job", [REBOOT_JOB, KEXEC_JOB], ids=["reboot.target", "kexec.target alias"])
def test_a_reboot_loads_the_first_existing_pair_with_the_running_command_line(host: Host, job: str) -> None:
    missing_kernel = str(host.root / "vmlinuz")
    missing_initrd = str(host.root / "initrd.img")
    kernel, initrd = host.file("/boot/vmlinuz"), host.file("/boot/initrd.img")
    host.jobs.write_text(POWEROFF_JOB + job, encoding="utf-8")

    result = host.run("--if-rebooting", "paths", missing_kernel, missing_initrd, kernel, initrd)

    assert result.returncode == 0, result.stderr
    assert host.kexec_calls() == [f"-l {kernel} --initrd={initrd} --reuse-cmdline"]
    assert host.loaded()


def test_an_image_loaded_on_purpose_is_kept(host: Host) -> None:
    kernel, initrd = host.file("/boot/vmlinuz"), host.file("/boot/initrd.img")
    host.jobs.write_text(REBOOT_JOB, encoding="utf-8")
    host.loaded_flag.write_text("1\n", encoding="utf-8")

    result = host.run("--if-rebooting", "paths", kernel, initrd)

    assert result.returncode == 0
    assert host.kexec_calls() == []
    assert "already loaded; keeping it" in result.stderr


def test_coldreboot_marker_makes_one_reboot_cold(host: Host) -> None:
    kernel, initrd = host.file("/boot/vmlinuz"), host.file("/boot/initrd.img")
    host.jobs.write_text(REBOOT_JOB, encoding="utf-8")
    host.no_kexec_file.write_text("", encoding="utf-8")

    first = host.run("--if-rebooting", "paths", kernel, initrd)

    assert first.returncode == 0
    assert host.kexec_calls() == []
    assert not host.no_kexec_file.exists()

    second = host.run("--if-rebooting", "paths", kernel, initrd)

    assert second.returncode == 0
    assert host.kexec_calls() == [f"-l {kernel} --initrd={initrd} --reuse-cmdline"]


def test_a_pair_with_a_missing_initrd_is_skipped(host: Host) -> None:
    kernel = host.file("/boot/vmlinuz-linux")
    lts_kernel, lts_initrd = host.file("/boot/vmlinuz-linux-lts"), host.file("/boot/initramfs-linux-lts.img")

    result = host.run("paths", kernel, str(host.root / "boot/initramfs-linux.img"), lts_kernel, lts_initrd)

    assert result.returncode == 0
    assert host.kexec_calls() == [f"-l {lts_kernel} --initrd={lts_initrd} --reuse-cmdline"]


def test_without_any_kernel_the_shutdown_goes_on(host: Host) -> None:
    host.jobs.write_text(REBOOT_JOB, encoding="utf-8")

    result = host.run("--if-rebooting", "paths", str(host.root / "vmlinuz"), str(host.root / "initrd.img"))

    assert result.returncode == 0
    assert host.kexec_calls() == []
    assert "none of the kernel and initrd paths exists" in result.stderr


def test_a_refused_legacy_load_is_retried_with_kexec_file_load(host: Host) -> None:
    kernel, initrd = host.file("/boot/vmlinuz"), host.file("/boot/initrd.img")
    host.kexec_failures.write_text("1", encoding="utf-8")

    result = host.run("paths", kernel, initrd)

    assert result.returncode == 0
    assert host.kexec_calls() == [
        f"-l {kernel} --initrd={initrd} --reuse-cmdline",
        f"-s -l {kernel} --initrd={initrd} --reuse-cmdline",
    ]
    assert host.loaded()


def test_a_failed_load_still_exits_zero(host: Host) -> None:
    kernel, initrd = host.file("/boot/vmlinuz"), host.file("/boot/initrd.img")
    host.kexec_failures.write_text("2", encoding="utf-8")

    result = host.run("paths", kernel, initrd)

    assert result.returncode == 0
    assert len(host.kexec_calls()) == 2
    assert not host.loaded()
    assert f"kexec could not load {kernel}" in result.stderr


def test_grubby_default_entry_gives_kernel_initrd_root_and_args(host: Host) -> None:
    host.program(
        "grubby",
        f"""case "$1" in
    --default-kernel) echo /boot/vmlinuz-5.14.0-427.13.1.el9_4.x86_64 ;;
    --info=/boot/vmlinuz-5.14.0-427.13.1.el9_4.x86_64) cat <<'EOF'
{GRUBBY_INFO}EOF
    ;;
    *) exit 1 ;;
esac
""",
    )

    result = host.run("grubby")

    assert result.returncode == 0, result.stderr
    assert host.kexec_calls() == [
        "-l /boot/vmlinuz-5.14.0-427.13.1.el9_4.x86_64 --initrd=/boot/initramfs-5.14.0-427.13.1.el9_4.x86_64.img "
        "--command-line=root=/dev/mapper/rhel-root ro crashkernel=1G-4G:192M,4G-64G:256M "
        "resume=/dev/mapper/rhel-swap rd.lvm.lv=rhel/root"
    ]


def test_grubby_without_a_default_falls_back_to_the_paths(host: Host) -> None:
    host.program("grubby", "exit 1\n")
    kernel, initrd = host.file("/boot/vmlinuz"), host.file("/boot/initrd.img")

    result = host.run("grubby", kernel, initrd)

    assert result.returncode == 0
    assert host.kexec_calls() == [f"-l {kernel} --initrd={initrd} --reuse-cmdline"]


def test_suse_loader_that_loads_is_trusted(host: Host) -> None:
    # kexec-bootloader reads the boot loader's default section itself; here it loads through the kexec stand-in.
    host.program("kexec-bootloader", "kexec -l /boot/vmlinuz --initrd=/boot/initrd --append=\"root=/dev/vda2 ro\"\nexit 0\n")
    kernel, initrd = host.file("/boot/vmlinuz"), host.file("/boot/initrd")

    result = host.run("kexec-bootloader", kernel, initrd)

    assert result.returncode == 0
    assert host.kexec_calls() == ["-l /boot/vmlinuz --initrd=/boot/initrd --append=root=/dev/vda2 ro"]


def test_loader_that_loads_nothing_falls_back_to_the_paths(host: Host) -> None:
    # An exit status of 0 does not mean something was loaded: the flag decides.
    host.program("kexec-bootloader", "exit 0\n")
    kernel, initrd = host.file("/boot/vmlinuz"), host.file("/boot/initrd.img")

    result = host.run("kexec-bootloader", kernel, initrd)

    assert result.returncode == 0
    assert host.kexec_calls() == [f"-l {kernel} --initrd={initrd} --reuse-cmdline"]


# kexec-load-kernel (Debian's program) was a method once; no vars file selects it any more.
@pytest.mark.parametrize("method", ["kexec-load-kernel", "no-such-method"])
def test_unknown_method_is_reported_and_only_the_paths_are_tried(host: Host, method: str) -> None:
    # A program of that name on PATH is never run.
    host.program(method, "kexec -l /vmlinuz --initrd=/initrd.img\nexit 0\n")
    kernel, initrd = host.file("/boot/vmlinuz"), host.file("/boot/initrd.img")

    result = host.run(method, kernel, initrd)

    assert result.returncode == 0
    assert f"unknown method {method}" in result.stderr
    assert host.kexec_calls() == [f"-l {kernel} --initrd={initrd} --reuse-cmdline"]


def test_missing_loader_program_falls_back_to_the_paths(host: Host) -> None:
    kernel, initrd = host.file("/boot/vmlinuz"), host.file("/boot/initrd.img")

    result = host.run("kexec-bootloader", kernel, initrd)

    assert result.returncode == 0
    assert "kexec-bootloader is not installed" in result.stderr
    assert host.kexec_calls() == [f"-l {kernel} --initrd={initrd} --reuse-cmdline"]


def test_helper_is_executable_posix_sh() -> None:
    assert HELPER.stat().st_mode & 0o111
    assert HELPER.read_text(encoding="utf-8").startswith("#!/bin/sh\n")
    syntax = subprocess.run(["/bin/sh", "-n", str(HELPER)], capture_output=True, text=True, check=False)
    assert syntax.returncode == 0, syntax.stderr


# What grub-mkconfig writes on Debian (trimmed): a function with braces, the default selection, a
# top-level entry and the "Advanced options" submenu with one entry per kernel.
GRUB_CFG = """function load_video {
  if [ x$feature_all_video_module = xy ]; then
    insmod all_video
  fi
}
if [ "${next_entry}" ] ; then
   set default="${next_entry}"
   set next_entry=
else
   set default="%(default)s"
fi
menuentry 'Debian GNU/Linux' --class debian --class gnu-linux $menuentry_id_option 'gnulinux-simple-f00d' {
\tload_video
\techo\t'Loading Linux 6.12.57+deb13-cloud-amd64 ...'
\tlinux\t%(cloud)s root=UUID=f00d ro  console=ttyS0,115200n8
\tinitrd\t%(cloud_initrd)s
}
submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced-f00d' {
\tmenuentry 'Debian GNU/Linux, with Linux 6.12.57+deb13-cloud-amd64' --class debian $menuentry_id_option 'gnulinux-6.12.57+deb13-cloud-amd64-advanced-f00d' {
\t\tlinux\t%(cloud)s root=UUID=f00d ro  console=ttyS0,115200n8
\t\tinitrd\t%(cloud_initrd)s
\t}
\tmenuentry 'Debian GNU/Linux, with Linux 6.12.57+deb13-amd64' --class debian $menuentry_id_option 'gnulinux-6.12.57+deb13-amd64-advanced-f00d' {
\t\tlinux\t%(generic)s root=UUID=f00d ro  console=ttyS0,115200n8 quiet
\t\tinitrd\t/microcode.cpio %(generic_initrd)s
\t}
}
"""


def grub(host: Host, default: str, grubenv: str) -> tuple[str, str, str, str]:
    paths = {
        "cloud": host.file("/boot/vmlinuz-6.12.57+deb13-cloud-amd64"),
        "cloud_initrd": host.file("/boot/initrd.img-6.12.57+deb13-cloud-amd64"),
        "generic": host.file("/boot/vmlinuz-6.12.57+deb13-amd64"),
        "generic_initrd": host.file("/boot/initrd.img-6.12.57+deb13-amd64"),
    }
    (host.root / "grub").mkdir()
    (host.root / "grub" / "grub.cfg").write_text(GRUB_CFG % dict(paths, default=default), encoding="utf-8")
    (host.root / "grub" / "grubenv").write_text("# GRUB Environment Block\n" + grubenv, encoding="utf-8")
    return paths["cloud"], paths["cloud_initrd"], paths["generic"], paths["generic_initrd"]


@pytest.mark.parametrize(
    "saved_entry",
    [
        "gnulinux-advanced-f00d>gnulinux-6.12.57+deb13-amd64-advanced-f00d",  # grub-set-default with ids
        "1>1",  # positions
        "Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.12.57+deb13-amd64",  # titles
    ],
)
def test_grub_saved_entry_in_the_submenu_is_loaded_with_its_own_arguments(host: Host, saved_entry: str) -> None:
    cloud, _cloud_initrd, generic, generic_initrd = grub(host, "${saved_entry}", f"saved_entry={saved_entry}\n")

    result = host.run("grub", cloud, _cloud_initrd)

    assert result.returncode == 0, result.stderr
    # The last initrd of the line is the system's (a microcode archive comes first); GRUB adds BOOT_IMAGE itself.
    assert host.kexec_calls() == [
        f"-l {generic} --initrd={generic_initrd} --command-line=root=UUID=f00d ro console=ttyS0,115200n8 quiet"
    ]


def test_grub_numeric_default_is_the_first_entry(host: Host) -> None:
    cloud, cloud_initrd, generic, _generic_initrd = grub(host, "0", "")

    result = host.run("grub", generic, _generic_initrd)

    assert result.returncode == 0, result.stderr
    assert host.kexec_calls() == [f"-l {cloud} --initrd={cloud_initrd} --command-line=root=UUID=f00d ro console=ttyS0,115200n8"]


def test_grub_next_entry_wins_over_the_saved_one(host: Host) -> None:
    cloud, cloud_initrd, _generic, _generic_initrd = grub(
        host, "${saved_entry}", "saved_entry=1>1\nnext_entry=gnulinux-advanced-f00d>gnulinux-6.12.57+deb13-cloud-amd64-advanced-f00d\n"
    )

    result = host.run("grub")

    assert result.returncode == 0, result.stderr
    assert host.kexec_calls() == [f"-l {cloud} --initrd={cloud_initrd} --command-line=root=UUID=f00d ro console=ttyS0,115200n8"]


def test_grub_entry_that_does_not_exist_falls_back_to_the_paths(host: Host) -> None:
    _cloud, _cloud_initrd, generic, generic_initrd = grub(host, "${saved_entry}", "saved_entry=gnulinux-removed-kernel\n")

    result = host.run("grub", generic, generic_initrd)

    assert result.returncode == 0, result.stderr
    assert "no GRUB entry gnulinux-removed-kernel" in result.stderr
    assert host.kexec_calls() == [f"-l {generic} --initrd={generic_initrd} --reuse-cmdline"]
