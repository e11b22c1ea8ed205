# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The command that starts the kexec (or cold) reboot on the managed host, and how its errors are read.

It returns at once: systemd queues the kexec job (`systemctl --no-block kexec`), or the reboot runs
detached (a transient systemd unit for a delay or the immediate method, a new session without
systemd), so the login that sent it ends cleanly and a dropped connection means nothing. Every
command is built from argv lists of fixed words, validated integers and validated folder names,
each word quoted with shlex.quote; the only user text (the wall message) travels on stdin, never
in the command. The programs it runs (systemctl, systemd-run, kexec, setsid) are looked up first
in search_paths (ansible.builtin.reboot's option), then in the builtin's default folders.

Before a kexec through systemd the command writes KEXEC_REQUESTED_FILE (mode 0600 in a root-owned
0700 folder, through a temporary file and a rename, so that nothing planted there is followed):
"BOOT_ID DUE_EPOCH", the boot_id of the boot that asked and when the kexec is due. The role's guard
unit lets a kexec.target transaction jump only for a marker of the current boot that is at most
MARKER_MAX_AGE seconds past due, so that an ordinary reboot with an image loaded stays cold.

The cold reboot (kexec_reboot's cold_fallback) removes that marker first, so that the guard unloads
a loaded image, and runs `systemctl --no-block reboot` with SYSTEMCTL_SKIP_AUTO_KEXEC=1 (systemd 255
and newer would otherwise kexec into a loaded image), or `shutdown -r now` detached without systemd.
"""

from __future__ import annotations

import posixpath
import re
import shlex
import typing as t

from ansible_collections.fastreboot.kexec.plugins.module_utils._paths import BOOT_ID, KEXEC_REQUESTED_FILE, KEXEC_REQUESTED_MAX_AGE

METHODS = ("auto", "systemd", "immediate")
# Not a choice of the method option: the ordinary reboot of cold_fallback.
COLD = "cold"
# systemctl reboot kexecs into a loaded image (systemd >= 255) unless this is set in its environment.
SKIP_AUTO_KEXEC = ("SYSTEMCTL_SKIP_AUTO_KEXEC", "1")
UNIT_PREFIX = "fastreboot-kexec-"
WALL_TIMEOUT_SECONDS = 5  # wall blocks on a stuck terminal (its own default is 300 s)
# Exit code of the trigger when setsid is missing on a host without systemd (EX_UNAVAILABLE).
EXIT_NO_SETSID = 69
# The guard (module_utils/_shutdown.py, run by the role's guard unit) ignores a marker this long past due.
MARKER_MAX_AGE = KEXEC_REQUESTED_MAX_AGE
BOOT_ID_FILE = BOOT_ID

# ansible.builtin.reboot's default search_paths (where it looks for `shutdown`).
DEFAULT_SEARCH_PATHS = ("/sbin", "/bin", "/usr/sbin", "/usr/bin", "/usr/local/sbin")
PROGRAMS = ("systemctl", "systemd-run", "kexec", "setsid", "shutdown")
# A folder is put into shell words (quoted) and into keyed output lines: absolute, plain characters only.
_FOLDER = re.compile(r"/(?:[A-Za-z0-9._+@-]+/?)*")
_LOCATED_KEY = "path-"

_UNIT_TOKEN = re.compile(r"[0-9a-f]{8,32}")

# Errors of the login that sent the trigger which prove the command never ran: the connection was
# never established, or privilege escalation failed before the command started (become runs the
# command only after its success marker). Matched case-insensitively against the error text.
NOT_RUN_SIGNS = (
    # privilege escalation (ssh and paramiko connection plugins, sudo, su, doas)
    "waiting for privilege escalation",
    "timed out waiting for privilege escalation",
    "privilege output closed",
    "incorrect sudo password", "incorrect su password", "incorrect doas password",
    "missing sudo password", "missing su password", "missing doas password",
    "a password is required",
    "is not in the sudoers file",
    "sorry, try again",
    "su: authentication failure",
    # the connection never came up
    "connection refused",
    "ssh: connect to host",  # ssh's own message for a TCP connect that failed (refused, timed out, unreachable)
    "unable to connect to port",  # paramiko's
    "could not resolve hostname",
    "name or service not known",
    "nodename nor servname provided",
    "no route to host",
    "network is unreachable",
    "connection timed out during banner exchange",
    "kex_exchange_identification",
    "host key verification failed",
    "permission denied (publickey",
    "permission denied, please try again",
    "too many authentication failures",
    "invalid/incorrect password",
    "cannot write to controlpath",
    "unable to execute ssh command line",
)


class TriggerError(ValueError):
    """The reboot cannot be triggered as asked; the message names the fix."""


def trigger_never_ran(error_text: str, connection_failure: bool, authentication_failure: bool = False) -> bool:
    """Whether an error raised by the login that sent the trigger proves the command never ran.

    A connection plugin raises a plain AnsibleError only before the command starts (become,
    controller-side setup), an authentication failure before it too; a connection failure is
    ambiguous - the host going down cuts the session - unless its text says it never connected.
    """
    if authentication_failure or not connection_failure:
        return True
    text = error_text.lower()
    return any(sign in text for sign in NOT_RUN_SIGNS)


def resolve_method(requested: str, host_has_systemd: bool) -> str:
    """Turn the method option into `systemd` or `immediate` for this host, or explain why not."""
    if requested not in METHODS:
        raise TriggerError(f"method must be one of {', '.join(METHODS)}, not {requested!r}")
    if requested == "immediate":
        return "immediate"
    if host_has_systemd:
        return "systemd"
    raise TriggerError(
        "this host does not run systemd (/run/systemd/system is missing), so there is no clean kexec "
        "shutdown (systemctl kexec). Use method=immediate to run `sync; kexec -e` without stopping "
        "services (unsafe for data: nothing is shut down cleanly)"
    )


def _validated_delay(delay: int) -> int:
    if isinstance(delay, bool) or not isinstance(delay, int) or delay < 0:
        raise TriggerError(f"pre_reboot_delay must be an integer of seconds >= 0, not {delay!r}")
    return delay


def validate_search_paths(paths: t.Iterable[t.Any]) -> tuple[str, ...]:
    """search_paths as absolute folders of plain characters; TriggerError naming the bad entry."""
    folders = []
    for path in paths:
        if not isinstance(path, str) or not _FOLDER.fullmatch(path) or "/../" in f"{path}/" or "/./" in f"{path}/":
            raise TriggerError(
                f"search_paths entries must be absolute folders of letters, digits and ._+@- (such as /usr/sbin), not {path!r}"
            )
        folder = path.rstrip("/") or "/"
        if folder not in folders:
            folders.append(folder)
    return tuple(folders)


def lookup_folders(search_paths: t.Iterable[t.Any]) -> tuple[str, ...]:
    """Where the trigger's programs are looked up: search_paths first, then the builtin's default folders.

    The builtin needs only `shutdown` there; a list made for it (such as /lib/molly-guard) keeps working.
    """
    folders = validate_search_paths(search_paths)
    return folders + tuple(folder for folder in DEFAULT_SEARCH_PATHS if folder not in folders)


def locate_command(folders: t.Sequence[str]) -> str:
    """Shell words that print `fastreboot-path-NAME=FOLDER/NAME` for the first executable of each program."""
    quoted = " ".join(shlex.quote(folder) for folder in validate_search_paths(folders))
    return (
        f"for fastreboot_p in {' '.join(PROGRAMS)}; do for fastreboot_d in {quoted}; do "
        "if [ -f \"$fastreboot_d/$fastreboot_p\" ] && [ -x \"$fastreboot_d/$fastreboot_p\" ]; then "
        f"printf 'fastreboot-{_LOCATED_KEY}%s=%s\\n' \"$fastreboot_p\" \"$fastreboot_d/$fastreboot_p\"; break; fi; done; done"
    )


def parse_located(output: str, folders: t.Sequence[str]) -> dict[str, str]:
    """The program paths locate_command printed; only intact lines naming a path that was asked for."""
    located: dict[str, str] = {}
    for line in output.splitlines():
        match = re.fullmatch(rf"fastreboot-{_LOCATED_KEY}(?P<name>[a-z-]+)=(?P<path>\S+)", line.rstrip("\r"))
        if not match or match.group("name") not in PROGRAMS or match.group("name") in located:
            continue
        name, path = match.group("name"), match.group("path")
        if path in {posixpath.join(folder, name) for folder in folders}:
            located[name] = path
    return located


def required_programs(method: str, host_has_systemd: bool, delay: int) -> tuple[str, ...]:
    """The programs trigger_argv runs for this method (systemd, immediate, or COLD)."""
    if not host_has_systemd:
        return ("setsid", "shutdown") if method == COLD else ("setsid", "kexec")
    if method in ("systemd", COLD):
        return ("systemctl",) if not delay else ("systemd-run", "systemctl")
    return ("systemd-run", "kexec")


def missing_programs_message(missing: t.Sequence[str], folders: t.Sequence[str]) -> str:
    return (
        f"{', '.join(missing)} not found on the host in {', '.join(folders)} (search_paths, then the default "
        "folders): nothing was rebooted; install it or add its folder to search_paths"
    )


def unit_name(token: str) -> str:
    """The transient unit's name; the token is random hex from the caller."""
    if not _UNIT_TOKEN.fullmatch(token):
        raise TriggerError(f"unit token must be 8-32 lower-case hex digits, not {token!r}")
    return UNIT_PREFIX + token


def _words(argv: t.Sequence[str]) -> str:
    return " ".join(shlex.quote(word) for word in argv)


def _program(programs: t.Mapping[str, str] | None, name: str) -> str:
    """The path to run `name` by: the located path, or the bare name (looked up in the login's PATH)."""
    if programs is None:
        return name
    if name not in programs:
        raise TriggerError(f"{name} was not located on the host; nothing was rebooted")
    return programs[name]


def _detached(
    method: str, host_has_systemd: bool, delay: int, token: str, programs: t.Mapping[str, str] | None,
) -> tuple[tuple[str, ...], list[str]]:
    """The detached reboot: (environment assignments NAME=VALUE for it, argv)."""
    delay = _validated_delay(delay)
    if method not in ("systemd", "immediate", COLD):
        raise TriggerError(f"resolve the method first: {method!r}")
    script = ""  # what /bin/sh runs detached: the immediate jump, or shutdown without systemd
    if method == "immediate":
        script = f"sync; exec {shlex.quote(_program(programs, 'kexec'))} -e"
    elif method == COLD and not host_has_systemd:
        script = f"exec {shlex.quote(_program(programs, 'shutdown'))} -r now"
    if not host_has_systemd:
        if method == "systemd":
            raise TriggerError("method=systemd needs systemd on the host; use method=immediate")
        return (), [_program(programs, "setsid"), "/bin/sh", "-c", f"sleep {delay}; {script}" if delay else script]
    verb = "reboot" if method == COLD else "kexec"
    skip_auto_kexec = "=".join(SKIP_AUTO_KEXEC)
    if method != "immediate" and not delay:
        # systemctl queues the job and returns at once, and a refusal (no image loaded, an
        # inhibitor) is its exit code now rather than a silent failure after the login ended.
        environment = (skip_auto_kexec,) if method == COLD else ()
        return environment, [_program(programs, "systemctl"), "--no-block", verb]
    argv = [
        _program(programs, "systemd-run"), "--no-block", "--collect", "--quiet",
        f"--unit={unit_name(token)}", "--description=fastreboot.kexec reboot",
    ]
    if method == COLD:
        argv.append(f"--setenv={skip_auto_kexec}")
    if delay:
        argv.append(f"--on-active={delay}s")
    if method == "immediate":
        argv += ["/bin/sh", "-c", script]
    else:
        argv += [_program(programs, "systemctl"), verb]
    return (), argv


def trigger_argv(
    method: str, host_has_systemd: bool, delay: int, token: str, programs: t.Mapping[str, str] | None = None,
) -> list[str]:
    """The detached reboot as shell words - also what the result reports.

    method: systemd, immediate or COLD. Environment assignments (NAME=VALUE) come first, as env(1)
    takes them. programs: paths of systemctl, systemd-run, kexec, setsid and shutdown (parse_located);
    None runs the bare names.
    """
    environment, argv = _detached(method, host_has_systemd, delay, token, programs)
    return list(environment) + argv


def trigger_command(
    method: str, host_has_systemd: bool, delay: int, token: str, wall: bool, requested_file: str = KEXEC_REQUESTED_FILE,
    programs: t.Mapping[str, str] | None = None, boot_id_file: str = BOOT_ID_FILE,
) -> str:
    """The shell command sent to the host: optional wall (message on stdin), then the detached reboot.

    Before a kexec through systemd it writes the kexec-requested marker; before a COLD reboot it removes it.
    """
    environment, argv = _detached(method, host_has_systemd, delay, token, programs)
    if method == COLD:
        parts = [cold_prelude_command(wall, requested_file)]
    else:
        parts = [_wall_command()] if wall else []
    if host_has_systemd:
        if method == "systemd":
            parts.append(mark_requested_command(requested_file, delay, boot_id_file))
        parts.extend(f"export {assignment}" for assignment in environment)
        parts.append("exec " + _words(argv))
    else:
        setsid = shlex.quote(argv[0])
        parts.append(
            f"command -v {setsid} >/dev/null 2>&1 || {{ echo 'setsid not found on the host' >&2; exit {EXIT_NO_SETSID}; }}"
        )
        # A new session, all descriptors closed: the login may end, the sleep and the reboot go on.
        parts.append(_words(argv) + " </dev/null >/dev/null 2>&1 &")
    return "; ".join(parts)


def _wall_command() -> str:
    # A failed broadcast must not stop the reboot.
    return _words(["timeout", str(WALL_TIMEOUT_SECONDS), "wall"]) + " 2>/dev/null || :"


def cold_prelude_command(wall: bool, requested_file: str = KEXEC_REQUESTED_FILE) -> str:
    """What runs before a cold reboot: optional wall (message on stdin), then the kexec-requested marker
    removed, so that the role's guard unloads a loaded image; exit 1 when it cannot be removed."""
    parts = [_wall_command()] if wall else []
    parts.append(
        f"{{ {unmark_requested_command(requested_file)}; }} || "
        "{ echo 'fastreboot.kexec: could not remove the kexec-requested marker: nothing was rebooted' >&2; exit 1; }"
    )
    return "; ".join(parts)


def mark_requested_command(requested_file: str = KEXEC_REQUESTED_FILE, delay: int = 0, boot_id_file: str = BOOT_ID_FILE) -> str:
    """Shell words that write the kexec-requested marker "BOOT_ID DUE_EPOCH"; fixed text, exit 1 when it cannot.

    The folder must be ours (root under become), not a symlink and not writable by group or others;
    the marker is written to a temporary file in it and renamed over whatever had the name, so a
    planted symlink is replaced, never followed.
    """
    delay = _validated_delay(delay)
    folder = posixpath.dirname(requested_file)
    problem = (
        f"fastreboot.kexec: {folder} is a symlink, not a folder, not owned by the user that reboots (root) or "
        f"writable by others; remove it (rm -rf {folder}): nothing was rebooted"
    )
    refuse = f"echo {shlex.quote(problem)} >&2; exit 1"
    return (
        f"fastreboot_d={shlex.quote(folder)}; fastreboot_m={shlex.quote(requested_file)}; "
        "(umask 077; mkdir -p \"$fastreboot_d\") 2>/dev/null; "
        "if [ -L \"$fastreboot_d\" ] || [ ! -d \"$fastreboot_d\" ] || [ ! -O \"$fastreboot_d\" ]; then " + refuse + "; fi; "
        "case $(stat -c %A \"$fastreboot_d\") in ?????w*|????????w*) " + refuse + ";; esac; "
        f"fastreboot_b=$(cat {shlex.quote(boot_id_file)}) && [ -n \"$fastreboot_b\" ] && "
        "fastreboot_t=$(umask 077; mktemp \"$fastreboot_d/.kexec-requested.XXXXXX\") && "
        f"printf '%s %s\\n' \"$fastreboot_b\" \"$(( $(date +%s) + {delay} ))\" > \"$fastreboot_t\" && "
        "rm -f \"$fastreboot_m\" && mv -f \"$fastreboot_t\" \"$fastreboot_m\" || "
        "{ rm -f \"$fastreboot_t\" 2>/dev/null; echo 'fastreboot.kexec: could not write the kexec-requested marker: nothing was rebooted' >&2; exit 1; }"
    )


def unmark_requested_command(requested_file: str = KEXEC_REQUESTED_FILE) -> str:
    """Shell words that remove the marker again (no kexec was started); nothing behind a symlinked folder."""
    folder = posixpath.dirname(requested_file)
    return f"[ -L {shlex.quote(folder)} ] || {_words(['rm', '-f', requested_file])}"
