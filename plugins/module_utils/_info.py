# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What kexec_info reports: support, the loaded image and its record, kernels, reboot-required reasons, savings.

Internal to fastreboot.kexec, not a public API. Reads only; changes nothing on the host.
"""

from __future__ import annotations

import typing as t

from ansible_collections.fastreboot.kexec.plugins.module_utils._host import CommandRunner, HostFiles
from ansible_collections.fastreboot.kexec.plugins.module_utils._kernels import KernelInventory, module_dirs
from ansible_collections.fastreboot.kexec.plugins.module_utils._record import (
    RecordError,
    RecordStore,
    current_boot_id,
    record_problem,
)
from ansible_collections.fastreboot.kexec.plugins.module_utils._savings import savings_estimate
from ansible_collections.fastreboot.kexec.plugins.module_utils._support import SupportProbe

REBOOT_REQUIRED_FLAG = "/run/reboot-required"
REBOOT_REQUIRED_PKGS = "/run/reboot-required.pkgs"


def reboot_required(inventory: KernelInventory, runner: CommandRunner, default_release: str | None) -> list[str]:
    """Reasons why this host should reboot: newer default kernel, distribution flags. Empty when none."""
    host = inventory.host
    reasons = []
    running = inventory.running_release()
    target = default_release
    source = "the boot loader's default kernel"
    if target is None:
        kernels = inventory.installed()
        target = kernels[0].release if kernels else None
        source = "the newest installed kernel"
    if target and running and target != running:
        reasons.append(f"{source} is {target} but {running} is running")
    if host.exists(REBOOT_REQUIRED_FLAG):
        packages = (host.read_text(REBOOT_REQUIRED_PKGS) or "").split()
        detail = f" (packages: {', '.join(sorted(set(packages)))})" if packages else ""
        reasons.append(f"{REBOOT_REQUIRED_FLAG} exists{detail}")
    needs_restarting = runner.find("needs-restarting")
    if needs_restarting:
        rc, _out, _err = runner.run([needs_restarting, "-r"])
        if rc == 1:
            reasons.append("needs-restarting -r says a reboot is required")
    installed_module_dirs = module_dirs(host)
    if running and installed_module_dirs and not any(path.endswith("/" + running) for path in installed_module_dirs):
        reasons.append(f"the modules of the running kernel {running} are gone (its package was removed or upgraded)")
    return reasons


def gather_info(
    host: HostFiles, runner: CommandRunner, machine: str | None = None, trusted_uid: int | None = None, savings: bool = True,
) -> dict[str, t.Any]:
    """Everything kexec_info returns: support, loaded, kernels, reboot_required(_reasons), savings_estimate.

    trusted_uid: who must own the record (RecordStore.TRUSTED_UID, root, unless a test says otherwise).
    savings: False leaves savings_estimate out (its journal reads cost kexec_reboot's preflight time).
    """
    support = SupportProbe(host, runner, machine).probe()
    inventory = KernelInventory(host, runner)
    kernels = inventory.describe()
    boot_id = current_boot_id(host)
    untrusted = None
    try:
        record = RecordStore(host, trusted_uid).read()
    except RecordError as error:  # reported, not fatal: kexec_info only looks
        record, untrusted = None, f"untrusted record: {error}"
    problem = untrusted or record_problem(record, boot_id, support["kexec_loaded"])
    loaded = {
        "kexec_loaded": support["kexec_loaded"],
        "kexec_crash_loaded": support["kexec_crash_loaded"],
        "record": record if problem is None else None,
        "record_problem": problem if support["kexec_loaded"] or untrusted else None,
        "boot_id": boot_id,
    }
    reasons = reboot_required(inventory, runner, (kernels.get("default") or {}).get("release"))
    info = {
        "support": support,
        "loaded": loaded,
        "kernels": kernels,
        "reboot_required": bool(reasons),
        "reboot_required_reasons": reasons,
    }
    if savings:
        info["savings_estimate"] = savings_estimate(host, runner)
    return info
