# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reboot benchmark on one lab VM: ansible.builtin.reboot (cold), the do-it-yourself kexec
(kexec -l + ansible.builtin.reboot with systemctl kexec) and fastreboot.kexec.kexec_reboot.

Rounds alternate the methods on the same VM; the report gives medians, ratios and each method's
detection latency: task end minus the moment the guest's sshd was ready again, read from the VM's
serial console (the lab image prints LAB-SSHD-READY there) with host timestamps.

  make benchmark                                # 3 rounds, firmware delay 0 and 30 s, writes docs/
  python benchmarks/reboot_benchmark.py --quick # what `make demo` runs: 1 round, 2 methods
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "lab"))
import lab  # noqa: E402  (the lab lives in tests/, not in a package)

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
    detection: float | None
    # kexec_reboot only: its first login into the new boot, counted from sshd's readiness.
    first_login: float | None = None


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


def first_login_moment(record: dict) -> float | None:
    """When kexec_reboot's first login into the new boot happened (controller clock), from its
    timings: the task ended `elapsed - new_boot_seen` seconds after that login."""
    seen = (record.get("timings") or {}).get("new_boot_seen")
    elapsed = record.get("elapsed")
    if seen is None or elapsed in (None, ""):
        return None
    return float(record["end"]) - (float(elapsed) - float(seen))


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
                detection = end - ready if ready and ready > start else None
                login = first_login_moment(record)
                first_login = login - ready if login is not None and detection is not None else None
                sample = Sample(method, firmware_delay, end - start, detection, first_login)
                run.samples.append(sample)
                shown = f"{detection:.1f}s" if detection is not None else "n/a"
                login_shown = f", first login {first_login:.1f}s" if first_login is not None else ""
                print(f"benchmark: {name} round {round_no + 1}: {method:13s} {sample.elapsed:6.1f}s "
                      f"(task ended {shown} after sshd was ready{login_shown})", flush=True)
        watcher.stop()
    finally:
        lab.down(name)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(run: Run) -> list[dict]:
    rows = []
    delays = sorted({s.firmware_delay for s in run.samples})
    for delay in delays:
        cold = median([s.elapsed for s in run.samples if s.firmware_delay == delay and s.method == "cold"])
        for method in METHODS:
            picked = [s for s in run.samples if s.firmware_delay == delay and s.method == method]
            if not picked:
                continue
            elapsed = median([s.elapsed for s in picked])
            detection = median([s.detection for s in picked if s.detection is not None])
            first_login = median([s.first_login for s in picked if s.first_login is not None])
            rows.append({
                "firmware_delay": delay, "method": method, "n": len(picked), "elapsed": elapsed,
                "ratio": (elapsed / cold) if cold else None, "detection": detection, "first_login": first_login,
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


def markdown(run: Run, rows: list[dict], chart: str | None) -> str:
    today = datetime.date.today().isoformat()
    lines = [
        "# Reboot benchmark",
        "",
        f"Generated by `make benchmark` (`benchmarks/reboot_benchmark.py`) on {today}.",
        f"Machine: {machine_line()}. Guest: Debian {run.dist} lab VM, 2 vCPUs, 1 GiB.",
        f"{run.rounds} alternating rounds per firmware setting, medians. `firmware delay` is the lab's",
        "slow-firmware knob (SeaBIOS waits that long on every firmware boot, like a server's POST).",
        "`task end after sshd` is the task's end minus the moment the guest's sshd was ready again",
        "(its console line `LAB-SSHD-READY`, timestamped on the host): what the wait adds after the",
        "host is reachable. For kexec_reboot that includes its proof, `test_command` and the wait for",
        "`systemctl is-system-running`; `first login after sshd` is the end of its first successful",
        "login into the new boot (from the task's `timings`): the wait loop's detection plus the",
        "login itself, which right after a boot is slow for every method (key exchange, PAM and",
        "logind starting up under emulation), so it bounds the detection latency from above.",
        "",
        "| firmware delay | method | runs | elapsed (median) | vs cold | task end after sshd (median) "
        "| first login after sshd (median) | all runs (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = f"{row['ratio']:.2f}" if row["ratio"] else "-"
        detection = f"{row['detection']:.1f} s" if row["detection"] is not None else "-"
        first_login = f"{row['first_login']:.1f} s" if row["first_login"] is not None else "-"
        lines.append(f"| {row['firmware_delay']} s | {LABELS[row['method']]} | {row['n']} | {row['elapsed']:.1f} s | "
                     f"{ratio} | {detection} | {first_login} | {', '.join(map(str, row['all']))} |")
    if chart:
        lines += ["", f"![elapsed per method]({chart})"]
    lines += ["", "Under emulation every boot is several times slower than on hardware: the ratios carry over",
              "better than the absolute seconds, and both latency columns include an emulated guest's slow",
              "first login.", ""]
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
