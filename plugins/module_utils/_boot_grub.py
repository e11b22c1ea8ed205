# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""GRUB: grub.cfg (just enough of GRUB's script lexer for generated files), grubenv and /etc/default/grub.

saved_entry/next_entry, entry ids, titles and "submenu>entry" paths, variables expanded like GRUB does,
blscfg with BLS entries (EL, Fedora). Internal to fastreboot.kexec, not a public API.
"""

from __future__ import annotations

import os
import re
import typing as t
from dataclasses import dataclass, field

from ansible_collections.fastreboot.kexec.plugins.module_utils._boot_bls import BLS_DIRS, read_bls_entries
from ansible_collections.fastreboot.kexec.plugins.module_utils._boot_entry import BootEntry, BootLoaderError, boot_path
from ansible_collections.fastreboot.kexec.plugins.module_utils._cmdline import join_cmdline, strip_boot_loader_params
from ansible_collections.fastreboot.kexec.plugins.module_utils._host import HostFiles

GRUB_CONFIGS = ("/boot/grub/grub.cfg", "/boot/grub2/grub.cfg")
EFI_DIR = "/boot/efi/EFI"
GRUB_LINUX_COMMANDS = ("linux", "linux16", "linuxefi")
GRUB_INITRD_COMMANDS = ("initrd", "initrd16", "initrdefi")
GRUB_VAR_NAME = re.compile(r"[A-Za-z0-9_]+|[?#*@]")


Segment = t.Tuple[str, str, bool]  # (kind "lit" | "var", text or variable name, inside quotes)
Word = t.List[Segment]


def _lex_grub(text: str) -> list[list[Word]]:
    """Statements -> words -> segments. Variables stay unexpanded so they can be expanded later."""
    statements: list[list[Word]] = []
    words: list[Word] = []
    word: Word = []
    in_word = False
    index = 0
    length = len(text)

    def end_word() -> None:
        nonlocal word, in_word
        if in_word:
            words.append(word)
        word = []
        in_word = False

    def end_statement() -> None:
        nonlocal words
        end_word()
        if words:
            statements.append(words)
        words = []

    def read_var(position: int, quoted: bool) -> int:
        if position < length and text[position] == "{":
            end = text.find("}", position)
            end = length if end < 0 else end
            word.append(("var", text[position + 1:end], quoted))
            return end + 1
        match = GRUB_VAR_NAME.match(text, position)
        if not match:
            word.append(("lit", "$", quoted))
            return position
        word.append(("var", match.group(0), quoted))
        return match.end()

    while index < length:
        char = text[index]
        if char == "#" and not in_word:
            newline = text.find("\n", index)
            index = length if newline < 0 else newline
            continue
        if char in "\n;":
            end_statement()
            index += 1
        elif char in " \t\r":
            end_word()
            index += 1
        elif char == "\\":
            if index + 1 < length and text[index + 1] == "\n":
                index += 2
                continue
            in_word = True
            word.append(("lit", text[index + 1:index + 2], False))
            index += 2
        elif char == "'":
            in_word = True
            end = text.find("'", index + 1)
            end = length if end < 0 else end
            word.append(("lit", text[index + 1:end], True))
            index = end + 1
        elif char == '"':
            in_word = True
            index += 1
            while index < length and text[index] != '"':
                if text[index] == "\\" and index + 1 < length and text[index + 1] in '$"\\\n':
                    word.append(("lit", text[index + 1], True))
                    index += 2
                elif text[index] == "$":
                    index = read_var(index + 1, True)
                else:
                    word.append(("lit", text[index], True))
                    index += 1
            index += 1
        elif char == "$":
            in_word = True
            index = read_var(index + 1, False)
        else:
            in_word = True
            word.append(("lit", char, False))
            index += 1
    end_statement()
    return statements


def _expand(word: Word, variables: dict[str, str]) -> list[str]:
    """Expand one word into arguments: unquoted variables are split on whitespace, like GRUB does."""
    results: list[str] = []
    current = ""
    started = False
    for kind, value, quoted in word:
        if kind == "lit" or quoted:
            current += value if kind == "lit" else variables.get(value, "")
            started = True
            continue
        for position, part in enumerate(re.split(r"\s+", variables.get(value, ""))):
            if position > 0:
                if started:
                    results.append(current)
                current, started = "", False
            if part:
                current += part
                started = True
    if started:
        results.append(current)
    return results


def _expand_words(words: t.Sequence[Word], variables: dict[str, str]) -> list[str]:
    return [arg for word in words for arg in _expand(word, variables)]


def _bare(word: Word) -> str | None:
    """The text of a word made of unquoted literals only ('{', '}', keywords), else None."""
    if all(kind == "lit" and not quoted for kind, _value, quoted in word):
        return "".join(value for _kind, value, _quoted in word)
    return None


def _assignment(words: list[Word]) -> tuple[str, Word] | None:
    """'set name=value' or 'name=value' -> (name, value word); None for other statements."""
    if _bare(words[0]) == "set" and len(words) >= 2:
        target = words[1]
    elif len(words) == 1:
        target = words[0]
    else:
        return None
    name = ""
    for position, (kind, value, quoted) in enumerate(target):
        if kind != "lit" or quoted:
            return None
        if "=" in value:
            head, rest = value.split("=", 1)
            name += head
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                return None
            remainder: Word = ([("lit", rest, False)] if rest else []) + list(target[position + 1:])
            return name, remainder
        name += value
    return None


@dataclass
class GrubItem:
    kind: str  # "entry" or "submenu"
    title: str
    entry_id: t.Optional[str]
    children: t.List["GrubItem"] = field(default_factory=list)
    linux: t.List[Word] = field(default_factory=list)
    initrd: t.List[Word] = field(default_factory=list)
    local_sets: t.List[t.Tuple[str, Word]] = field(default_factory=list)
    bls: t.Optional[BootEntry] = None


CONTROL_PREFIXES = ("then", "else", "do")
CONTROL_OPEN = ("if", "while", "until", "for")
CONTROL_CLOSE = ("fi", "done")
MENU_OPTIONS_WITH_VALUE = ("--class", "--users", "--hotkey", "--id", "--source")


def _menu_title_and_id(args: list[str]) -> tuple[str, str | None]:
    title = None
    entry_id = None
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--id" and index + 1 < len(args):
            entry_id = args[index + 1]
            index += 2
            continue
        if arg.startswith("--id="):
            entry_id = arg[len("--id="):]
        elif arg in MENU_OPTIONS_WITH_VALUE:
            index += 1
        elif arg.startswith("--"):
            pass
        elif title is None:
            title = arg
        index += 1
    return title or "", entry_id


class GrubConfig:
    """A parsed grub.cfg: the menu tree, variables and default assignments."""

    def __init__(self, text: str, env: dict[str, str]) -> None:
        self.env = env
        self.menu: list[GrubItem] = []
        self.default_words: list[Word] = []
        self.variables: dict[str, str] = {"menuentry_id_option": "--id"}
        self.variables.update(env)
        self.has_blscfg = False
        self.bls_position = 0
        self._parse(_lex_grub(text))

    def _parse(self, statements: list[list[Word]]) -> None:
        # Open blocks: (keyword, menu item or None). Only menuentry/submenu blocks make menu items,
        # and only at the top level or directly inside a submenu (not inside functions).
        stack: list[tuple[str, GrubItem | None]] = []
        conditional_depth = 0
        for words in statements:
            # "if [ ... ]; then set x=y; else set x=z; fi": keywords start statements after ';'.
            while words and _bare(words[0]) in CONTROL_PREFIXES:
                words = words[1:]
            if not words:
                continue
            first = _bare(words[0])
            if first in CONTROL_OPEN:
                conditional_depth += 1
                continue
            if first in CONTROL_CLOSE:
                conditional_depth = max(0, conditional_depth - 1)
                continue
            if first == "elif":
                continue
            if first == "}" and len(words) == 1:
                if stack:
                    stack.pop()
                continue
            if _bare(words[-1]) == "{":
                keyword = first or ""
                item = None
                if keyword in ("menuentry", "submenu"):
                    title, entry_id = _menu_title_and_id(_expand_words(words[1:-1], self.variables))
                    item = GrubItem("entry" if keyword == "menuentry" else "submenu", title, entry_id)
                    if not stack:
                        self.menu.append(item)
                    elif stack[-1][0] == "submenu" and stack[-1][1] is not None:
                        stack[-1][1].children.append(item)
                stack.append((keyword, item))
                continue
            if not stack:
                self._top_level_statement(words, first, conditional_depth > 0)
            elif stack[-1][0] == "menuentry" and stack[-1][1] is not None:
                self._entry_statement(stack[-1][1], words, first)

    @staticmethod
    def _entry_statement(entry: GrubItem, words: list[Word], first: str | None) -> None:
        if first in GRUB_LINUX_COMMANDS:
            entry.linux = words[1:]
        elif first in GRUB_INITRD_COMMANDS:
            entry.initrd = words[1:]
        else:
            assignment = _assignment(words)
            if assignment:
                entry.local_sets.append(assignment)

    def _top_level_statement(self, words: list[Word], first: str | None, conditional: bool) -> None:
        if first == "blscfg":
            self.has_blscfg = True
            self.bls_position = len(self.menu)
            return
        assignment = _assignment(words)
        if not assignment:
            return
        name, value = assignment
        if name == "default":
            self.default_words.append(value)
            return
        if conditional and name in self.variables:
            # Conditions are not evaluated: the first branch that sets a variable wins, and grubenv
            # values (saved_entry) survive "if [ prev_saved_entry ]; then set saved_entry=..." blocks.
            return
        self.variables[name] = "".join(_expand(value, self.variables))

    def default_value(self) -> tuple[str, str]:
        """(default entry spec, where it came from)."""
        next_entry = self.env.get("next_entry", "")
        uses_next_entry = any(seg[0] == "var" and seg[1] == "next_entry" for word in self.default_words for seg in word)
        if next_entry and uses_next_entry:
            return next_entry, f"grubenv next_entry '{next_entry}' (one-time)"
        plain = [word for word in self.default_words if not any(seg[0] == "var" and seg[1] == "next_entry" for seg in word)]
        if not plain:
            return "", ""
        word = plain[-1]
        value = "".join(_expand(word, self.variables))
        if any(seg[0] == "var" and seg[1] == "saved_entry" for seg in word):
            return value, f"grubenv saved_entry '{value}'"
        return value, f"grub.cfg set default='{value}'"


def parse_grubenv(text: str | None) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in (text or "").splitlines():
        if line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        env[key.strip()] = value.replace("\\n", "\n").replace("\\\\", "\\")
    return env


def parse_default_grub(text: str | None) -> str | None:
    """GRUB_DEFAULT from /etc/default/grub (shell syntax, quotes removed)."""
    for line in (text or "").splitlines():
        match = re.match(r"^\s*GRUB_DEFAULT=(.*)$", line)
        if match:
            value = match.group(1).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            return value
    return None


def _find_menu_item(items: list[GrubItem], spec: str) -> tuple[GrubItem | None, str]:
    """Walk 'part>part' through the menu by index, id or title. Returns (entry, note)."""
    level = items
    item: GrubItem | None = None
    for part in spec.split(">"):
        item = None
        if part.isdigit():
            index = int(part)
            item = level[index] if index < len(level) else None
        else:
            item = next((candidate for candidate in level if candidate.entry_id == part), None)
            item = item or next((candidate for candidate in level if candidate.title == part), None)
        if item is None:
            return None, f"'{spec}' matches no menu entry"
        level = item.children
    while item is not None and item.kind == "submenu":
        item = item.children[0] if item.children else None
    return item, ""


def _grub_config_path(host: HostFiles) -> str | None:
    candidates = list(GRUB_CONFIGS) + [f"{directory}/grub.cfg" for directory in host.glob(EFI_DIR, "*")]
    for path in candidates:
        text = host.read_text(path)
        # EFI stubs only 'configfile' the real grub.cfg; skip them.
        if text and ("menuentry" in text or "blscfg" in text):
            return path
    return None


def read_grub_default(host: HostFiles) -> BootEntry | None:
    """GRUB's default entry from grub.cfg and grubenv (blscfg entries included); None without a grub.cfg."""
    config_path = _grub_config_path(host)
    if config_path is None:
        return None
    config_dir = os.path.dirname(config_path)
    env = parse_grubenv(host.read_text(f"{config_dir}/grubenv"))
    config = GrubConfig(host.read_text(config_path) or "", env)
    menu = list(config.menu)
    loader = "grub"
    if config.has_blscfg:
        loader = "grub-bls"
        bls_entries = read_bls_entries(host, [(directory, "/boot") for directory in BLS_DIRS], loader, config.variables)
        bls_items = [GrubItem("entry", entry.title, entry.entry_id, bls=entry) for entry in bls_entries]
        menu[config.bls_position:config.bls_position] = bls_items
    if not menu:
        raise BootLoaderError(f"{config_path} has no menu entries")
    spec, found_by = config.default_value()
    if not spec:
        grub_default = parse_default_grub(host.read_text("/etc/default/grub"))
        if grub_default == "saved":
            spec = env.get("saved_entry", "")
            found_by = f"grubenv saved_entry '{spec}' (GRUB_DEFAULT=saved)"
        elif grub_default:
            spec, found_by = grub_default, f"/etc/default/grub GRUB_DEFAULT='{grub_default}'"
    item, note = _find_menu_item(menu, spec) if spec else (None, "no default set")
    if item is None:
        # GRUB boots the first entry when the default does not match anything.
        item, _unused = _find_menu_item(menu, "0")
        found_by = f"first menu entry ({note or 'default unset'})"
        if item is None:
            raise BootLoaderError(f"{config_path}: the first menu entry is an empty submenu")
    return _grub_entry(host, item, config, config_path, loader, found_by)


def _grub_entry(host: HostFiles, item: GrubItem, config: GrubConfig, config_path: str, loader: str, found_by: str) -> BootEntry:
    if item.bls is not None:
        item.bls.found_by = found_by
        return item.bls
    variables = dict(config.variables)
    for name, value in item.local_sets:
        variables[name] = "".join(_expand(value, variables))
    linux_args = _expand_words(item.linux, variables)
    if not linux_args:
        raise BootLoaderError(f"{config_path}: the default entry '{item.title}' boots no Linux kernel (no linux line)")
    # GRUB quotes arguments that contain spaces when it builds the kernel command line.
    params = [f'"{arg}"' if " " in arg and '"' not in arg else arg for arg in linux_args[1:]]
    return BootEntry(
        loader=loader,
        title=item.title,
        entry_id=item.entry_id,
        image=boot_path(host, linux_args[0]),
        initrds=[boot_path(host, path) for path in _expand_words(item.initrd, variables)],
        options=strip_boot_loader_params(join_cmdline(params)),
        found_by=found_by,
        config=config_path,
    )
