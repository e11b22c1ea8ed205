# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""grubby (EL, Fedora): `grubby --info=DEFAULT`, the last resort of the boot loader readers.

Internal to fastreboot.kexec, not a public API.
"""

from __future__ import annotations

from ansible_collections.fastreboot.kexec.plugins.module_utils._boot_entry import BootEntry, BootLoaderError
from ansible_collections.fastreboot.kexec.plugins.module_utils._cmdline import strip_boot_loader_params
from ansible_collections.fastreboot.kexec.plugins.module_utils._host import CommandRunner


def read_grubby_default(runner: CommandRunner | None) -> BootEntry | None:
    """`grubby --info=DEFAULT`; None without grubby (or without a runner)."""
    grubby = runner.find("grubby") if runner else None
    if not grubby or runner is None:
        return None
    rc, out, err = runner.run([grubby, "--info=DEFAULT"])
    if rc != 0:
        raise BootLoaderError(f"grubby --info=DEFAULT failed: {(err or out).strip()}")
    info: dict[str, str] = {}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            info[key.strip()] = value.strip().strip('"')
    if not info.get("kernel"):
        raise BootLoaderError("grubby --info=DEFAULT named no kernel")
    options = " ".join(part for part in (f"root={info['root']}" if info.get("root") else "", info.get("args", "")) if part)
    return BootEntry(
        loader="grubby",
        title=info.get("title", info["kernel"]),
        entry_id=info.get("id"),
        image=info["kernel"],
        initrds=[item for item in info.get("initrd", "").split() if not item.startswith("$")],
        options=strip_boot_loader_params(options),
        found_by="grubby --info=DEFAULT",
        config="grubby",
    )
