#!/usr/bin/python
# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: kexec_load
short_description: Load the next kernel for a kexec reboot, idempotently
version_added: 0.1.0
description:
  - Loads a kernel, its initramfs and a command line with C(kexec -l), so that the next C(systemctl kexec)
    (or, with systemd 255 and newer, any C(systemctl reboot)) boots it without firmware POST and boot loader.
  - Picks the kernel the way a cold boot would (the boot loader's default entry), or the newest, or the
    running one, or a path; derives the initramfs and the command line.
  - Everything is checked before C(kexec) runs, because the kernel drops the loaded image as soon as a
    new load starts. Bad input never drops a loaded image.
  - Keeps a record of what it loaded in this boot in C(/run/fastreboot-kexec/loaded.json) (mode C(0600)).
    When the same kernel, initramfs and command line are already loaded in this boot, nothing changes.
  - Does not reboot. Use the M(fastreboot.kexec.kexec_reboot) action for the whole reboot.
author:
  - fastreboot.kexec contributors (@fastreboot)
requirements:
  - kexec-tools (the C(kexec) program) on the managed host; the role C(fastreboot.kexec.kexec) installs it.
  - root privileges (C(CAP_SYS_BOOT)), not in a container.
extends_documentation_fragment:
  - fastreboot.kexec.load_options
  - fastreboot.kexec.attributes
  - fastreboot.kexec.attributes.PLATFORM
attributes:
  check_mode:
    support: full
    details:
      - Reports what would be loaded; loads and writes nothing.
  diff_mode:
    support: full
    details:
      - Shows the loaded image's record before and after.
  platform:
    platforms: linux
options:
  state:
    description:
      - V(loaded) loads the requested kernel unless it is already loaded.
      - V(unloaded) unloads any loaded image (C(kexec -u)) and removes the record; changed only when
        something was loaded. The other options are ignored.
    type: str
    choices: [loaded, unloaded]
    default: loaded
notes:
  - The command line is limited to 2047 bytes on x86_64 and arm64 (less when the bzImage header says so);
    longer lines, line breaks and NUL bytes are refused.
  - Under Secure Boot only kernels signed by a trusted key can be loaded (C(kexec_file_load)).
  - While an image is loaded, systemd turns the next ordinary reboot (C(systemctl reboot), C(reboot),
    C(shutdown -r)) into a kexec into that image; seen on Debian 12 (systemd 252) and 13 (systemd 257).
    The role C(fastreboot.kexec.kexec) (C(kexec_every_reboot=false)) installs a guard unit that unloads such an
    image at shutdown, so that the reboot stays cold; M(fastreboot.kexec.kexec_reboot) marks its own kexec as
    requested. Without the role, unload with O(state=unloaded) if the image should not be used.
seealso:
  - module: fastreboot.kexec.kexec_info
  - module: fastreboot.kexec.kexec_reboot
  - name: kexec(8)
    description: The kexec-tools manual page.
    link: https://man7.org/linux/man-pages/man8/kexec.8.html
"""

EXAMPLES = r"""
- name: Load what a cold boot would start (boot loader default entry)
  fastreboot.kexec.kexec_load:

- name: Load the newest installed kernel with a serial console instead of the current ones
  fastreboot.kexec.kexec_load:
    kernel: latest
    remove:
      - quiet
    append:
      - console=ttyS0,115200

- name: Load a specific kernel with microcode and main initramfs and a full command line
  fastreboot.kexec.kexec_load:
    kernel: /boot/vmlinuz-linux
    initrd:
      - /boot/intel-ucode.img
      - /boot/initramfs-linux.img
    cmdline: root=UUID=0a1b2c3d-4e5f-6789-abcd-ef0123456789 rw quiet

- name: Drop a loaded image so the next reboot is a normal one
  fastreboot.kexec.kexec_load:
    state: unloaded
"""

RETURN = r"""
loaded:
  description: Whether an image is loaded after the task (C(/sys/kernel/kexec_loaded)).
  returned: always
  type: bool
  sample: true
kernel:
  description: The kernel image, symlinks resolved.
  returned: when O(state=loaded)
  type: str
  sample: /boot/vmlinuz-6.1.0-26-amd64
kernel_release:
  description: The kernel release, from the bzImage header when there is one, else from the file name.
  returned: when O(state=loaded)
  type: str
  sample: 6.1.0-26-amd64
kernel_selected_by:
  description:
    - How the kernel was chosen - V(path), V(default), V(latest), V(running), or V(latest) followed by the
      reason the boot loader was unreadable when O(kernel=default) had to fall back.
  returned: when O(state=loaded)
  type: str
  sample: default
kernel_sha256:
  description: SHA-256 of the kernel image.
  returned: when O(state=loaded)
  type: str
  sample: 3f7c0a6e1d0b1c4f9a2b5d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a
initrd:
  description: The initramfs passed to kexec (the concatenated file for a list), or null for none.
  returned: when O(state=loaded)
  type: str
  sample: /boot/initrd.img-6.1.0-26-amd64
initrd_sources:
  description: The initramfs files in load order.
  returned: when O(state=loaded)
  type: list
  elements: str
  sample: [/boot/initrd.img-6.1.0-26-amd64]
initrd_sha256:
  description: SHA-256 of the initramfs (of the concatenation for several), or null.
  returned: when O(state=loaded)
  type: str
  sample: 9d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a6f7e8d9c0b1a2f3e4d5c6b7a8f9e0d1c
cmdline:
  description: The command line of the new kernel.
  returned: when O(state=loaded)
  type: str
  sample: root=UUID=0a1b2c3d-4e5f-6789-abcd-ef0123456789 ro quiet
cmdline_source:
  description: Where the command line came from before O(append)/O(remove) - V(cmdline), V(proc) or V(boot_entry).
  returned: when O(state=loaded)
  type: str
  sample: boot_entry
syscall:
  description: The system call that loaded (or unloaded) the image, V(file) or V(legacy); null when none ran.
  returned: always
  type: str
  sample: file
reloaded_reason:
  description:
    - Why a load was needed - V(not loaded), V(no record) (an image loaded by something else),
      V(request differs), V(record of an earlier boot); null when the image was already loaded.
  returned: when O(state=loaded)
  type: str
  sample: not loaded
record:
  description: The record of the image this collection loaded in this boot, or null.
  returned: always
  type: dict
  sample:
    version: 1
    boot_id: 6f1c3b9e-2d4a-4c8e-9f7b-1a2b3c4d5e6f
    kernel: /boot/vmlinuz-6.1.0-26-amd64
    kernel_sha256: 3f7c0a6e1d0b1c4f9a2b5d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a
    initrd: /boot/initrd.img-6.1.0-26-amd64
    initrd_sha256: 9d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a6f7e8d9c0b1a2f3e4d5c6b7a8f9e0d1c
    cmdline: root=UUID=0a1b2c3d-4e5f-6789-abcd-ef0123456789 ro quiet
    syscall: file
    kernel_release: 6.1.0-26-amd64
    loaded_at: "2026-01-05T10:00:00Z"
attempts:
  description: Each C(kexec) run - syscall, argv, exit code and error output.
  returned: always
  type: list
  elements: dict
  sample:
    - syscall: file
      argv: [/usr/sbin/kexec, -l, -s, /boot/vmlinuz-6.1.0-26-amd64, --initrd=/boot/initrd.img-6.1.0-26-amd64, --append=ro quiet]
      rc: 0
      stderr: ""
boot_id:
  description: The current boot id (C(/proc/sys/kernel/random/boot_id)); it changes with every boot, kexec included.
  returned: always
  type: str
  sample: 6f1c3b9e-2d4a-4c8e-9f7b-1a2b3c4d5e6f
running_release:
  description: The running kernel release (C(uname -r)).
  returned: always
  type: str
  sample: 6.1.0-25-amd64
support:
  description: Whether this host can kexec, and why not. Same as RV(fastreboot.kexec.kexec_info#module:support).
  returned: always
  type: dict
  sample:
    supported: true
    verdict: "kexec possible with kexec-tools 2.0.25, syscalls: file, legacy"
    problems: []
    arch: x86_64
    kexec_path: /usr/sbin/kexec
    kexec_tools_version: 2.0.25
    syscalls: {file: true, legacy: true}
    kexec_load_disabled: false
    lockdown: none
    secure_boot: disabled
    efi: false
    container: null
    cap_sys_boot: true
    kexec_loaded: false
    kexec_crash_loaded: false
msg:
  description: What happened, in one line.
  returned: always
  type: str
  sample: "loaded /boot/vmlinuz-6.1.0-26-amd64 (6.1.0-26-amd64) with kexec_file_load: nothing was loaded"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fastreboot.kexec.plugins.module_utils._host import ModuleRunner
from ansible_collections.fastreboot.kexec.plugins.module_utils._load_spec import LOAD_ARGUMENT_SPEC
from ansible_collections.fastreboot.kexec.plugins.module_utils._loader import (
    STATE_ARGUMENT_SPEC,
    KexecLoader,
    LoadError,
    LoadRequest,
)


def main() -> None:
    module = AnsibleModule(argument_spec=dict(LOAD_ARGUMENT_SPEC, **STATE_ARGUMENT_SPEC), supports_check_mode=True)
    loader = KexecLoader(ModuleRunner(module))
    try:
        outcome = loader.run(LoadRequest.from_params(module.params), check_mode=module.check_mode)
    except LoadError as error:
        for warning in error.warnings:
            module.warn(warning)
        module.fail_json(msg=error.msg, **{key: value for key, value in error.result.items() if key != "msg"})
    for warning in outcome.warnings:
        module.warn(warning)
    result = outcome.result
    if module._diff and outcome.diff is not None:
        result["diff"] = outcome.diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
