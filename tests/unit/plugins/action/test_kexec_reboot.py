# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The kexec_reboot action: its pure helpers, and whole runs against a simulated host.

Only the transport is replaced (the connection, _low_level_execute_command and _execute_module):
a SimulatedHost answers the action's commands, goes down when the trigger arrives and comes back in
a new boot, all on a driven clock. Everything the action decides runs for real.
"""

from __future__ import annotations

import ast
import os
import re
import signal
import socket
import subprocess
import threading
import time
import typing as t
import uuid
from types import SimpleNamespace

import pytest
import yaml

from ansible.errors import AnsibleActionFail, AnsibleAuthenticationFailure, AnsibleConnectionFailure, AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.playbook.play_context import PlayContext

from ansible_collections.fastreboot.kexec.plugins.action import kexec_reboot
from ansible_collections.fastreboot.kexec.plugins.module_utils._loader import KexecLoader, LoadError, LoadRequest
from ansible_collections.fastreboot.kexec.plugins.module_utils._codes import LOAD_DISABLED, NO_CAP_SYS_BOOT
from ansible_collections.fastreboot.kexec.plugins.module_utils._support import LOAD_DISABLED_PROBLEM
from ansible_collections.fastreboot.kexec.plugins.action.kexec_reboot import (
    ARGUMENT_SPEC,
    ActionModule,
    OptionError,
    PreflightError,
    RebootOptions,
    expectation_from_info,
    expectation_from_load,
    timeout_message,
)
from ansible_collections.fastreboot.kexec.plugins.doc_fragments.load_options import ModuleDocFragment
from ansible_collections.fastreboot.kexec.plugins.plugin_utils._hoststate import HOST_STATE_COMMAND, SYSTEM_STATE_COMMAND
from ansible_collections.fastreboot.kexec.plugins.plugin_utils._proof import Expectation
from ansible_collections.fastreboot.kexec.plugins.plugin_utils._wait import ProbeFailed, tracking_subprocesses
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils import layouts
from ansible_collections.fastreboot.kexec.tests.unit.plugins.module_utils.hosttree import FakeKexec, HostTree

# `systemd-analyze time` of a trixie lab VM (2026-12-02), with its second line
STARTUP_FINISHED = "Startup finished in 9.179s (kernel) + 14.935s (userspace) = 24.114s \ngraphical.target reached after 14.924s in userspace.\n"

ORIGINAL_POPEN = subprocess.Popen

PROGRAMS = {
    "systemctl": "/usr/bin/systemctl", "systemd-run": "/usr/bin/systemd-run", "kexec": "/usr/sbin/kexec", "setsid": "/usr/bin/setsid",
    "shutdown": "/usr/sbin/shutdown",
}
# A reboot_command of the operator's own (cold_fallback)
SITE_REBOOT = "/usr/local/sbin/site-reboot --reason 'kernel update'"
OLD = str(uuid.uuid4())
NEW = str(uuid.uuid4())
RELEASE_BEFORE = "6.1.0-25-amd64"
RELEASE_LOADED = "6.1.0-26-amd64"
CMDLINE_BEFORE = "BOOT_IMAGE=/boot/vmlinuz-6.1.0-25-amd64 root=UUID=0b7d6e2c-6e1f-4a58-9c52-3d1c1f0e2a77 ro quiet"
CMDLINE_LOADED = "root=UUID=0b7d6e2c-6e1f-4a58-9c52-3d1c1f0e2a77 ro quiet console=ttyS0,115200"


# Pure helpers -----------------------------------------------------------------------------------


def options_from(args: dict[str, t.Any]) -> RebootOptions:
    validated = ArgumentSpecValidator(ARGUMENT_SPEC).validate(args)
    assert not validated.error_messages, validated.error_messages
    return RebootOptions.from_params(validated.validated_parameters, args)


def documented_options() -> dict[str, dict[str, t.Any]]:
    tree = ast.parse(open(kexec_reboot.__file__.replace("/action/", "/modules/"), encoding="utf-8").read())
    docs = next(node.value.value for node in tree.body if isinstance(node, ast.Assign) and node.targets[0].id == "DOCUMENTATION")
    options = dict(yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"])
    options.update(yaml.safe_load(docs)["options"])
    return options


def test_documentation_matches_the_argument_spec() -> None:
    documented = documented_options()
    assert set(documented) == set(ARGUMENT_SPEC)
    for name, spec in ARGUMENT_SPEC.items():
        doc = documented[name]
        assert doc["type"] == spec["type"], name
        assert doc.get("default") == spec.get("default"), name
        assert doc.get("choices") == spec.get("choices"), name
        assert doc.get("elements") == spec.get("elements"), name


def test_defaults() -> None:
    options = options_from({})
    assert options.load_args == {
        "kernel": "default", "initrd": "auto", "cmdline": None, "append": [], "remove": [],
        "syscall": "auto", "allow_unsafe_files": False,
    }
    assert (options.method, options.reboot_timeout, options.connect_timeout, options.test_command) == ("auto", 600, 5, "whoami")
    assert options.wait_for_boot_finished and not options.allow_fallback and not options.use_loaded
    assert options.msg == kexec_reboot.DEFAULT_MSG
    # ansible.builtin.reboot's defaults: its boot_time_command reads the boot_id we read anyway, its search_paths first
    assert options.boot_time_command is None and (options.pre_reboot_delay, options.post_reboot_delay) == (0, 0.0)
    assert options.search_folders == ("/sbin", "/bin", "/usr/sbin", "/usr/bin", "/usr/local/sbin")


def test_ad_hoc_string_values_are_converted() -> None:
    # `ansible all -m fastreboot.kexec.kexec_reboot -a 'kernel=latest reboot_timeout=900 use_loaded=no'`
    options = options_from({"kernel": "latest", "reboot_timeout": "900", "allow_fallback": "yes", "msg": ""})
    assert options.load_args["kernel"] == "latest"
    assert options.reboot_timeout == 900 and options.allow_fallback is True and options.msg == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"reboot_timeout": 0}, "reboot_timeout must be at least 1"),
        ({"post_reboot_delay": "inf"}, "post_reboot_delay must be a number of seconds"),
        ({"reboot_command": "systemctl kexec"}, "reboot_command is not supported without cold_fallback: kexec_reboot starts the kexec itself"),
        ({"reboot_command": " ", "cold_fallback": True}, "reboot_command must not be empty"),
        ({"search_paths": ["usr/sbin"]}, "search_paths entries must be absolute folders"),
        ({"search_paths": ["/usr/sbin;reboot"]}, "not '/usr/sbin;reboot'"),
        ({"search_paths": ["/usr/$(id)"]}, "search_paths entries must be absolute folders"),
        ({"search_paths": ["/usr/../tmp"]}, "search_paths entries must be absolute folders"),
        ({"connect_timeout": 0}, "connect_timeout must be at least 1"),
        ({"connect_timeout": 60, "reboot_timeout": 60}, "must be shorter than reboot_timeout"),
        ({"use_loaded": True, "kernel": "latest"}, "so kernel would be ignored"),
        ({"use_loaded": True, "append": [], "syscall": "file"}, "so append, syscall would be ignored"),
        ({"expect_release": "6.1.0 6.2.0"}, "expect_release must be a kernel release"),
        ({"expect_release": " "}, "expect_release must be a kernel release"),
        ({"test_command": " "}, "test_command must not be empty"),
    ],
)
def test_bad_options(args: dict[str, t.Any], message: str) -> None:
    with pytest.raises(OptionError, match=re.escape(message)):
        options_from(args)


def test_reboot_command_refusal_says_why_and_what_instead() -> None:
    with pytest.raises(OptionError) as caught:
        options_from({"reboot_command": "shutdown -r now"})
    assert "choose the kexec trigger with method" in str(caught.value) and "ansible.builtin.reboot" in str(caught.value)
    assert "Set cold_fallback=true to use it as the ordinary reboot of a host that cannot kexec" in str(caught.value)


@pytest.mark.parametrize(
    ("args", "pre", "post"),
    [
        ({"post_reboot_delay": -0.5}, 0, 0.0),  # the builtin's int() makes -0.5 a 0; here it failed type conversion
        ({"pre_reboot_delay": -3, "post_reboot_delay": 1.5}, 0, 1.5),
        ({"pre_reboot_delay": 2.7, "post_reboot_delay": "4"}, 2, 4.0),  # whole seconds on the host, fraction dropped
    ],
)
def test_delays_are_taken_like_the_builtin(args: dict[str, t.Any], pre: int, post: float) -> None:
    options = options_from(args)
    assert (options.pre_reboot_delay, options.post_reboot_delay) == (pre, post)
    assert isinstance(options.pre_reboot_delay, int)


def test_search_paths_come_first_then_the_default_folders() -> None:
    options = options_from({"search_paths": ["/lib/molly-guard", "/usr/bin/"]})
    assert options.search_folders == ("/lib/molly-guard", "/usr/bin", "/sbin", "/bin", "/usr/sbin", "/usr/local/sbin")
    # a bare string, as the builtin takes it, is one folder
    assert options_from({"search_paths": "/opt/bin"}).search_folders[0] == "/opt/bin"


def test_builtin_default_boot_time_command_adds_nothing() -> None:
    assert options_from({"boot_time_command": "cat  /proc/sys/kernel/random/boot_id "}).boot_time_command is None
    assert options_from({"boot_time_command": ""}).boot_time_command is None
    assert options_from({"boot_time_command": "uptime -s"}).boot_time_command == "uptime -s"


def test_use_loaded_alone_is_fine() -> None:
    options = options_from({"use_loaded": True, "expect_release": " 6.1.0-26-amd64 "})
    assert options.use_loaded and options.expect_release == RELEASE_LOADED


def load_result(**changes: t.Any) -> dict[str, t.Any]:
    result: dict[str, t.Any] = {
        "changed": True, "loaded": True, "kernel": "/boot/vmlinuz-6.1.0-26-amd64", "kernel_release": RELEASE_LOADED,
        "kernel_selected_by": "latest", "initrd": "/boot/initrd.img-6.1.0-26-amd64", "cmdline": CMDLINE_LOADED,
        "syscall": "file", "boot_id": OLD, "running_release": RELEASE_BEFORE,
        "support": {"supported": True, "verdict": "kexec works here"}, "msg": "loaded /boot/vmlinuz-6.1.0-26-amd64",
    }
    result.update(changes)
    return result


def info_result(record: dict[str, t.Any] | None, kexec_loaded: bool = True) -> dict[str, t.Any]:
    return {
        "changed": False, "support": {"supported": True, "verdict": "kexec works here"},
        "loaded": {"kexec_loaded": kexec_loaded, "record": record, "boot_id": OLD},
        "kernels": {"running_release": RELEASE_BEFORE}, "boot_id": OLD,
    }


def test_use_loaded_jumps_although_loading_is_disabled() -> None:
    # kernel.kexec_load_disabled stops further loads, not the jump into the image loaded before.
    record = {"kernel": "/boot/vmlinuz-6.1.0-26-amd64", "kernel_release": RELEASE_LOADED, "cmdline": CMDLINE_LOADED}
    disabled = {
        "supported": False, "verdict": "kexec not possible: " + LOAD_DISABLED_PROBLEM, "problems": [LOAD_DISABLED_PROBLEM], "problem_codes": [LOAD_DISABLED],
    }
    info = dict(info_result(record), support=disabled)
    assert expectation_from_info(info, None) == (Expectation(RELEASE_LOADED, CMDLINE_LOADED), [])
    # Nothing loaded, or a problem that also stops the jump (no CAP_SYS_BOOT): refused, naming it.
    with pytest.raises(PreflightError, match="kexec_load_disabled=1"):
        expectation_from_info(dict(info_result(None, kexec_loaded=False), support=disabled), None)
    no_cap = "the process lacks CAP_SYS_BOOT: run as root (become: true)"
    both = dict(disabled, problems=[LOAD_DISABLED_PROBLEM, no_cap], problem_codes=[LOAD_DISABLED, NO_CAP_SYS_BOOT])
    with pytest.raises(PreflightError, match=r"nothing was rebooted: the process lacks CAP_SYS_BOOT: run as root \(become: true\)$"):
        expectation_from_info(dict(info_result(record), support=both), None)


def test_expectation_from_load() -> None:
    assert expectation_from_load(load_result(), None, False) == Expectation(RELEASE_LOADED, CMDLINE_LOADED)
    assert expectation_from_load(load_result(kernel_release=None), RELEASE_LOADED, False) == Expectation(RELEASE_LOADED, CMDLINE_LOADED)
    # check mode: kexec_load only says what it would load
    assert expectation_from_load(load_result(loaded=False), None, True).release == RELEASE_LOADED


@pytest.mark.parametrize(
    ("changes", "expect_release", "message"),
    [
        ({"failed": True, "msg": "/boot/vmlinuz-9 does not exist"}, None, "kexec_load failed, nothing was rebooted: /boot/vmlinuz-9 does not exist"),
        ({"support": {"supported": False, "verdict": "kexec is disabled (kernel.kexec_load_disabled=1)"}}, None, "kexec_load_disabled=1"),
        ({"support": None}, None, "no support facts"),
        ({"loaded": False}, None, "did not leave an image loaded"),
        ({}, "6.1.0-27-amd64", "expect_release is 6.1.0-27-amd64 but kernel=/boot/vmlinuz-6.1.0-26-amd64 is 6.1.0-26-amd64"),
    ],
)
def test_load_preflight_failures(changes: dict[str, t.Any], expect_release: str | None, message: str) -> None:
    with pytest.raises(PreflightError, match=re.escape(message)):
        expectation_from_load(load_result(**changes), expect_release, False)


def test_expectation_from_info() -> None:
    record = {"kernel": "/boot/vmlinuz-6.1.0-26-amd64", "kernel_release": RELEASE_LOADED, "cmdline": CMDLINE_LOADED}
    assert expectation_from_info(info_result(record), None) == (Expectation(RELEASE_LOADED, CMDLINE_LOADED), [])
    with pytest.raises(PreflightError, match="use_loaded=true but no kexec image is loaded"):
        expectation_from_info(info_result(None, kexec_loaded=False), None)
    with pytest.raises(PreflightError, match="expect_release is 6.1.0-9-amd64 but the loaded image"):
        expectation_from_info(info_result(record), "6.1.0-9-amd64")
    unknown, warnings = expectation_from_info(info_result(None), None)
    assert unknown == Expectation(None, None) and "only the new boot_id is verified" in warnings[0]
    expected, warnings = expectation_from_info(info_result(None), RELEASE_LOADED)
    assert expected == Expectation(RELEASE_LOADED, None) and "kernel 6.1.0-26-amd64 is expected" in warnings[0]


def test_timeout_message_names_deadline_kernel_last_seen_and_console() -> None:
    message = timeout_message(options_from({"reboot_timeout": 300}), "before the host came back in a new boot",
                              Expectation(RELEASE_LOADED, CMDLINE_LOADED), "the sshd banner never came back")
    assert "reboot_timeout (300s" in message and RELEASE_LOADED in message
    assert "Last seen: the sshd banner never came back" in message and message.endswith("Look at the host's console")


# Whole runs against a simulated host -------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds


def is_trigger(cmd: str) -> bool:
    # the preflight names the programs too (it looks them up)
    return not cmd.startswith(HOST_STATE_COMMAND) and any(
        word in cmd for word in ("systemd-run", "setsid", "systemctl --no-block kexec", "systemctl --no-block reboot", "site-reboot")
    )


class SimulatedHost:
    """Answers the action's commands; the trigger starts a reboot that ends in `outcome`."""

    def __init__(self, clock: FakeClock, outcome: str = "kexec", down_for: float = 20.0, systemd: bool = True,
                 kexec_loaded: bool = True, boot_states: list[str] | None = None, drop_trigger: bool = False,
                 trigger_error: Exception | None = None, programs: dict[str, str] | None = None,
                 events: list[tuple[str, str]] | None = None) -> None:
        self.clock = clock
        self.outcome = outcome  # kexec | firmware (or cold: the running kernel again) | never
        self.down_for = down_for
        self.systemd = systemd
        self.kexec_loaded = kexec_loaded
        self.boot_states = boot_states if boot_states is not None else ["starting", "starting", "running"]
        self.drop_trigger = drop_trigger
        self.trigger_error = trigger_error  # raised by the login that sends the trigger, which then never runs
        self.programs = PROGRAMS if programs is None else programs
        self.events = events if events is not None else []
        self.boot_id, self.release, self.cmdline = OLD, RELEASE_BEFORE, CMDLINE_BEFORE
        self.boots = 1
        self.marker_removals = 0
        self.down_from: float | None = None
        self.commands: list[tuple[str, bool, bytes | None]] = []
        self.triggered_at: float | None = None

    def state_output(self) -> str:
        return (
            f"Linux web1 {self.release}\n\nfastreboot-boot-id={self.boot_id}\nfastreboot-release={self.release}\n"
            f"fastreboot-cmdline={self.cmdline}\nfastreboot-systemd={'yes' if self.systemd else 'no'}\n"
            f"fastreboot-kexec-loaded={'1' if self.kexec_loaded else '0'}\n"
        )

    def located_output(self, cmd: str) -> str:
        """What locate_command prints: the first folder of the command's list that holds each program."""
        folders = re.search(r"for fastreboot_d in (.*?); do", cmd).group(1).replace("'", "").split()  # type: ignore[union-attr]
        lines = []
        for name, path in self.programs.items():
            if path.rsplit("/", 1)[0] in folders:
                lines.append(f"fastreboot-path-{name}={path}\n")
        return "".join(lines)

    def execute(self, cmd: str, sudoable: bool = True, in_data: bytes | None = None, executable: str | None = None) -> dict[str, t.Any]:
        self.commands.append((cmd, sudoable, in_data))
        self.events.append(("command", cmd))
        if is_trigger(cmd) and self.trigger_error is not None:
            self.clock.now += 0.2
            raise self.trigger_error
        if self.down_from is not None and self.clock.now >= self.down_from:
            if self.clock.now < self.down_from + self.down_for:
                self.clock.now += 0.05
                raise AnsibleConnectionFailure("Failed to connect to the host via ssh: ssh: connect to host web1 port 22: Connection refused")
            if self.boot_id == OLD:  # the new boot
                self.boot_id = NEW
                self.boots += 1
                if self.outcome == "kexec":
                    self.release, self.cmdline = RELEASE_LOADED, CMDLINE_LOADED
                self.kexec_loaded = False
        self.clock.now += 0.2
        if cmd == HOST_STATE_COMMAND:
            return {"rc": 0, "stdout": self.state_output(), "stderr": ""}
        if cmd.startswith(HOST_STATE_COMMAND + "; "):  # the preflight: state and where the trigger's programs are
            return {"rc": 0, "stdout": self.state_output() + self.located_output(cmd), "stderr": ""}
        if "rm -f" in cmd and "kexec-requested" in cmd and not is_trigger(cmd):  # unmark_requested_command
            self.marker_removals += 1
            return {"rc": 0, "stdout": "", "stderr": ""}
        if cmd == "uptime -s":  # a boot_time_command: the time of this boot
            return {"rc": 0, "stdout": f"2026-01-06 10:0{self.boots}:00\n", "stderr": ""}
        if is_trigger(cmd):
            self.triggered_at = self.clock.now
            delay = re.search(r"--on-active=(\d+)s", cmd)
            if self.outcome != "never":
                self.down_from = self.clock.now + (int(delay.group(1)) if delay else 0) + 1.0
            if self.drop_trigger:
                raise AnsibleConnectionFailure("Shared connection to web1 closed.")
            return {"rc": 0, "stdout": "", "stderr": ""}
        if cmd == SYSTEM_STATE_COMMAND:
            word = self.boot_states.pop(0) if len(self.boot_states) > 1 else self.boot_states[0]
            # systemd-analyze prints its line once the boot has finished (recorded on the trixie lab VM)
            startup = STARTUP_FINISHED if word in ("running", "degraded") else ""
            return {"rc": 0 if word == "running" else 1, "stdout": word + "\n" + startup, "stderr": ""}
        if cmd == "whoami":
            return {"rc": 0, "stdout": "root\n", "stderr": ""}
        return {"rc": 127, "stdout": "", "stderr": f"sh: 1: {cmd.split()[0]}: not found"}

    def triggers(self) -> list[str]:
        return [cmd for cmd, dummy, dummy2 in self.commands if is_trigger(cmd)]


class FakeConnection:
    def __init__(self, transport: str = "ssh", port: int | None = None) -> None:
        self.transport = transport
        self._shell = SimpleNamespace(tmpdir=None)
        self.options: dict[str, t.Any] = {"host": "127.0.0.1", "port": port or closed_port(), "timeout": 10, "reconnection_retries": 3}
        self.set_calls: list[tuple[str, t.Any]] = []
        self.resets = 0

    def get_option(self, name: str) -> t.Any:
        return self.options[name]  # KeyError for unknown options, like ansible's plugins

    def set_option(self, name: str, value: t.Any) -> None:
        self.set_calls.append((name, value))
        self.options[name] = value

    def reset(self) -> None:
        self.resets += 1


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Run:
    """One task run: the action, its simulated host, module calls and the result."""

    def __init__(self, args: dict[str, t.Any], host_kwargs: dict[str, t.Any] | None = None, load: dict[str, t.Any] | None = None,
                 info: dict[str, t.Any] | None = None, check_mode: bool = False, connection: FakeConnection | None = None) -> None:
        self.clock = FakeClock()
        self.host = SimulatedHost(self.clock, **(host_kwargs or {}))
        self.connection = connection or FakeConnection()
        self.module_calls: list[tuple[str, dict[str, t.Any]]] = []
        self.events: list[tuple[str, str]] = []  # commands and module calls, in order
        self.host.events = self.events
        task = SimpleNamespace(args=args, async_val=0, check_mode=check_mode, action="fastreboot.kexec.kexec_reboot", no_log=False)
        self.action = ActionModule(task, self.connection, PlayContext(), loader=None, templar=None, shared_loader_obj=None)
        self.action._clock = self.clock
        self.action._sleep = self.clock.sleep
        self.action._low_level_execute_command = self.host.execute  # type: ignore[method-assign]
        answers = {kexec_reboot.LOAD_MODULE: load or load_result(), kexec_reboot.INFO_MODULE: info or info_result(None)}

        def execute_module(module_name: str, module_args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
            self.module_calls.append((module_name, module_args))
            self.events.append(("module", module_name))
            return dict(answers[module_name])

        self.action._execute_module = execute_module  # type: ignore[method-assign,assignment]

    def __call__(self) -> dict[str, t.Any]:
        return self.action.run(task_vars={})


def test_kexec_reboot_end_to_end() -> None:
    run = Run({"kernel": "latest", "append": ["console=ttyS0,115200"], "msg": "Going down; $(id)"})
    result = run()
    assert not result.get("failed"), result["msg"]
    assert result["rebooted"] and result["changed"] and not result["fallback"]
    assert (result["boot_id_before"], result["boot_id_after"]) == (OLD, NEW)
    assert (result["kernel_before"], result["kernel_after"], result["cmdline"]) == (RELEASE_BEFORE, RELEASE_LOADED, CMDLINE_LOADED)
    assert result["method"] == "systemd" and result["trigger"] == ["/usr/bin/systemctl", "--no-block", "kexec"]
    # load options passed through unchanged, and the load forced (see item 3)
    assert run.module_calls == [(kexec_reboot.LOAD_MODULE, {
        "kernel": "latest", "initrd": "auto", "cmdline": None, "append": ["console=ttyS0,115200"], "remove": [],
        "syscall": "auto", "allow_unsafe_files": False, "force": True,
    })]
    assert result["load"]["kernel_release"] == RELEASE_LOADED and result["kernel_selected_by"] == "latest"
    # before the trigger: the preflight login and the load, nothing else
    assert result["preflight"]["round_trips"] == 2 and result["preflight"]["seconds"] >= 0
    # one trigger, with become; the message on stdin only
    (trigger,) = run.host.triggers()
    sent = next(entry for entry in run.host.commands if entry[0] == trigger)
    assert sent[1] is True and sent[2] == b"Going down; $(id)\n" and "Going down" not in trigger
    # downtime: from the start of the shutdown to the first login into the new boot
    assert 20.0 <= result["downtime"] <= 23.0
    assert result["elapsed"] >= result["downtime"]
    # connection reset after the trigger, timeout and retries set for the wait and restored after it
    assert run.connection.resets >= 1
    assert ("timeout", 5) in run.connection.set_calls and ("reconnection_retries", 0) in run.connection.set_calls
    assert run.connection.options["timeout"] == 10 and run.connection.options["reconnection_retries"] == 3
    assert result["probe"] == "login"  # nothing answers on the (closed) SSH port before the reboot
    assert result["msg"].startswith("rebooted by kexec into 6.1.0-26-amd64")
    # the new boot's own split, read in the login that saw the boot finished
    assert result["startup_times"] == {"kernel": 9.179, "userspace": 14.935, "total": 24.114}


def test_pre_reboot_delay_is_on_the_host_and_excluded_from_downtime() -> None:
    run = Run({"pre_reboot_delay": 45, "post_reboot_delay": 7})
    result = run()
    assert not result.get("failed"), result["msg"]
    assert "--on-active=45s" in result["trigger"]
    # no login during the delay: the first command after the trigger comes 45 s later
    assert 20.0 <= result["downtime"] <= 23.0
    assert result["elapsed"] >= 45 + 20 + 7


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"reboot_command": "systemctl kexec"}, "reboot_command is not supported"),
        ({"search_paths": ["sbin"]}, "search_paths entries must be absolute"),
        ({"reboot": True}, "Invalid options"),
        ({"method": "kexec"}, "method"),
        ({"use_loaded": True, "cmdline": "ro"}, "would be ignored"),
    ],
)
def test_bad_input_fails_before_anything_runs(args: dict[str, t.Any], message: str) -> None:
    run = Run(args)
    with pytest.raises(AnsibleActionFail, match=message):
        run()
    assert run.module_calls == [] and run.host.commands == []


def test_local_connection_is_refused() -> None:
    run = Run({}, connection=FakeConnection(transport="local"))
    result = run()
    assert result["failed"] and "would reboot the controller" in result["msg"]
    assert run.module_calls == [] and run.host.commands == []


def test_controller_itself_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    run = Run({})
    monkeypatch.setattr(run.action, "_controller_boot_id", lambda: OLD)
    result = run()
    assert result["failed"] and "it is the controller itself" in result["msg"]
    assert run.host.triggers() == []


@pytest.mark.parametrize(
    ("load", "host_kwargs", "message"),
    [
        (load_result(support={"supported": False, "verdict": "running in a container (docker)"}), {}, "running in a container"),
        (load_result(failed=True, msg="kexec_load failed: Operation not permitted; nothing is loaded any more"), {}, "Operation not permitted"),
        (load_result(loaded=False), {}, "did not leave an image loaded"),
        (load_result(), {"systemd": False}, "method=immediate"),
    ],
)
def test_failed_preflight_reboots_nothing(load: dict[str, t.Any], host_kwargs: dict[str, t.Any], message: str) -> None:
    run = Run({}, host_kwargs=host_kwargs, load=load)
    result = run()
    assert result["failed"] and message in result["msg"]
    assert "nothing was rebooted" in result["msg"].lower()
    assert run.host.triggers() == [] and not result["rebooted"]


def test_check_mode_triggers_nothing() -> None:
    run = Run({"kernel": "latest"}, load=load_result(loaded=False, msg="would load /boot/vmlinuz-6.1.0-26-amd64"), check_mode=True)
    result = run()
    assert not result.get("failed"), result["msg"]
    assert result["changed"] and not result["rebooted"]
    assert result["method"] == "systemd" and result["trigger"] == ["/usr/bin/systemctl", "--no-block", "kexec"]
    assert run.host.triggers() == [] and len(run.host.commands) == 1 and run.host.commands[0][0].startswith(HOST_STATE_COMMAND + "; ")
    # the load ran (the task runs in check mode, so kexec_load does too): what would be loaded
    assert [name for name, dummy in run.module_calls] == [kexec_reboot.LOAD_MODULE]
    assert "would reboot into 6.1.0-26-amd64" in result["msg"]


def test_immediate_without_systemd() -> None:
    run = Run({"method": "immediate", "wait_for_boot_finished": True}, host_kwargs={"systemd": False})
    result = run()
    assert not result.get("failed"), result["msg"]
    assert result["method"] == "immediate" and result["trigger"][:2] == ["/usr/bin/setsid", "/bin/sh"]
    assert result["trigger"][3] == "sync; exec /usr/sbin/kexec -e"
    # no systemd: the boot-finished wait is skipped
    assert SYSTEM_STATE_COMMAND not in [cmd for cmd, dummy, dummy2 in run.host.commands]
    assert result["startup_times"] is None


def test_dropped_connection_during_the_trigger_is_success() -> None:
    result = Run({}, host_kwargs={"drop_trigger": True})()
    assert not result.get("failed"), result["msg"]
    assert result["rebooted"] and result["kernel_after"] == RELEASE_LOADED


def test_firmware_fallback_fails_and_names_both_kernels() -> None:
    run = Run({}, host_kwargs={"outcome": "firmware"})
    result = run()
    assert result["failed"] and result["rebooted"] and result["fallback"]
    assert result["msg"].startswith(f"expected {RELEASE_LOADED} with cmdline '{CMDLINE_LOADED}', booted {RELEASE_BEFORE} with cmdline '{CMDLINE_BEFORE}'")
    assert "through firmware" in result["msg"]


def test_allow_fallback_accepts_it_with_a_warning() -> None:
    result = Run({"allow_fallback": True}, host_kwargs={"outcome": "firmware"})()
    assert not result.get("failed"), result["msg"]
    assert result["fallback"] and result["kernel_after"] == RELEASE_BEFORE
    assert any("allowed by allow_fallback" in warning for warning in result["warnings"])
    assert "through firmware (allowed)" in result["msg"]


def test_host_that_never_goes_down_times_out_within_the_deadline() -> None:
    run = Run({"reboot_timeout": 60}, host_kwargs={"outcome": "never"})
    result = run()
    assert result["failed"] and not result["rebooted"] and result["changed"]
    assert "reboot_timeout (60s" in result["msg"] and RELEASE_LOADED in result["msg"]
    assert "boot_id is unchanged" in result["msg"] and "console" in result["msg"]
    assert run.host.triggered_at is not None
    assert run.clock.now <= run.host.triggered_at + 60 + 0.5  # the deadline bounds the task
    assert result["elapsed"] <= 60.5


def test_host_that_stays_down_reports_failed_logins() -> None:
    run = Run({"reboot_timeout": 120}, host_kwargs={"down_for": 10_000})
    result = run()
    assert result["failed"] and not result["rebooted"]
    # login-only probing (nothing answered on the SSH port before): no claim about sshd
    assert "Last seen: logins fail (Failed to connect to the host via ssh" in result["msg"]
    assert run.clock.now <= run.host.triggered_at + 120 + 0.5


def test_boot_that_never_finishes() -> None:
    result = Run({"reboot_timeout": 90}, host_kwargs={"boot_states": ["starting"]})()
    assert result["failed"] and result["rebooted"]
    assert "never finished booting (systemctl is-system-running: starting)" in result["msg"]


def test_degraded_boot_warns() -> None:
    result = Run({}, host_kwargs={"boot_states": ["degraded"]})()
    assert not result.get("failed"), result["msg"]
    assert any("degraded" in warning for warning in result["warnings"])


def test_use_loaded_without_record_verifies_boot_id_only() -> None:
    run = Run({"use_loaded": True}, info=info_result(None))
    result = run()
    assert not result.get("failed"), result["msg"]
    assert [name for name, dummy in run.module_calls] == [kexec_reboot.INFO_MODULE]
    assert result["preflight"]["round_trips"] == 2  # the preflight login and kexec_info
    assert any("what boots is unknown" in warning for warning in result["warnings"])
    assert any("only the new boot_id proves the reboot" in warning for warning in result["warnings"])
    assert result["msg"].startswith("rebooted (kexec unverified: what was loaded is unknown) into 6.1.0-26-amd64")


def test_use_loaded_checks_kexec_loaded_on_the_host() -> None:
    record = {"kernel": "/boot/vmlinuz-6.1.0-26-amd64", "kernel_release": RELEASE_LOADED, "cmdline": CMDLINE_LOADED}
    run = Run({"use_loaded": True}, info=info_result(record), host_kwargs={"kexec_loaded": False})
    result = run()
    assert result["failed"] and "/sys/kernel/kexec_loaded is 0" in result["msg"] and "nothing was rebooted" in result["msg"]
    assert run.module_calls == [] and run.host.triggers() == []


def test_use_loaded_with_nothing_loaded_fails() -> None:
    run = Run({"use_loaded": True}, info=info_result(None, kexec_loaded=False))
    result = run()
    assert result["failed"] and "no kexec image is loaded" in result["msg"]
    assert run.host.triggers() == []


class AlwaysBanner:
    """sshd that greets every connection (stands for the host's SSH port)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                connection, dummy = self.listener.accept()
            except OSError:
                return
            with connection:
                connection.sendall(b"SSH-2.0-OpenSSH_9.2p1\r\n")


def test_banner_probing_when_the_ssh_port_answers() -> None:
    server = AlwaysBanner()
    try:
        result = Run({}, connection=FakeConnection(port=server.port))()
    finally:
        server.listener.close()
    assert not result.get("failed"), result["msg"]
    assert result["probe"] == "ssh_banner"


def test_non_ssh_connection_waits_by_logins() -> None:
    result = Run({}, connection=FakeConnection(transport="community.general.lxd"))()
    assert not result.get("failed"), result["msg"]
    assert result["probe"] == "login"


# Issue 18 reproducers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        # ansible-core >= 2.17 raises the become timeout as a connection failure, 2.16 as a plain AnsibleError
        AnsibleConnectionFailure("Timeout (12s) waiting for privilege escalation prompt: "),
        AnsibleError("Timeout (12s) waiting for privilege escalation prompt: "),
        AnsibleError("Incorrect sudo password"),
        AnsibleError("Missing sudo password"),
        AnsibleConnectionFailure("Failed to connect to the host via ssh: ssh: connect to host web1 port 22: Connection refused"),
        AnsibleConnectionFailure('Data could not be sent to remote host "web1". Make sure this host can be reached over ssh: '
                                 "ssh: Could not resolve hostname web1: Name or service not known"),
        AnsibleAuthenticationFailure("Invalid/incorrect password: Permission denied, please try again."),
    ],
    ids=lambda error: f"{type(error).__name__}: {str(error)[:40]}",
)
def test_item01_become_timeout_fails_at_once(error: Exception) -> None:
    run = Run({"reboot_timeout": 600}, host_kwargs={"trigger_error": error})
    started = run.clock.now
    result = run()
    assert result["failed"] and not result["rebooted"]
    assert "the reboot trigger did not run on the host" in result["msg"] and str(error).split(":", maxsplit=1)[0] in result["msg"]
    assert "Nothing was rebooted" in result["msg"]
    assert run.clock.now - started < 5  # not the whole reboot_timeout
    assert run.host.marker_removals == 1  # best effort: the marker may have been written before the error


def test_item01_trigger_runs_with_the_connection_timeout_at_connect_timeout() -> None:
    """A stalled sudo must end in the connection's own privilege-escalation timeout (the command never ran)
    within the trigger login's bound (connect_timeout + LOGIN_GRACE): with the play's longer timeout the
    bound would abandon the login first, which reads as a host going down (seen on a lab VM: 30 s timeout)."""
    connection = FakeConnection()
    connection.options["timeout"] = 30
    run = Run({"connect_timeout": 5}, connection=connection)
    execute = run.host.execute
    seen: list[t.Any] = []

    def recording(cmd: str, sudoable: bool = True, in_data: bytes | None = None, executable: str | None = None) -> dict[str, t.Any]:
        if is_trigger(cmd):
            seen.append(connection.options["timeout"])
        return execute(cmd, sudoable, in_data, executable)

    run.action._low_level_execute_command = recording  # type: ignore[method-assign]
    result = run()
    assert not result.get("failed"), result["msg"]
    # at least TRIGGER_PROMPT_TIMEOUT (a busy host's sudo may be slow), below the trigger login's bound
    assert seen == [kexec_reboot.TRIGGER_PROMPT_TIMEOUT]
    assert connection.options["timeout"] == 30  # restored at the end of the task


def test_first_login_before_the_trigger_gets_the_connections_timeout() -> None:
    """The preflight login may be the user's first of this boot (PAM, logind, user manager): on a busy lab VM it
    took over connect_timeout + LOGIN_GRACE (15 s), so the host was refused although it was up."""
    connection = FakeConnection()
    connection.options["timeout"] = 30
    run = Run({"connect_timeout": 5}, connection=connection)
    options = options_from({"connect_timeout": 5})
    assert run.action._preflight_login_timeout(options) == 30 + 2 * kexec_reboot.LOGIN_GRACE
    # never shorter than a login of the wait
    connection.options["timeout"] = 1
    assert run.action._preflight_login_timeout(options_from({"connect_timeout": 30})) == 30 + kexec_reboot.LOGIN_GRACE


def test_sudo_refusal_as_an_answer_fails_at_once() -> None:
    """`sudo: a password is required` comes back as the command's rc 1: the same fast failure."""
    run = Run({})
    execute = run.host.execute

    def refusing(cmd: str, sudoable: bool = True, in_data: bytes | None = None, executable: str | None = None) -> dict[str, t.Any]:
        if is_trigger(cmd):
            return {"rc": 1, "stdout": "", "stderr": "sudo: a password is required\n"}
        return execute(cmd, sudoable, in_data, executable)

    run.action._low_level_execute_command = refusing  # type: ignore[method-assign]
    result = run()
    assert result["failed"] and "sudo: a password is required" in result["msg"] and run.host.marker_removals == 1


def test_connection_dropped_while_the_trigger_ran_is_going_down() -> None:
    result = Run({}, host_kwargs={"drop_trigger": True})()
    assert not result.get("failed"), result["msg"]
    assert result["rebooted"]


def test_item01_marker_removed_when_the_boot_id_never_changed() -> None:
    run = Run({"reboot_timeout": 30}, host_kwargs={"outcome": "never"})
    result = run()
    assert result["failed"] and "boot_id is unchanged" in result["msg"]
    assert run.host.marker_removals == 1
    # a host that went down and stays down is not logged into again after the deadline
    down = Run({"reboot_timeout": 30}, host_kwargs={"down_for": 10_000})
    assert down()["failed"] and down.host.marker_removals == 0


def test_item03_load_forced_right_before_the_trigger() -> None:
    run = Run({"kernel": "latest"})
    result = run()
    assert not result.get("failed"), result["msg"]

    def kind_of(kind: str, what: str) -> str:
        if kind == "module":
            return "module"
        if what.startswith(HOST_STATE_COMMAND + "; "):
            return "state"
        return "trigger" if is_trigger(what) else "other"

    kinds = [kind_of(kind, what) for kind, what in run.events]
    first_trigger = kinds.index("trigger")
    # preflight login, then the load, then at once the trigger
    assert kinds[:first_trigger + 1] == ["state", "module", "trigger"]
    assert run.module_calls[0][0] == kexec_reboot.LOAD_MODULE and run.module_calls[0][1]["force"] is True


def test_item07_controller_refused_before_the_load(monkeypatch: pytest.MonkeyPatch) -> None:
    run = Run({})
    monkeypatch.setattr(run.action, "_controller_boot_id", lambda: OLD)
    result = run()
    assert result["failed"] and "it is the controller itself" in result["msg"]
    assert run.module_calls == []  # nothing loaded on the controller
    assert [kind for kind, dummy in run.events] == ["command"]


@pytest.mark.parametrize(
    ("args", "host_kwargs", "message"),
    [
        ({}, {"systemd": False}, "method=immediate"),
        ({}, {"programs": {"kexec": "/usr/sbin/kexec"}}, "systemctl not found on the host in /sbin, /bin"),
        ({"pre_reboot_delay": 10}, {"programs": {"systemctl": "/usr/bin/systemctl"}}, "systemd-run not found"),
        ({"method": "immediate"}, {"systemd": False, "programs": {"kexec": "/usr/sbin/kexec"}}, "setsid not found"),
        ({"boot_time_command": "false"}, {}, "boot_time_command 'false' failed before the reboot"),
    ],
)
def test_item07_every_refusal_comes_before_the_load(args: dict[str, t.Any], host_kwargs: dict[str, t.Any], message: str) -> None:
    run = Run(args, host_kwargs=host_kwargs)
    result = run()
    assert result["failed"] and message in result["msg"] and "nothing was rebooted" in result["msg"].lower()
    assert run.module_calls == [] and run.host.triggers() == []


def test_item15_test_command_failure_names_its_rc_and_stderr() -> None:
    run = Run({"test_command": "FAIL", "reboot_timeout": 60})
    result = run()
    assert result["failed"] and result["rebooted"]
    assert "Last seen: a new boot, but test_command 'FAIL' kept failing: rc 127, sh: 1: FAIL: not found" in result["msg"]


class RecordingDisplay:
    """Stands for the action's Display: what it would print, at which verbosity, for which host."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, str | None]] = []

    def v(self, msg: str, host: str | None = None) -> None:
        self.lines.append(("v", msg, host))

    def vvv(self, msg: str, host: str | None = None) -> None:
        self.lines.append(("vvv", msg, host))

    def warning(self, msg: str) -> None:
        self.lines.append(("warning", msg, None))


def test_progress_one_line_per_phase_and_host(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = RecordingDisplay()
    monkeypatch.setattr(kexec_reboot, "display", recorder)
    run = Run({"kernel": "latest"})
    result = run.action.run(task_vars={"inventory_hostname": "web1"})
    assert not result.get("failed"), result["msg"]
    phases = [msg for level, msg, host in recorder.lines if level == "v"]
    assert all(host == "web1" for level, dummy, host in recorder.lines if level == "v")
    expected = ["loaded 6.1.0-26-amd64", "shutdown started", "host down", "new boot", "new boot proven", "boot finished"]
    assert len(phases) == len(expected), phases
    for line, start in zip(phases, expected):
        assert line.startswith(f"kexec_reboot: {start}"), (line, start)
    assert "(method=systemd: /usr/bin/systemctl --no-block kexec)" in phases[1]
    # every probe at -vvv, with the host
    probes = [msg for level, msg, host in recorder.lines if level == "vvv" and msg.startswith("kexec_reboot: probe: ") and host == "web1"]
    assert any("logins fail" in probe for probe in probes) and any("a new boot" in probe for probe in probes)


# Issue 19: drop-in for ansible.builtin.reboot -----------------------------------------------------


def test_every_builtin_option_is_accepted() -> None:
    from ansible.modules import reboot as builtin_doc  # pylint: disable=import-outside-toplevel
    from ansible.plugins.action.reboot import ActionModule as BuiltinReboot  # pylint: disable=import-outside-toplevel

    assert set(BuiltinReboot._VALID_ARGS) <= set(ARGUMENT_SPEC)  # pylint: disable=protected-access
    documented = documented_options()
    builtin_options = yaml.safe_load(builtin_doc.DOCUMENTATION)["options"]
    for name in ("search_paths", "boot_time_command", "test_command", "reboot_timeout", "pre_reboot_delay", "post_reboot_delay"):
        assert documented[name]["default"] == builtin_options[name]["default"], name


def test_builtin_task_with_only_the_module_name_swapped() -> None:
    # the task of extensions/molecule/resources/tasks/builtin_reboot.yml, as operators write it for the builtin
    run = Run({
        "msg": "Rebooting for a kernel update", "pre_reboot_delay": 0, "post_reboot_delay": 1.5, "reboot_timeout": 600,
        "connect_timeout": 20, "test_command": "whoami", "search_paths": ["/sbin", "/usr/sbin", "/bin", "/usr/bin"],
        "boot_time_command": "cat /proc/sys/kernel/random/boot_id",
    })
    result = run()
    assert not result.get("failed"), result["msg"]
    assert result["rebooted"] is True and result["changed"] is True
    assert isinstance(result["elapsed"], float) and result["elapsed"] >= result["downtime"] + 1.5


def test_search_paths_place_the_trigger_programs() -> None:
    programs = dict(PROGRAMS, systemctl="/opt/systemd/bin/systemctl")
    run = Run({"search_paths": ["/opt/systemd/bin"]}, host_kwargs={"programs": programs})
    result = run()
    assert not result.get("failed"), result["msg"]
    assert result["trigger"] == ["/opt/systemd/bin/systemctl", "--no-block", "kexec"]
    (trigger,) = run.host.triggers()
    assert "exec /opt/systemd/bin/systemctl --no-block kexec" in trigger


def test_boot_time_command_must_change_too() -> None:
    run = Run({"boot_time_command": "uptime -s"})
    result = run()
    assert not result.get("failed"), result["msg"]
    sent = [(cmd, sudoable) for cmd, sudoable, dummy in run.host.commands if cmd == "uptime -s"]
    assert sent[0] == ("uptime -s", True) and len(sent) == 2  # before the reboot, and once in the new boot (become, like the builtin)
    assert result["preflight"]["round_trips"] == 3  # the preflight login, boot_time_command, the load


def test_boot_time_command_that_does_not_change_fails_at_the_deadline() -> None:
    run = Run({"boot_time_command": "uptime -s", "reboot_timeout": 60})
    execute = run.host.execute

    def same_boot_time(cmd: str, sudoable: bool = True, in_data: bytes | None = None, executable: str | None = None) -> dict[str, t.Any]:
        if cmd == "uptime -s":
            run.clock.now += 0.2
            return {"rc": 0, "stdout": "2026-01-06 10:00:00\n", "stderr": ""}
        return execute(cmd, sudoable, in_data, executable)

    run.action._low_level_execute_command = same_boot_time  # type: ignore[method-assign]
    result = run()
    assert result["failed"] and result["rebooted"]
    assert "the output of boot_time_command is unchanged" in result["msg"]


def test_item11_host_resolved_once_before_the_reboot(name_lookups: list[tuple[str, int]]) -> None:
    server = AlwaysBanner()
    lookups = name_lookups
    connection = FakeConnection(port=server.port)
    connection.options["host"] = "localhost"
    try:
        result = Run({}, connection=connection)()
    finally:
        server.listener.close()
    assert not result.get("failed"), result["msg"]
    assert result["probe"] == "ssh_banner"
    by_name = [host for host, flags in lookups if not flags & socket.AI_NUMERICHOST]
    assert by_name == ["localhost"]  # once, before the reboot; every probe then connects to the address
    assert len(lookups) > 1 and all(host in ("127.0.0.1", "::1") for host, flags in lookups if flags & socket.AI_NUMERICHOST)


class HangingConnection(FakeConnection):
    """A connection whose reset blocks (paramiko's reset reconnects synchronously) until released."""

    def __init__(self) -> None:
        super().__init__(transport="paramiko_ssh")
        self.release = threading.Event()

    def reset(self) -> None:
        self.resets += 1
        self.release.wait(10)


def test_item11_blocking_reset_does_not_extend_the_bound() -> None:
    connection = HangingConnection()
    run = Run({}, connection=connection)
    hang = threading.Event()

    def hanging_login(cmd: str, sudoable: bool = True, in_data: bytes | None = None, executable: str | None = None) -> dict[str, t.Any]:
        hang.wait(10)
        return {"rc": 0, "stdout": "late", "stderr": ""}

    run.action._low_level_execute_command = hanging_login  # type: ignore[method-assign]
    started = time.monotonic()
    with pytest.raises(ProbeFailed, match=r"no answer within 0\.3s"):
        run.action._run_bounded("whoami", 0.3, sudoable=False)
    assert time.monotonic() - started < 1.0  # the reset (which blocks) runs in the background
    # the next login waits for that reset, but only within its own bound
    run.action._low_level_execute_command = lambda *args, **kwargs: {"rc": 0, "stdout": "root\n", "stderr": ""}  # type: ignore[method-assign]
    started = time.monotonic()
    with pytest.raises(ProbeFailed):
        run.action._run_bounded("whoami", 0.3, sudoable=False)
    assert time.monotonic() - started < 1.0
    connection.release.set()
    hang.set()
    assert run.action._run_bounded("whoami", 2.0, sudoable=False).stdout == "root\n"
    assert connection.resets == 1  # no second reset while the first one still ran


def test_item11_hung_ssh_login_process_is_killed() -> None:
    run = Run({})
    started_processes: list[subprocess.Popen[bytes]] = []

    def ssh_like_login(cmd: str, sudoable: bool = True, in_data: bytes | None = None, executable: str | None = None) -> dict[str, t.Any]:
        # like the ssh connection plugin: one client process per login, read until it ends
        process = subprocess.Popen(["sleep", "30"], stdout=subprocess.PIPE)  # pylint: disable=consider-using-with
        started_processes.append(process)
        out, dummy = process.communicate()
        return {"rc": process.returncode, "stdout": out, "stderr": b""}

    run.action._low_level_execute_command = ssh_like_login  # type: ignore[method-assign]
    with tracking_subprocesses():
        with pytest.raises(ProbeFailed, match=r"no answer within 0\.3s"):
            run.action._run_bounded("whoami", 0.3, sudoable=False)
    (process,) = started_processes
    assert process.wait(timeout=2) == -signal.SIGKILL  # not left behind, hanging, after the bound
    assert subprocess.Popen is ORIGINAL_POPEN  # the tracking ends with the task


# Issue 19: cold_fallback ------------------------------------------------------------------------------

DISABLED = "kernel.kexec_load_disabled=1 forbids kexec"


def real_load(tmp_path: t.Any, setup: t.Callable[[HostTree], None] | None = None, results: dict[str, tuple[int, str]] | None = None,
              check_mode: bool = False, **request: t.Any) -> dict[str, t.Any]:
    """What kexec_load returns on a fixture host (module.fail_json's keys on a failure): the real loader decides."""
    tree = HostTree(tmp_path)
    layouts.debian(tree)
    if setup is not None:
        setup(tree)
    loader = KexecLoader(FakeKexec(tree, results=results), root=str(tree.root), machine="x86_64", trusted_uid=os.getuid())
    try:
        outcome = loader.run(LoadRequest(force=True, **request), check_mode=check_mode)
    except LoadError as error:
        return dict(error.result, failed=True, msg=error.msg)
    return dict(outcome.result)


def load_disabled(tree: HostTree) -> None:
    tree.write("/proc/sys/kernel/kexec_load_disabled", "1\n")


def unsigned_under_secure_boot(tree: HostTree) -> None:
    tree.write("/sys/kernel/security/lockdown", "none [integrity] confidentiality\n")
    tree.write("/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c", b"\x06\x00\x00\x00\x01")


UNSIGNED = {"-s": (255, "kexec_file_load failed: No data available")}


def sent(run: Run, cmd: str) -> tuple[str, bool, bytes | None]:
    return next(entry for entry in run.host.commands if entry[0] == cmd)


def test_cold_fallback_reboots_a_host_with_kexec_load_disabled(tmp_path: t.Any) -> None:
    # the lab VM test: sysctl -w kernel.kexec_load_disabled=1, then kexec_reboot: {cold_fallback: true}
    load = real_load(tmp_path, load_disabled)
    assert load["failure_code"] == "unsupported"
    run = Run({"cold_fallback": True, "msg": "Going down; $(id)"}, load=load, host_kwargs={"outcome": "cold", "kexec_loaded": False})
    result = run()
    assert not result.get("failed"), result["msg"]
    assert result["method"] == "cold" and "kexec_load_disabled" in result["cold_fallback_reason"]
    assert result["rebooted"] and result["changed"] and result["fallback"] is False
    assert (result["boot_id_before"], result["boot_id_after"], result["kernel_after"]) == (OLD, NEW, RELEASE_BEFORE)
    assert result["msg"].startswith(f"rebooted cold (kexec not possible: {DISABLED}") and f"into {RELEASE_BEFORE} in " in result["msg"]
    assert result["trigger"] == ["SYSTEMCTL_SKIP_AUTO_KEXEC=1", "/usr/bin/systemctl", "--no-block", "reboot"]
    (trigger,) = run.host.triggers()
    # the marker goes first (the guard then unloads a loaded image), systemd 255+ is told not to kexec
    assert trigger.index("kexec-requested") < trigger.index("export SYSTEMCTL_SKIP_AUTO_KEXEC=1; exec /usr/bin/systemctl --no-block reboot")
    assert "systemctl --no-block kexec" not in trigger
    dummy, become, stdin = sent(run, trigger)
    assert become is True and stdin == b"Going down; $(id)\n" and "Going down" not in trigger
    # the same checks after the new boot as for a kexec: test_command, the finished boot
    later = [cmd for cmd, dummy, dummy2 in run.host.commands[run.host.commands.index(sent(run, trigger)):]]
    assert "whoami" in later and SYSTEM_STATE_COMMAND in later
    assert result["timings"]["boot_finished"] >= result["timings"]["test_command_ok"] >= result["timings"]["new_boot_seen"]


def test_cold_fallback_off_fails_as_before_and_reboots_nothing(tmp_path: t.Any) -> None:
    run = Run({}, load=real_load(tmp_path, load_disabled))
    result = run()
    assert result["failed"] and result["msg"].startswith(f"kexec_load failed, nothing was rebooted: {DISABLED}")
    assert run.host.triggers() == [] and not result["rebooted"] and "cold_fallback_reason" not in result
    assert result["method"] == "systemd"


def test_cold_fallback_does_not_cover_bad_input(tmp_path: t.Any) -> None:
    load = real_load(tmp_path, kernel="/boot/vmlinuz-9.9.9")
    assert load["failure_code"] == "input"
    run = Run({"cold_fallback": True, "kernel": "/boot/vmlinuz-9.9.9"}, load=load)
    result = run()
    assert result["failed"] and "kernel /boot/vmlinuz-9.9.9 does not exist" in result["msg"] and "nothing was rebooted" in result["msg"]
    assert run.host.triggers() == [] and run.host.marker_removals == 0
    assert result["method"] == "systemd" and "cold_fallback_reason" not in result


@pytest.mark.parametrize("code", ["kexec", "record", None])
def test_cold_fallback_only_for_the_codes_of_a_host_that_cannot_kexec(code: str | None) -> None:
    # the same words as a support problem, but the code decides, never the text
    run = Run({"cold_fallback": True}, load=load_result(failed=True, loaded=False, msg=DISABLED, failure_code=code))
    result = run()
    assert result["failed"] and run.host.triggers() == []


def test_cold_fallback_after_a_signature_refusal(tmp_path: t.Any) -> None:
    load = real_load(tmp_path, unsigned_under_secure_boot, results=UNSIGNED)
    assert load["failure_code"] == "signature"
    result = Run({"cold_fallback": True}, load=load, host_kwargs={"outcome": "cold"})()
    assert not result.get("failed"), result["msg"]
    assert result["method"] == "cold" and "it carries no signature" in result["cold_fallback_reason"]
    assert result["rebooted"] and not result["fallback"]


def test_cold_fallback_in_check_mode_reboots_nothing(tmp_path: t.Any) -> None:
    run = Run({"cold_fallback": True}, load=real_load(tmp_path, load_disabled, check_mode=True), check_mode=True)
    result = run()
    assert not result.get("failed"), result["msg"]
    assert result["method"] == "cold" and "kexec_load_disabled" in result["cold_fallback_reason"]
    assert result["msg"].startswith(f"check mode: would reboot cold because {DISABLED}")
    assert result["changed"] and not result["rebooted"]
    assert run.host.triggers() == [] and len(run.host.commands) == 1


def test_cold_fallback_progress_line(monkeypatch: pytest.MonkeyPatch, tmp_path: t.Any) -> None:
    recorder = RecordingDisplay()
    monkeypatch.setattr(kexec_reboot, "display", recorder)
    run = Run({"cold_fallback": True}, load=real_load(tmp_path, load_disabled), host_kwargs={"outcome": "cold"})
    result = run.action.run(task_vars={"inventory_hostname": "web1"})
    assert not result.get("failed"), result["msg"]
    phases = [msg for level, msg, host in recorder.lines if level == "v" and host == "web1"]
    assert phases[0] == f"kexec_reboot: kexec not possible ({result['cold_fallback_reason']}): rebooting cold (cold_fallback)"
    assert phases[1].startswith("kexec_reboot: shutdown started (method=cold: SYSTEMCTL_SKIP_AUTO_KEXEC=1 /usr/bin/systemctl --no-block reboot)")
    assert any(line.startswith("kexec_reboot: new boot proven: a new boot_id (cold reboot") for line in phases)


def test_reboot_command_is_the_cold_reboot_with_cold_fallback(tmp_path: t.Any) -> None:
    run = Run({"cold_fallback": True, "reboot_command": SITE_REBOOT, "pre_reboot_delay": 30},
              load=real_load(tmp_path, load_disabled), host_kwargs={"outcome": "cold"})
    result = run()
    assert not result.get("failed"), result["msg"]
    assert result["method"] == "cold" and result["trigger"] == ["/bin/sh", "-c", SITE_REBOOT]
    (trigger,) = run.host.triggers()
    assert trigger == SITE_REBOOT  # the user's own command, as given, with become (like the builtin)
    assert sent(run, trigger)[1] is True and sent(run, trigger)[2] is None
    # before it: wall with the message on stdin and the marker removed, pre_reboot_delay on the controller
    commands = [cmd for cmd, dummy, dummy2 in run.host.commands]
    prelude = commands[commands.index(trigger) - 1]
    assert "wall" in prelude and "kexec-requested" in prelude and sent(run, prelude)[2] == (kexec_reboot.DEFAULT_MSG + "\n").encode()
    assert run.host.marker_removals == 1
    assert run.host.triggered_at is not None and result["elapsed"] >= 30 + result["downtime"]
    assert result["msg"].startswith("rebooted cold (kexec not possible: ")


def test_reboot_command_is_not_used_where_kexec_works() -> None:
    run = Run({"cold_fallback": True, "reboot_command": SITE_REBOOT})
    result = run()
    assert not result.get("failed"), result["msg"]
    assert result["method"] == "systemd" and "cold_fallback_reason" not in result
    assert all("site-reboot" not in cmd for cmd, dummy, dummy2 in run.host.commands)
    assert result["msg"].startswith("rebooted by kexec into 6.1.0-26-amd64")


def test_reboot_command_without_cold_fallback_is_refused_before_anything() -> None:
    run = Run({"reboot_command": SITE_REBOOT})
    with pytest.raises(AnsibleActionFail, match="Set cold_fallback=true"):
        run()
    assert run.module_calls == [] and run.host.commands == []


def test_cold_fallback_without_systemd_runs_shutdown_detached(tmp_path: t.Any) -> None:
    run = Run({"cold_fallback": True, "method": "immediate", "pre_reboot_delay": 5}, load=real_load(tmp_path, load_disabled),
              host_kwargs={"outcome": "cold", "systemd": False})
    result = run()
    assert not result.get("failed"), result["msg"]
    assert result["trigger"] == ["/usr/bin/setsid", "/bin/sh", "-c", "sleep 5; exec /usr/sbin/shutdown -r now"]
    (trigger,) = run.host.triggers()
    assert trigger.endswith("</dev/null >/dev/null 2>&1 &") and "kexec -e" not in trigger


def test_cold_fallback_without_its_program_fails_before_the_reboot(tmp_path: t.Any) -> None:
    programs = {name: path for name, path in PROGRAMS.items() if name != "shutdown"}
    run = Run({"cold_fallback": True, "method": "immediate"}, load=real_load(tmp_path, load_disabled),
              host_kwargs={"systemd": False, "programs": programs})
    result = run()
    assert result["failed"] and "the cold reboot cannot run either: shutdown not found on the host" in result["msg"]
    assert "nothing was rebooted" in result["msg"] and run.host.triggers() == []


def test_cold_fallback_when_kexec_is_missing_for_method_immediate() -> None:
    programs = {name: path for name, path in PROGRAMS.items() if name != "kexec"}
    run = Run({"cold_fallback": True, "method": "immediate"}, host_kwargs={"outcome": "cold", "programs": programs})
    result = run()
    assert not result.get("failed"), result["msg"]
    assert result["method"] == "cold" and "the kexec program (kexec-tools) is not in /sbin" in result["cold_fallback_reason"]
    assert run.module_calls == []  # nothing to load with
    without = Run({"method": "immediate"}, host_kwargs={"programs": programs})()
    assert without["failed"] and "kexec not found on the host" in without["msg"]


def test_cold_fallback_with_use_loaded_and_loading_disabled(tmp_path: t.Any) -> None:
    disabled = {
        "supported": False, "verdict": "kexec not possible: " + LOAD_DISABLED_PROBLEM, "problems": [LOAD_DISABLED_PROBLEM], "problem_codes": [LOAD_DISABLED],
    }
    # nothing loaded and loading disabled: the host cannot kexec, so it reboots cold
    nothing = dict(info_result(None, kexec_loaded=False), support=disabled)
    result = Run({"use_loaded": True, "cold_fallback": True}, info=nothing, host_kwargs={"outcome": "cold", "kexec_loaded": False})()
    assert not result.get("failed"), result["msg"]
    assert result["method"] == "cold" and result["cold_fallback_reason"] == LOAD_DISABLED_PROBLEM
    # an image loaded before the switch was set: the jump still works, no cold reboot
    record = {"kernel": "/boot/vmlinuz-6.1.0-26-amd64", "kernel_release": RELEASE_LOADED, "cmdline": CMDLINE_LOADED}
    jump = Run({"use_loaded": True, "cold_fallback": True}, info=dict(info_result(record), support=disabled))()
    assert not jump.get("failed"), jump["msg"]
    assert jump["method"] == "systemd" and jump["kernel_after"] == RELEASE_LOADED
    # nothing loaded on a host that can kexec: use_loaded's own mistake, not a cold reboot
    plain = Run({"use_loaded": True, "cold_fallback": True}, info=info_result(None, kexec_loaded=False), host_kwargs={"kexec_loaded": False})
    assert plain()["failed"] and plain.host.triggers() == []


def test_cold_reboot_that_never_happens_times_out_without_a_kernel_expectation(tmp_path: t.Any) -> None:
    run = Run({"cold_fallback": True, "reboot_timeout": 60}, load=real_load(tmp_path, load_disabled), host_kwargs={"outcome": "never"})
    result = run()
    assert result["failed"] and "expected a new boot (cold reboot, any kernel)" in result["msg"]
    assert run.host.marker_removals == 0  # removed in the trigger already; no kexec marker to forget


def test_item09_kexec_reboot_forwards_append_unchanged() -> None:
    validated = ArgumentSpecValidator(ARGUMENT_SPEC).validate({"append": "console=ttyS0,115200", "remove": ["quiet splash"]})
    assert not validated.error_messages
    assert validated.validated_parameters["append"] == "console=ttyS0,115200"
    assert validated.validated_parameters["remove"] == ["quiet splash"]
