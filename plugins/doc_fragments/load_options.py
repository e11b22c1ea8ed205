# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The options shared by fastreboot.kexec.kexec_load and fastreboot.kexec.kexec_reboot.
    # Keep in sync with LOAD_ARGUMENT_SPEC in plugins/module_utils/_load_spec.py.
    DOCUMENTATION = r"""
options:
  kernel:
    description:
      - The kernel to load.
      - An absolute path to a kernel image. Symlinks are resolved, so V(/vmlinuz) works.
      - V(default) is what a cold boot would start - the boot loader's default entry. It is read from
        GRUB (C(grub.cfg) with C(grubenv) C(saved_entry)/C(next_entry), numeric, title, id and
        C(submenu>entry) defaults, BLS entries with C(blscfg) as on EL), systemd-boot (EFI variables,
        C(loader.conf), BLS entries), extlinux, or C(grubby --info=DEFAULT). When the boot loader cannot
        be read this falls back to V(latest), says so in RV(kernel_selected_by) and warns.
      - V(latest) is the newest installed kernel by version order (V(6.1.0-10) is newer than V(6.1.0-9),
        V(6.8.0-rc3) is older than V(6.8.0)).
      - V(running) is the installed image of the running release (C(uname -r)).
      - The file must be a kernel for this machine - a bzImage, an arm64 or RISC-V C(Image) (also
        gzip-compressed), an EFI zboot image, or an ELF C(vmlinux). An ELF file counts as a kernel only
        when it is an executable without a program interpreter that carries the C(Linux) ELF note every
        vmlinux has, so a program such as C(/usr/bin/ls) is refused. On x86_64 and arm64 an ELF vmlinux is
        loaded with C(kexec_load) only.
    type: str
    default: default
  initrd:
    description:
      - The initramfs to load with the kernel.
      - V(auto) takes the boot entry's initrd lines when the kernel came from the boot loader, otherwise
        derives it from the kernel by the distribution's naming - C(/boot/initrd.img-KVER) (Debian,
        Ubuntu), C(/boot/initramfs-KVER.img) (EL, Fedora), C(/boot/initrd-KVER) (SUSE),
        C(/boot/initramfs-linux.img) with C(intel-ucode.img)/C(amd-ucode.img) first (Arch),
        C(/boot/initramfs-lts) (Alpine), C(KVER/initrd) next to C(KVER/linux) (systemd-boot layout).
        When nothing is found the task fails rather than boot without one.
      - A path, or a list of paths that are concatenated in order (microcode first) into one file under
        C(/run/fastreboot-kexec/) with mode C(0600).
      - V(false) (or V(none)) loads no initramfs.
      - Paths must be absolute. Each file must start like an initramfs - a cpio archive (newc/crc, such
        as an early-microcode cpio followed by the compressed main one) or gzip, zstd, xz, lzma, lz4,
        lzo or bzip2 data. A kernel image or any other file is refused.
    type: raw
    default: auto
  cmdline:
    description:
      - The whole kernel command line. An empty one is refused.
      - When not set, the default boot entry's options are used if the kernel came from the boot
        loader (O(kernel=default)), otherwise the running one (C(/proc/cmdline)) minus C(BOOT_IMAGE=) and
        C(initrd=).
      - Quoted values with spaces such as C(foo="a b") stay one parameter.
      - The final command line (after O(remove) and O(append)) must fit what the new kernel and the
        system call accept - on x86_64 the bzImage header's C(cmdline_size) minus the terminating NUL
        (2046 bytes with C(kexec_load)) and minus 30 more bytes with C(kexec_file_load) (2016 bytes),
        2047 bytes on arm64, 1023 on riscv64. This is checked before anything is loaded. With
        O(syscall=auto) a line that only C(kexec_load) takes skips C(kexec_file_load) with a warning; under
        lockdown, where C(kexec_load) is refused, it is an error.
      - A final command line without C(root=) is loaded with a warning (some initramfs find the root
        file system by themselves).
    type: str
  append:
    description:
      - Parameters added to the command line, as a string or a list of strings.
      - The string, and every item of a list, is split like a kernel command line - whitespace separates
        parameters, double quotes group (C(foo="a b") is one parameter), commas belong to the value. So
        C(console=ttyS0,115200) is one parameter, C(quiet splash) (or the item V(quiet splash)) two.
      - Each parameter replaces those with the same key (C(console=ttyS0) replaces every C(console=)).
        Several parameters with one key in O(append) are all kept.
      - A value with spaces must be quoted, C(foo="a b"); C(--) (arguments for init) is refused here,
        put those in O(cmdline).
    type: raw
    default: []
  remove:
    description:
      - Parameters dropped from the command line, before O(append) is applied; a string or a list of
        strings, split like O(append).
      - A key (C(quiet), C(console)) drops every parameter with that key; C(key=value) drops only that one.
    type: raw
    default: []
  syscall:
    description:
      - The system call that loads the kernel.
      - V(auto) tries C(kexec_file_load) (C(kexec -s)) and falls back to C(kexec_load) (C(kexec -c)) when
        the kernel lacks it or does not understand the image. Under lockdown or Secure Boot it never
        tries C(kexec_load), which is refused there, and signature errors are reported, not retried.
      - V(file) only uses C(kexec_file_load) (signed kernels under Secure Boot).
      - V(legacy) only uses C(kexec_load); refused when lockdown is active.
    type: str
    choices: [auto, file, legacy]
    default: auto
  allow_unsafe_files:
    description:
      - Kernel and initrd files must be regular files (after resolving symlinks), owned by root and not
        writable by group or others, because whoever can write them decides what the host boots.
      - The same holds for every directory on the way to each file, symlinks followed and the directories
        that hold those symlinks included; a sticky bit (as on /tmp) does not make a directory safe.
      - V(true) accepts such files with a warning.
    type: bool
    default: false
"""
