# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Kernel command lines: split and join like the kernel does, edit by key, validate."""

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
}
DEFAULT_COMMAND_LINE_SIZE = 2048

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


def quote_param(param: str) -> str:
    """Quote a parameter given with a bare space ('foo=a b' -> 'foo="a b"') so it stays one parameter."""
    if '"' in param or not any(char.isspace() for char in param):
        return param
    if "=" in param:
        key, value = param.split("=", 1)
        return f'{key}="{value}"'
    return f'"{param}"'


def _split_init_args(params: list[str]) -> tuple[list[str], list[str]]:
    if INIT_SEPARATOR in params:
        index = params.index(INIT_SEPARATOR)
        return params[:index], params[index:]
    return params, []


def strip_boot_loader_params(text: str) -> str:
    """/proc/cmdline minus BOOT_IMAGE= and initrd= (they describe the previous boot, not the next)."""
    kernel_params, init_args = _split_init_args(split_cmdline(text))
    kept = [param for param in kernel_params if _unquoted(param).split("=", 1)[0] not in BOOT_LOADER_KEYS]
    return join_cmdline(kept + init_args)


def edit_cmdline(text: str, append: t.Sequence[str] = (), remove: t.Sequence[str] = ()) -> str:
    """Drop the parameters named in remove, then add append (replacing parameters with the same key).

    A remove item without '=' drops every parameter with that key ('console' drops all console=);
    with '=' it drops only that exact parameter. Arguments for init (after '--') are left alone.
    """
    kernel_params, init_args = _split_init_args(split_cmdline(text))
    added = [quote_param(param.strip()) for param in append if param.strip()]
    for item in remove:
        item = item.strip()
        if not item:
            continue
        if "=" in item:
            wanted = _unquoted(quote_param(item))
            kernel_params = [param for param in kernel_params if _unquoted(param) != wanted]
        else:
            key = param_key(item)
            kernel_params = [param for param in kernel_params if param_key(param) != key]
    replaced_keys = {param_key(param) for param in added}
    kernel_params = [param for param in kernel_params if param_key(param) not in replaced_keys]
    return join_cmdline(kernel_params + added + init_args)


def command_line_limit(machine: str, header_cmdline_size: int | None = None) -> int:
    """Longest command line in bytes, without the terminating NUL.

    header_cmdline_size is the bzImage cmdline_size field (boot protocol >= 2.06), which already
    excludes the NUL.
    """
    limit = COMMAND_LINE_SIZES.get(machine, DEFAULT_COMMAND_LINE_SIZE) - 1
    if header_cmdline_size:
        limit = min(limit, header_cmdline_size)
    return limit


def validate_cmdline(text: str, limit: int, machine: str = "") -> None:
    """Raise CmdlineError when the kernel would not receive text intact."""
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
    size = len(text.encode("utf-8"))
    if size > limit:
        where = f" on {machine}" if machine else ""
        raise CmdlineError(
            f"the command line is {size} bytes but the kernel accepts at most {limit}{where} "
            f"({limit + 1} with the terminating NUL): shorten it with remove or cmdline"
        )
