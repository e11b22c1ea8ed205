# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin fastreboot.kexec.kexec_reboot: load, preflight, trigger, wait, prove.

Everything before the trigger is reversible and checked: bad options, a host that cannot kexec,
nothing loaded, no systemd for a clean shutdown - each fails the task with the host untouched.
The trigger starts a detached reboot and returns; the wait (plugin_utils._wait) runs under one
deadline; the proof (plugin_utils._proof) compares the new boot with what was loaded.
"""

from __future__ import annotations

import secrets
import time
import typing as t
from dataclasses import dataclass

from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure, AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

# The load options pass through unchanged to kexec_load; both share one spec.
from ansible_collections.fastreboot.kexec.plugins.module_utils._load_spec import LOAD_ARGUMENT_SPEC
from ansible_collections.fastreboot.kexec.plugins.module_utils._support import LOAD_DISABLED_PROBLEM
from ansible_collections.fastreboot.kexec.plugins.plugin_utils._hoststate import (
    HOST_STATE_COMMAND,
    SYSTEM_STATE_COMMAND,
    HostState,
    parse_boot_id,
    parse_host_state,
)
from ansible_collections.fastreboot.kexec.plugins.plugin_utils._proof import Expectation, prove_boot
from ansible_collections.fastreboot.kexec.plugins.plugin_utils._trigger import (
    METHODS,
    TriggerError,
    resolve_method,
    trigger_argv,
    trigger_command,
    unmark_requested_command,
)
from ansible_collections.fastreboot.kexec.plugins.plugin_utils._wait import (
    BANNER_TIMEOUT,
    LOGIN_GRACE,
    BootFinishedProbe,
    CommandResult,
    NewBootProbe,
    ProbeFailed,
    TestCommandProbe,
    WaitAborted,
    WaitTimeout,
    call_with_bound,
    read_ssh_banner,
    wait_until,
)

display = Display()

LOAD_MODULE = "fastreboot.kexec.kexec_load"
INFO_MODULE = "fastreboot.kexec.kexec_info"
CONTROLLER_BOOT_ID = "/proc/sys/kernel/random/boot_id"
DEFAULT_MSG = "Reboot (kexec) initiated by Ansible"

REBOOT_ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "use_loaded": {"type": "bool", "default": False},
    "expect_release": {"type": "str"},
    "method": {"type": "str", "default": "auto", "choices": list(METHODS)},
    "pre_reboot_delay": {"type": "int", "default": 0},
    "post_reboot_delay": {"type": "int", "default": 0},
    "reboot_timeout": {"type": "int", "default": 600},
    "connect_timeout": {"type": "int", "default": 5},
    "test_command": {"type": "str", "default": "whoami"},
    "wait_for_boot_finished": {"type": "bool", "default": True},
    "allow_fallback": {"type": "bool", "default": False},
    "msg": {"type": "str", "default": DEFAULT_MSG},
}
ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {**LOAD_ARGUMENT_SPEC, **REBOOT_ARGUMENT_SPEC}


class OptionError(ValueError):
    """Task options that cannot work together; nothing was done on the host."""


class RebootFailed(Exception):
    """The task fails with this message (the result says how far it got)."""


class PreflightError(RebootFailed):
    """The host is not ready for a kexec reboot; nothing irreversible was done."""


@dataclass(frozen=True)
class RebootOptions:
    """The validated task options."""

    load_args: dict[str, t.Any]
    use_loaded: bool
    expect_release: str | None
    method: str
    pre_reboot_delay: int
    post_reboot_delay: int
    reboot_timeout: int
    connect_timeout: int
    test_command: str
    wait_for_boot_finished: bool
    allow_fallback: bool
    msg: str

    @classmethod
    def from_params(cls, params: dict[str, t.Any], given: t.Iterable[str]) -> "RebootOptions":
        """params: validated by ARGUMENT_SPEC (defaults filled in); given: the option names the task set."""
        for name, minimum in (("pre_reboot_delay", 0), ("post_reboot_delay", 0), ("reboot_timeout", 1), ("connect_timeout", 1)):
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
        return cls(
            load_args={name: params[name] for name in LOAD_ARGUMENT_SPEC},
            use_loaded=params["use_loaded"],
            expect_release=expect_release.strip() if expect_release else None,
            method=params["method"],
            pre_reboot_delay=params["pre_reboot_delay"],
            post_reboot_delay=params["post_reboot_delay"],
            reboot_timeout=params["reboot_timeout"],
            connect_timeout=params["connect_timeout"],
            test_command=test_command,
            wait_for_boot_finished=params["wait_for_boot_finished"],
            allow_fallback=params["allow_fallback"],
            msg=params["msg"] or "",
        )


def _support_problem(support: t.Any, image_loaded: bool = False) -> str | None:
    """Why the module's `support` facts rule out a kexec, or None.

    image_loaded: the jump goes into an image that is already loaded, which kernel.kexec_load_disabled
    (it only stops further loads) does not prevent.
    """
    if not isinstance(support, dict):
        return "the module returned no support facts"
    if support.get("supported") is True:
        return None
    if image_loaded and isinstance(support.get("problems"), list):
        remaining = [problem for problem in support["problems"] if problem != LOAD_DISABLED_PROBLEM]
        if not remaining:
            return None
        return "; ".join(str(problem) for problem in remaining)
    return str(support.get("verdict") or "the host cannot kexec (no verdict given)")


def expectation_from_load(load: dict[str, t.Any], expect_release: str | None, check_mode: bool) -> Expectation:
    """Preflight on a kexec_load result; returns what the new boot must look like."""
    if load.get("failed"):
        raise PreflightError(f"kexec_load failed, nothing was rebooted: {load.get('msg', 'no message')}")
    problem = _support_problem(load.get("support"))
    if problem:
        raise PreflightError(f"kexec is not possible on this host, nothing was rebooted: {problem}")
    if not load.get("loaded") and not check_mode:
        raise PreflightError(
            f"kexec_load did not leave an image loaded ({load.get('msg', 'no message')}): nothing was rebooted; "
            "check /sys/kernel/kexec_loaded and the load result"
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
    problem = _support_problem(info.get("support"), image_loaded=bool(loaded.get("kexec_loaded")))
    if problem:
        raise PreflightError(f"kexec is not possible on this host, nothing was rebooted: {problem}")
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


def timeout_message(options: RebootOptions, phase: str, expected: Expectation, last_seen: str) -> str:
    """The failure message of a deadline that passed: deadline, expected kernel, what was seen, next step."""
    return (
        f"reboot_timeout ({options.reboot_timeout}s after the shutdown started) passed {phase}; expected "
        f"{expected.describe()}. Last seen: {last_seen}. Look at the host's console"
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

    # Small helpers around the connection ---------------------------------------------------------

    def _warn(self, text: str) -> None:
        self._warnings.append(text)

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

    def _run_bounded(self, command: str, timeout: float, sudoable: bool, in_data: bytes | None = None) -> CommandResult:
        """One login running a command, abandoned after `timeout` seconds (ProbeFailed)."""

        def execute() -> dict[str, t.Any]:
            return self._low_level_execute_command(command, sudoable=sudoable, in_data=in_data, executable="/bin/sh")

        try:
            raw = call_with_bound(execute, timeout, self._reset_connection)
        except AnsibleConnectionFailure as error:
            self._reset_connection()
            raise ProbeFailed(_first_line(error)) from error
        except AnsibleError as error:
            raise ProbeFailed(_first_line(error)) from error
        return CommandResult(int(raw.get("rc") or 0), to_text(raw.get("stdout", "")), to_text(raw.get("stderr", "")))

    def _login_timeout(self, options: RebootOptions) -> float:
        return options.connect_timeout + LOGIN_GRACE

    def _banner_target(self, options: RebootOptions) -> tuple[str, int] | None:
        """host and port for SSH banner probes, when the connection is ssh-like and the banner answers now."""
        transport = to_text(getattr(self._connection, "transport", "") or "")
        if "ssh" not in transport.rsplit(".", 1)[-1]:
            return None
        host = self._connection_option("host") or self._play_context.remote_addr
        port = self._connection_option("port") or 22
        try:
            target = (to_text(host), int(port))
        except (TypeError, ValueError):
            return None
        if not target[0]:
            return None
        # ssh_config may send the login elsewhere (ProxyJump, HostName, Port): probe only what answers now.
        if not read_ssh_banner(target[0], target[1], min(float(options.connect_timeout), BANNER_TIMEOUT)):
            display.vvv(f"kexec_reboot: no SSH banner at {target[0]}:{target[1]}; waiting by logins only")
            return None
        return target

    def _read_host_state(self, options: RebootOptions) -> HostState:
        try:
            answer = self._run_bounded(HOST_STATE_COMMAND, self._login_timeout(options), sudoable=False)
        except ProbeFailed as error:
            raise PreflightError(f"could not read the host's boot_id before the reboot, nothing was rebooted: {error}") from error
        state = parse_host_state(answer.stdout) if answer.rc == 0 else None
        if state is None or not state.complete:
            raise PreflightError(
                f"could not read boot_id, kernel release and command line from the host (rc={answer.rc}, "
                f"stderr: {answer.stderr.strip()[:200]!r}): nothing was rebooted; /proc and uname must be readable"
            )
        return state

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

        result.update(changed=False, rebooted=False, fallback=False, elapsed=0.0, downtime=None)
        if to_text(getattr(self._connection, "transport", "")).rsplit(".", 1)[-1] == "local":
            result.update(failed=True, msg=(
                "kexec_reboot refuses the local connection: it would reboot the controller. "
                "Run it against the managed host over ssh"
            ))
            return result
        try:
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

        # 1. Load (or look at what is loaded): the module does the host-side checks.
        if options.use_loaded:
            info = self._execute_module(module_name=INFO_MODULE, module_args={}, task_vars=task_vars)
            self._lift_warnings(info)
            result["load"] = info.get("loaded")
            expected, warnings = expectation_from_info(info, options.expect_release)
            for warning in warnings:
                self._warn(warning)
        else:
            load = self._execute_module(module_name=LOAD_MODULE, module_args=dict(options.load_args), task_vars=task_vars)
            self._lift_warnings(load)
            result.update(load=load, kernel_selected_by=load.get("kernel_selected_by"))
            result["changed"] = bool(load.get("changed"))
            expected = expectation_from_load(load, options.expect_release, check_mode)

        # 2. Preflight on the host, one login: boot_id, kernel, command line, systemd, kexec_loaded.
        before = self._read_host_state(options)
        result.update(boot_id_before=before.boot_id, kernel_before=before.release)
        if before.boot_id == self._controller_boot_id():
            raise PreflightError("the managed host has the controller's boot_id: it is the controller itself; nothing was rebooted")
        if before.kexec_loaded is False and not check_mode:
            raise PreflightError("/sys/kernel/kexec_loaded is 0 on the host: no image is loaded, nothing was rebooted")
        method = resolve_method(options.method, bool(before.systemd))
        result["method"] = method
        token = secrets.token_hex(4)
        command = trigger_command(method, bool(before.systemd), options.pre_reboot_delay, token, wall=bool(options.msg))
        result["trigger"] = trigger_argv(method, bool(before.systemd), options.pre_reboot_delay, token)
        banner_target = self._banner_target(options)
        result["probe"] = "ssh_banner" if banner_target else "login"

        if check_mode:
            result.update(changed=True, msg=f"check mode: would reboot into {expected.describe()} with method={method}")
            return

        # 3. Trigger. From here on the reboot may happen: a lost connection is expected.
        started = self._clock()
        in_data = to_bytes(options.msg + "\n") if options.msg else None
        try:
            answer = self._run_bounded(command, self._login_timeout(options), sudoable=True, in_data=in_data)
        except ProbeFailed as error:
            display.vvv(f"kexec_reboot: the trigger's connection ended ({error}); the host is going down")
        else:
            if answer.rc != 0:
                self._forget_request(options)
                raise PreflightError(
                    f"the reboot trigger failed on the host (rc={answer.rc}): {answer.stderr.strip() or answer.stdout.strip()}; "
                    "the host was not rebooted and the image stays loaded"
                )
        result["changed"] = True
        self._reset_connection()
        self._override_option("timeout", options.connect_timeout)
        self._override_option("reconnection_retries", 0)  # our loop retries; ssh's own backoff would not be bounded

        # 4. Wait for the new boot under one deadline, counted from the start of the shutdown.
        shutdown_at = started + options.pre_reboot_delay
        deadline = shutdown_at + options.reboot_timeout
        if options.pre_reboot_delay:
            self._sleep(max(0.0, shutdown_at - self._clock()))

        def banner(timeout: float, wait: float) -> bool:
            host, port = t.cast(tuple, banner_target)
            return read_ssh_banner(host, port, timeout, wait)

        probe = NewBootProbe(
            before.boot_id, self._login_without_become(HOST_STATE_COMMAND), self._clock, options.connect_timeout,
            banner if banner_target else None,
        )
        try:
            after: HostState = wait_until(probe, deadline, self._clock, self._sleep).value
        except WaitTimeout as error:
            self._finish(result, started)
            raise RebootFailed(timeout_message(options, "before the host came back in a new boot", expected, error.last_seen)) from error
        timings = result["timings"] = {"new_boot_seen": round(self._clock() - started, 2)}
        if probe.answered_at is not None:
            timings["sshd_answered"] = round(probe.answered_at - started, 2)
        result.update(
            rebooted=True, downtime=round(self._clock() - shutdown_at, 2),
            boot_id_after=after.boot_id, kernel_after=after.release, cmdline=after.cmdline,
        )

        # 5. Proof: the new boot runs what was loaded.
        proof = prove_boot(expected, after)
        if not proof.matches:
            result["fallback"] = True
            if not options.allow_fallback:
                self._finish(result, started)
                raise RebootFailed(proof.message)
            self._warn(f"{proof.message} (allowed by allow_fallback)")
        elif not proof.compared:
            self._warn(proof.message)

        # 6. The host is usable: test_command, then (systemd) the boot has finished.
        login_timeout = self._login_timeout(options)
        try:
            wait_until(TestCommandProbe(self._test_login(options), login_timeout), deadline, self._clock, self._sleep)
            timings["test_command_ok"] = round(self._clock() - started, 2)
            if options.wait_for_boot_finished and after.systemd:
                boot_state = BootFinishedProbe(self._login_without_become(SYSTEM_STATE_COMMAND), login_timeout)
                finished = wait_until(boot_state, deadline, self._clock, self._sleep)
                timings["boot_finished"] = round(self._clock() - started, 2)
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
        if result["fallback"]:
            how = "through firmware (allowed)"
        else:
            how = "by kexec" if proof.compared else "(kexec unverified: what was loaded is unknown)"
        result["msg"] = f"rebooted {how} into {after.release} in {result['elapsed']}s ({result['downtime']}s down)"

    def _test_login(self, options: RebootOptions) -> t.Callable[[float], CommandResult]:
        def login(timeout: float) -> CommandResult:
            # test_command is the user's own shell command, run like ansible.builtin.reboot does.
            return self._run_bounded(options.test_command, timeout, sudoable=True)

        return login

    def _login_without_become(self, command: str) -> t.Callable[[float], CommandResult]:
        def login(timeout: float) -> CommandResult:
            return self._run_bounded(command, timeout, sudoable=False)

        return login

    def _forget_request(self, options: RebootOptions) -> None:
        """The trigger failed: remove the kexec-requested marker so that no later reboot uses it."""
        try:
            self._run_bounded(unmark_requested_command(), self._login_timeout(options), sudoable=True)
        except ProbeFailed as error:
            self._warn(f"could not remove the kexec-requested marker on the host: {error}")

    def _finish(self, result: dict[str, t.Any], started: float) -> None:
        result["elapsed"] = round(self._clock() - started, 2)
