# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Check the member list of a built collection tarball (make lint, after ansible-galaxy collection build).

It must hold the licence and the content users install it for, and none of the development-only
files that galaxy.yml's build_ignore keeps out. Standard library only.

Usage: check-tarball.py tests/output/galaxy/fastreboot-kexec-X.Y.Z.tar.gz
"""

from __future__ import annotations

import sys
import tarfile

# Paths the tarball must hold (a directory counts when any member lies under it).
REQUIRED = (
    "LICENSES/GPL-3.0-or-later.txt",
    "README.md",
    "CHANGELOG.rst",
    "changelogs/changelog.yaml",
    "MANIFEST.json",
    "FILES.json",
    "meta/runtime.yml",
    "meta/execution-environment.yml",
    "bindep.txt",
    "plugins/action/kexec_reboot.py",
    "plugins/modules/kexec_load.py",
    "plugins/modules/kexec_info.py",
    "plugins/modules/kexec_reboot.py",
    "plugins/module_utils",
    "plugins/plugin_utils",
    "roles/kexec/meta/argument_specs.yml",
    "roles/kexec/tasks/main.yml",
    "roles/kexec/handlers/main.yml",
    "docs/docsite/extra-docs.yml",
    "docs/docsite/links.yml",
)

# Development-only paths (files, or directories with everything under them).
FORBIDDEN = (
    "Makefile",
    ".ci",
    ".github",
    ".gitignore",
    ".ansible-lint",
    ".yamllint",
    ".venv",
    ".venv-oldest",
    ".ansible",
    ".cache",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".git",
    "benchmarks",
    "extensions",
    "tests/lab",
    "tests/tools",
    "tests/drills",
    "tests/requirements",
    "tests/output",
    "changelogs/fragments",
    "docs/benchmark.json",
    "docs/benchmark-banner-wait.json",
)
# Name parts that no member may have anywhere.
FORBIDDEN_PARTS = ("__pycache__",)
FORBIDDEN_SUFFIXES = (".pyc", ".tar.gz")


def under(name: str, path: str) -> bool:
    return name == path or name.startswith(path + "/")


def problems(names: list[str]) -> list[str]:
    """What is wrong with a tarball holding these member names (empty: nothing)."""
    names = [name.removeprefix("./").rstrip("/") for name in names]
    found = []
    for path in REQUIRED:
        if not any(under(name, path) for name in names):
            found.append(f"missing: {path}")
    for name in names:
        if any(under(name, path) for path in FORBIDDEN):
            found.append(f"development-only file shipped: {name}")
        elif any(part in FORBIDDEN_PARTS for part in name.split("/")) or name.endswith(FORBIDDEN_SUFFIXES):
            found.append(f"build artefact shipped: {name}")
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    with tarfile.open(argv[1]) as tar:
        names = tar.getnames()
    found = problems(names)
    for problem in found:
        print(f"{argv[1]}: {problem}", file=sys.stderr)
    if found:
        print("fix: build_ignore in galaxy.yml (or add the missing file)", file=sys.stderr)
        return 1
    print(f"{argv[1]}: {len(names)} members, licence present, no development-only files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
