# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Lab test VMs only (never a benchmark VM, never shipped): a bytecode cache for zip imports.

Ansible runs every module from a zip (AnsiballZ), and zipimport compiles each of its .py files on
every task: under TCG about 3.4 of a module run's 5.2 seconds. This file, imported at the guest
Python's start by a .pth file (`lab.py up --bytecode-cache`), keeps the compiled code in a root-only
directory, keyed by a hash of the source, so a module's second run loads it instead. Nothing changes
for a process that cannot write there (an unprivileged user) or a Python without the hook.
"""
import marshal
import os
import zipimport

CACHE_DIR = "/var/cache/fastreboot-lab-pyc"
_compile_source = getattr(zipimport, "_compile_source", None)
_CODE = type(compile("", "", "exec"))


def _with_filename(code, filename):
    """The cached code with this zip's path as its file name (tracebacks name the real payload)."""
    consts = tuple(_with_filename(c, filename) if isinstance(c, _CODE) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _cached_compile_source(pathname, source):
    import hashlib  # pylint: disable=import-outside-toplevel  # only a zip import pays for it
    from importlib.util import MAGIC_NUMBER  # pylint: disable=import-outside-toplevel
    inner = pathname.rsplit(".zip" + os.sep, 1)[-1]
    data = source.encode() if isinstance(source, str) else source
    path = os.path.join(CACHE_DIR, hashlib.sha256(MAGIC_NUMBER + inner.encode() + b"\0" + data).hexdigest())
    try:
        with open(path, "rb") as cached:
            return _with_filename(marshal.load(cached), pathname)
    except (OSError, ValueError, EOFError, TypeError):
        pass
    code = _compile_source(pathname, source)
    partial = f"{path}.{os.getpid()}"
    try:
        with open(partial, "wb") as out:
            marshal.dump(code, out)
        os.replace(partial, path)
    except OSError:
        pass
    return code


if _compile_source is not None and os.path.isdir(CACHE_DIR) and os.access(CACHE_DIR, os.W_OK):
    zipimport._compile_source = _cached_compile_source  # pylint: disable=protected-access
