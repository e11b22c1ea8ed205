# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The wait loop under a driven clock, the probes, and the real banner and bounded-call boundaries."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
import typing as t

import pytest

from ansible_collections.fastreboot.kexec.plugins.plugin_utils._wait import (
    BANNER_TIMEOUT,
    BANNER_WAIT,
    BOOT_TIME_UNCHANGED,
    HOST_DOWN,
    LOGIN_FAILS,
    NO_BANNER,
    NO_BOOT_ID,
    PENALTY_AUTHFAIL,
    PROBE_INTERVAL,
    SAME_BOOT,
    SAME_BOOT_INTERVAL,
    SSHD_BACK,
    Attempt,
    BootFinishedProbe,
    BootTimeProbe,
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

OLD = "8c2d1c9a-1f7b-4d8e-9a3e-2b6f0c7d5e41"
NEW = "3e9b7a52-6c0d-4f1e-8b2a-9d4c5e6f7a81"


class FakeClock:
    """Time that moves only when something sleeps or a fake probe spends it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds

    def spend(self, seconds: float) -> None:
        self.now += seconds


def state(boot_id: str, release: str = "6.1.0-26-amd64") -> str:
    return f"fastreboot-boot-id={boot_id}\nfastreboot-release={release}\nfastreboot-cmdline=root=/dev/vda1 ro\nfastreboot-systemd=yes\n"


class ScriptedHost:
    """A host seen from the controller: a timeline of phases, each lasting some seconds.

    phase kinds: "old" (old boot answers), "down" (nothing listens), "forwarded-down" (a port forwarder
    accepts for the host that is down, and every connection it accepted reaches sshd once it starts),
    "sshd-no-login" (banner, logins fail), "hang" (banner, logins hang), "new" (new boot answers).
    Probes spend realistic time.

    Its sshd keeps OpenSSH 10's default PerSourcePenalties: 1 s for a connection closed before
    authentication, 5 s for a failed login, running down in real time; at 15 s it refuses us.
    """

    PENALTY_THRESHOLD = 15.0

    def __init__(self, clock: FakeClock, phases: list[tuple[str, float]], login_output: t.Callable[[str], str] | None = None) -> None:
        self.clock = clock
        self.start = clock.now
        self.phases = phases
        self.calls: list[tuple[str, float, float]] = []  # (kind, started, budget)
        self.phases_seen: list[str] = []  # the phase at each call
        self.login_output = login_output or (lambda kind: state(OLD if kind == "old" else NEW))
        self.penalty = 0.0
        self.penalty_at = clock.now
        self.refused_for_penalty = 0
        self.forwarded_while_down = 0  # connections a forwarder will hand to sshd once it starts

    def _penalised(self) -> bool:
        """Run the penalty down to now; True when sshd refuses this connection for it."""
        self.penalty = max(0.0, self.penalty - (self.clock.now - self.penalty_at))
        self.penalty_at = self.clock.now
        if self.phase() != "down" and self.penalty >= self.PENALTY_THRESHOLD:
            self.refused_for_penalty += 1
            return True
        return False

    def phase(self) -> str:
        elapsed = self.clock.now - self.start
        for kind, length in self.phases:
            if elapsed < length:
                return kind
            elapsed -= length
        return self.phases[-1][0]

    def phase_left(self) -> float:
        elapsed = self.clock.now - self.start
        for dummy, length in self.phases:
            if elapsed < length:
                return length - elapsed
            elapsed -= length
        return float("inf")

    def banner(self, timeout: float, wait: float) -> bool:
        self.calls.append(("banner", self.clock.now, timeout))
        self.phases_seen.append(self.phase())
        if self.phase() == "down":
            self.clock.spend(timeout)  # SYN unanswered: the probe waits its whole timeout
            return False
        if self.phase() == "forwarded-down":
            self.forwarded_while_down += 1
            if self.phase_left() > wait:
                self.clock.spend(wait)  # accepted, silent: the probe gives up after its wait
                return False
            self.clock.spend(self.phase_left())  # sshd started while we held the connection
            return self.banner(timeout, wait)
        if self._penalised():
            self.clock.spend(0.01)
            return False
        self.clock.spend(0.01)
        self.penalty += 1.0  # noauth
        return True

    def login(self, timeout: float) -> CommandResult:
        self.calls.append(("login", self.clock.now, timeout))
        self.phases_seen.append(self.phase())
        kind = self.phase()
        if kind == "down":
            self.clock.spend(0.05)
            raise ProbeFailed("Connection refused")
        if self._penalised():
            self.clock.spend(0.01)
            raise ProbeFailed("kex_exchange_identification: Connection closed by remote host")
        if kind == "sshd-no-login":
            self.clock.spend(0.2)
            self.penalty += 5.0  # authfail
            raise ProbeFailed("System is booting up. Unprivileged users are not permitted to log in yet.")
        if kind == "hang":
            self.clock.spend(timeout)  # call_with_bound gives up after the bound
            raise ProbeFailed(f"no answer within {timeout:.1f}s")
        self.clock.spend(0.3)
        return CommandResult(0, self.login_output(kind), "")


def test_wait_until_respects_the_deadline_exactly() -> None:
    clock = FakeClock()
    deadline = clock.now + 10
    starts: list[float] = []

    def slow_failure(budget: float) -> Attempt:
        starts.append(clock.now)
        assert clock.now + budget == deadline  # the budget is exactly the time left
        clock.spend(min(0.3, budget))
        return Attempt(False, f"attempt {len(starts)}")

    with pytest.raises(WaitTimeout) as caught:
        wait_until(slow_failure, deadline, clock, clock.sleep)
    assert all(start < deadline for start in starts)
    assert clock.now == pytest.approx(deadline)  # never past it
    assert caught.value.last_seen == f"attempt {len(starts)}"
    # one attempt every PROBE_INTERVAL
    assert len(starts) == 20
    assert [round(b - a, 6) for a, b in zip(starts, starts[1:])] == [PROBE_INTERVAL] * 19


def test_last_sleep_is_cut_at_the_deadline() -> None:
    clock = FakeClock()
    deadline = clock.now + 1.2
    with pytest.raises(WaitTimeout):
        wait_until(lambda budget: Attempt(False, "refused"), deadline, clock, clock.sleep)
    assert clock.sleeps == pytest.approx([0.5, 0.5, 0.2])
    assert clock.now == pytest.approx(deadline)


def test_slow_attempt_is_not_followed_by_a_sleep() -> None:
    clock = FakeClock()
    deadline = clock.now + 5

    def banner_timeout(budget: float) -> Attempt:
        clock.spend(min(2.0, budget))
        return Attempt(False, NO_BANNER)

    with pytest.raises(WaitTimeout):
        wait_until(banner_timeout, deadline, clock, clock.sleep)
    assert clock.sleeps == []
    assert clock.now == deadline


def test_no_attempt_when_the_deadline_already_passed() -> None:
    clock = FakeClock()
    calls: list[float] = []
    with pytest.raises(WaitTimeout, match="no probe could run"):
        wait_until(lambda budget: calls.append(budget) or Attempt(False, "x"), clock.now, clock, clock.sleep)
    assert calls == []


def test_banner_before_login_and_old_boot_then_new_boot() -> None:
    clock = FakeClock()
    host = ScriptedHost(clock, [("old", 3.0), ("down", 20.0), ("sshd-no-login", 0.4), ("new", 100.0)])
    probe = NewBootProbe(OLD, host.login, clock, connect_timeout=5, banner=host.banner)
    started = clock.now
    outcome = wait_until(probe, started + 600, clock, clock.sleep)

    assert outcome.done and outcome.value.boot_id == NEW and outcome.value.release == "6.1.0-26-amd64"
    kinds = [kind for kind, dummy, dummy2 in host.calls]
    # every login comes right after a successful banner probe
    for index, kind in enumerate(kinds):
        if kind == "login":
            assert kinds[index - 1] == "banner"
    # no login while sshd was down
    assert "down" in host.phases_seen
    assert not [kind for kind, phase in zip(kinds, host.phases_seen) if kind == "login" and phase == "down"]
    # the new boot was noticed soon after sshd came back with logins (at +23.4 s)
    assert clock.now - (started + 23.4) < 1.0
    assert host.refused_for_penalty == 0
    # sshd answered again after the downtime: the first banner of the new boot, not of the old one
    assert probe.answered_at is not None
    assert started + 23.0 <= probe.answered_at <= started + 23.0 + BANNER_TIMEOUT + 0.1
    assert probe.answered_at < clock.now


def test_sshd_answered_is_the_new_boots_when_banners_never_stop() -> None:
    """A host whose sshd answers without a gap: the old boot's banners do not count."""
    clock = FakeClock()
    host = ScriptedHost(clock, [("old", 3.0), ("new", 100.0)])
    probe = NewBootProbe(OLD, host.login, clock, connect_timeout=5, banner=host.banner)
    started = clock.now
    outcome = wait_until(probe, started + 600, clock, clock.sleep)

    assert outcome.done
    last_old_login = max(at for (kind, at, dummy), phase in zip(host.calls, host.phases_seen) if kind == "login" and phase == "old")
    assert probe.answered_at is not None
    assert last_old_login < probe.answered_at <= started + 3.0 + SAME_BOOT_INTERVAL + 0.1


@pytest.mark.parametrize("refusing", [1.0, 2.0, 8.0, 30.0, 90.0])
def test_logins_refused_during_boot_do_not_get_us_locked_out(refusing: float) -> None:
    """A non-root user's logins fail while /run/nologin exists; sshd must never lock us out."""
    clock = FakeClock()
    host = ScriptedHost(clock, [("old", 5.0), ("down", 20.0), ("sshd-no-login", refusing), ("new", 100.0)])
    probe = NewBootProbe(OLD, host.login, clock, connect_timeout=5, banner=host.banner)
    started = clock.now
    outcome = wait_until(probe, started + 600, clock, clock.sleep)
    assert outcome.value.boot_id == NEW
    assert host.refused_for_penalty == 0
    logins_open = started + 25.0 + refusing
    # the spacing after a refusal costs at most about one failed login's penalty
    assert clock.now - logins_open < PENALTY_AUTHFAIL + 1.5
    refused_logins = [when for (kind, when, dummy), phase in zip(host.calls, host.phases_seen) if kind == "login" and phase == "sshd-no-login"]
    assert refused_logins, "the scenario must exercise refused logins"
    if len(refused_logins) >= 2:
        # the first retry comes at the normal pace; only then do the penalties force a pause
        assert refused_logins[1] - refused_logins[0] < 1.0


def test_without_penalty_spacing_the_scripted_sshd_locks_us_out() -> None:
    """The scripted sshd really enforces penalties: retrying every half second gets refused."""
    clock = FakeClock()
    host = ScriptedHost(clock, [("sshd-no-login", 1000.0)])
    for dummy in range(6):
        if host.banner(BANNER_TIMEOUT, BANNER_WAIT):
            with pytest.raises(ProbeFailed):
                host.login(15.0)
        clock.sleep(0.5)
    assert host.refused_for_penalty > 0


def test_a_forwarder_for_a_down_host_gets_few_connections_and_no_detection_delay() -> None:
    """QEMU user networking or a TCP proxy accepts while the host is down; each probe we drop there
    reaches sshd later as an unauthenticated connection. Holding them keeps the burst small."""
    clock = FakeClock()
    host = ScriptedHost(clock, [("old", 2.0), ("forwarded-down", 60.0), ("new", 100.0)])
    probe = NewBootProbe(OLD, host.login, clock, connect_timeout=5, banner=host.banner)
    started = clock.now
    outcome = wait_until(probe, started + 600, clock, clock.sleep)

    assert outcome.done and outcome.value.boot_id == NEW
    # one connection per 10 s while the forwarder holds them: a few noauth penalties at sshd's
    # start, far under its 15 s limit (dropping them after 2 s made 30, after 6 s 10)
    assert host.forwarded_while_down <= 7
    # the held connection sees sshd as soon as it starts: no detection delay for holding
    assert probe.answered_at == pytest.approx(started + 62.0, abs=0.1)
    assert clock.now - (started + 62.0) < 1.0


def test_banner_probe_budget_is_short() -> None:
    clock = FakeClock()
    host = ScriptedHost(clock, [("down", 1000.0)])
    probe = NewBootProbe(OLD, host.login, clock, connect_timeout=5, banner=host.banner)
    deadline = clock.now + 29  # not a multiple of the banner timeout: the last probe gets less
    with pytest.raises(WaitTimeout) as caught:
        wait_until(probe, deadline, clock, clock.sleep)
    assert caught.value.last_seen == NO_BANNER
    budgets = [budget for kind, dummy, budget in host.calls if kind == "banner"]
    assert max(budgets) == BANNER_TIMEOUT and budgets[-1] == pytest.approx(1.0)
    assert clock.now == pytest.approx(deadline)
    assert not [kind for kind, dummy, dummy2 in host.calls if kind == "login"]


def test_old_boot_is_probed_once_a_second() -> None:
    clock = FakeClock()
    host = ScriptedHost(clock, [("old", 1000.0)])
    probe = NewBootProbe(OLD, host.login, clock, connect_timeout=5, banner=host.banner)
    with pytest.raises(WaitTimeout) as caught:
        wait_until(probe, clock.now + 10, clock, clock.sleep)
    assert caught.value.last_seen == SAME_BOOT
    banner_starts = [when for kind, when, dummy in host.calls if kind == "banner"]
    assert [round(b - a, 6) for a, b in zip(banner_starts, banner_starts[1:])] == [SAME_BOOT_INTERVAL] * (len(banner_starts) - 1)


def test_login_only_probing_without_banner() -> None:
    clock = FakeClock()
    host = ScriptedHost(clock, [("down", 4.0), ("new", 100.0)])
    probe = NewBootProbe(OLD, host.login, clock, connect_timeout=5)
    outcome = wait_until(probe, clock.now + 60, clock, clock.sleep)
    assert outcome.value.boot_id == NEW
    assert {kind for kind, dummy, dummy2 in host.calls} == {"login"}


def test_hanging_logins_are_bounded_by_the_deadline() -> None:
    clock = FakeClock()
    host = ScriptedHost(clock, [("hang", 1000.0)])
    probe = NewBootProbe(OLD, host.login, clock, connect_timeout=5, banner=host.banner)
    deadline = clock.now + 40
    with pytest.raises(WaitTimeout) as caught:
        wait_until(probe, deadline, clock, clock.sleep)
    assert caught.value.last_seen.startswith(LOGIN_FAILS)
    assert clock.now <= deadline
    logins = [(when, budget) for kind, when, budget in host.calls if kind == "login"]
    assert all(budget <= 15.0 for dummy, budget in logins)  # connect_timeout + LOGIN_GRACE
    assert all(when + budget <= deadline for when, budget in logins)


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("Welcome to web1\n" + state(OLD) + "Connection to web1 closed.\n", SAME_BOOT),
        ("Broadcast message from root@web1:\nThe system will reboot now!\n" + state(OLD)[:30], NO_BOOT_ID),
        (state(NEW[:20]), NO_BOOT_ID),
        ("", NO_BOOT_ID),
    ],
)
def test_noisy_or_partial_output_is_not_a_new_boot(output: str, expected: str) -> None:
    clock = FakeClock()
    outcome = NewBootProbe(OLD, lambda timeout: CommandResult(0, output, ""), clock, connect_timeout=5)(100.0)
    assert not outcome.done and outcome.detail == expected


def test_new_boot_with_noise_and_uppercase_is_found() -> None:
    clock = FakeClock()
    output = "Last login: Tue Jan  6 10:00:00 2026\r\n" + state(NEW.upper()).replace("\n", "\r\n") + "Connection to web1 closed.\r\n"
    outcome = NewBootProbe(OLD.upper(), lambda timeout: CommandResult(0, output, ""), clock, connect_timeout=5)(100.0)
    assert outcome.done and outcome.value.boot_id == NEW


def test_failed_state_command_is_a_failed_login() -> None:
    clock = FakeClock()
    outcome = NewBootProbe(OLD, lambda timeout: CommandResult(1, state(NEW), "sudo: a password is required"), clock, connect_timeout=5)(100.0)
    assert not outcome.done and "sudo: a password is required" in outcome.detail


def test_test_command_retried_until_it_succeeds() -> None:
    clock = FakeClock()
    answers = [CommandResult(1, "", "whoami: cannot find name for user ID 1000"), CommandResult(0, "deploy\n", "")]

    def login(timeout: float) -> CommandResult:
        clock.spend(0.2)
        return answers.pop(0)

    outcome = wait_until(TestCommandProbe(login, 15.0, "whoami"), clock.now + 60, clock, clock.sleep)
    assert outcome.done and outcome.value.stdout == "deploy\n"


def test_test_command_failure_is_reported_at_the_deadline() -> None:
    clock = FakeClock()
    with pytest.raises(WaitTimeout, match=r"test_command 'healthcheck' kept failing: rc 127, sh: 1: healthcheck: not found$"):
        wait_until(TestCommandProbe(lambda timeout: CommandResult(127, "", "sh: 1: healthcheck: not found\n"), 15.0, "healthcheck"),
                   clock.now + 3, clock, clock.sleep)


def test_item15_test_command_failure_outlives_a_last_attempt_cut_short() -> None:
    """The last attempt gets what is left before the deadline (0.2 s) and times out; the cause is the rc before."""
    clock = FakeClock()
    deadline = clock.now + 5

    def login(timeout: float) -> CommandResult:
        if deadline - clock.now <= 0.5:
            clock.spend(timeout)
            raise ProbeFailed(f"no answer within {timeout:.1f}s")
        clock.spend(0.3)
        return CommandResult(127, "", "sh: 1: FAIL: not found\n")

    with pytest.raises(WaitTimeout) as caught:
        wait_until(TestCommandProbe(login, 15.0, "FAIL"), deadline, clock, clock.sleep)
    assert caught.value.last_seen == "a new boot, but test_command 'FAIL' kept failing: rc 127, sh: 1: FAIL: not found"


def test_test_command_that_never_answered_says_so() -> None:
    clock = FakeClock()

    def login(timeout: float) -> CommandResult:
        clock.spend(timeout)
        raise ProbeFailed(f"no answer within {timeout:.1f}s")

    with pytest.raises(WaitTimeout, match=r"test_command could not run \(no answer within"):
        wait_until(TestCommandProbe(login, 1.0, "whoami"), clock.now + 3, clock, clock.sleep)


def test_boot_time_probe_waits_for_a_change() -> None:
    clock = FakeClock()
    answers = [CommandResult(0, "10:00\n", ""), CommandResult(1, "", "uptime: busy"), CommandResult(0, "10:05\n", "")]
    seen: list[str] = []
    outcome = wait_until(BootTimeProbe(lambda timeout: answers.pop(0), 15.0, "10:00"), clock.now + 60, clock, clock.sleep,
                         observe=lambda attempt: seen.append(attempt.detail))
    assert outcome.value == "10:05"
    assert seen[:2] == [BOOT_TIME_UNCHANGED, "a new boot_id, but boot_time_command failed (rc 1, uptime: busy)"]


def test_boot_finished_waits_for_running() -> None:
    clock = FakeClock()
    answers = ["starting\n", "starting\n", "degraded\n"]
    outcome = wait_until(BootFinishedProbe(lambda timeout: CommandResult(1, answers.pop(0), ""), 15.0), clock.now + 60, clock, clock.sleep)
    assert outcome.value == "degraded"
    assert clock.sleeps == [PROBE_INTERVAL, PROBE_INTERVAL]


def test_boot_never_finishing_names_the_state() -> None:
    clock = FakeClock()
    with pytest.raises(WaitTimeout, match=r"never finished booting \(systemctl is-system-running: starting\)"):
        wait_until(BootFinishedProbe(lambda timeout: CommandResult(1, "starting\n", ""), 15.0), clock.now + 5, clock, clock.sleep)


def test_maintenance_mode_aborts_the_wait() -> None:
    clock = FakeClock()
    with pytest.raises(WaitAborted, match="emergency or rescue"):
        wait_until(BootFinishedProbe(lambda timeout: CommandResult(1, "maintenance\n", ""), 15.0), clock.now + 60, clock, clock.sleep)


# Real boundaries: threads and sockets ------------------------------------------------------------


def test_call_with_bound_abandons_a_hanging_call_and_resets() -> None:
    release = threading.Event()
    resets: list[float] = []

    def hanging_login() -> str:
        release.wait(10)
        return "late answer"

    def reset() -> None:
        resets.append(time.monotonic())
        release.set()  # like `ssh -O stop`: the hung session ends

    started = time.monotonic()
    with pytest.raises(ProbeFailed, match=r"no answer within 0\.2s"):
        call_with_bound(hanging_login, 0.2, reset)
    assert 0.2 <= time.monotonic() - started < 1.0
    assert len(resets) == 1


def test_item11_hung_login_process_is_killed() -> None:
    """The ssh connection plugin runs each login as an ssh process; `ssh -O stop` does not end a hung one."""
    processes: list[subprocess.Popen[bytes]] = []

    def ssh_like_login() -> int:
        process = subprocess.Popen(["sleep", "30"])  # pylint: disable=consider-using-with
        processes.append(process)
        return process.wait()

    with tracking_subprocesses():
        started = time.monotonic()
        with pytest.raises(ProbeFailed):
            call_with_bound(ssh_like_login, 0.3, lambda: None)
        assert time.monotonic() - started < 1.0
    assert processes[0].wait(timeout=2) == -signal.SIGKILL
    # outside a bounded call nothing is tracked, and afterwards Popen is the original again
    with tracking_subprocesses():
        assert subprocess.run(["true"], check=True).returncode == 0
    assert subprocess.Popen.__name__ == "Popen" and subprocess.Popen.__module__ == "subprocess"


def test_item11_resolver_that_hangs_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def hanging_getaddrinfo(*args: t.Any, **kwargs: t.Any) -> t.Any:
        release.wait(10)
        raise socket.gaierror("late")

    monkeypatch.setattr(socket, "getaddrinfo", hanging_getaddrinfo)
    started = time.monotonic()
    assert resolve_address("web1.example", 22, 0.3) is None
    assert time.monotonic() - started < 1.0
    release.set()


def test_resolve_address() -> None:
    assert resolve_address("127.0.0.1", 22, 1.0) == "127.0.0.1"
    assert resolve_address("localhost", 22, 2.0) in ("127.0.0.1", "::1")
    assert resolve_address("no-such-host.invalid", 22, 2.0) is None


def test_new_boot_phases_are_told_once() -> None:
    clock = FakeClock()
    host = ScriptedHost(clock, [("old", 3.0), ("down", 20.0), ("new", 100.0)])
    phases: list[tuple[str, float]] = []
    probe = NewBootProbe(OLD, host.login, clock, connect_timeout=5, banner=host.banner, on_phase=lambda name: phases.append((name, clock.now)))
    started = clock.now
    wait_until(probe, started + 600, clock, clock.sleep)
    assert [name for name, dummy in phases] == [HOST_DOWN, SSHD_BACK]
    assert 3.0 <= phases[0][1] - started <= 3.0 + BANNER_TIMEOUT + SAME_BOOT_INTERVAL
    assert 23.0 <= phases[1][1] - started <= 23.0 + BANNER_TIMEOUT + 0.1
    assert not probe.old_boot_answered_last


def test_old_boot_answering_at_the_deadline_is_known() -> None:
    clock = FakeClock()
    host = ScriptedHost(clock, [("old", 1000.0)])
    probe = NewBootProbe(OLD, host.login, clock, connect_timeout=5)
    with pytest.raises(WaitTimeout):
        wait_until(probe, clock.now + 10, clock, clock.sleep)
    assert probe.old_boot_answered_last and probe.down_at is None


def test_call_with_bound_returns_and_reraises() -> None:
    assert call_with_bound(lambda: 42, 5.0, lambda: None) == 42
    with pytest.raises(KeyError):
        call_with_bound(lambda: {}["missing"], 5.0, lambda: None)


class BannerServer:
    """A local TCP server that answers each connection with `greeting` after `delay` seconds."""

    def __init__(self, greeting: bytes, delay: float = 0.0) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(5)
        self.port = self.listener.getsockname()[1]
        self.greeting = greeting
        self.delay = delay
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        try:
            connection, dummy = self.listener.accept()
        except OSError:
            return
        with connection:
            time.sleep(self.delay)
            if self.greeting:
                try:
                    connection.sendall(self.greeting)
                except OSError:
                    return
            time.sleep(0.5)

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize(
    ("greeting", "expected"),
    [
        (b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n", True),
        (b"SSH-1.99-OpenSSH_3.9\r\n", True),
        (b"This host is monitored.\r\nSSH-2.0-OpenSSH_10.0\r\n", True),  # RFC 4253: lines before the banner
        (b"220 mail ESMTP\r\n", False),
        (b"", False),  # accepts, says nothing (a QEMU port forward while the guest boots)
    ],
)
def test_read_ssh_banner(greeting: bytes, expected: bool) -> None:
    server = BannerServer(greeting)
    try:
        started = time.monotonic()
        assert read_ssh_banner("127.0.0.1", server.port, 0.3) is expected
        assert time.monotonic() - started < 1.0
    finally:
        server.close()


def test_read_ssh_banner_waits_for_a_slow_banner_within_its_timeout() -> None:
    server = BannerServer(b"SSH-2.0-OpenSSH_9.2\r\n", delay=0.2)
    try:
        assert read_ssh_banner("127.0.0.1", server.port, 1.0) is True
    finally:
        server.close()


def test_read_ssh_banner_waits_longer_for_the_banner_than_for_the_connect() -> None:
    server = BannerServer(b"SSH-2.0-OpenSSH_10.0\r\n", delay=0.5)
    try:
        assert read_ssh_banner("127.0.0.1", server.port, 0.2, wait=2.0) is True
    finally:
        server.close()
    silent = BannerServer(b"", delay=3.0)
    try:
        started = time.monotonic()
        assert read_ssh_banner("127.0.0.1", silent.port, 0.2, wait=0.6) is False
        assert 0.5 < time.monotonic() - started < 2.0
    finally:
        silent.close()


def test_item11_banner_probe_never_resolves_names(name_lookups: list[tuple[str, int]]) -> None:
    """A name would need DNS, which no socket timeout bounds: the probe takes addresses only."""
    lookups = name_lookups
    server = BannerServer(b"SSH-2.0-OpenSSH_9.2\r\n")
    try:
        assert read_ssh_banner("localhost", server.port, 0.5) is False
        assert read_ssh_banner("127.0.0.1", server.port, 0.5) is True
    finally:
        server.close()
    assert lookups and all(flags & socket.AI_NUMERICHOST for host, flags in lookups)


def test_read_ssh_banner_on_a_closed_port() -> None:
    server = BannerServer(b"")
    server.close()  # nothing listens any more: connection refused
    assert read_ssh_banner("127.0.0.1", server.port, 1.0) is False
    assert read_ssh_banner("127.0.0.1", server.port, 0) is False
