# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Kernel command lines: split and join like the kernel does, edit by key, validate.

Length limits, per architecture and syscall (command_line_limit), from the sources:
- x86: the bzImage header's cmdline_size (0x238, 2047 on current kernels) counts bytes without the
  NUL, but both loaders compare the length WITH the NUL against it: kexec-tools' kexec_load path
  (kexec/arch/x86_64/kexec-bzImage64.c, i386/kexec-bzImage.c: strlen + 1 > cmdline_size) and the
  kernel's kexec_file_load loader (arch/x86/kernel/kexec-bzimage64.c), which also keeps 30 bytes
  for "elfcorehdr=0x..." (len + 1 + 30 > cmdline_size, EINVAL). So 2046 and 2016 bytes.
- arm64, riscv64: the command line goes into the device tree, which the new kernel cuts at its
  COMMAND_LINE_SIZE (2048, 1024) including the NUL, whichever syscall loaded it.
"""

from __future__ import annotations

import typing as t

# Parameters that only mean something to the boot loader that booted the running kernel.
BOOT_LOADER_KEYS = ("BOOT_IMAGE", "initrd")

# COMMAND_LINE_SIZE including the terminating NUL, per architecture (uname -m).
COMMAND_LINE_SIZES = {
    "x86_64": 2048,
    "i386": 2048,
    "i686": 2048,
    "aarch64": 2048,
    "arm64": 2048,
    "riscv64": 1024,
}
DEFAULT_COMMAND_LINE_SIZE = 2048
# x86 machines, whose bzImage header carries cmdline_size.
X86_MACHINES = ("x86_64", "i386", "i686")
# arch/x86/kernel/kexec-bzimage64.c MAX_ELFCOREHDR_STR_LEN: room kexec_file_load keeps for "elfcorehdr=0x<64bit> ".
X86_FILE_LOAD_RESERVED = 30

SYSCALL_NAMES = {"file": "kexec_file_load", "legacy": "kexec_load"}

# Everything after a bare "--" is for init, not for the kernel.
INIT_SEPARATOR = "--"


class CmdlineError(ValueError):
    """A command line that the new kernel would not get intact."""


def split_cmdline(text: str) -> list[str]:
    """Split like the kernel's next_arg(): whitespace separates, double quotes group.

    Parameters keep their quotes: 'foo="a b"' stays one parameter, written as it was.
    """
    params: list[str] = []
    current: list[str] = []
    in_quote = False
    for char in text:
        if char.isspace() and not in_quote:
            if current:
                params.append("".join(current))
                current = []
            continue
        if char == '"':
            in_quote = not in_quote
        current.append(char)
    if current:
        params.append("".join(current))
    return params


def join_cmdline(params: t.Iterable[str]) -> str:
    return " ".join(params)


def param_key(param: str) -> str:
    """The parameter name, without quotes; the kernel treats '-' and '_' in names alike."""
    unquoted = param.replace('"', "")
    return unquoted.split("=", 1)[0].replace("-", "_")


def _unquoted(param: str) -> str:
    return param.replace('"', "")


def check_one_line(text: str, what: str) -> None:
    """Refuse text (a value of option what) that the kernel would not get as one intact line."""
    if "\n" in text or "\r" in text or "\0" in text:
        raise CmdlineError(f"{what} {text!r} contains a line break or NUL; the kernel command line is one line: remove it")
    if text.count('"') % 2:
        raise CmdlineError(
            f"{what} {text!r} has an unbalanced double quote, so the kernel would merge the parameters after it: "
            "close the quote (foo=\"a b\")"
        )


def option_params(value: t.Any, option: str) -> list[str]:
    """The parameters an append/remove value names.

    A string is split like a command line (whitespace separates, double quotes group, commas are part
    of a value), and so is every item of a list: "console=ttyS0,115200" is one parameter,
    ["quiet splash"] two, ['foo="a b" init=/bin/sh'] two.
    """
    if value is None:
        items: list[t.Any] = []
    elif isinstance(value, str):
        items = [value]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise CmdlineError(f"{option}={value!r} is not understood: give parameters as a string (\"quiet splash\") or a list of strings")
    params: list[str] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise CmdlineError(
                f"{option} item {item!r} is not a kernel parameter: give strings such as console=ttyS0,115200 "
                "(quote it in YAML when it contains ': ' or is yes/no)"
            )
        text = str(item)
        check_one_line(text, option)
        words = split_cmdline(text)
        if INIT_SEPARATOR in words:
            raise CmdlineError(
                f"{option} {text!r} contains '--', which starts the arguments for init: "
                "give init arguments in cmdline (... -- single), append/remove only edit kernel parameters"
            )
        params.extend(words)
    return params


def _split_init_args(params: list[str]) -> tuple[list[str], list[str]]:
    if INIT_SEPARATOR in params:
        index = params.index(INIT_SEPARATOR)
        return params[:index], params[index:]
    return params, []


def has_boot_loader_params(text: str) -> bool:
    """True when a command line carries BOOT_IMAGE= or initrd=: a boot loader started that kernel, not a kexec."""
    kernel_params, _init_args = _split_init_args(split_cmdline(text))
    return any(_unquoted(param).split("=", 1)[0] in BOOT_LOADER_KEYS for param in kernel_params)


def strip_boot_loader_params(text: str) -> str:
    """/proc/cmdline minus BOOT_IMAGE= and initrd= (they describe the previous boot, not the next)."""
    kernel_params, init_args = _split_init_args(split_cmdline(text))
    kept = [param for param in kernel_params if _unquoted(param).split("=", 1)[0] not in BOOT_LOADER_KEYS]
    return join_cmdline(kept + init_args)


def edit_cmdline(text: str, append: t.Any = (), remove: t.Any = ()) -> str:
    """Drop the parameters named in remove, then add append (replacing parameters with the same key).

    append and remove are option values (a string or a list, see option_params). A remove parameter
    without '=' drops every parameter with that key ('console' drops all console=); with '=' it drops
    only that exact parameter. Arguments for init (after '--') are left alone.
    """
    kernel_params, init_args = _split_init_args(split_cmdline(text))
    added = option_params(append, "append")
    for item in option_params(remove, "remove"):
        if "=" in item:
            wanted = _unquoted(item)
            kernel_params = [param for param in kernel_params if _unquoted(param) != wanted]
        else:
            key = param_key(item)
            kernel_params = [param for param in kernel_params if param_key(param) != key]
    replaced_keys = {param_key(param) for param in added}
    kernel_params = [param for param in kernel_params if param_key(param) not in replaced_keys]
    return join_cmdline(kernel_params + added + init_args)


def command_line_limit(machine: str, header_cmdline_size: int | None, syscall: str) -> int:
    """Longest command line in bytes (without the terminating NUL) that syscall ("file"/"legacy") loads intact.

    header_cmdline_size is the bzImage cmdline_size field (boot protocol >= 2.06, x86 only), which
    excludes the NUL; the loaders count the NUL against it (see the module docstring).
    """
    if syscall not in SYSCALL_NAMES:
        raise ValueError(f"syscall must be one of {', '.join(SYSCALL_NAMES)}, not {syscall!r}")
    kernel_limit = COMMAND_LINE_SIZES.get(machine, DEFAULT_COMMAND_LINE_SIZE) - 1
    if machine not in X86_MACHINES or not header_cmdline_size:
        return kernel_limit
    cmdline_size = min(kernel_limit, header_cmdline_size)
    limit = cmdline_size - 1
    if syscall == "file":
        limit -= X86_FILE_LOAD_RESERVED
    return max(limit, 0)


def _limit_reason(machine: str, header_cmdline_size: int | None, syscall: str) -> str:
    if machine in X86_MACHINES and header_cmdline_size:
        reserved = f" and {X86_FILE_LOAD_RESERVED} bytes the kernel keeps for elfcorehdr=" if syscall == "file" else ""
        return f"cmdline_size {header_cmdline_size} in the bzImage header, minus the NUL{reserved}"
    return f"COMMAND_LINE_SIZE {COMMAND_LINE_SIZES.get(machine, DEFAULT_COMMAND_LINE_SIZE)} with the NUL"


def syscalls_for_length(
    text: str,
    machine: str,
    header_cmdline_size: int | None,
    syscalls: t.Sequence[str],
    legacy_refused: str | None = None,
) -> tuple[list[str], list[str]]:
    """The syscalls of the list that load text intact, and warnings; CmdlineError when none does.

    legacy_refused says why kexec_load is not in the list (lockdown), for the message; None when the
    request chose the list itself.
    """
    size = len(text.encode("utf-8"))
    where = f" on {machine}" if machine else ""
    limits = {syscall: command_line_limit(machine, header_cmdline_size, syscall) for syscall in syscalls}
    fitting = [syscall for syscall in syscalls if size <= limits[syscall]]
    dropped = [syscall for syscall in syscalls if syscall not in fitting]

    def too_long(syscall: str) -> str:
        return (
            f"the command line is {size} bytes but {SYSCALL_NAMES[syscall]} accepts at most {limits[syscall]}{where} "
            f"({_limit_reason(machine, header_cmdline_size, syscall)})"
        )

    if not fitting:
        widest = max(syscalls, key=lambda syscall: limits[syscall])
        message = f"{too_long(widest)}: shorten it with remove or cmdline"
        legacy_limit = command_line_limit(machine, header_cmdline_size, "legacy")
        if "legacy" not in syscalls and size <= legacy_limit:
            if legacy_refused:
                message += f"; kexec_load, which takes up to {legacy_limit} bytes, is refused here ({legacy_refused})"
            else:
                message += f", or use syscall=legacy (kexec_load takes up to {legacy_limit} bytes where lockdown allows it)"
        raise CmdlineError(message)
    warnings = [
        f"{too_long(syscall)}, so {SYSCALL_NAMES[syscall]} is not tried; {', '.join(SYSCALL_NAMES[kept] for kept in fitting)} loads it"
        for syscall in dropped
    ]
    return fitting, warnings


def validate_cmdline(text: str) -> None:
    """Raise CmdlineError when the kernel would not receive text intact or it boots nothing useful."""
    if "\n" in text or "\r" in text:
        raise CmdlineError(
            "the command line contains a line break; the kernel takes one line: "
            "remove the newline from cmdline/append"
        )
    if "\0" in text:
        raise CmdlineError("the command line contains a NUL byte, which ends it early: remove it from cmdline/append")
    if text.count('"') % 2:
        raise CmdlineError(
            "the command line has an unbalanced double quote, so the kernel would merge the parameters after it: "
            "close the quote (foo=\"a b\")"
        )


def cmdline_warnings(text: str) -> list[str]:
    """Warnings about a command line that may not boot (not refused: some setups boot without it)."""
    kernel_params, _init_args = _split_init_args(split_cmdline(text))
    if not any(param_key(param) == "root" for param in kernel_params):
        return [
            "the command line has no root= parameter: the new kernel boots only if its initramfs finds the root "
            "file system by itself (systemd-gpt-auto-generator, a dracut/initramfs setting); otherwise add root=... "
            "with append or cmdline"
        ]
    return []
