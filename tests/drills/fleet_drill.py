# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fleet drill on three lab VMs (bookworm, trixie, bookworm): `make drill`.

1. Rollout: docs/examples/rolling_kernel_update.yml installs the cloud kernel (removed before) on
   every host, one host at a time (serial 1), and the role's handler kexecs into it. One host's
   sshd starts 25 s late after every boot. Checks: every host runs the new kernel in a new boot,
   and the boots happened one after the other in inventory order.
2. Fault: a serial rollout of kexec_reboot where the second host gets a command line that cannot
   boot. Checks: the first host rebooted, the second failed at its deadline with a message naming
   the deadline, the expected kernel and the console, the third host kept its boot.
3. Ad hoc: `ansible fleet -m fastreboot.kexec.kexec_info` (readable facts for every host) and
   `ansible fleet-1 -b -m fastreboot.kexec.kexec_reboot -a kernel=latest`.
Connections use pipelining and ControlPersist (tests/output/drill/ansible.cfg), forks 5.
Writes tests/output/drill/report.md and the playbook logs; exits 1 when a check failed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

try:
    from tests.lab import fastreboot_lab as lab
except ModuleNotFoundError as error:  # started as a script: the checkout's root is not on the import path
    sys.exit(f"run it as a module from the checkout's root: python -m tests.drills.fleet_drill ({error})")

REPO = Path(__file__).resolve().parents[2]

HOSTS = (("fleet-1", "bookworm"), ("fleet-2", "trixie"), ("fleet-3", "bookworm"))
NAMES = tuple(name for name, dist in HOSTS)
SLOW_SSHD_HOST, SSHD_DELAY = "fleet-2", 25
FAULT_HOST, FAULT_TIMEOUT = "fleet-2", 150
OUT = REPO / "tests" / "output" / "drill"
EXAMPLE = REPO / "docs" / "examples" / "rolling_kernel_update.yml"
HERE = Path(__file__).resolve().parent


class Drill:
    def __init__(self) -> None:
        self.checks: list[tuple[str, bool, str]] = []
        self.notes: list[str] = []

    def check(self, what: str, ok: bool, detail: str = "") -> None:
        self.checks.append((what, bool(ok), detail))
        print(f"drill: {'ok  ' if ok else 'FAIL'} {what}{': ' + detail if detail else ''}", flush=True)


def start_fleet() -> None:
    errors: list[str] = []

    def start(name: str, dist: str) -> None:
        try:
            lab.up(name, dist, memory=1024, smp=1)
        except lab.LabError as error:
            errors.append(f"{name}: {error}")

    threads = [threading.Thread(target=start, args=host) for host in HOSTS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise lab.LabError("; ".join(errors))


def write_config() -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    lines = ["all:", "  children:", "    fleet:", "      hosts:"]
    for name in NAMES:
        vm = lab.load_vm(name)
        lines += [
            f"        {name}:",
            "          ansible_host: 127.0.0.1",
            f"          ansible_port: {vm.port}",
            "          ansible_user: root",
            f"          ansible_ssh_private_key_file: {vm.key}",
            "          ansible_python_interpreter: /usr/bin/python3",
        ]
    (OUT / "inventory.yml").write_text("\n".join(lines) + "\n")
    config = OUT / "ansible.cfg"
    config.write_text(
        "[defaults]\n"
        f"inventory = {OUT / 'inventory.yml'}\n"
        "forks = 5\n"
        "host_key_checking = False\n"
        "timeout = 30\n"
        "[ssh_connection]\n"
        "pipelining = True\n"
        "ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o StrictHostKeyChecking=no "
        "-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR\n"
        f"control_path_dir = {OUT / 'cp'}\n"
    )
    return config


def playbook(config: Path, name: str, path: Path, extra: dict) -> tuple[int, str, float]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(config), ANSIBLE_NOCOLOR="1",
               ANSIBLE_COLLECTIONS_PATH=str(REPO / "tests" / "output" / "collections"))
    started = time.monotonic()
    print(f"drill: running {path.name} ({name})", flush=True)
    result = subprocess.run([str(REPO / ".venv" / "bin" / "ansible-playbook"), str(path), "-e", json.dumps(extra)],
                            capture_output=True, text=True, env=env, check=False)
    took = time.monotonic() - started
    log = result.stdout + result.stderr
    (OUT / f"{name}.log").write_text(log)
    print(f"drill: {path.name} exited {result.returncode} after {took:.0f}s (log {OUT / (name + '.log')})", flush=True)
    return result.returncode, log, took


def host_state(name: str) -> dict:
    vm = lab.load_vm(name)
    command = "cat /proc/sys/kernel/random/boot_id; uname -r; awk '/^btime/ {print $2}' /proc/stat"
    result = subprocess.run(lab.ssh_cmd(vm) + [command], capture_output=True, text=True, timeout=60, check=False)
    words = result.stdout.split()
    if result.returncode != 0 or len(words) != 3:
        return {"boot_id": None, "release": None, "btime": None}
    return {"boot_id": words[0], "release": words[1], "btime": int(words[2])}


def fatal_result(log: str, host: str) -> dict:
    """The JSON result of `fatal: [host]: FAILED! => {...}` in a default-callback log."""
    marker = f"fatal: [{host}]: FAILED! => "
    for line in log.splitlines():
        if line.startswith(marker):
            try:
                return json.loads(line[len(marker):])
            except ValueError:
                return {"msg": line}
    return {}


def rollout(drill: Drill, config: Path) -> None:
    before = {name: host_state(name) for name in NAMES}
    rc, log, took = playbook(config, "rollout", EXAMPLE, {"rolling_kernel_package": "linux-image-cloud-amd64"})
    after = {name: host_state(name) for name in NAMES}
    drill.check("rollout playbook succeeded", rc == 0, f"exit {rc} after {took:.0f}s")
    for name in NAMES:
        drill.check(f"{name} runs the newly installed cloud kernel in a new boot",
                    after[name]["boot_id"] not in (None, before[name]["boot_id"]) and "cloud" in (after[name]["release"] or ""),
                    f"{before[name]['release']} -> {after[name]['release']}")
    btimes = [after[name]["btime"] or 0 for name in NAMES]
    drill.check("the hosts booted one after the other, in inventory order",
                all(earlier < later for earlier, later in zip(btimes, btimes[1:])), f"boot times {btimes}")
    runs = [line.split("[", 1)[1].split("]", 1)[0] for line in log.splitlines() if line.startswith("changed: [") and "=> " not in line]
    drill.notes.append(f"rollout took {took:.0f}s; boot times (epoch s) {dict(zip(list(NAMES), btimes))}; "
                       f"'changed' lines in log order: {', '.join(runs)}")
    drill.check(f"{SLOW_SSHD_HOST} (sshd {SSHD_DELAY}s late) came back without a hang", after[SLOW_SSHD_HOST]["boot_id"] != before[SLOW_SSHD_HOST]["boot_id"])


def fault(drill: Drill, config: Path) -> None:
    before = {name: host_state(name) for name in NAMES}
    rc, log, took = playbook(config, "fault", HERE / "fault_rollout.yml",
                             {"drill_fault_host": FAULT_HOST, "drill_fault_timeout": FAULT_TIMEOUT})
    drill.check("fault rollout failed", rc != 0, f"exit {rc} after {took:.0f}s")
    first, faulty, last = NAMES
    lab.monitor(faulty, "system_reset")  # the reset button of the hung host
    lab.wait_for_ssh(lab.load_vm(faulty), 600)
    after = {name: host_state(name) for name in NAMES}
    drill.check(f"{first} (before the fault) rebooted", after[first]["boot_id"] not in (None, before[first]["boot_id"]))
    failure = fatal_result(log, faulty)
    message = failure.get("msg", "")
    expected = before[faulty]["release"] or "?"
    drill.check(f"{faulty} failed at its deadline, naming it, the expected kernel and the console",
                str(FAULT_TIMEOUT) in message and expected in message and "console" in message, message[:300])
    elapsed = failure.get("elapsed")
    drill.check(f"{faulty}'s task ended within its deadline ({FAULT_TIMEOUT}s + one probe)",
                isinstance(elapsed, (int, float)) and elapsed <= FAULT_TIMEOUT + 20, f"elapsed {elapsed}")
    drill.check(f"{last} (after the fault) was not touched", after[last]["boot_id"] == before[last]["boot_id"],
                f"boot_id {before[last]['boot_id']} -> {after[last]['boot_id']}")
    drill.check(f"{last} never ran the reboot task", f"[{last}]" not in log.split("TASK [Kexec reboot", 1)[-1])


def ad_hoc(config: Path, name: str, *args: str) -> tuple[int, str]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(config), ANSIBLE_NOCOLOR="1",
               ANSIBLE_COLLECTIONS_PATH=str(REPO / "tests" / "output" / "collections"))
    command = [str(REPO / ".venv" / "bin" / "ansible"), *args]
    print(f"drill: {' '.join(command[1:])}", flush=True)
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    (OUT / f"{name}.log").write_text(f"$ ansible {' '.join(args)}\n{result.stdout}{result.stderr}")
    return result.returncode, result.stdout


def ad_hoc_runs(drill: Drill, config: Path) -> None:
    rc, out = ad_hoc(config, "adhoc-info", "fleet", "-m", "fastreboot.kexec.kexec_info")
    drill.check("ad hoc kexec_info answers for every host", rc == 0 and all(f"{name} | SUCCESS" in out for name in NAMES),
                f"exit {rc}")
    first = NAMES[0]
    before = host_state(first)
    rc, out = ad_hoc(config, "adhoc-reboot", first, "-b", "-m", "fastreboot.kexec.kexec_reboot", "-a", "kernel=latest")
    after = host_state(first)
    drill.check(f"ad hoc kexec_reboot -a kernel=latest on {first}",
                rc == 0 and f"{first} | CHANGED" in out and after["boot_id"] not in (None, before["boot_id"]),
                f"exit {rc}, kernel {after['release']}")


def report(drill: Drill) -> str:
    lines = ["# Fleet drill", "", f"`make drill` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
             f"{', '.join(f'{n} ({d})' for n, d in HOSTS)}; pipelining + ControlPersist; forks 5.", "",
             "| check | result | detail |", "|---|---|---|"]
    lines += [f"| {what} | {'ok' if ok else 'FAILED'} | {detail.replace('|', '/')} |" for what, ok, detail in drill.checks]
    lines += [""] + [f"- {note}" for note in drill.notes] + [""]
    return "\n".join(lines)


def main() -> int:
    drill = Drill()
    try:
        start_fleet()
        config = write_config()
        rc, _log, took = playbook(config, "prepare", HERE / "prepare.yml",
                                  {"drill_slow_sshd_host": SLOW_SSHD_HOST, "drill_sshd_delay": SSHD_DELAY})
        drill.check("preparation (role, cloud kernel removed, stock GRUB default, slow sshd)", rc == 0, f"{took:.0f}s")
        if rc == 0:
            rollout(drill, config)
            fault(drill, config)
            ad_hoc_runs(drill, config)
    except lab.LabError as error:
        drill.check("lab", False, str(error))
    finally:
        for name in NAMES:
            try:
                lab.down(name)
            except lab.LabError:
                pass
    text = report(drill)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "report.md").write_text(text)
    print(text)
    return 0 if drill.checks and all(check[1] for check in drill.checks) else 1


if __name__ == "__main__":
    sys.exit(main())
