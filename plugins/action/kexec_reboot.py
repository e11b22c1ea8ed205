# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin fastreboot.kexec.kexec_reboot: preflight, load, trigger, wait, prove.

Everything before the trigger is checked before anything changes on the host: bad options, the
controller itself, a host without systemd under method=auto, a trigger program that is missing -
each fails the task with the host untouched. Then the image is loaded in the same task (kexec_load
with force, so that what the proof compares is what this task loaded), and only then triggered.
The trigger starts a detached reboot and returns; the wait (plugin_utils._wait) runs under one
deadline; the proof (plugin_utils._proof) compares the new boot with what was loaded.

The options of ansible.builtin.reboot are accepted with its meaning (search_paths,
boot_time_command, float and negative delays). reboot_command is refused unless cold_fallback is
set: the action triggers the kexec itself.

cold_fallback: a host whose refusal comes before the trigger and says it cannot kexec (kexec_load's
failure_code unsupported or signature, kexec_info's support facts with use_loaded) gets an ordinary
reboot instead, under the same deadline, proven by a new boot alone.
"""

from __future__ import annotations

import contextvars
import math
import secrets
import threading
import time
import typing as t
from dataclasses import dataclass

from ansible.errors import AnsibleActionFail, AnsibleAuthenticationFailure, AnsibleConnectionFailure, AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

# The load options pass through unchanged to kexec_load; both share one spec.
from ansible_collections.fastreboot.kexec.plugins.module_utils._codes import LOAD_DISABLED, SIGNATURE, UNSUPPORTED
from ansible_collections.fastreboot.kexec.plugins.module_utils._load_spec import LOAD_ARGUMENT_SPEC as SHARED_LOAD_SPEC
from ansible_collections.fastreboot.kexec.plugins.module_utils._paths import BOOT_ID, KEXEC_LOADED
from ansible_collections.fastreboot.kexec.plugins.plugin_utils._hoststate import (
    HOST_STATE_COMMAND,
    SYSTEM_STATE_COMMAND,
    HostState,
    parse_boot_id,
    parse_host_state,
)
from ansible_collections.fastreboot.kexec.plugins.plugin_utils._proof import Expectation, prove_boot
from ansible_collections.fastreboot.kexec.plugins.plugin_utils._trigger import (
    COLD,
    DEFAULT_SEARCH_PATHS,
    METHODS,
    TriggerError,
    cold_prelude_command,
    locate_command,
    lookup_folders,
    missing_programs_message,
    parse_located,
    required_programs,
    resolve_method,
    trigger_argv,
    trigger_command,
    trigger_never_ran,
    unmark_requested_command,
)
from ansible_collections.fastreboot.kexec.plugins.plugin_utils._wait import (
    BANNER_TIMEOUT,
    HOST_DOWN,
    LOGIN_GRACE,
    SSHD_BACK,
    Attempt,
    BootFinishedProbe,
    BootTimeProbe,
    CommandNotRun,
    CommandResult,
    NewBootProbe,
    ProbeFailed,
    TestCommandProbe,
    WaitAborted,
    WaitTimeout,
    call_with_bound,
    read_ssh_banner,
    resolve_address,
    tracking_subprocesses,
    wait_until,
)

display = Display()

LOAD_MODULE = "fastreboot.kexec.kexec_load"
INFO_MODULE = "fastreboot.kexec.kexec_info"
CONTROLLER_BOOT_ID = BOOT_ID  # the same file on the controller
# ansible-core's default connection timeout (DEFAULT_TIMEOUT), for a connection plugin that has none.
DEFAULT_CONNECTION_TIMEOUT = 10
# At least this long without output while privilege escalation runs, before it counts as stalled.
TRIGGER_PROMPT_TIMEOUT = 10
DEFAULT_MSG = "Reboot (kexec) initiated by Ansible"
# ansible.builtin.reboot's default boot_time_command: the same as the boot_id this action always reads.
DEFAULT_BOOT_TIME_COMMAND = f"cat {BOOT_ID}"  # ansible.builtin.reboot's default, verbatim

# kexec_load's failure codes after which the host gets the ordinary reboot of cold_fallback: the host
# cannot kexec. A bad request (input) stays the operator's to fix, kexec and record failures too.
COLD_FALLBACK_CODES = frozenset({UNSUPPORTED, SIGNATURE})

# kexec_load's own options that are not shared: the action sets force itself (it always reloads).
LOAD_ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {name: spec for name, spec in SHARED_LOAD_SPEC.items() if name != "force"}

REBOOT_ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "use_loaded": {"type": "bool", "default": False},
    "expect_release": {"type": "str"},
    "method": {"type": "str", "default": "auto", "choices": list(METHODS)},
    "pre_reboot_delay": {"type": "float", "default": 0},
    "post_reboot_delay": {"type": "float", "default": 0},
    "reboot_timeout": {"type": "int", "default": 600},
    "connect_timeout": {"type": "int", "default": 5},
    "test_command": {"type": "str", "default": "whoami"},
    "boot_time_command": {"type": "str", "default": DEFAULT_BOOT_TIME_COMMAND},
    "search_paths": {"type": "list", "elements": "str", "default": list(DEFAULT_SEARCH_PATHS)},
    "reboot_command": {"type": "str"},
    "wait_for_boot_finished": {"type": "bool", "default": True},
    "allow_fallback": {"type": "bool", "default": False},
    "cold_fallback": {"type": "bool", "default": False},
    "msg": {"type": "str", "default": DEFAULT_MSG},
}
ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {**LOAD_ARGUMENT_SPEC, **REBOOT_ARGUMENT_SPEC}

REBOOT_COMMAND_REFUSED = (
    "reboot_command is not supported without cold_fallback: kexec_reboot starts the kexec itself (systemctl kexec "
    "after writing the kexec-requested marker that the role's guard checks, or sync; kexec -e with method=immediate), "
    "so a command of your own would reboot through firmware or be stopped by the guard. Set cold_fallback=true to use "
    "it as the ordinary reboot of a host that cannot kexec, or remove it and choose the kexec trigger with method "
    "(auto, systemd, immediate); for a normal firmware reboot everywhere use ansible.builtin.reboot"
)


class OptionError(ValueError):
    """Task options that cannot work together; nothing was done on the host."""


class RebootFailed(Exception):
    """The task fails with this message (the result says how far it got)."""


class PreflightError(RebootFailed):
    """The host is not ready for a kexec reboot; nothing irreversible was done."""


class KexecNotPossible(PreflightError):
    """The host cannot kexec (by a code or its support facts): cold_fallback reboots it the ordinary way.

    The message is the task's failure without cold_fallback; reason is why, for cold_fallback_reason.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _delay(params: dict[str, t.Any], name: str) -> float:
    """A delay in seconds as ansible.builtin.reboot takes it: a number, negative meaning 0."""
    value = float(params[name])
    if not math.isfinite(value):
        raise OptionError(f"{name} must be a number of seconds, not {params[name]!r}")
    return max(0.0, value)


@dataclass(frozen=True)
class RebootOptions:
    """The validated task options."""

    load_args: dict[str, t.Any]
    use_loaded: bool
    expect_release: str | None
    method: str
    pre_reboot_delay: int
    post_reboot_delay: float
    reboot_timeout: int
    connect_timeout: int
    test_command: str
    boot_time_command: str | None  # None: the new boot is told by its boot_id alone
    search_folders: tuple[str, ...]  # search_paths, then the builtin's default folders
    wait_for_boot_finished: bool
    allow_fallback: bool
    cold_fallback: bool
    reboot_command: str | None  # the cold fallback's reboot, the user's shell command; None: the default one
    msg: str

    @classmethod
    def from_params(cls, params: dict[str, t.Any], given: t.Iterable[str]) -> "RebootOptions":
        """params: validated by ARGUMENT_SPEC (defaults filled in); given: the option names the task set."""
        reboot_command = params.get("reboot_command")
        if reboot_command is not None:
            if not params["cold_fallback"]:
                raise OptionError(REBOOT_COMMAND_REFUSED)
            if not reboot_command.strip():
                raise OptionError(
                    "reboot_command must not be empty: leave it unset for the default cold reboot "
                    "(systemctl reboot, or shutdown -r now without systemd)"
                )
        for name, minimum in (("reboot_timeout", 1), ("connect_timeout", 1)):
            if params[name] < minimum:
                raise OptionError(f"{name} must be at least {minimum} seconds, not {params[name]}")
        if params["connect_timeout"] >= params["reboot_timeout"]:
            raise OptionError(
                f"connect_timeout ({params['connect_timeout']}s) must be shorter than reboot_timeout "
                f"({params['reboot_timeout']}s), which bounds the whole wait"
            )
        load_given = sorted(set(given) & set(LOAD_ARGUMENT_SPEC))
        if params["use_loaded"] and load_given:
            raise OptionError(
                f"use_loaded=true reboots into the image that is already loaded, so {', '.join(load_given)} "
                f"would be ignored: remove {'it' if len(load_given) == 1 else 'them'}, or drop use_loaded to load first"
            )
        expect_release = params["expect_release"]
        if expect_release is not None and (not expect_release.strip() or len(expect_release.split()) != 1):
            raise OptionError(f"expect_release must be a kernel release such as 6.1.0-26-amd64 (uname -r), not {expect_release!r}")
        test_command = params["test_command"]
        if not test_command or not test_command.strip():
            raise OptionError("test_command must not be empty; the default is whoami")
        boot_time_command = (params["boot_time_command"] or "").strip()
        try:
            search_folders = lookup_folders(params["search_paths"] or [])
        except TriggerError as error:
            raise OptionError(str(error)) from error
        return cls(
            load_args={name: params[name] for name in LOAD_ARGUMENT_SPEC},
            use_loaded=params["use_loaded"],
            expect_release=expect_release.strip() if expect_release else None,
            method=params["method"],
            # Whole seconds on the host (a systemd timer or sleep); the fraction is dropped like the builtin's int().
            pre_reboot_delay=int(_delay(params, "pre_reboot_delay")),
            post_reboot_delay=_delay(params, "post_reboot_delay"),
            reboot_timeout=params["reboot_timeout"],
            connect_timeout=params["connect_timeout"],
            test_command=test_command,
            boot_time_command=None if " ".join(boot_time_command.split()) in ("", DEFAULT_BOOT_TIME_COMMAND) else boot_time_command,
            search_folders=search_folders,
            wait_for_boot_finished=params["wait_for_boot_finished"],
            allow_fallback=params["allow_fallback"],
            cold_fallback=params["cold_fallback"],
            reboot_command=reboot_command,
            msg=params["msg"] or "",
        )


def _support_problem(support: t.Any, image_loaded: bool = False) -> str | None:
    """Why the module's `support` facts rule out a kexec, or None; KexecNotPossible is the caller's to raise.

    image_loaded: the jump goes into an image that is already loaded, which kernel.kexec_load_disabled
    (it only stops further loads) does not prevent.
    """
    if not isinstance(support, dict):
        raise PreflightError("the module returned no support facts, nothing was rebooted")
    if support.get("supported") is True:
        return None
    problems = support.get("problems")
    if isinstance(problems, list) and (problems or image_loaded):
        codes = support.get("problem_codes")
        codes = codes if isinstance(codes, list) and len(codes) == len(problems) else [None] * len(problems)
        remaining = [str(problem) for problem, code in zip(problems, codes) if not (image_loaded and code == LOAD_DISABLED)]
        return "; ".join(remaining) or None
    return str(support.get("verdict") or "the host cannot kexec (no verdict given)")


def _refuse_unsupported(support: t.Any, image_loaded: bool = False) -> None:
    problem = _support_problem(support, image_loaded)
    if problem:
        raise KexecNotPossible(f"kexec is not possible on this host, nothing was rebooted: {problem}", problem)


def expectation_from_load(load: dict[str, t.Any], expect_release: str | None, check_mode: bool) -> Expectation:
    """Preflight on a kexec_load result; returns what the new boot must look like.

    KexecNotPossible when the load failed because the host cannot kexec (COLD_FALLBACK_CODES).
    """
    if load.get("failed"):
        message = str(load.get("msg") or "no message")
        failure = f"kexec_load failed, nothing was rebooted: {message}"
        if load.get("failure_code") in COLD_FALLBACK_CODES:
            raise KexecNotPossible(failure, message)
        raise PreflightError(failure)
    _refuse_unsupported(load.get("support"))
    if not load.get("loaded") and not check_mode:
        raise PreflightError(
            f"kexec_load did not leave an image loaded ({load.get('msg', 'no message')}): nothing was rebooted; "
            f"check {KEXEC_LOADED} and the load result"
        )
    release = load.get("kernel_release")
    if expect_release and release and release != expect_release:
        raise PreflightError(
            f"expect_release is {expect_release} but kernel={load.get('kernel')} is {release}: "
            "nothing was rebooted; fix kernel or expect_release"
        )
    return Expectation(release=release or expect_release, cmdline=load.get("cmdline"))


def expectation_from_info(info: dict[str, t.Any], expect_release: str | None) -> tuple[Expectation, list[str]]:
    """Preflight on a kexec_info result for use_loaded=true; returns the expectation and warnings."""
    if info.get("failed"):
        raise PreflightError(f"kexec_info failed, nothing was rebooted: {info.get('msg', 'no message')}")
    loaded = info.get("loaded") or {}
    _refuse_unsupported(info.get("support"), image_loaded=bool(loaded.get("kexec_loaded")))
    if not loaded.get("kexec_loaded"):
        raise PreflightError(
            "use_loaded=true but no kexec image is loaded on the host: nothing was rebooted. Load one with "
            "fastreboot.kexec.kexec_load first, or drop use_loaded so that this task loads it"
        )
    record = loaded.get("record")
    if not isinstance(record, dict):
        what = f"kernel {expect_release} is expected (expect_release)" if expect_release else "only the new boot_id is verified"
        return Expectation(release=expect_release, cmdline=None), [
            "the loaded kexec image has no record of fastreboot.kexec (loaded by something else): what boots is "
            f"unknown, so {what}; set expect_release or load through this collection to verify the kernel"
        ]
    release = record.get("kernel_release")
    if expect_release and release and release != expect_release:
        raise PreflightError(
            f"expect_release is {expect_release} but the loaded image ({record.get('kernel')}) is {release}: "
            "nothing was rebooted; load the kernel you expect or fix expect_release"
        )
    return Expectation(release=release or expect_release, cmdline=record.get("cmdline")), []


def timeout_message(options: RebootOptions, phase: str, expected: Expectation | None, last_seen: str) -> str:
    """The failure message of a deadline that passed: deadline, expected kernel, what was seen, next step.

    expected None: a cold reboot, where any kernel may boot.
    """
    what = expected.describe() if expected is not None else "a new boot (cold reboot, any kernel)"
    return (
        f"reboot_timeout ({options.reboot_timeout}s after the shutdown started) passed {phase}; expected "
        f"{what}. Last seen: {last_seen}. Look at the host's console"
    )


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in to_text(error).splitlines() if line.strip()]
    return (lines[0] if lines else type(error).__name__)[:300]


class ActionModule(ActionBase):
    """Reboot into a kexec-loaded kernel and prove what booted (documentation: the kexec_reboot module)."""

    BYPASS_HOST_LOOP = False
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._saved_options: dict[str, t.Any] = {}
        self._warnings: list[t.Any] = []
        self._clock: t.Callable[[], float] = time.monotonic
        self._sleep: t.Callable[[float], None] = time.sleep
        self._pending_reset: threading.Thread | None = None
        self._host_label = ""
        # Logins and module runs on the host so far: what the task costs before the trigger.
        self._round_trips = 0

    # Small helpers around the connection ---------------------------------------------------------

    def _run_module(self, name: str, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        self._round_trips += 1
        return self._execute_module(module_name=name, module_args=args, task_vars=task_vars)

    def _warn(self, text: str) -> None:
        self._warnings.append(text)

    def _progress(self, text: str) -> None:
        """One line per phase at -v, naming the host (forks > 1 interleave hosts)."""
        display.v(f"kexec_reboot: {text}", host=self._host_label or None)

    def _probe_seen(self, outcome: Attempt) -> None:
        display.vvv(f"kexec_reboot: probe: {outcome.detail}", host=self._host_label or None)

    def _lift_warnings(self, module_result: dict[str, t.Any]) -> None:
        # Older ansible-core leaves a sub-module's warnings in its result; show them with ours.
        self._warnings.extend(module_result.pop("warnings", None) or [])

    def _connection_option(self, name: str) -> t.Any:
        try:
            return self._connection.get_option(name)
        except (KeyError, AttributeError, AnsibleError):
            return None

    def _override_option(self, name: str, value: t.Any) -> None:
        """Set a connection option for the wait, remembering the original (restored at the end)."""
        try:
            original = self._connection.get_option(name)
        except (KeyError, AttributeError, AnsibleError):
            return  # this connection plugin does not have the option
        self._saved_options.setdefault(name, original)
        self._connection.set_option(name, value)

    def _restore_options(self) -> None:
        for name, value in self._saved_options.items():
            try:
                self._connection.set_option(name, value)
            except (KeyError, AttributeError, AnsibleError) as error:
                display.vvv(f"kexec_reboot: could not restore connection option {name}: {to_text(error)}")
        self._saved_options.clear()

    def _reset_connection(self) -> None:
        # Ends a persistent (ControlPersist) session: the next login opens a fresh one.
        try:
            self._connection.reset()
        except (AnsibleError, AttributeError, OSError) as error:
            display.vvv(f"kexec_reboot: connection reset failed: {to_text(error)}")

    def _abandon_connection(self) -> None:
        """Reset the connection in the background; the next login waits for it inside its own bound.

        A reset can block: paramiko's reconnects at once, ssh's runs `ssh -O check/stop` against a
        master that may hang. Run in the caller it would overrun the deadline.
        """
        if self._pending_reset is not None and self._pending_reset.is_alive():
            return  # that one renews the connection
        context = contextvars.copy_context()
        self._pending_reset = threading.Thread(
            target=context.run, args=(self._reset_connection,), name="fastreboot-kexec-reset", daemon=True,
        )
        self._pending_reset.start()

    def _run_bounded(self, command: str, timeout: float, sudoable: bool, in_data: bytes | None = None) -> CommandResult:
        """One login running a command, abandoned after `timeout` seconds (ProbeFailed).

        CommandNotRun (a ProbeFailed) when the error proves the command never started: the login
        never connected, or privilege escalation failed.
        """
        pending_reset = self._pending_reset

        self._round_trips += 1

        def execute() -> dict[str, t.Any]:
            if pending_reset is not None:
                pending_reset.join()  # the reset of an abandoned login first, within this bound
            return self._low_level_execute_command(command, sudoable=sudoable, in_data=in_data, executable="/bin/sh")

        try:
            raw = call_with_bound(execute, timeout, self._abandon_connection)
        except AnsibleError as error:
            connection_failure = isinstance(error, AnsibleConnectionFailure)
            if connection_failure:
                self._abandon_connection()
            if trigger_never_ran(to_text(error), connection_failure, isinstance(error, AnsibleAuthenticationFailure)):
                raise CommandNotRun(_first_line(error)) from error
            raise ProbeFailed(_first_line(error)) from error
        return CommandResult(int(raw.get("rc") or 0), to_text(raw.get("stdout", "")), to_text(raw.get("stderr", "")))

    def _login_timeout(self, options: RebootOptions) -> float:
        return options.connect_timeout + LOGIN_GRACE

    def _preflight_login_timeout(self, options: RebootOptions) -> float:
        """The bound of a login before the trigger, while the host is up.

        It may be the first login of this boot for the user (PAM, logind, the user's systemd manager),
        which takes seconds under load (over 15 s on a busy lab VM): allow the connection's own timeout
        plus twice the grace, never less than a login of the wait.
        """
        configured = self._connection_option("timeout")
        try:
            configured_seconds = float(configured) if configured is not None else float(DEFAULT_CONNECTION_TIMEOUT)
        except (TypeError, ValueError):
            configured_seconds = float(DEFAULT_CONNECTION_TIMEOUT)
        return max(self._login_timeout(options), configured_seconds + 2 * LOGIN_GRACE)

    def _trigger_prompt_timeout(self, options: RebootOptions) -> int:
        """The connection timeout during the trigger: privilege escalation that says nothing for this long
        (plus the plugin's 2 s) ends in its "waiting for privilege escalation" error, so the command never ran."""
        return max(options.connect_timeout, TRIGGER_PROMPT_TIMEOUT)

    def _banner_target(self, options: RebootOptions) -> tuple[str, int] | None:
        """address and port for SSH banner probes, when the connection is ssh-like and the banner answers now.

        The name is resolved here, once, before the reboot: the probes in the wait use the address,
        so no DNS lookup (which no socket timeout bounds) runs inside the deadline.
        """
        transport = to_text(getattr(self._connection, "transport", "") or "")
        if "ssh" not in transport.rsplit(".", 1)[-1]:
            return None
        host = self._connection_option("host") or self._play_context.remote_addr
        port = self._connection_option("port") or 22
        try:
            name, port = to_text(host), int(port)
        except (TypeError, ValueError):
            return None
        if not name:
            return None
        probe_timeout = min(float(options.connect_timeout), BANNER_TIMEOUT)
        address = resolve_address(name, port, probe_timeout)
        # ssh_config may send the login elsewhere (ProxyJump, HostName, Port): probe only what answers now.
        if address is None or not read_ssh_banner(address, port, probe_timeout):
            display.vvv(f"kexec_reboot: no SSH banner at {name}:{port} ({address or 'not resolved'}); waiting by logins only")
            return None
        return address, port

    def _read_host_state(self, options: RebootOptions) -> tuple[HostState, dict[str, str]]:
        """The host's state and where the trigger's programs are, in one login without become."""
        command = f"{HOST_STATE_COMMAND}; {locate_command(options.search_folders)}"
        try:
            answer = self._run_bounded(command, self._preflight_login_timeout(options), sudoable=False)
        except ProbeFailed as error:
            raise PreflightError(f"could not read the host's boot_id before the reboot, nothing was rebooted: {error}") from error
        state = parse_host_state(answer.stdout) if answer.rc == 0 else None
        if state is None or not state.complete:
            raise PreflightError(
                f"could not read boot_id, kernel release and command line from the host (rc={answer.rc}, "
                f"stderr: {answer.stderr.strip()[:200]!r}): nothing was rebooted; /proc and uname must be readable"
            )
        return state, parse_located(answer.stdout, options.search_folders)

    def _read_boot_time(self, options: RebootOptions) -> str | None:
        """boot_time_command's output before the reboot (with become, like the builtin); None when unset."""
        if options.boot_time_command is None:
            return None
        try:
            answer = self._run_bounded(options.boot_time_command, self._preflight_login_timeout(options), sudoable=True)
        except ProbeFailed as error:
            raise PreflightError(f"boot_time_command could not run before the reboot, nothing was rebooted: {error}") from error
        output = answer.stdout.strip()
        if answer.rc != 0 or not output:
            raise PreflightError(
                f"boot_time_command {options.boot_time_command!r} failed before the reboot (rc {answer.rc}, stderr: "
                f"{answer.stderr.strip()[:200]!r}, output {'empty' if not output else 'given'}): nothing was rebooted; it must "
                "print something that changes with every boot (the default reads boot_id)"
            )
        return output

    def _controller_boot_id(self) -> str | None:
        try:
            with open(CONTROLLER_BOOT_ID, encoding="ascii") as boot_id_file:
                return parse_boot_id(boot_id_file.read())
        except OSError:
            return None

    # The task ------------------------------------------------------------------------------------

    def run(self, tmp: str | None = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        self._supports_check_mode = True
        self._supports_async = False
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}

        dummy, params = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            options = RebootOptions.from_params(params, self._task.args)
        except OptionError as error:
            raise AnsibleActionFail(str(error)) from error

        result.update(changed=False, rebooted=False, fallback=False, elapsed=0.0, downtime=None, startup_times=None)
        if to_text(getattr(self._connection, "transport", "")).rsplit(".", 1)[-1] == "local":
            result.update(failed=True, msg=(
                "kexec_reboot refuses the local connection: it would reboot the controller. "
                "Run it against the managed host over ssh"
            ))
            return result
        self._host_label = to_text(task_vars.get("inventory_hostname") or getattr(self._play_context, "remote_addr", None) or "")
        try:
            with tracking_subprocesses():
                self._reboot(options, task_vars, result)
        except RebootFailed as error:
            result.update(failed=True, msg=str(error))
        except TriggerError as error:
            result.update(failed=True, msg=f"{error}. Nothing was rebooted")
        finally:
            self._restore_options()
            if self._warnings:
                result["warnings"] = list(result.get("warnings") or []) + self._warnings
        return result

    def _reboot(self, options: RebootOptions, task_vars: dict[str, t.Any], result: dict[str, t.Any]) -> None:
        check_mode = bool(self._task.check_mode)
        task_started = self._clock()

        # 1. Preflight that changes nothing, one login: boot_id, kernel, command line, systemd,
        #    kexec_loaded, the trigger's programs. Everything that can refuse refuses here, before the load.
        before, programs = self._read_host_state(options)
        result.update(boot_id_before=before.boot_id, kernel_before=before.release)
        if before.boot_id == self._controller_boot_id():
            raise PreflightError("the managed host has the controller's boot_id: it is the controller itself; nothing was rebooted")
        # With cold_fallback kexec_info decides (read only): a host that cannot kexec then reboots cold.
        if options.use_loaded and before.kexec_loaded is False and not check_mode and not options.cold_fallback:
            raise PreflightError(f"{KEXEC_LOADED} is 0 on the host: no image is loaded, nothing was rebooted")
        method = resolve_method(options.method, bool(before.systemd))
        result["method"] = method
        missing = [name for name in required_programs(method, bool(before.systemd), options.pre_reboot_delay) if name not in programs]
        cold_reason = None
        if missing == ["kexec"] and options.cold_fallback:
            cold_reason = f"the kexec program (kexec-tools) is not in {', '.join(options.search_folders)}"
        elif missing:
            raise PreflightError(missing_programs_message(missing, options.search_folders))
        token = secrets.token_hex(4)
        command = ""
        if cold_reason is None:
            command = trigger_command(method, bool(before.systemd), options.pre_reboot_delay, token, wall=bool(options.msg), programs=programs)
            result["trigger"] = trigger_argv(method, bool(before.systemd), options.pre_reboot_delay, token, programs)
        boot_time_before = self._read_boot_time(options)
        banner_target = self._banner_target(options)
        result["probe"] = "ssh_banner" if banner_target else "login"

        # 2. Load in this task, right before the trigger; or, with cold_fallback, learn that the host cannot kexec.
        expected: Expectation | None = None
        if cold_reason is None:
            try:
                expected = self._load(options, task_vars, result, check_mode)
            except KexecNotPossible as refusal:
                if not options.cold_fallback:
                    raise
                cold_reason = refusal.reason
        if cold_reason is not None:
            command = self._prepare_cold(options, before, programs, token, cold_reason, result)

        if check_mode:
            if expected is None:
                result.update(changed=True, msg=f"check mode: would reboot cold because {cold_reason}")
            else:
                result.update(changed=True, msg=f"check mode: would reboot into {expected.describe()} with method={method}")
            return

        # 3. Trigger. From here on the reboot may happen: a lost connection is expected.
        started = self._clock()
        result["preflight"] = {"seconds": round(started - task_started, 2), "round_trips": self._round_trips}
        shutdown_at = started + options.pre_reboot_delay
        in_data = to_bytes(options.msg + "\n") if options.msg else None
        if expected is None and options.reboot_command is not None:
            # The user's own command cannot be delayed on the host: wall and the marker now, the delay here.
            self._prepare_host_for_cold(options, in_data)
            self._sleep(max(0.0, shutdown_at - self._clock()))
            in_data = None
        self._send_trigger(command, in_data, options, cold=expected is None)
        result["changed"] = True
        deadline = shutdown_at + options.reboot_timeout
        due = options.pre_reboot_delay if self._clock() < shutdown_at else 0
        self._progress(
            f"shutdown {'started' if not due else f'due in {due} s'} "
            f"(method={result['method']}: {' '.join(result['trigger'])}); waiting up to {options.reboot_timeout} s"
        )
        self._abandon_connection()
        self._override_option("timeout", options.connect_timeout)
        self._override_option("reconnection_retries", 0)  # our loop retries; ssh's own backoff would not be bounded

        # 4. Wait for the new boot under one deadline, counted from the start of the shutdown.
        if options.pre_reboot_delay:
            self._sleep(max(0.0, shutdown_at - self._clock()))

        def banner(timeout: float, wait: float) -> bool:
            address, port = t.cast(tuple, banner_target)
            return read_ssh_banner(address, port, timeout, wait)

        def phase(name: str) -> None:
            since = self._clock() - shutdown_at
            if name == HOST_DOWN:
                self._progress(f"host down ({since:.1f} s after the shutdown started)")
            elif name == SSHD_BACK:
                self._progress(f"sshd back after {since:.1f} s")

        probe = NewBootProbe(
            before.boot_id, self._login_without_become(HOST_STATE_COMMAND), self._clock, options.connect_timeout,
            banner if banner_target else None, on_phase=phase,
        )
        try:
            after: HostState = wait_until(probe, deadline, self._clock, self._sleep, observe=self._probe_seen).value
        except WaitTimeout as error:
            self._finish(result, started)
            message = timeout_message(options, "before the host came back in a new boot", expected, error.last_seen)
            if probe.old_boot_answered_last and expected is not None:
                # The reboot never started: no later reboot may use the marker.
                self._forget_request(options)
            raise RebootFailed(message) from error
        timings = result["timings"] = {"new_boot_seen": round(self._clock() - started, 2)}
        if probe.answered_at is not None:
            timings["sshd_answered"] = round(probe.answered_at - started, 2)
        result.update(
            rebooted=True, downtime=round(self._clock() - shutdown_at, 2),
            boot_id_after=after.boot_id, kernel_after=after.release, cmdline=after.cmdline,
        )
        self._progress(f"new boot {after.boot_id} seen after {self._clock() - shutdown_at:.1f} s, running {after.release}")

        login_timeout = self._login_timeout(options)
        try:
            # boot_time_command (the builtin's option) must change too, when it is set.
            if boot_time_before is not None:
                boot_time = BootTimeProbe(self._test_login(options.boot_time_command), login_timeout, boot_time_before)
                wait_until(boot_time, deadline, self._clock, self._sleep, observe=self._probe_seen)
        except WaitTimeout as error:
            self._finish(result, started)
            raise RebootFailed(timeout_message(options, "after the new boot", expected, error.last_seen)) from error

        # 5. Proof: the new boot runs what was loaded (a cold reboot: the new boot is all there is to prove).
        if expected is None:
            how = f"cold (kexec not possible: {cold_reason})"
            self._progress("new boot proven: a new boot_id (cold reboot: the kernel is not compared)")
        else:
            how = self._prove(options, expected, after, result, started)

        # 6. The host is usable: test_command, then (systemd) the boot has finished.
        try:
            test = TestCommandProbe(self._test_login(options.test_command), login_timeout, options.test_command)
            wait_until(test, deadline, self._clock, self._sleep, observe=self._probe_seen)
            timings["test_command_ok"] = round(self._clock() - started, 2)
            if options.wait_for_boot_finished and after.systemd:
                boot_state = BootFinishedProbe(self._login_without_become(SYSTEM_STATE_COMMAND), login_timeout)
                finished = wait_until(boot_state, deadline, self._clock, self._sleep, observe=self._probe_seen)
                timings["boot_finished"] = round(self._clock() - started, 2)
                result["startup_times"] = boot_state.startup_times
                self._progress(f"boot finished ({finished.value}) after {self._clock() - shutdown_at:.1f} s")
                if finished.value == "degraded":
                    self._warn("the new boot finished as degraded: some units failed (systemctl --failed)")
        except WaitTimeout as error:
            self._finish(result, started)
            raise RebootFailed(timeout_message(options, "after the new boot", expected, error.last_seen)) from error
        except WaitAborted as error:
            self._finish(result, started)
            raise RebootFailed(str(error)) from error

        # 7. post_reboot_delay: after everything is verified, not counted in reboot_timeout.
        if options.post_reboot_delay:
            self._sleep(options.post_reboot_delay)
        self._finish(result, started)
        result["msg"] = f"rebooted {how} into {after.release} in {result['elapsed']}s ({result['downtime']}s down)"

    def _load(self, options: RebootOptions, task_vars: dict[str, t.Any], result: dict[str, t.Any], check_mode: bool) -> Expectation:
        """Load (force: whatever was loaded before, by us or anything else, is replaced, so the proof compares
        with what this task loaded), or read the loaded image with use_loaded; what the new boot must run."""
        if options.use_loaded:
            info = self._run_module(INFO_MODULE, {"savings_estimate": False}, task_vars)
            self._lift_warnings(info)
            result["load"] = info.get("loaded")
            expected, warnings = expectation_from_info(info, options.expect_release)
            for warning in warnings:
                self._warn(warning)
            self._progress(f"using the loaded image ({expected.release or 'release unknown'})")
            return expected
        load = self._run_module(LOAD_MODULE, dict(options.load_args, force=True), task_vars)
        self._lift_warnings(load)
        result.update(load=load, kernel_selected_by=load.get("kernel_selected_by"))
        result["changed"] = bool(load.get("changed"))
        expected = expectation_from_load(load, options.expect_release, check_mode)
        self._progress(
            f"{'would load' if check_mode else 'loaded'} {load.get('kernel_release') or 'an unknown release'} "
            f"({load.get('kernel')}, {load.get('syscall') or 'syscall unknown'})"
        )
        return expected

    def _prepare_cold(
        self, options: RebootOptions, before: HostState, programs: dict[str, str], token: str, reason: str, result: dict[str, t.Any],
    ) -> str:
        """The cold fallback's reboot command (the user's reboot_command, or the detached default); result says so."""
        result.update(method=COLD, cold_fallback_reason=reason)
        self._progress(f"kexec not possible ({reason}): rebooting cold (cold_fallback)")
        if options.reboot_command is not None:
            result["trigger"] = ["/bin/sh", "-c", options.reboot_command]
            return options.reboot_command
        systemd = bool(before.systemd)
        missing = [name for name in required_programs(COLD, systemd, options.pre_reboot_delay) if name not in programs]
        if missing:
            raise PreflightError(
                f"kexec is not possible here ({reason}), and the cold reboot cannot run either: "
                + missing_programs_message(missing, options.search_folders)
            )
        result["trigger"] = trigger_argv(COLD, systemd, options.pre_reboot_delay, token, programs)
        return trigger_command(COLD, systemd, options.pre_reboot_delay, token, wall=bool(options.msg), programs=programs)

    def _prepare_host_for_cold(self, options: RebootOptions, in_data: bytes | None) -> None:
        """Before the user's reboot_command: wall, and the kexec-requested marker removed (with become)."""
        try:
            answer = self._run_bounded(cold_prelude_command(in_data is not None), self._login_timeout(options), sudoable=True, in_data=in_data)
        except ProbeFailed as error:
            raise PreflightError(f"could not prepare the cold reboot on the host (wall, kexec-requested marker): {error}; nothing was rebooted") from error
        if answer.rc != 0:
            raise PreflightError(
                f"could not prepare the cold reboot on the host (rc={answer.rc}): {answer.stderr.strip() or answer.stdout.strip()}; "
                "nothing was rebooted"
            )

    def _send_trigger(self, command: str, in_data: bytes | None, options: RebootOptions, cold: bool) -> None:
        """Run the trigger (or the cold reboot's prelude) with become; a refusal fails the task, nothing rebooted.

        A dropped connection is the host going down.
        """
        what = "the cold reboot command" if cold else "the reboot trigger"
        kept = "" if cold else " and the image stays loaded (an ordinary reboot unloads it)"
        # The connection's timeout also bounds privilege escalation: a stalled sudo ends in its "waiting for
        # privilege escalation" error (the command never ran) within this login's bound, not in an abandoned
        # login that would look like a host going down (seen on a lab VM with the play's 30 s timeout).
        prompt_timeout = self._trigger_prompt_timeout(options)
        self._override_option("timeout", prompt_timeout)
        try:
            answer = self._run_bounded(command, max(self._login_timeout(options), prompt_timeout + LOGIN_GRACE), sudoable=True, in_data=in_data)
        except CommandNotRun as error:
            if not cold:
                self._forget_request(options)
            raise PreflightError(f"{what} did not run on the host: {error}. Nothing was rebooted{kept}") from error
        except ProbeFailed as error:
            display.vvv(f"kexec_reboot: the trigger's connection ended ({error}); the host is going down", host=self._host_label or None)
            return
        if answer.rc != 0:
            if not cold:
                self._forget_request(options)
            raise PreflightError(
                f"{what} failed on the host (rc={answer.rc}): {answer.stderr.strip() or answer.stdout.strip()}; "
                f"the host was not rebooted{kept}"
            )

    def _prove(self, options: RebootOptions, expected: Expectation, after: HostState, result: dict[str, t.Any], started: float) -> str:
        """Compare the new boot with what was loaded; how the host rebooted, for the message."""
        proof = prove_boot(expected, after)
        if not proof.matches:
            result["fallback"] = True
            if not options.allow_fallback:
                self._finish(result, started)
                raise RebootFailed(proof.message)
            self._warn(f"{proof.message} (allowed by allow_fallback)")
            self._progress("the new boot came through firmware (allowed by allow_fallback)")
            return "through firmware (allowed)"
        if not proof.compared:
            self._warn(proof.message)
            return "(kexec unverified: what was loaded is unknown)"
        self._progress(f"new boot proven: {proof.message}")
        return "by kexec"

    def _test_login(self, command: str) -> t.Callable[[float], CommandResult]:
        def login(timeout: float) -> CommandResult:
            # test_command and boot_time_command are the user's own shell commands, run like ansible.builtin.reboot does.
            return self._run_bounded(command, timeout, sudoable=True)

        return login

    def _login_without_become(self, command: str) -> t.Callable[[float], CommandResult]:
        def login(timeout: float) -> CommandResult:
            return self._run_bounded(command, timeout, sudoable=False)

        return login

    def _forget_request(self, options: RebootOptions) -> None:
        """No reboot started: remove the kexec-requested marker so that no later reboot uses it (best effort;
        the guard also ignores a marker of another boot or long past due)."""
        try:
            answer = self._run_bounded(unmark_requested_command(), self._login_timeout(options), sudoable=True)
        except ProbeFailed as error:
            self._warn(f"could not remove the kexec-requested marker on the host ({error}); the role's guard ignores it "
                       "after 10 minutes and in any later boot")
            return
        if answer.rc != 0:
            self._warn(f"could not remove the kexec-requested marker on the host (rc {answer.rc}: {answer.stderr.strip()[:200]})")

    def _finish(self, result: dict[str, t.Any], started: float) -> None:
        result["elapsed"] = round(self._clock() - started, 2)
