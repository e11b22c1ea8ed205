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
import re
import socket
import threading
import typing as t
import uuid
from types import SimpleNamespace

import pytest
import yaml

from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.playbook.play_context import PlayContext

from ansible_collections.fastreboot.kexec.plugins.action import kexec_reboot
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


def test_ad_hoc_string_values_are_converted() -> None:
    # `ansible all -m fastreboot.kexec.kexec_reboot -a 'kernel=latest reboot_timeout=900 use_loaded=no'`
    options = options_from({"kernel": "latest", "reboot_timeout": "900", "allow_fallback": "yes", "msg": ""})
    assert options.load_args["kernel"] == "latest"
    assert options.reboot_timeout == 900 and options.allow_fallback is True and options.msg == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"pre_reboot_delay": -1}, "pre_reboot_delay must be at least 0"),
        ({"post_reboot_delay": -5}, "post_reboot_delay must be at least 0"),
        ({"reboot_timeout": 0}, "reboot_timeout must be at least 1"),
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
    disabled = {"supported": False, "verdict": "kexec not possible: " + LOAD_DISABLED_PROBLEM, "problems": [LOAD_DISABLED_PROBLEM]}
    info = dict(info_result(record), support=disabled)
    assert expectation_from_info(info, None) == (Expectation(RELEASE_LOADED, CMDLINE_LOADED), [])
    # Nothing loaded, or a problem that also stops the jump (no CAP_SYS_BOOT): refused, naming it.
    with pytest.raises(PreflightError, match="kexec_load_disabled=1"):
        expectation_from_info(dict(info_result(None, kexec_loaded=False), support=disabled), None)
    no_cap = "the process lacks CAP_SYS_BOOT: run as root (become: true)"
    both = dict(disabled, problems=[LOAD_DISABLED_PROBLEM, no_cap])
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
    return any(word in cmd for word in ("systemd-run", "setsid", "systemctl --no-block kexec"))


class SimulatedHost:
    """Answers the action's commands; the trigger starts a reboot that ends in `outcome`."""

    def __init__(self, clock: FakeClock, outcome: str = "kexec", down_for: float = 20.0, systemd: bool = True,
                 kexec_loaded: bool = True, boot_states: list[str] | None = None, drop_trigger: bool = False) -> None:
        self.clock = clock
        self.outcome = outcome  # kexec | firmware | never
        self.down_for = down_for
        self.systemd = systemd
        self.kexec_loaded = kexec_loaded
        self.boot_states = boot_states if boot_states is not None else ["starting", "starting", "running"]
        self.drop_trigger = drop_trigger
        self.boot_id, self.release, self.cmdline = OLD, RELEASE_BEFORE, CMDLINE_BEFORE
        self.down_from: float | None = None
        self.commands: list[tuple[str, bool, bytes | None]] = []
        self.triggered_at: float | None = None

    def state_output(self) -> str:
        return (
            f"Linux web1 {self.release}\n\nfastreboot-boot-id={self.boot_id}\nfastreboot-release={self.release}\n"
            f"fastreboot-cmdline={self.cmdline}\nfastreboot-systemd={'yes' if self.systemd else 'no'}\n"
            f"fastreboot-kexec-loaded={'1' if self.kexec_loaded else '0'}\n"
        )

    def execute(self, cmd: str, sudoable: bool = True, in_data: bytes | None = None, executable: str | None = None) -> dict[str, t.Any]:
        self.commands.append((cmd, sudoable, in_data))
        if self.down_from is not None and self.clock.now >= self.down_from:
            if self.clock.now < self.down_from + self.down_for:
                self.clock.now += 0.05
                raise AnsibleConnectionFailure("Failed to connect to the host via ssh: ssh: connect to host web1 port 22: Connection refused")
            if self.boot_id == OLD:  # the new boot
                self.boot_id = NEW
                if self.outcome == "kexec":
                    self.release, self.cmdline = RELEASE_LOADED, CMDLINE_LOADED
                self.kexec_loaded = False
        self.clock.now += 0.2
        if cmd == HOST_STATE_COMMAND:
            return {"rc": 0, "stdout": self.state_output(), "stderr": ""}
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
            return {"rc": 0 if word == "running" else 1, "stdout": word + "\n", "stderr": ""}
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
        task = SimpleNamespace(args=args, async_val=0, check_mode=check_mode, action="fastreboot.kexec.kexec_reboot", no_log=False)
        self.action = ActionModule(task, self.connection, PlayContext(), loader=None, templar=None, shared_loader_obj=None)
        self.action._clock = self.clock
        self.action._sleep = self.clock.sleep
        self.action._low_level_execute_command = self.host.execute  # type: ignore[method-assign]
        answers = {kexec_reboot.LOAD_MODULE: load or load_result(), kexec_reboot.INFO_MODULE: info or info_result(None)}

        def execute_module(module_name: str, module_args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
            self.module_calls.append((module_name, module_args))
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
    assert result["method"] == "systemd" and result["trigger"] == ["systemctl", "--no-block", "kexec"]
    # load options passed through unchanged
    assert run.module_calls == [(kexec_reboot.LOAD_MODULE, {
        "kernel": "latest", "initrd": "auto", "cmdline": None, "append": ["console=ttyS0,115200"], "remove": [],
        "syscall": "auto", "allow_unsafe_files": False,
    })]
    assert result["load"]["kernel_release"] == RELEASE_LOADED and result["kernel_selected_by"] == "latest"
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
        ({"pre_reboot_delay": -1}, "pre_reboot_delay must be at least 0"),
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
        (load_result(), {"kexec_loaded": False}, "/sys/kernel/kexec_loaded is 0"),
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
    assert result["method"] == "systemd" and result["trigger"] == ["systemctl", "--no-block", "kexec"]
    assert run.host.triggers() == [] and [cmd for cmd, dummy, dummy2 in run.host.commands] == [HOST_STATE_COMMAND]
    assert "would reboot into 6.1.0-26-amd64" in result["msg"]


def test_immediate_without_systemd() -> None:
    run = Run({"method": "immediate", "wait_for_boot_finished": True}, host_kwargs={"systemd": False})
    result = run()
    assert not result.get("failed"), result["msg"]
    assert result["method"] == "immediate" and result["trigger"][0] == "setsid"
    # no systemd: the boot-finished wait is skipped
    assert SYSTEM_STATE_COMMAND not in [cmd for cmd, dummy, dummy2 in run.host.commands]


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
    assert any("what boots is unknown" in warning for warning in result["warnings"])
    assert any("only the new boot_id proves the reboot" in warning for warning in result["warnings"])
    assert result["msg"].startswith("rebooted (kexec unverified: what was loaded is unknown) into 6.1.0-26-amd64")


def test_use_loaded_with_nothing_loaded_fails() -> None:
    run = Run({"use_loaded": True}, info=info_result(None, kexec_loaded=False))
    result = run()
    assert result["failed"] and "no kexec image is loaded" in result["msg"]
    assert run.host.commands == []


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
