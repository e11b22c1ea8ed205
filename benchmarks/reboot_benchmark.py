# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reboot benchmark on one lab VM: ansible.builtin.reboot (cold), the do-it-yourself kexec
(kexec -l + ansible.builtin.reboot with systemctl kexec) and fastreboot.kexec.kexec_reboot.

Rounds alternate the methods on the same VM. Each reboot gets a timeline from its witnesses
(benchmarks/timeline.py): the tasks' starts and results from a JSON-lines callback
(benchmarks/callback_plugins/bench_events.py), the serial console with host timestamps, and the new
boot's journal. The report gives per method the medians of every milestone, the guest's downtime
(shutdown started -> sshd listening: the physical limit of any reboot tool on that boot path), the
ratio of the task's time to it, and the issue's targets, each met or with the segment that costs it.

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
from dataclasses import dataclass, field
from pathlib import Path

try:
    from benchmarks import timeline
    from tests.lab import fastreboot_lab as lab
    from tests.lab.fastreboot_lab.measure import console_records
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
# reboot.yml's timed tasks start with this; the timeline runs from the first one's start to the last one's end.
TIMED_PREFIX = "Timed - "
MILESTONE_LABELS = {
    "trigger": "trigger",
    "shutdown_started": "shutdown started",
    "old_kernel_last": "old kernel's last line",
    "boot_loader": "GRUB (firmware done)",
    "new_kernel_first": "new kernel starts",
    "sshd_listening": "sshd listening",
    "banner_seen": "banner seen",
    "login_accepted": "login accepted",
    "new_boot_proven": "new boot proven",
    "boot_finished": "boot finished",
    "task_end": "task end",
}
# The reboot's consecutive segments (table, chart, and where kexec_reboot loses against the DIY kexec).
SEGMENTS = (
    ("task start -> trigger", None, "trigger"),
    ("trigger -> shutdown", "trigger", "shutdown_started"),
    ("shutdown", "shutdown_started", "old_kernel_last"),
    ("old kernel -> new kernel (firmware + GRUB, or kexec)", "old_kernel_last", "new_kernel_first"),
    ("new kernel -> sshd listening", "new_kernel_first", "sshd_listening"),
    ("sshd listening -> task end", "sshd_listening", "task_end"),
)
# The segments that the reboot tool adds to the guest's downtime (the parts it can change): (from, to).
OVERHEAD_SEGMENTS = (
    (None, "trigger"),
    ("trigger", "shutdown_started"),
    ("sshd_listening", "banner_seen"),
    ("banner_seen", "login_accepted"),
    ("login_accepted", "new_boot_proven"),
    ("new_boot_proven", "task_end"),
)
# The targets of the issue (docs/benchmark.md lists them with the measured values).
ELAPSED_PER_DOWNTIME = 1.10
BANNER_AFTER_LISTENING = 1.0
ROUND_TRIPS = 2
JOURNAL_QUERY = ["journalctl", "-b", "0", "-o", "json", "--no-pager",
                 "SYSLOG_IDENTIFIER=sshd", "SYSLOG_IDENTIFIER=sshd-session", "+", "_PID=1"]


@dataclass
class Sample:
    method: str
    firmware_delay: int
    # Milestones in seconds since the timed task's start (timeline.MILESTONES), and their witness lines.
    moments: dict[str, float] = field(default_factory=dict)
    evidence: dict[str, str] = field(default_factory=dict)
    # kexec_reboot only: its preflight (seconds, round_trips).
    preflight: dict = field(default_factory=dict)

    @property
    def elapsed(self) -> float:
        return self.moments["task_end"]

    @property
    def downtime(self) -> float | None:
        return since(self.moments.get("sshd_listening"), self.moments.get("shutdown_started"))


@dataclass
class Run:
    dist: str
    rounds: int
    samples: list[Sample] = field(default_factory=list)


def ansible_env(events: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(REPO / "tests" / "output" / "collections"),
        ANSIBLE_PIPELINING="1",
        ANSIBLE_HOST_KEY_CHECKING="0",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_STDOUT_CALLBACK="default",
        ANSIBLE_CALLBACK_PLUGINS=str(REPO / "benchmarks" / "callback_plugins"),
        ANSIBLE_CALLBACKS_ENABLED="bench_events",
        FASTREBOOT_BENCH_EVENTS=str(events),
    )
    return env


def playbook(inventory: Path, name: str, events: Path, extra: dict | None = None) -> list[dict]:
    """Runs a playbook; returns its callback events."""
    events.unlink(missing_ok=True)
    cmd = [str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", str(inventory), str(PLAYBOOKS / name)]
    if extra:
        cmd += ["-e", json.dumps(extra)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=ansible_env(events), check=False)
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-2000:])
        raise SystemExit(f"benchmark: {name} failed (exit {result.returncode})")
    return [json.loads(line) for line in events.read_text().splitlines() if line.strip()]


def guest_journal(name: str) -> list[dict]:
    """The current boot's journal entries of sshd and of systemd (PID 1)."""
    vm = lab.load_vm(name)
    out = subprocess.run(lab.ssh_cmd(vm) + JOURNAL_QUERY, capture_output=True, text=True, check=False)
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
        events = lab.vm_dir(name) / "events.jsonl"
        print(f"benchmark: {name}: preparing (role: kexec-tools, cold reboot policy)", flush=True)
        playbook(inventory, "prepare.yml", events)
        release = running_release(name)
        for round_no in range(rounds):
            # Alternate the order so that no method always runs on a freshly booted or warm guest.
            order = methods if round_no % 2 == 0 else list(reversed(methods))
            for method in order:
                task_events = playbook(inventory, "reboot.yml", events, {"bench_method": method, "bench_release": release})
                # Read after the task's end, outside the timing (its login is a later one than those it finds).
                journal = guest_journal(name)
                line = timeline.build(task_events, console_records(vm), journal, TIMED_PREFIX)
                if line is None:
                    raise SystemExit(f"benchmark: the {method} reboot's timed tasks did not run")
                # The console is the witness of the boot path: a kexec that went through GRUB fell back.
                if ("boot_loader" in line.moments) != (method == "cold"):
                    raise SystemExit(f"benchmark: the {method} reboot {'passed' if method != 'cold' else 'skipped'} "
                                     f"the firmware and GRUB (console: {vm.console}); its time would be another method's")
                sample = Sample(method, firmware_delay, line.moments, line.evidence,
                                line.result.get("preflight") or {})
                run.samples.append(sample)
                print(f"benchmark: {name} round {round_no + 1}: {method:13s} {sample.elapsed:6.1f}s "
                      f"(guest down {seconds(sample.downtime)}; {describe(sample)})", flush=True)
    finally:
        lab.down(name)


def since(moment: float | None, origin: float | None) -> float | None:
    return moment - origin if moment is not None and origin is not None else None


def describe(sample: Sample) -> str:
    return ", ".join(f"{MILESTONE_LABELS[name]} {sample.moments[name]:.1f}"
                     for name in timeline.MILESTONES if name in sample.moments)


def median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def segment_label(start: str | None, end: str) -> str:
    return f"{MILESTONE_LABELS[start] if start else 'task start'} -> {MILESTONE_LABELS[end]}"


def segment(sample: Sample, start: str | None, end: str) -> float | None:
    return since(sample.moments.get(end), sample.moments.get(start) if start else 0.0)


def summarize(run: Run) -> list[dict]:
    rows = []
    for delay in sorted({s.firmware_delay for s in run.samples}):
        cold = median([s.elapsed for s in run.samples if s.firmware_delay == delay and s.method == "cold"])
        for method in METHODS:
            picked = [s for s in run.samples if s.firmware_delay == delay and s.method == method]
            if not picked:
                continue
            elapsed = median([s.elapsed for s in picked])
            rows.append({
                "firmware_delay": delay, "method": method, "n": len(picked), "elapsed": elapsed,
                "vs_cold": elapsed / cold if cold else None,
                "downtime": median([s.downtime for s in picked]),
                "per_downtime": median([s.elapsed / s.downtime if s.downtime else None for s in picked]),
                "moments": {name: median([s.moments.get(name) for s in picked]) for name in timeline.MILESTONES},
                "overhead": {segment_label(start, end): median([segment(s, start, end) for s in picked])
                             for start, end in OVERHEAD_SEGMENTS},
                "segments": {label: median([segment(s, start, end) for s in picked]) for label, start, end in SEGMENTS},
                "banner_after_listening": median([since(s.moments.get("banner_seen"), s.moments.get("sshd_listening"))
                                                  for s in picked]),
                "round_trips": median([s.preflight.get("round_trips") for s in picked]),
                "all": [round(s.elapsed, 1) for s in picked],
            })
    return rows


def costliest(row: dict) -> str:
    """The overhead segment that costs the most (median), for a missed target."""
    parts = [(value, label) for label, value in row["overhead"].items() if value is not None]
    if not parts:
        return "no segment measured"
    value, label = max(parts)
    return f"{label}: {value:.1f} s"


def targets(rows: list[dict]) -> list[tuple[int, str, str, str, bool]]:
    """(firmware delay, target, measured, verdict or costliest segment, met) for kexec_reboot's rows."""
    checks = []
    for row in rows:
        if row["method"] != "kexec_reboot":
            continue
        delay = row["firmware_delay"]
        diy = next((r for r in rows if r["firmware_delay"] == delay and r["method"] == "diy"), None)
        ratio = row["per_downtime"]
        met = ratio is not None and ratio <= ELAPSED_PER_DOWNTIME
        checks.append((delay, f"elapsed <= {ELAPSED_PER_DOWNTIME:.2f} x guest downtime",
                       f"{ratio:.2f} x" if ratio is not None else "-", "met" if met else f"missed: {costliest(row)}", met))
        banner = row["banner_after_listening"]
        met = banner is not None and banner <= BANNER_AFTER_LISTENING
        checks.append((delay, f"banner seen <= {BANNER_AFTER_LISTENING:.1f} s after sshd listens", seconds(banner),
                       "met" if met else f"missed: {segment_label('sshd_listening', 'banner_seen')}", met))
        trips = row["round_trips"]
        met = trips is not None and trips <= ROUND_TRIPS
        checks.append((delay, f"<= {ROUND_TRIPS} round trips from task start to the trigger",
                       f"{trips:g}" if trips is not None else "-", "met" if met else f"missed: {segment_label(None, 'trigger')}", met))
        if diy:
            met = row["elapsed"] <= diy["elapsed"]
            checks.append((delay, "not slower than the do-it-yourself kexec",
                           f"{row['elapsed']:.1f} s vs {diy['elapsed']:.1f} s",
                           "met" if met else f"missed: {largest_excess(row, diy)}", met))
    return checks


def largest_excess(row: dict, other: dict) -> str:
    """The segment in which row's method loses the most time against other's (medians)."""
    excess = [(row["segments"][label] - other["segments"][label], label) for label, _start, _end in SEGMENTS
              if row["segments"][label] is not None and other["segments"][label] is not None]
    if not excess:
        return "no segment measured"
    value, label = max(excess)
    return f"{label}: {value:+.1f} s against it"


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
        "`guest downtime` is the guest's own time from its first shutdown status line (`Stopping ...`",
        "on the serial console) to the new boot's sshd listening (its journal): the physical limit of",
        "any reboot tool on that boot path. `elapsed / downtime` is how far the task is from it.",
        "",
        "| firmware delay | method | runs | elapsed (median) | vs cold | guest downtime | elapsed / downtime | all runs (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        vs_cold = f"{row['vs_cold']:.2f}" if row["vs_cold"] else "-"
        per = f"{row['per_downtime']:.2f}" if row["per_downtime"] else "-"
        lines.append(f"| {row['firmware_delay']} s | {LABELS[row['method']]} | {row['n']} | {row['elapsed']:.1f} s | "
                     f"{vs_cold} | {seconds(row['downtime'])} | {per} | {', '.join(map(str, row['all']))} |")
    if chart:
        lines += ["", f"![timeline per method]({chart})"]
    lines += [
        "",
        "## Timeline",
        "",
        "Seconds from the timed task's start (medians; `-`: the method or boot path does not pass it).",
        "Witnesses: the task's start and result (a JSON-lines callback, `benchmarks/callback_plugins/`),",
        "the serial console's lines stamped on the host as they arrive, the new boot's journal (moved to",
        "the host clock at sshd's console line `LAB-SSHD-READY`). `trigger`: kexec_reboot's exact moment",
        "(task end - elapsed); ansible.builtin.reboot reports whole seconds. `new kernel starts`: the new",
        "kernel's clock zero (the smallest lag of its console lines), after kexec's purgatory or the",
        "firmware and GRUB. For the do-it-yourself kexec the task starts with its `kexec -l`.",
        "",
        "| firmware delay | method | " + " | ".join(MILESTONE_LABELS[m] for m in timeline.MILESTONES) + " |",
        "|---|---|" + "---|" * len(timeline.MILESTONES),
    ]
    for row in rows:
        cells = [f"{row['moments'][m]:.1f}" if row["moments"][m] is not None else "-" for m in timeline.MILESTONES]
        lines.append(f"| {row['firmware_delay']} s | {row['method']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Where each method spends its time",
        "",
        "Segments between the milestones above (medians of each reboot's own segments, seconds).",
        "",
        "| firmware delay | method | " + " | ".join(label for label, _start, _end in SEGMENTS) + " |",
        "|---|---|" + "---|" * len(SEGMENTS),
    ]
    for row in rows:
        picked = [s for s in run.samples if s.firmware_delay == row["firmware_delay"] and s.method == row["method"]]
        parts = [row["segments"][label] for label, _start, _end in SEGMENTS]
        lines.append(f"| {row['firmware_delay']} s | {row['method']} | " + " | ".join(seconds(p) for p in parts) + " |")
    checks = targets(rows)
    if checks:
        lines += ["", "## Targets (kexec_reboot, medians of this run)", "",
                  "| firmware delay | target | measured | verdict |", "|---|---|---|---|"]
        lines += [f"| {delay} s | {target} | {measured} | {verdict} |" for delay, target, measured, verdict, _met in checks]
        lines += ["", "A missed elapsed target names kexec_reboot's costliest own segment (outside the guest's",
                  "downtime); a missed comparison names the segment in which it loses most against the DIY kexec."]
    lines += ["", "Under emulation every boot, and every module run on the guest, is several times slower than",
              "on hardware: the ratios carry over better than the absolute seconds.", ""]
    return "\n".join(lines)


def draw_chart(rows: list[dict], path: Path) -> bool:
    """One horizontal bar per firmware delay and method, split at the median milestones."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    spans = SEGMENTS
    colours = ("#999999", "#cccccc", "#f0a030", "#d04040", "#4080d0", "#40a060")
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(rows) + 2.2))
    labels = []
    for y, row in enumerate(rows):
        moments = row["moments"]
        labels.append(f"fw {row['firmware_delay']} s  {row['method']}")
        for (name, start, end), colour in zip(spans, colours):
            begin = moments.get(start) if start else 0.0
            if begin is None or moments.get(end) is None:
                continue
            ax.barh(y, moments[end] - begin, left=begin, color=colour, label=name if y == 0 else None)
        ax.text(row["elapsed"] + 1, y, f"{row['elapsed']:.0f} s", va="center", fontsize=8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds from the task's start (medians)")
    ax.set_title("Reboot timeline on a lab VM (shorter is better)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", default="bookworm", choices=lab.DISTS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--firmware-delays", default="0,30", help="comma-separated seconds")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--out", default=str(REPO / "docs"), help="folder for benchmark.md, .png and .json")
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
        saved = json.loads(Path(args.from_json).read_text())
        run = Run(saved["dist"], saved["rounds"], [Sample(**sample) for sample in saved["samples"]])
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
    raw = {"dist": run.dist, "rounds": run.rounds, "samples": [s.__dict__ for s in run.samples]}
    (out / "benchmark.json").write_text(json.dumps(raw, indent=1) + "\n")
    return report


if __name__ == "__main__":
    sys.exit(main())
