# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The kexec role's per-platform variables, resolved for real by ansible-playbook from fixture facts.

Distributions without a lab image are covered here: the role's tasks_from set_vars runs against
localhost with the facts of each platform injected as the extra var ansible_facts, and the test
reads back what the role resolved (package, layout fact, policy mechanism, rendered unit).
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest

from ansible_collections.fastreboot.kexec.plugins.module_utils import _shutdown
from ansible_collections.fastreboot.kexec.tests.unit.roles.kexec.playbook import run_playbook

REPO_ROOT = Path(__file__).resolve().parents[4]
ROLE_DIR = REPO_ROOT / "roles" / "kexec"
PLAYBOOK = Path(__file__).resolve().parent / "resolve_vars.yml"
LAUNCHER = "/usr/local/lib/fastreboot-kexec/fastreboot-kexec"
MODULE_UTILS = REPO_ROOT / "plugins" / "module_utils"
PYTHON = {"executable": "/usr/bin/python3", "version": {"major": 3, "minor": 11, "micro": 2, "releaselevel": "final", "serial": 0}}


def linux_facts(os_family: str, distribution: str, version: str, service_mgr: str = "systemd", python: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
    """The facts the role reads, as setup reports them on such a host."""
    return {
        "system": "Linux",
        "os_family": os_family,
        "distribution": distribution,
        "distribution_version": version,
        "distribution_major_version": version.split(".")[0],
        "service_mgr": service_mgr,
        "python": python or PYTHON,
    }


FACTS = {
    "debian12": linux_facts("Debian", "Debian", "12.7"),
    "debian13": linux_facts("Debian", "Debian", "13.1"),
    "ubuntu2204": linux_facts("Debian", "Ubuntu", "22.04"),
    "ubuntu2404": linux_facts("Debian", "Ubuntu", "24.04"),
    "rhel9": linux_facts("RedHat", "RedHat", "9.4"),
    "fedora41": linux_facts("RedHat", "Fedora", "41"),
    "rocky8": linux_facts("RedHat", "Rocky", "8.10"),
    "leap156": linux_facts("Suse", "openSUSE Leap", "15.6"),
    "sles15": linux_facts("Suse", "SLES", "15.6"),
    # Arch's os-release has no VERSION_ID: setup reports NA.
    "arch": linux_facts("Archlinux", "Archlinux", "NA"),
    "alpine320": linux_facts("Alpine", "Alpine", "3.20.3", service_mgr="openrc"),
}


class Expected(t.NamedTuple):
    install_with: str
    policy_mechanism: str
    debconf_load_kexec: bool


# What is left per platform: how kexec-tools is installed and how the policy is applied. Which kernel a
# kexec loads is no longer role data: the helper runs the modules' code (tests/unit/.../test_shutdown.py).
EXPECTED = {
    "debian12": Expected("apt", "systemd", True),
    "debian13": Expected("apt", "systemd", False),
    "ubuntu2204": Expected("apt", "systemd", True),
    "ubuntu2404": Expected("apt", "systemd", False),
    "rhel9": Expected("package", "systemd", False),
    "fedora41": Expected("package", "systemd", False),
    "rocky8": Expected("package", "systemd", False),
    "leap156": Expected("package", "systemd", False),
    "sles15": Expected("package", "systemd", False),
    "arch": Expected("package", "systemd", False),
    "alpine320": Expected("package", "none", False),
}


@pytest.fixture(scope="module")
def collections_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ansible_collections tree whose fastreboot/kexec is this repository."""
    root = tmp_path_factory.mktemp("collections")
    namespace = root / "ansible_collections" / "fastreboot"
    namespace.mkdir(parents=True)
    (namespace / "kexec").symlink_to(REPO_ROOT, target_is_directory=True)
    return root


class PlaybookRun(t.NamedTuple):
    returncode: int
    output: str
    resolved: dict[str, t.Any] | None


def resolve(collections_path: Path, tmp_path: Path, facts: dict[str, str], **extra_vars: t.Any) -> PlaybookRun:
    resolved_path = tmp_path / "resolved.json"
    extra = {
        "ansible_facts": facts,
        "resolved_path": str(resolved_path),
        "templates_path": str(ROLE_DIR / "templates"),
        # role_path as the role sees it (the lookups of its variables are evaluated here, outside the role).
        "role_path": str(ROLE_DIR),
        **extra_vars,
    }
    completed = run_playbook(PLAYBOOK, collections_path, tmp_path, extra)
    resolved = json.loads(resolved_path.read_text(encoding="utf-8")) if resolved_path.exists() else None
    return PlaybookRun(completed.returncode, completed.stdout + completed.stderr, resolved)


def unit_line(unit_text: str, key: str) -> str:
    lines = [line for line in unit_text.splitlines() if line.startswith(f"{key}=")]
    assert len(lines) == 1, unit_text
    return lines[0]


@pytest.mark.parametrize("platform", sorted(EXPECTED))
def test_platform_variables_resolve(collections_path: Path, tmp_path: Path, platform: str) -> None:
    expected = EXPECTED[platform]

    run = resolve(collections_path, tmp_path, FACTS[platform])

    assert run.returncode == 0, run.output
    assert run.resolved is not None, run.output
    assert run.resolved["package"] == "kexec-tools"
    assert run.resolved["install_with"] == expected.install_with
    assert run.resolved["policy_mechanism"] == expected.policy_mechanism
    assert run.resolved["debconf_load_kexec"] is expected.debconf_load_kexec


def test_item13_kexec_paths_still_published_from_kexec_info(collections_path: Path, tmp_path: Path) -> None:
    # Deprecated: derived from kexec_info on the host (here: this machine), no layout table in the role.
    run = resolve(collections_path, tmp_path, FACTS["debian13"])
    assert run.returncode == 0, run.output
    assert run.resolved is not None
    paths = run.resolved["kexec_paths"]
    assert set(paths) == {"kernel_glob", "initrd_pattern", "boot_entry_method", "family"}
    assert paths["kernel_glob"] == "/boot/vmlinuz-*"


def test_item13_no_kernel_layout_in_the_role() -> None:
    # The role's variables repeated what _kernels.py and _bootloader.py know; they are gone.
    role_text = "\n".join(path.read_text(encoding="utf-8") for path in ROLE_DIR.rglob("*") if path.is_file() and path.suffix in (".yml", ".j2", ""))
    for name in ("__kexec_initrd_pattern", "__kexec_default_kernel_", "__kexec_boot_entry_method", "__kexec_layout_family", "grub.cfg\"", "grubby --"):
        assert name not in role_text, name
    assert [path.name for path in (ROLE_DIR / "files").iterdir()] == ["fastreboot-kexec"]


def bundled_module_utils(launcher_text: str) -> dict[str, str]:
    """The MODULE_UTILS literal of a rendered launcher."""
    assignments = [node for node in ast.parse(launcher_text).body
                   if isinstance(node, ast.Assign) and [getattr(target, "id", None) for target in node.targets] == ["MODULE_UTILS"]]
    assert len(assignments) == 1
    return ast.literal_eval(assignments[0].value)


@pytest.fixture(scope="module")
def launcher_text(collections_path: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    run = resolve(collections_path, tmp_path_factory.mktemp("launcher"), FACTS["debian13"])
    assert run.returncode == 0, run.output
    assert run.resolved is not None
    return run.resolved["launcher_content"]


def test_item13_the_launcher_carries_every_module_util_and_nothing_else(launcher_text: str) -> None:
    # the interpreter the role checked, isolated and without bytecode
    assert launcher_text.splitlines()[0] == "#!/usr/bin/python3 -IB"
    bundle = bundled_module_utils(launcher_text)
    assert list(bundle) == sorted(path.stem for path in MODULE_UTILS.glob("*.py"))
    for name, source in bundle.items():
        assert source == (MODULE_UTILS / f"{name}.py").read_text(encoding="utf-8"), name
    # otherwise the launcher exactly as it is in files/, the bundle in place of its empty MODULE_UTILS
    shipped = (ROLE_DIR / "files" / "fastreboot-kexec").read_text(encoding="utf-8").split("\n", 1)[1]
    rendered = launcher_text.split("\n", 1)[1]
    assert [line for line in rendered.splitlines() if not line.startswith("MODULE_UTILS")] == \
        [line for line in shipped.splitlines() if not line.startswith("MODULE_UTILS")]
    assert "MODULE_UTILS = {}  #" in shipped


def install_launcher(launcher_text: str, folder: Path) -> Path:
    """The rendered launcher with this test's interpreter in place of /usr/bin/python3, as the role installs it."""
    launcher = folder / "fastreboot-kexec"
    launcher.write_text(f"#!{sys.executable} -IB\n" + launcher_text.split("\n", 1)[1], encoding="utf-8")
    launcher.chmod(0o755)
    return launcher


def test_item13_launcher_runs_the_code_it_carries(launcher_text: str, tmp_path: Path) -> None:
    # Another ansible_collections next to the launcher, in the current directory and on PYTHONPATH: none is used.
    for place in (tmp_path, tmp_path / "cwd", tmp_path / "pythonpath"):
        decoy = place / "ansible_collections" / "fastreboot" / "kexec" / "plugins" / "module_utils"
        decoy.mkdir(parents=True)
        (decoy / "_shutdown.py").write_text("raise SystemExit('decoy imported')\n", encoding="utf-8")
    launcher = install_launcher(launcher_text, tmp_path)
    completed = subprocess.run([str(launcher), "bogus"], capture_output=True, text=True, timeout=60, check=False,
                               cwd=tmp_path / "cwd", env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path / "pythonpath")})
    assert (completed.returncode, completed.stdout) == (2, _shutdown.USAGE + "\n"), completed.stderr
    assert not list(tmp_path.rglob("__pycache__"))  # -B: nothing written next to the root-owned launcher
    # Even without -I, with the decoy first on sys.path, the launcher's own finder comes first.
    completed = subprocess.run([sys.executable, "-B", str(launcher), "bogus"], capture_output=True, text=True, timeout=60, check=False,
                               cwd=tmp_path / "cwd", env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path / "pythonpath")})
    assert (completed.returncode, completed.stdout) == (2, _shutdown.USAGE + "\n"), completed.stderr


def test_item13_a_broken_launcher_never_stops_a_shutdown(launcher_text: str, tmp_path: Path) -> None:
    # the bundled _shutdown replaced by a module that fails to import (a JSON string in the rendered text)
    broken, count = re.subn(r'"_shutdown": "(?:[^"\\]|\\.)*"', lambda match: '"_shutdown": "raise ImportError(\'broken copy\')"', launcher_text)
    assert count == 1
    launcher = install_launcher(broken, tmp_path)
    for command, expected in (("load-default", 0), ("guard", 1)):
        completed = subprocess.run([str(launcher), command], capture_output=True, text=True, timeout=60, check=False)
        assert completed.returncode == expected
        assert completed.stdout.startswith("fastreboot-kexec: cannot load the collection's code (broken copy)")


@pytest.mark.parametrize("platform", ["debian13", "rhel9", "leap156", "arch"])
def test_item13_load_unit_runs_the_launcher(collections_path: Path, tmp_path: Path, platform: str) -> None:
    run = resolve(collections_path, tmp_path, FACTS[platform], kexec_every_reboot=True)

    assert run.returncode == 0, run.output
    assert run.resolved is not None
    unit = run.resolved["load_unit"]
    # the same words on every platform: no per-platform loader method or kernel paths any more
    assert unit_line(unit, "ExecStop") == f"ExecStop={LAUNCHER} load-default --if-rebooting"
    assert unit_line(unit, "RequiresMountsFor") == "RequiresMountsFor=/boot /usr/local/lib/fastreboot-kexec"
    assert unit_line(unit, "TimeoutStopSec") == "TimeoutStopSec=150"
    assert "RemainAfterExit=yes" in unit.splitlines()
    assert "WantedBy=multi-user.target" in unit.splitlines()


def test_item13_guard_unit_runs_the_launcher(collections_path: Path, tmp_path: Path) -> None:
    run = resolve(collections_path, tmp_path, FACTS["debian12"])

    assert run.returncode == 0, run.output
    assert run.resolved is not None
    unit = run.resolved["guard_unit"]
    assert unit_line(unit, "ExecStart") == f"ExecStart={LAUNCHER} guard"
    assert unit_line(unit, "TimeoutStartSec") == "TimeoutStartSec=90"
    assert "WantedBy=kexec.target" in unit.splitlines() and "DefaultDependencies=no" in unit.splitlines()
    assert "/sys/kernel" not in unit and "kexec -u" not in unit  # no shell script: the check is _shutdown.py


@pytest.mark.parametrize("every_reboot", [False, True])
def test_item13_a_python_too_old_for_the_guard_and_helper_is_refused(collections_path: Path, tmp_path: Path, every_reboot: bool) -> None:
    old = {"executable": "/usr/libexec/platform-python", "version": {"major": 3, "minor": 6, "micro": 8, "releaselevel": "final", "serial": 0}}
    run = resolve(collections_path, tmp_path, linux_facts("RedHat", "Rocky", "8.10", python=old), kexec_every_reboot=every_reboot)

    assert run.returncode != 0
    assert run.resolved is None
    assert "needs Python 3.9 or newer (like the modules), but /usr/libexec/platform-python is Python 3.6" in run.output
    assert "ansible_python_interpreter" in run.output


def test_item13_without_systemd_an_old_python_is_no_problem(collections_path: Path, tmp_path: Path) -> None:
    old = {"executable": "/usr/bin/python3", "version": {"major": 3, "minor": 6, "micro": 8, "releaselevel": "final", "serial": 0}}
    run = resolve(collections_path, tmp_path, linux_facts("Alpine", "Alpine", "3.20.3", service_mgr="openrc", python=old))
    assert run.returncode == 0, run.output


def test_debian_without_systemd_gets_no_systemd_policy(collections_path: Path, tmp_path: Path) -> None:
    facts = dict(FACTS["debian13"], service_mgr="sysvinit")

    run = resolve(collections_path, tmp_path, facts)

    assert run.returncode == 0, run.output
    assert run.resolved is not None
    assert run.resolved["policy_mechanism"] == "none"


def test_bookworm_keeps_its_init_scripts_without_systemd(collections_path: Path, tmp_path: Path) -> None:
    # Without systemd the Debian 12 init scripts are the mechanism (under systemd they stay off).
    facts = dict(FACTS["debian12"], service_mgr="sysvinit")

    run = resolve(collections_path, tmp_path, facts, kexec_every_reboot=True)

    assert run.returncode == 0, run.output
    assert run.resolved is not None
    assert run.resolved["policy_mechanism"] == "debian-initscripts"


@pytest.mark.parametrize(
    "facts, named",
    [
        ({"system": "FreeBSD", "os_family": "FreeBSD", "distribution": "FreeBSD", "distribution_version": "14.1",
          "distribution_major_version": "14", "service_mgr": "bsdinit", "python": PYTHON}, "FreeBSD 14.1"),
        (linux_facts("Gentoo", "Gentoo", "2.15", service_mgr="openrc"), "Gentoo 2.15"),
        (linux_facts("Debian", "Debian", "11.11"), "Debian 11.11"),
        (linux_facts("RedHat", "CentOS", "7.9.2009"), "CentOS 7.9.2009"),
    ],
    ids=["freebsd", "gentoo", "debian11", "centos7"],
)
def test_unsupported_os_fails_naming_it_and_the_supported_list(
    collections_path: Path, tmp_path: Path, facts: dict[str, str], named: str
) -> None:
    run = resolve(collections_path, tmp_path, facts)

    assert run.returncode != 0
    assert run.resolved is None
    assert f"The fastreboot.kexec role does not support {named}" in run.output
    assert "Supported: Debian 12 and newer, Ubuntu 22.04 and newer" in run.output
    assert "Alpine Linux" in run.output


def test_every_reboot_kexec_is_refused_without_a_mechanism(collections_path: Path, tmp_path: Path) -> None:
    run = resolve(collections_path, tmp_path, FACTS["alpine320"], kexec_every_reboot=True)

    assert run.returncode != 0
    assert run.resolved is None
    assert "kexec_every_reboot: true needs systemd" in run.output
    assert "Alpine 3.20.3 runs openrc" in run.output
    assert "fastreboot.kexec.kexec_reboot" in run.output


def test_every_platform_file_is_exercised() -> None:
    # A vars file no fixture loads would be untested: keep EXPECTED in step with vars/.
    loaded = {"main.yml", "Debian.yml", "Debian-12.yml", "Ubuntu-22.yml", "Alpine.yml"}
    assert {path.name for path in (ROLE_DIR / "vars").glob("*.yml")} == loaded
