# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reboot benchmark on one lab VM: ansible.builtin.reboot (cold), the do-it-yourself kexec
(kexec -l + ansible.builtin.reboot with systemctl kexec) and fastreboot.kexec.kexec_reboot.

Rounds alternate the methods on the same VM; the report gives medians, ratios and each method's
latency after sshd: task end minus the moment the guest's sshd was ready again, read from the VM's
serial console (the lab image prints LAB-SSHD-READY there) with host timestamps, and how soon
after sshd started listening it accepted the method's first login (the guest's journal, on the
guest's own clock). For kexec_reboot the wait is split further with the task's `timings`.

Run it from the checkout's root as a module (that is how it finds the lab, tests/lab/fastreboot_lab):
  make benchmark                                      # 3 rounds, firmware delay 0 and 30 s, writes docs/
  python -m benchmarks.reboot_benchmark --quick       # what `make demo` runs: 1 round, 2 methods
  python -m benchmarks.reboot_benchmark --from-json docs/benchmark.json --out /tmp/report  # report only
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

try:
    from tests.lab import fastreboot_lab as lab
except ModuleNotFoundError as error:  # started as a script: the checkout's root is not on the import path
    sys.exit(f"run it as a module from the checkout's root: python -m benchmarks.reboot_benchmark ({error})")

REPO = Path(__file__).resolve().parent.parent

PLAYBOOKS = REPO / "benchmarks" / "playbooks"
METHODS = ("cold", "diy", "kexec_reboot")
LABELS = {
    "cold": "ansible.builtin.reboot (cold: firmware + GRUB)",
    "diy": "ansible.builtin.reboot + systemctl kexec (DIY)",
    "kexec_reboot": "fastreboot.kexec.kexec_reboot",
}
SSHD_READY = b"LAB-SSHD-READY"


class ConsoleWatcher(threading.Thread):
    """Timestamps (host clock) every LAB-SSHD-READY line the guest writes to its serial console."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.ready_times: list[float] = []
        self._halt = threading.Event()

    def run(self) -> None:
        offset = 0
        pending = b""
        while not self._halt.is_set():
            try:
                with open(self.path, "rb") as console:
                    console.seek(offset)
                    chunk = console.read()
            except OSError:
                chunk = b""
            if chunk:
                offset += len(chunk)
                now = time.time()
                pending += chunk
                *lines, pending = pending.split(b"\n")
                self.ready_times += [now for line in lines if SSHD_READY in line]
            self._halt.wait(0.05)

    def stop(self) -> None:
        self._halt.set()

    def last_ready_before(self, moment: float) -> float | None:
        earlier = [t for t in self.ready_times if t <= moment]
        return earlier[-1] if earlier else None


@dataclass
class Sample:
    method: str
    firmware_delay: int
    elapsed: float
    # The task's end, counted from sshd's readiness (LAB-SSHD-READY on the console).
    task_end: float | None
    # kexec_reboot only: its first login into the new boot, counted from sshd's readiness.
    first_login: float | None = None
    # The first login sshd accepted in the new boot, counted from sshd listening (guest journal).
    login_accepted: float | None = None
    # kexec_reboot only: its banner probe saw the new boot's sshd, counted from sshd's readiness.
    banner_seen: float | None = None


@dataclass
class Run:
    dist: str
    rounds: int
    samples: list[Sample] = field(default_factory=list)


def ansible_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(REPO / "tests" / "output" / "collections"),
        ANSIBLE_PIPELINING="1",
        ANSIBLE_HOST_KEY_CHECKING="0",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_STDOUT_CALLBACK="default",
    )
    return env


def playbook(inventory: Path, name: str, extra: dict | None = None) -> str:
    cmd = [str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", str(inventory), str(PLAYBOOKS / name)]
    if extra:
        cmd += ["-e", json.dumps(extra)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=ansible_env(), check=False)
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-2000:])
        raise SystemExit(f"benchmark: {name} failed (exit {result.returncode})")
    return result.stdout


def timed_reboot(inventory: Path, method: str, release: str) -> dict:
    """Runs one reboot; returns the BENCH record: start, end (controller clock), and for
    kexec_reboot its elapsed and timings (seconds from its trigger)."""
    out = playbook(inventory, "reboot.yml", {"bench_method": method, "bench_release": release})
    for line in out.splitlines():
        if "BENCH {" in line:
            return json.loads(line[line.index("BENCH {") + 6:].strip().rstrip('"').replace('\\"', '"'))
    raise SystemExit(f"benchmark: no BENCH line in the {method} run")


def timing_moment(record: dict, step: str) -> float | None:
    """When kexec_reboot reached `step` of its timings (controller clock): the task ended
    `elapsed - timings[step]` seconds after it."""
    seen = (record.get("timings") or {}).get(step)
    elapsed = record.get("elapsed")
    if seen is None or elapsed in (None, ""):
        return None
    return float(record["end"]) - (float(elapsed) - float(seen))


def first_accepted_login(entries: list[dict]) -> float | None:
    """Seconds from sshd listening to the first login it accepted, from journal entries (journalctl
    -o json) of the current boot, on the guest's monotonic clock (no clock offset to the host)."""
    listening = accepted = None
    for entry in entries:
        message = entry.get("MESSAGE")
        if not isinstance(message, str):
            continue
        moment = int(entry["__MONOTONIC_TIMESTAMP"]) / 1e6
        if listening is None and message.startswith("Server listening on"):
            listening = moment
        elif listening is not None and message.startswith("Accepted publickey for"):
            accepted = moment
            break
    return accepted - listening if accepted is not None and listening is not None else None


def guest_sshd_journal(name: str) -> list[dict]:
    """The current boot's sshd journal entries (OpenSSH >= 9.8 logs logins as sshd-session)."""
    vm = lab.load_vm(name)
    cmd = lab.ssh_cmd(vm) + ["journalctl", "-b", "-o", "json", "--no-pager",
                             "SYSLOG_IDENTIFIER=sshd", "SYSLOG_IDENTIFIER=sshd-session"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    entries = []
    for line in out.stdout.splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    return entries


def running_release(name: str) -> str:
    vm = lab.load_vm(name)
    out = subprocess.run(lab.ssh_cmd(vm) + ["uname", "-r"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def bench_vm(dist: str, firmware_delay: int, methods: list[str], rounds: int, run: Run) -> None:
    name = f"bench-{dist}-fw{firmware_delay}"
    vm = lab.up(name, dist, smp=2, firmware_delay=firmware_delay)
    try:
        inventory = lab.vm_dir(name) / "inventory.yml"
        inventory.write_text(lab.inventory([name]))
        print(f"benchmark: {name}: preparing (role: kexec-tools, cold reboot policy)", flush=True)
        playbook(inventory, "prepare.yml")
        release = running_release(name)
        watcher = ConsoleWatcher(Path(vm.console))
        watcher.start()
        for round_no in range(rounds):
            # Alternate the order so that no method always runs on a freshly booted or warm guest.
            order = methods if round_no % 2 == 0 else list(reversed(methods))
            for method in order:
                record = timed_reboot(inventory, method, release)
                start, end = float(record["start"]), float(record["end"])
                ready = watcher.last_ready_before(end)
                if ready is not None and ready <= start:
                    ready = None  # the line of an earlier boot: this one never printed it
                # Read after the task's end, outside the timing; it is a later login than the one it finds.
                accepted = first_accepted_login(guest_sshd_journal(name))
                sample = Sample(method, firmware_delay, end - start, since(end, ready),
                                since(timing_moment(record, "new_boot_seen"), ready), accepted,
                                since(timing_moment(record, "sshd_answered"), ready))
                run.samples.append(sample)
                print(f"benchmark: {name} round {round_no + 1}: {method:13s} {sample.elapsed:6.1f}s "
                      f"(after sshd was ready: {describe_latencies(sample)})", flush=True)
        watcher.stop()
    finally:
        lab.down(name)


def since(moment: float | None, origin: float | None) -> float | None:
    return moment - origin if moment is not None and origin is not None else None


def describe_latencies(sample: Sample) -> str:
    parts = [("banner seen", sample.banner_seen), ("login accepted", sample.login_accepted),
             ("first login done", sample.first_login), ("task ended", sample.task_end)]
    return ", ".join(f"{label} {value:.1f}s" for label, value in parts if value is not None) or "n/a"


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def median_of(samples: list[Sample], attribute: str) -> float | None:
    return median([getattr(s, attribute) for s in samples if getattr(s, attribute) is not None])


def summarize(run: Run) -> list[dict]:
    rows = []
    delays = sorted({s.firmware_delay for s in run.samples})
    for delay in delays:
        cold = median([s.elapsed for s in run.samples if s.firmware_delay == delay and s.method == "cold"])
        for method in METHODS:
            picked = [s for s in run.samples if s.firmware_delay == delay and s.method == method]
            if not picked:
                continue
            elapsed = median_of(picked, "elapsed")
            rows.append({
                "firmware_delay": delay, "method": method, "n": len(picked), "elapsed": elapsed,
                "ratio": (elapsed / cold) if cold and elapsed else None,
                "task_end": median_of(picked, "task_end"), "first_login": median_of(picked, "first_login"),
                "login_accepted": median_of(picked, "login_accepted"), "banner_seen": median_of(picked, "banner_seen"),
                "all_banner_seen": [round(s.banner_seen, 1) for s in picked if s.banner_seen is not None],
                "all": [round(s.elapsed, 1) for s in picked],
            })
    return rows


def machine_line() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()}: {os.cpu_count()} cores ({cpu}), QEMU TCG (no KVM), Linux {platform.release()}"


def seconds(value: float | None) -> str:
    return f"{value:.1f} s" if value is not None else "-"


def markdown(run: Run, rows: list[dict], chart: str | None) -> str:
    today = datetime.date.today().isoformat()
    lines = [
        "# Reboot benchmark",
        "",
        f"Generated by `make benchmark` (`benchmarks/reboot_benchmark.py`) on {today}.",
        f"Machine: {machine_line()}. Guest: Debian {run.dist} lab VM, 2 vCPUs, 1 GiB.",
        f"{run.rounds} alternating rounds per firmware setting, medians. `firmware delay` is the lab's",
        "slow-firmware knob (SeaBIOS waits that long on every firmware boot, like a server's POST).",
        "",
        "- `login accepted after sshd listened`: from the guest's journal, on the guest's own clock:",
        "  sshd's `Server listening` line to its first `Accepted publickey` line in the new boot. That is",
        "  how soon the method's login reached sshd, plus the key exchange.",
        "- `task end after sshd ready`: the task's end minus the moment the guest's sshd was ready again",
        "  (its console line `LAB-SSHD-READY`, timestamped on the host). For kexec_reboot that includes its",
        "  proof, `test_command` and the wait for `systemctl is-system-running`.",
        "",
        "| firmware delay | method | runs | elapsed (median) | vs cold | login accepted after sshd listened (median) "
        "| task end after sshd ready (median) | all runs (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = f"{row['ratio']:.2f}" if row["ratio"] else "-"
        lines.append(f"| {row['firmware_delay']} s | {LABELS[row['method']]} | {row['n']} | {row['elapsed']:.1f} s | "
                     f"{ratio} | {seconds(row['login_accepted'])} | {seconds(row['task_end'])} | "
                     f"{', '.join(map(str, row['all']))} |")
    if chart:
        lines += ["", f"![elapsed per method]({chart})"]
    waits = [row for row in rows if row["method"] == "kexec_reboot" and row["banner_seen"] is not None]
    if waits:
        lines += [
            "",
            "## Where kexec_reboot's wait goes",
            "",
            "Seconds after the guest's sshd was ready (medians). `banner seen`: the wait loop's banner probe",
            "saw the new boot's sshd (the task's `timings.sshd_answered`), which is the detection. `login",
            "accepted`: sshd accepted the key (guest journal, counted from `Server listening`). `first login",
            "done`: that login's command returned the new boot_id (`timings.new_boot_seen`); between the two,",
            "PAM opens the session, which in the first login of a boot starts the user's systemd manager.",
            "",
            "| firmware delay | banner seen | login accepted | first login done | task end | banner seen, all runs (s) |",
            "|---|---|---|---|---|---|",
        ]
        for row in waits:
            lines.append(f"| {row['firmware_delay']} s | {seconds(row['banner_seen'])} | {seconds(row['login_accepted'])} | "
                         f"{seconds(row['first_login'])} | {seconds(row['task_end'])} | "
                         f"{', '.join(map(str, row['all_banner_seen']))} |")
    lines += ["", "Under emulation every boot, and the first login into it, is several times slower than on",
              "hardware: the ratios carry over better than the absolute seconds.", ""]
    return "\n".join(lines)


def draw_chart(rows: list[dict], path: Path) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    delays = sorted({r["firmware_delay"] for r in rows})
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    width = 0.8 / max(len(methods), 1)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, method in enumerate(methods):
        values = [next((r["elapsed"] for r in rows if r["firmware_delay"] == d and r["method"] == method), 0)
                  for d in delays]
        positions = [j + i * width for j in range(len(delays))]
        bars = ax.bar(positions, values, width, label=LABELS[method])
        ax.bar_label(bars, fmt="%.0f s", fontsize=8)
    ax.set_xticks([j + width * (len(methods) - 1) / 2 for j in range(len(delays))])
    ax.set_xticklabels([f"firmware delay {d} s" for d in delays])
    ax.set_ylabel("task elapsed, median (s)")
    ax.set_title("Reboot task time on a lab VM (lower is better)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", default="bookworm", choices=lab.DISTS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--firmware-delays", default="0,30", help="comma-separated seconds")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--out", default=str(REPO / "docs"), help="folder for benchmark.md and benchmark.png")
    parser.add_argument("--from-json", metavar="PATH",
                        help="no VMs: write the report again from the samples of an earlier run (its benchmark.json)")
    parser.add_argument("--quick", action="store_true",
                        help="the demo: 1 round, no firmware delay, cold vs kexec_reboot, output in tests/output/demo")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.firmware_delays, args.methods = 1, "0", "cold,kexec_reboot"
        args.out = str(REPO / "tests" / "output" / "demo")
    methods = [m for m in args.methods.split(",") if m]
    unknown = set(methods) - set(METHODS)
    if unknown:
        parser.error(f"unknown method(s) {', '.join(sorted(unknown))}; choose from {', '.join(METHODS)}")
    run = Run(args.dist, args.rounds)
    out = Path(args.out)
    if args.from_json:
        run.samples = [Sample(**sample) for sample in json.loads(Path(args.from_json).read_text())]
        print(write_report(run, out))
        return 0
    report = ""
    try:
        for delay in [int(d) for d in args.firmware_delays.split(",") if d != ""]:
            bench_vm(args.dist, delay, methods, args.rounds, run)
            # After each firmware setting, so that an interrupted run still leaves what it measured.
            report = write_report(run, out)
    except lab.LabError as exc:
        print(f"benchmark: lab error: {exc}", file=sys.stderr)
        return 2
    print()
    print(report)
    print(f"benchmark: wrote {out / 'benchmark.md'}")
    return 0


def write_report(run: Run, out: Path) -> str:
    rows = summarize(run)
    out.mkdir(parents=True, exist_ok=True)
    chart = "benchmark.png" if draw_chart(rows, out / "benchmark.png") else None
    report = markdown(run, rows, chart)
    (out / "benchmark.md").write_text(report)
    (out / "benchmark.json").write_text(json.dumps([s.__dict__ for s in run.samples], indent=1) + "\n")
    return report


if __name__ == "__main__":
    sys.exit(main())
