#!/usr/bin/python
# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: kexec_load
short_description: Load the next kernel for a kexec reboot, idempotently
version_added: 1.0.0
description:
  - Loads a kernel, its initramfs and a command line with C(kexec -l), so that the next C(systemctl kexec)
    (or, with systemd 255 and newer, any C(systemctl reboot)) boots it without firmware POST and boot loader.
  - Picks the kernel the way a cold boot would (the boot loader's default entry), or the newest, or the
    running one, or a path; derives the initramfs and the command line.
  - Everything is checked before C(kexec) runs, so bad input changes nothing on the host.
  - A C(kexec -l) that fails replaces nothing - the kernel swaps in a new image only once it is fully
    loaded - so the image loaded before stays loaded, and its record stays valid.
  - Keeps a record of what it loaded in this boot in C(/run/fastreboot-kexec/loaded.json) (mode C(0600),
    directory C(0700); a directory or record not owned by root, or a symlink there, is refused).
    When the record says the same kernel, initramfs and command line are loaded in this boot, nothing changes.
  - What idempotence can know - the kernel only tells I(that) an image is loaded (C(/sys/kernel/kexec_loaded)),
    never I(which) one. So an image unloaded, or loaded when none was, by someone else is seen; but a
    C(kexec -l) by someone else after ours, while something stays loaded, is invisible, and this module
    reports "already loaded". Use O(force=true) to load regardless; M(fastreboot.kexec.kexec_reboot) does,
    so that what it boots is what it loaded.
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
  force:
    description:
      - Load even when the record says the requested image is loaded already (RV(reloaded_reason=forced)).
      - Without it, the record decides, and the record cannot see a load by someone else after ours.
      - Ignored with O(state=unloaded).
    type: bool
    default: false
notes:
  - The command line must fit what the new kernel and the system call accept (see O(cmdline)); longer
    lines, line breaks and NUL bytes are refused.
  - Under Secure Boot/lockdown only kernels signed by a key the kernel trusts can be loaded, with C(kexec_file_load)
    (Debian's kernels are). An unsigned kernel or one signed by an untrusted key is refused with a message that
    names the file; C(kexec_load) is never tried then. O(state=unloaded) unloads with C(kexec -s -u) there, since
    C(kexec -u) is C(kexec_load) in kexec-tools before 2.0.27 and refused under lockdown.
  - The kernel, the initramfs and every directory on the way to them (symlinks followed, their directories
    included) must be owned by root and not writable by group or others, unless O(allow_unsafe_files=true).
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
      V(request differs), V(record of an earlier boot), V(forced) (O(force=true) and the record matched);
      null when the record says the image was already loaded.
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
would_fail_because:
  description:
    - In check mode, what this host lacks that a real run needs (for now a missing kexec-tools, which the
      role C(fastreboot.kexec.kexec) may install first); check mode then reports C(changed) with a warning.
    - Null when nothing is known to stop a real run, and always null outside check mode (a real run fails instead).
  returned: always
  type: list
  elements: str
  sample:
    - "the kexec program (kexec-tools) is not installed: install it with the fastreboot.kexec.kexec role (or the kexec-tools package)"
failure_code:
  description:
    - What kind of failure stopped the task, for playbooks and plugins to decide by, rather than by RV(msg).
    - V(unsupported) - the host cannot kexec (kexec-tools missing, C(kernel.kexec_load_disabled=1), no kexec in the
      kernel configuration, a container, no C(CAP_SYS_BOOT), lockdown with a kernel without C(kexec_file_load)).
    - V(signature) - the kernel refused the image's signature, or lockdown or an IMA policy refused C(kexec_load).
    - V(input) - the request cannot work (a kernel or initramfs file, an option, the command line); fix the task.
    - V(kexec) - C(kexec) failed otherwise.
    - V(record) - the record directory C(/run/fastreboot-kexec) or a file in it could not be used or written.
    - M(fastreboot.kexec.kexec_reboot) with O(fastreboot.kexec.kexec_reboot#module:cold_fallback=true) reboots
      cold after V(unsupported) and V(signature).
  returned: failure
  type: str
  choices: [unsupported, signature, input, kexec, record]
  sample: unsupported
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
