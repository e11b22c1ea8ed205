# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection's own SSH banner reader and systemd-analyze parser (plugins/plugin_utils/_wait.py),
imported from this checkout.

The lab runs with the system python3 before any virtual environment or collection path exists.
_wait.py and what it imports from the collection (_hoststate, module_utils._paths, ...) need only
the standard library, but import each other by their collection names. So, unless the collection
is importable already, those names are mapped onto this checkout for the duration of the import
(the three packages above `plugins/`; Python's own path finder does the rest), and every module
of that name is taken out of sys.modules afterwards: a real collection loader in the same process
finds nothing of ours.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType

from .base import REPO_DIR

COLLECTION = "ansible_collections.fastreboot.kexec"
WAIT_MODULE = f"{COLLECTION}.plugins.plugin_utils._wait"


class _CheckoutAsCollection(importlib.abc.MetaPathFinder):
    """ansible_collections and ansible_collections.fastreboot as empty namespaces, .kexec as this checkout."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        del path, target
        locations = {"ansible_collections": [], "ansible_collections.fastreboot": [], COLLECTION: [str(REPO_DIR)]}
        if fullname not in locations:
            return None
        spec = importlib.machinery.ModuleSpec(fullname, None, is_package=True)
        spec.submodule_search_locations = locations[fullname]
        return spec


def _import_wait() -> ModuleType:
    try:
        return importlib.import_module(WAIT_MODULE)
    except ModuleNotFoundError as exc:
        missing = str(exc.name or "")
        if not missing.startswith("ansible_collections"):
            raise
    before = set(sys.modules)
    finder = _CheckoutAsCollection()
    sys.meta_path.insert(0, finder)
    try:
        return importlib.import_module(WAIT_MODULE)
    finally:
        sys.meta_path.remove(finder)
        for name in set(sys.modules) - before:
            if name == "ansible_collections" or name.startswith("ansible_collections."):
                del sys.modules[name]


_wait = _import_wait()
read_ssh_banner = _wait.read_ssh_banner
BANNER_TIMEOUT: float = _wait.BANNER_TIMEOUT
BANNER_WAIT: float = _wait.BANNER_WAIT
# systemd-analyze time's split, as kexec_reboot reads it (plugin_utils/_hoststate.py, imported by _wait)
parse_startup_times = _wait.parse_startup_times
