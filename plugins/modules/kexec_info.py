#!/usr/bin/python
# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: kexec_info
short_description: Tell whether a host can kexec, what is loaded, which kernels are installed and whether it needs a reboot
version_added: 1.0.0
description:
  - Reports whether this host can reboot through kexec and why not (kexec-tools, system calls,
    C(kernel.kexec_load_disabled), lockdown, Secure Boot, container, C(CAP_SYS_BOOT)).
  - Reports what is loaded (C(/sys/kernel/kexec_loaded), the crash kernel) and what
    M(fastreboot.kexec.kexec_load) recorded loading in this boot.
  - Lists the running kernel, the installed kernels with their initramfs and the boot loader's default
    entry with how it was found, using the same code as M(fastreboot.kexec.kexec_load).
  - Says whether a reboot is required, and why.
  - Estimates what a kexec saves here, the firmware and boot loader time of the last cold boot, from the
    boot loader's EFI variables or the persistent journal (RV(savings_estimate)).
  - Changes nothing. Readable ad hoc with C(ansible HOST -m fastreboot.kexec.kexec_info).
author:
  - fastreboot.kexec contributors (@fastreboot)
extends_documentation_fragment:
  - fastreboot.kexec.attributes
  - fastreboot.kexec.attributes.INFO_MODULE
  - fastreboot.kexec.attributes.PLATFORM
attributes:
  platform:
    platforms: linux
options:
  savings_estimate:
    description:
      - Estimate the firmware and boot loader time of the last cold boot (RV(savings_estimate)).
      - It reads the journal (up to 7 C(journalctl) calls on a host whose recent boots were kexec reboots);
        V(false) leaves it out.
    type: bool
    default: true
notes:
  - Run it as root for complete answers; some files (C(/proc/1/environ), efivars) are root-only.
seealso:
  - module: fastreboot.kexec.kexec_load
  - module: fastreboot.kexec.kexec_reboot
"""

EXAMPLES = r"""
- name: Gather kexec information
  fastreboot.kexec.kexec_info:
  register: kexec

- name: Stop early when this host cannot kexec
  ansible.builtin.assert:
    that: kexec.support.supported
    fail_msg: "{{ kexec.support.verdict }}"

- name: Reboot through kexec only when needed
  fastreboot.kexec.kexec_reboot:
  when: kexec.reboot_required
"""

RETURN = r"""
support:
  description: Whether this host can kexec.
  returned: always
  type: dict
  contains:
    supported:
      description: True when nothing stops a kexec.
      type: bool
      sample: true
    verdict:
      description: One line - possible (with which syscalls), or not and why.
      type: str
      sample: "kexec possible with kexec-tools 2.0.25, syscalls: file, legacy"
    problems:
      description: Everything that stops a kexec, each with what to do about it.
      type: list
      elements: str
      sample: []
    problem_codes:
      description:
        - The code of each entry of RV(support.problems), in the same order, for playbooks and plugins
          to compare instead of the text, which may change.
        - V(container), V(no_cap_sys_boot), V(kexec_load_disabled), V(lockdown_without_kexec_file_load),
          V(kernel_without_kexec), V(kexec_tools_missing).
      type: list
      elements: str
      sample: [kexec_tools_missing]
    arch:
      description: The machine architecture (C(uname -m)).
      type: str
      sample: x86_64
    kexec_path:
      description: Path of the C(kexec) program, or null when kexec-tools is not installed.
      type: str
      sample: /usr/sbin/kexec
    kexec_tools_version:
      description: The kexec-tools version (C(kexec --version)), or null.
      type: str
      sample: 2.0.25
    syscalls:
      description:
        - Which system calls the kernel offers, V(file) (C(kexec_file_load)) and V(legacy) (C(kexec_load)),
          from the kernel configuration and lockdown; null when unknown (no C(/boot/config-*)).
      type: dict
      sample: {file: true, legacy: true}
    kexec_load_disabled:
      description: The C(kernel.kexec_load_disabled) sysctl; when true no kexec is possible until a cold boot.
      type: bool
      sample: false
    lockdown:
      description: The kernel lockdown mode (V(none), V(integrity), V(confidentiality)), or null without the lockdown LSM.
      type: str
      sample: none
    secure_boot:
      description: V(enabled), V(disabled), or V(unsupported) (BIOS boot or no SecureBoot EFI variable).
      type: str
      sample: disabled
    efi:
      description: Whether the host booted through EFI.
      type: bool
      sample: false
    container:
      description: The container technology this runs in, or null.
      type: str
      sample: null
    cap_sys_boot:
      description: Whether the module process has C(CAP_SYS_BOOT) (bit 22 of CapEff); null when unknown.
      type: bool
      sample: true
    kexec_loaded:
      description: C(/sys/kernel/kexec_loaded).
      type: bool
      sample: false
    kexec_crash_loaded:
      description: C(/sys/kernel/kexec_crash_loaded).
      type: bool
      sample: false
loaded:
  description: What is loaded.
  returned: always
  type: dict
  contains:
    kexec_loaded:
      description: Whether a kexec image is loaded.
      type: bool
      sample: true
    kexec_crash_loaded:
      description: Whether a crash (kdump) kernel is loaded.
      type: bool
      sample: false
    record:
      description:
        - What M(fastreboot.kexec.kexec_load) loaded in this boot (kernel, initrd, cmdline, sha256s, syscall,
          loaded_at), or null when the loaded image is not its own or nothing is loaded.
      type: dict
      sample:
        kernel: /boot/vmlinuz-6.1.0-26-amd64
        initrd: /boot/initrd.img-6.1.0-26-amd64
        cmdline: root=UUID=0a1b2c3d-4e5f-6789-abcd-ef0123456789 ro quiet
        syscall: file
        loaded_at: "2026-01-05T10:00:00Z"
    record_problem:
      description:
        - Why no valid record describes the loaded image (V(no record), V(record of an earlier boot)), else null.
        - >-
          V(untrusted record: <reason>) when C(/run/fastreboot-kexec) or its C(loaded.json) is a symlink, not owned by root
          or writable by group or others; such a record is not used.
      type: str
      sample: null
    boot_id:
      description: The current boot id.
      type: str
      sample: 6f1c3b9e-2d4a-4c8e-9f7b-1a2b3c4d5e6f
kernels:
  description: The running kernel, installed kernels and the boot loader default.
  returned: always
  type: dict
  contains:
    running_release:
      description: The running release (C(uname -r)).
      type: str
      sample: 6.1.0-25-amd64
    running_cmdline:
      description: The running command line (C(/proc/cmdline)).
      type: str
      sample: BOOT_IMAGE=/boot/vmlinuz-6.1.0-25-amd64 root=UUID=0a1b2c3d-4e5f-6789-abcd-ef0123456789 ro quiet
    installed:
      description: Installed kernels, newest first, each with release, image, initrds (load order) and naming scheme.
      type: list
      elements: dict
      sample:
        - release: 6.1.0-26-amd64
          image: /boot/vmlinuz-6.1.0-26-amd64
          initrds: [/boot/initrd.img-6.1.0-26-amd64]
          naming: debian
    default:
      description:
        - The boot loader's default entry - loader, title, entry_id, image, initrds, options, release,
          config (the file it came from) and found_by (how it was determined). Null when unknown.
      type: dict
      sample:
        loader: grub
        title: Debian GNU/Linux
        entry_id: gnulinux-simple-0a1b2c3d-4e5f-6789-abcd-ef0123456789
        image: /boot/vmlinuz-6.1.0-26-amd64
        initrds: [/boot/initrd.img-6.1.0-26-amd64]
        options: root=UUID=0a1b2c3d-4e5f-6789-abcd-ef0123456789 ro quiet
        release: 6.1.0-26-amd64
        config: /boot/grub/grub.cfg
        found_by: grub.cfg set default='0'
    default_error:
      description: Why the default entry is unknown, else null.
      type: str
      sample: null
savings_estimate:
  description:
    - What a kexec reboot skips on this host - the firmware and boot loader time of its last cold boot, in
      seconds, where the host can know it; else C(seconds) is null and C(reason) says why.
    - With C(source=efi_loader_variables), the boot loader's C(LoaderTimeInitUSec) and C(LoaderTimeExecUSec)
      (set by systemd-boot at a cold boot where it can read a timer, kept across kexec reboots; GRUB sets none).
    - With C(source=journal), the gap between the last journal entry of the boot before the last cold boot (it
      must have ended in a reboot) and that cold boot's kernel start. It also holds the end of the shutdown after
      journald stopped and the kernel's decompression, a few seconds that a kexec reboot spends too. A cold
      boot is one whose command line has a boot loader's word (C(BOOT_IMAGE=), C(initrd=\)); the last 5 boots
      are looked at. A volatile journal (no C(/var/log/journal/MACHINE-ID)) gives null with the reason.
  returned: when O(savings_estimate=true)
  type: dict
  contains:
    seconds:
      description: Firmware plus boot loader time, or null.
      type: float
    firmware:
      description: The firmware's part (EFI source only), else null.
      type: float
    loader:
      description: The boot loader's part (EFI source only), else null.
      type: float
    source:
      description: V(efi_loader_variables), V(journal), or null.
      type: str
    boot_id:
      description: The journal's boot id of the cold boot measured (journal source), else null.
      type: str
    reason:
      description: Why there is no estimate, else null.
      type: str
  sample:
    seconds: 34.2
    firmware: null
    loader: null
    source: journal
    boot_id: 5f0c6e1e2b6d4a39a7a2b0d8d8a1c0f3
    reason: null
reboot_required:
  description: True when the default (or, without a readable boot loader, the newest) kernel is not the running one, or the distribution says so.
  returned: always
  type: bool
  sample: true
reboot_required_reasons:
  description: Why a reboot is required; empty when it is not.
  returned: always
  type: list
  elements: str
  sample: ["the boot loader's default kernel is 6.1.0-26-amd64 but 6.1.0-25-amd64 is running"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fastreboot.kexec.plugins.module_utils._host import HostFiles, ModuleRunner
from ansible_collections.fastreboot.kexec.plugins.module_utils._info import gather_info


def main() -> None:
    module = AnsibleModule(argument_spec={"savings_estimate": {"type": "bool", "default": True}}, supports_check_mode=True)
    try:
        info = gather_info(HostFiles(), ModuleRunner(module), savings=module.params["savings_estimate"])
    except OSError as error:
        # A file the facts come from cannot be read as asked (a symlink loop, an I/O error).
        module.fail_json(msg=f"cannot read the host's kernel and boot files ({error}); fix that path and run again")
    module.exit_json(changed=False, **info)


if __name__ == "__main__":
    main()
