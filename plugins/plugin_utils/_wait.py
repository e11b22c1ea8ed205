# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The controller's wait for the rebooted host: one deadline, cheap and frequent probes.

wait_until() runs an attempt callable until it reports done or the deadline passes. Each attempt
gets the time left as its budget and must not use more; the loop never starts an attempt at or
after the deadline and never sleeps past it. Clock and sleep are injected so tests drive time.

NewBootProbe is the attempt that notices the new boot: a TCP connect to sshd that reads the
`SSH-2.0-` banner (microseconds of host work, no login), and only once a banner is seen, one login
that reads boot_id, release and command line (HOST_STATE_COMMAND). BootTimeProbe, TestCommandProbe
and BootFinishedProbe are the attempts that follow it.

Every step stays inside its budget: the banner probe takes an address resolved once before the
reboot (resolve_address) and never asks DNS, and call_with_bound abandons a hung login by killing
the processes (the ssh client) its thread started.
"""

from __future__ import annotations

import contextlib
import contextvars
import socket
import subprocess
import threading
import time
import typing as t
from dataclasses import dataclass, field

from ansible_collections.fastreboot.kexec.plugins.plugin_utils._hoststate import (
    BOOT_FINISHED_STATES,
    parse_host_state,
    parse_startup_times,
    parse_system_state,
)

PROBE_INTERVAL = 0.5  # seconds from the start of one attempt to the start of the next
# While the old boot still answers, once a second: each banner probe ends before authentication,
# which OpenSSH >= 9.8 charges 1 s of PerSourcePenalties (noauth); faster would get us blocked.
SAME_BOOT_INTERVAL = 1.0
BANNER_TIMEOUT = 2.0  # for the TCP connect: a host that is up answers at once; longer only delays the next try
# Once connected, how long to wait for the banner. A port forwarder (QEMU user networking, a TCP proxy)
# accepts while the host is down and keeps trying to reach it; every connection we drop then reaches
# sshd later, as one of a burst of unauthenticated connections when it starts (each 1 s of OpenSSH's
# noauth penalty, against the forwarder's address, which is ours). Holding the connection instead
# costs no detection time (the banner comes through it) and makes one such connection per 10 s. (A
# host whose network is up answers a closed port with a reset, which ends the wait at once.)
BANNER_WAIT = 10.0
LOGIN_GRACE = 10.0  # a login may take connect_timeout plus this for authentication and the command
# OpenSSH >= 9.8 (trixie has 10.0) refuses a source address once its PerSourcePenalties add up to
# 15 s; they run down in real time. With the defaults a banner probe costs 1 s (noauth) and a login
# refused by /run/nologin during boot 5 s (authfail): fast retries as a non-root user get us locked
# out just when the host is back. We keep our own estimate below this limit, with a margin for other
# clients from the same address.
PENALTY_NOAUTH = 1.0
PENALTY_AUTHFAIL = 5.0
PENALTY_LIMIT = 12.0
SSH_BANNER_PREFIXES = (b"SSH-2.0-", b"SSH-1.99-")  # RFC 4253 4.2; 1.99 = 2.0 with 1.x compatibility
MAX_BANNER_BYTES = 8192  # RFC 4253 allows text lines before the banner; give up after this much

T = t.TypeVar("T")

# What the last attempt saw; the timeout message names it.
NO_BANNER = "the sshd banner never came back (nothing answers with SSH-2.0 on the SSH port)"
NO_TIME_FOR_LOGIN = "the sshd banner came back, but no time was left for a login"
LOGIN_FAILS = "sshd answers but logins fail"
LOGINS_FAIL = "logins fail"  # without banner probes nothing says whether sshd answers
NO_BOOT_ID = "logins succeed but print no boot_id"
SAME_BOOT = "logins succeed but boot_id is unchanged (the host did not reboot)"
INCOMPLETE = "a new boot_id, but the kernel release or command line could not be read"
NO_ATTEMPT = "no probe could run before the deadline"
# Phases NewBootProbe reports (on_phase).
HOST_DOWN = "host down"
SSHD_BACK = "sshd back"
BOOT_TIME_UNCHANGED = "a new boot_id, but the output of boot_time_command is unchanged"


class ProbeFailed(Exception):
    """A probe could not get an answer (connection refused, login failed, timed out)."""


class CommandNotRun(ProbeFailed):
    """The login failed before the command started: it never connected, or privilege escalation failed."""


class WaitTimeout(Exception):
    """The deadline passed; last_seen says what the last attempt found."""

    def __init__(self, last_seen: str) -> None:
        super().__init__(last_seen)
        self.last_seen = last_seen


class WaitAborted(Exception):
    """Waiting longer cannot help (for example the host booted into emergency mode)."""


class CommandResult(t.NamedTuple):
    rc: int
    stdout: str
    stderr: str


# A login: run a fixed command on the host within `timeout` seconds. Raises ProbeFailed when no
# answer came back (connection or authentication failure, timeout); a non-zero rc is an answer.
Login = t.Callable[[float], CommandResult]
BannerProbe = t.Callable[[float, float], bool]  # (connect timeout, wait for the banner) -> banner seen


@dataclass(frozen=True)
class Attempt:
    done: bool
    detail: str
    value: t.Any = None
    interval: float | None = None  # overrides the loop's interval before the next attempt


def wait_until(
    attempt: t.Callable[[float], Attempt],
    deadline: float,
    clock: t.Callable[[], float],
    sleep: t.Callable[[float], None],
    interval: float = PROBE_INTERVAL,
    observe: t.Callable[[Attempt], None] | None = None,
) -> Attempt:
    """Run attempt(budget) every `interval` seconds until it is done; WaitTimeout at the deadline.

    observe(outcome) sees every attempt (the action shows them at -vvv).
    """
    last_seen = NO_ATTEMPT
    while True:
        started = clock()
        budget = deadline - started
        if budget <= 0:
            raise WaitTimeout(last_seen)
        outcome = attempt(budget)
        if observe is not None:
            observe(outcome)
        if outcome.done:
            return outcome
        last_seen = outcome.detail
        now = clock()
        wanted = interval if outcome.interval is None else outcome.interval
        # A slow attempt (a banner probe that waited its full timeout) already used the interval.
        pause = min(wanted - (now - started), deadline - now)
        if pause > 0:
            sleep(pause)


def resolve_address(host: str, port: int, timeout: float) -> str | None:
    """The first address of host (a name or an address) for TCP, looked up within `timeout` seconds; None when not found.

    The lookup runs once, before the reboot: the resolver has no timeout of its own that the wait could bound.
    """
    def lookup() -> str:
        family, dummy, dummy2, dummy3, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        del family
        return str(sockaddr[0])

    try:
        return call_with_bound(lookup, timeout, lambda: None)
    except (OSError, ProbeFailed, IndexError):
        return None


def read_ssh_banner(
    host: str, port: int, timeout: float, wait: float | None = None, clock: t.Callable[[], float] = time.monotonic,
) -> bool:
    """True when sshd at host:port accepts within `timeout` seconds and then sends its identification
    line within `wait` seconds (default: `timeout`).

    host must be an address (resolve_address): a name is never looked up here, where a slow resolver
    would run past the timeout, and counts as no banner.
    """
    if timeout <= 0:
        return False
    try:
        family, kind, protocol, dummy, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)[0]
    except (OSError, IndexError):
        return False
    try:
        with socket.socket(family, kind, protocol) as connection:
            connection.settimeout(timeout)
            connection.connect(sockaddr)
            end = clock() + (timeout if wait is None else wait)
            received = b""
            while len(received) < MAX_BANNER_BYTES:
                for line in received.split(b"\n"):
                    if line.startswith(SSH_BANNER_PREFIXES):
                        return True
                left = end - clock()
                if left <= 0:
                    return False
                connection.settimeout(left)
                chunk = connection.recv(1024)
                if not chunk:
                    return False
                received += chunk
    except OSError:
        # Refused, unreachable, reset, timed out, name not resolvable: no banner.
        return False
    return False


@dataclass
class _StartedProcesses:
    """The processes one bounded call's thread started; once abandoned, each is killed (also any started later)."""

    processes: list[t.Any] = field(default_factory=list)
    abandoned: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, process: t.Any) -> None:
        with self.lock:
            self.processes.append(process)
            if not self.abandoned:
                return
        _kill(process)

    def abandon(self) -> None:
        with self.lock:
            self.abandoned = True
            processes = list(self.processes)
        for process in processes:
            _kill(process)


def _kill(process: t.Any) -> None:
    try:
        if process.poll() is None:
            process.kill()
    except OSError:
        pass  # it ended meanwhile


_STARTED: "contextvars.ContextVar[_StartedProcesses | None]" = contextvars.ContextVar("fastreboot_kexec_started", default=None)
_ORIGINAL_POPEN = subprocess.Popen
_tracking_lock = threading.Lock()
_tracking_depth = 0


class _TrackedPopen(_ORIGINAL_POPEN):  # type: ignore[misc,valid-type]  # pylint: disable=abstract-method
    """subprocess.Popen that tells the bounded call it runs in which processes it started."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        started = _STARTED.get()
        if started is not None:
            started.add(self)


@contextlib.contextmanager
def tracking_subprocesses() -> t.Iterator[None]:
    """While active, call_with_bound can kill what an abandoned call started through subprocess.Popen.

    The ssh connection plugin runs each login as an ssh client process (subprocess.Popen, looked up at
    call time). Resetting the connection (`ssh -O stop`) does not end a hung session, and an abandoned
    thread would keep its ssh process forever; so Popen is swapped for a subclass that records the
    processes of bounded calls (other callers see no difference), and the original comes back at the end.
    """
    global _tracking_depth  # pylint: disable=global-statement
    with _tracking_lock:
        if _tracking_depth == 0:
            subprocess.Popen = _TrackedPopen  # type: ignore[misc]
        _tracking_depth += 1
    try:
        yield
    finally:
        with _tracking_lock:
            _tracking_depth -= 1
            if _tracking_depth == 0:
                subprocess.Popen = _ORIGINAL_POPEN  # type: ignore[misc]


def call_with_bound(func: t.Callable[[], T], bound: float, on_timeout: t.Callable[[], None]) -> T:
    """Run func in a worker thread and wait at most `bound` seconds for it.

    A login through the connection plugin can hang (a half-open ControlPersist socket, a PAM
    session that waits for logind during early boot). After `bound` seconds the processes the
    thread started are killed (within tracking_subprocesses: the hung ssh client, whose end ends the
    thread), on_timeout() runs - it must return at once (the caller starts a connection reset in the
    background) - and ProbeFailed is raised. A thread that still hangs (a plugin without a process,
    such as paramiko, until its reset closes the socket) is abandoned (daemon), its late answer ignored.
    """
    outcome: dict[str, t.Any] = {}
    context = contextvars.copy_context()  # the task's context (warnings, templating) in the thread
    started = _StartedProcesses()

    def tracked() -> T:
        _STARTED.set(started)
        return func()

    def run() -> None:
        try:
            outcome["value"] = context.run(tracked)
        except BaseException as error:  # pylint: disable=broad-exception-caught
            outcome["error"] = error

    worker = threading.Thread(target=run, name="fastreboot-kexec-login", daemon=True)
    worker.start()
    worker.join(max(bound, 0.0))
    if worker.is_alive():
        started.abandon()
        try:
            on_timeout()
        except Exception:  # pylint: disable=broad-exception-caught
            pass  # the bound holds whether or not the reset worked
        raise ProbeFailed(f"no answer within {bound:.1f}s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class PenaltyEstimate:
    """Our estimate of the penalty seconds sshd holds against us, running down in real time."""

    def __init__(self, clock: t.Callable[[], float]) -> None:
        self.clock = clock
        self.owed = 0.0
        self._at = clock()

    def _run_down(self) -> None:
        now = self.clock()
        self.owed = max(0.0, self.owed - (now - self._at))
        self._at = now

    def charge(self, seconds: float) -> None:
        self._run_down()
        self.owed += seconds

    def wait_before(self, cost: float) -> float:
        """Seconds to wait so that an attempt costing `cost` keeps the estimate within the limit."""
        self._run_down()
        return max(0.0, self.owed + cost - PENALTY_LIMIT)


class NewBootProbe:
    """Attempt: is the host up in a new boot? done with the new HostState as value."""

    def __init__(
        self,
        old_boot_id: str,
        login: Login,
        clock: t.Callable[[], float],
        connect_timeout: float,
        banner: BannerProbe | None = None,
        on_phase: t.Callable[[str], None] | None = None,
    ) -> None:
        """on_phase(name) is told once each of: HOST_DOWN (the first probe that found no answer),
        SSHD_BACK (banners again after that) - the action shows them at -v."""
        self.old_boot_id = old_boot_id
        self.login = login
        self.clock = clock
        self.connect_timeout = connect_timeout
        self.banner = banner
        self.login_timeout = connect_timeout + LOGIN_GRACE
        self._login_failure = LOGIN_FAILS if banner is not None else LOGINS_FAIL
        self.penalty = PenaltyEstimate(clock)
        self.on_phase = on_phase
        # When sshd started answering in the current unbroken run of banners (None: it does not
        # answer, or the run belonged to the old boot). Once done: when the new boot's sshd answered.
        self.answered_at: float | None = None
        self.down_at: float | None = None  # when a probe first found no answer
        self.old_boot_answered_last = False  # the last answer came from the old boot (it did not go down)
        self._phases_told: set[str] = set()

    def _phase(self, name: str) -> None:
        if name not in self._phases_told:
            self._phases_told.add(name)
            if self.on_phase is not None:
                self.on_phase(name)

    def _no_answer(self) -> None:
        self.old_boot_answered_last = False
        if self.down_at is None:
            self.down_at = self.clock()
        self._phase(HOST_DOWN)

    def __call__(self, budget: float) -> Attempt:
        started = self.clock()
        if self.banner is not None:
            connect = min(BANNER_TIMEOUT, self.connect_timeout, budget)
            if not self.banner(connect, max(0.0, min(BANNER_WAIT, budget - connect))):
                self.answered_at = None
                self._no_answer()
                return Attempt(False, NO_BANNER)
            if self.answered_at is None:
                self.answered_at = self.clock()
            if self.down_at is not None:
                self._phase(SSHD_BACK)
            self.penalty.charge(PENALTY_NOAUTH)
            budget -= self.clock() - started
            if budget <= 0:
                return Attempt(False, NO_TIME_FOR_LOGIN)
        try:
            answer = self.login(min(self.login_timeout, budget))
        except ProbeFailed as error:
            if self.banner is None:
                self._no_answer()
            return self._refused(started, f"{self._login_failure} ({error})")
        if answer.rc != 0:
            return Attempt(False, f"{self._login_failure} (the state command exited with {answer.rc}: {_last_line(answer.stderr)})")
        state = parse_host_state(answer.stdout)
        if state is None:
            return Attempt(False, NO_BOOT_ID)
        if state.boot_id == self.old_boot_id:
            self.answered_at = None
            self.old_boot_answered_last = True
            return Attempt(False, SAME_BOOT, interval=SAME_BOOT_INTERVAL)
        self.old_boot_answered_last = False
        if not state.complete:
            return Attempt(False, INCOMPLETE)
        return Attempt(True, "a new boot", state)

    def _refused(self, started: float, detail: str) -> Attempt:
        """A failed login; once sshd answered, space the next one so its penalties stay low."""
        if self.banner is None:
            return Attempt(False, detail)  # no banner probes: a refused connection costs nothing
        self.penalty.charge(PENALTY_AUTHFAIL)  # we cannot tell a refusal from a timeout: assume the worst
        wait = self.penalty.wait_before(PENALTY_NOAUTH + PENALTY_AUTHFAIL)
        return Attempt(False, detail, interval=max(PROBE_INTERVAL, self.clock() - started + wait))


class _LoginProbe:
    """An attempt that is one login running a fixed command, bounded by its own timeout."""

    def __init__(self, login: Login, timeout: float) -> None:
        self.login = login
        self.timeout = timeout

    def _ask(self, budget: float, what: str) -> CommandResult | Attempt:
        """The command's answer, or a failed Attempt saying that `what` could not be read."""
        try:
            return self.login(min(self.timeout, budget))
        except ProbeFailed as error:
            return Attempt(False, f"a new boot, but {what} ({error})")


class TestCommandProbe(_LoginProbe):
    """Attempt: the user's test_command succeeds (rc 0).

    Once it answered, a later attempt that gets no answer (the last one, cut short by the deadline)
    still reports the last answer: the rc and stderr say why it failed, the lost attempt does not.
    """

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, login: Login, timeout: float, command: str) -> None:
        super().__init__(login, timeout)
        self.command = command
        self.last_failure: str | None = None

    def __call__(self, budget: float) -> Attempt:
        answer = self._ask(budget, "test_command could not run")
        if isinstance(answer, Attempt):
            return answer if self.last_failure is None else Attempt(False, self.last_failure)
        if answer.rc == 0:
            return Attempt(True, "test_command succeeded", answer)
        output = _last_line(answer.stderr) or _last_line(answer.stdout) or "no output"
        self.last_failure = f"a new boot, but test_command {self.command!r} kept failing: rc {answer.rc}, {output}"
        return Attempt(False, self.last_failure)


class BootTimeProbe(_LoginProbe):
    """Attempt: boot_time_command (ansible.builtin.reboot's option) prints something else than before the reboot."""

    def __init__(self, login: Login, timeout: float, before: str) -> None:
        super().__init__(login, timeout)
        self.before = before

    def __call__(self, budget: float) -> Attempt:
        answer = self._ask(budget, "boot_time_command could not run")
        if isinstance(answer, Attempt):
            return answer
        output = answer.stdout.strip()
        if answer.rc != 0 or not output:
            shown = _last_line(answer.stderr) or "no output"
            return Attempt(False, f"a new boot_id, but boot_time_command failed (rc {answer.rc}, {shown})")
        if output == self.before:
            return Attempt(False, BOOT_TIME_UNCHANGED)
        return Attempt(True, "boot_time_command output changed", output)


class BootFinishedProbe(_LoginProbe):
    """Attempt: `systemctl is-system-running` says running or degraded; startup_times keeps the new boot's
    `systemd-analyze time` split read in the same login (None when it printed none)."""

    def __init__(self, login: Login, timeout: float) -> None:
        super().__init__(login, timeout)
        self.startup_times: dict[str, float] | None = None

    def __call__(self, budget: float) -> Attempt:
        answer = self._ask(budget, "the boot state could not be read")
        if isinstance(answer, Attempt):
            return answer
        state = parse_system_state(answer.stdout)
        if state in BOOT_FINISHED_STATES:
            self.startup_times = parse_startup_times(answer.stdout)
            return Attempt(True, state, state)
        if state == "maintenance":
            raise WaitAborted(
                "the new boot is in maintenance (emergency or rescue) mode: a unit required for booting "
                "failed; see the host's console and `journalctl -b`"
            )
        shown = state or _last_line(answer.stdout) or "no answer"
        return Attempt(False, f"a new boot, but the system never finished booting (systemctl is-system-running: {shown})")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
