# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The QEMU lab's command line (tests/lab/lab.py; see tests/lab/README.md).

Commands:
  lab.py build IMAGE... [--force]          build (or reuse) the cached image (bookworm, trixie: BIOS;
                                           uefi-sdboot-trixie, uefi-secureboot-bookworm, uefi-secureboot-trixie)
  lab.py up NAME --image IMAGE [options]   start a VM on a copy-on-write overlay, wait for SSH, print JSON
                                           (--dist is the same option; --with-kexec-tools: on the image
                                           variant with kexec-tools; --no-reboot: a firmware reset ends the VM;
                                           --bytecode-cache: the guest keeps Ansible's modules compiled)
  lab.py down NAME... | --all | --prefix P  stop VMs; no QEMU process is left behind (--prefix: a scenario's, P=NAME-)
  lab.py restart NAME [--no-wait]          start a VM that ended again (same overlay, EFI variables, port)
  lab.py status                            the lab's VMs and whether their QEMU runs
  lab.py ssh NAME [--user U] [CMD...]      log in (or run CMD) on a VM
  lab.py reset NAME [--no-wait]            press the reset button (firmware reboot), wait for SSH; a VM that
                                           ended (or ends on reset: --no-reboot) is started again
  lab.py inventory NAME...                 an Ansible YAML inventory of running VMs
  lab.py last-cold-boot NAME               JSON: seconds from the console's last firmware reset to the next kernel
  lab.py measure IMAGE... [--boots 3]      boot phases (firmware, kernel, userspace, login): medians
  lab.py measure-kexec IMAGE... [--boots 3]  `systemctl kexec` phases (shutdown, purgatory, kernel, userspace)
  lab.py measure-compare LABEL=DIR...      one table of several measurements (FASTREBOOT_LAB_RUN folders)
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from .base import GUEST_USERS, LabError, log, run_dir
from .images import IMAGES, build
from .measure import compare, last_cold_boot, measure, measure_kexec
from .vm import DEFAULT_SSH_TIMEOUT, down, down_all, inventory, load_vm, reset, restart, ssh_cmd, up


def _measure_options(parser: argparse.ArgumentParser, boots_help: str, name: str) -> None:
    """The options `measure` and `measure-kexec` share."""
    parser.add_argument("images", nargs="+", choices=IMAGES, metavar="IMAGE")
    parser.add_argument("--boots", type=int, default=3, help=boots_help)
    parser.add_argument("--smp", type=int, default=2, help="virtual CPUs (default 2, as `up`)")
    parser.add_argument("--memory", type=int, default=1024)
    parser.add_argument("--name", default=name, help=f"VM name prefix (default {name})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lab.py", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("Commands:")[1])
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="build or reuse a cached image")
    p_build.add_argument("images", nargs="+", choices=IMAGES, metavar="IMAGE")
    p_build.add_argument("--force", action="store_true", help="rebuild even if cached")
    p_up = sub.add_parser("up", help="start a VM and wait for SSH")
    p_up.add_argument("name")
    p_up.add_argument("--image", "--dist", dest="image", choices=IMAGES, default="bookworm", metavar="IMAGE",
                      help="the lab image (default bookworm): " + ", ".join(IMAGES))
    p_up.add_argument("--memory", type=int, default=1024, help="MiB (default 1024)")
    p_up.add_argument("--smp", type=int, default=2, help="virtual CPUs (default 2: a lone VM gets both host cores)")
    p_up.add_argument("--firmware-delay", type=int, default=0, metavar="SECONDS",
                      help="slow firmware: seconds SeaBIOS waits on every firmware boot")
    p_up.add_argument("--ssh-timeout", type=float, default=DEFAULT_SSH_TIMEOUT)
    p_up.add_argument("--with-kexec-tools", action="store_true",
                      help="kexec-tools already installed (for scenarios that do not test its installation)")
    p_up.add_argument("--no-reboot", action="store_true",
                      help="QEMU -no-reboot: a firmware reset ends the VM (a kexec that fell back shows as a dead VM)")
    p_up.add_argument("--bytecode-cache", action="store_true",
                      help="the guest's Python keeps Ansible's modules compiled (test VMs: a task runs faster; "
                           "never for a benchmark)")
    p_restart = sub.add_parser("restart", help="start a VM that ended again (same overlay, EFI variables, port)")
    p_restart.add_argument("name")
    p_restart.add_argument("--no-wait", action="store_true")
    p_restart.add_argument("--ssh-timeout", type=float, default=DEFAULT_SSH_TIMEOUT)
    p_down = sub.add_parser("down", help="stop VMs")
    p_down.add_argument("names", nargs="*")
    p_down.add_argument("--all", action="store_true")
    p_down.add_argument("--prefix", help="every VM whose name starts with this (a scenario's: NAME-)")
    sub.add_parser("status", help="list VMs")
    p_reset = sub.add_parser("reset", help="press the VM's reset button (a firmware reboot), then wait for SSH")
    p_reset.add_argument("name")
    p_reset.add_argument("--no-wait", action="store_true")
    p_reset.add_argument("--ssh-timeout", type=float, default=DEFAULT_SSH_TIMEOUT)
    p_ssh = sub.add_parser("ssh", help="log in or run a command")
    p_ssh.add_argument("name")
    p_ssh.add_argument("--user", default="root", choices=GUEST_USERS)
    p_ssh.add_argument("cmd", nargs=argparse.REMAINDER)
    p_inv = sub.add_parser("inventory", help="Ansible inventory (YAML) of running VMs")
    p_inv.add_argument("names", nargs="+")
    p_inv.add_argument("--user", default="root", choices=GUEST_USERS)
    p_cold = sub.add_parser("last-cold-boot", help="seconds from the last firmware reset to the next kernel (console), JSON")
    p_cold.add_argument("name")
    p_measure = sub.add_parser("measure", help="boot fresh VMs and time the phases of their boot")
    _measure_options(p_measure, "boots per image (default 3)", "speed-measure")
    p_kexec = sub.add_parser("measure-kexec", help="time `systemctl kexec` on fresh VMs (with kexec-tools)")
    _measure_options(p_kexec, "kexec reboots per image, one fresh VM each (default 3)", "kexec-measure")
    p_kexec.add_argument("--append", default="", metavar="ARGS",
                         help="kernel arguments for the kexec'd kernel only (experiments, e.g. clocksource=hpet)")
    p_compare = sub.add_parser("measure-compare", help="one table of several measurements, with speed-ups")
    p_compare.add_argument("variants", nargs="+", metavar="LABEL=DIR",
                           help="a label and the FASTREBOOT_LAB_RUN folder of its `measure` boots; the first is the base")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            for image in args.images:
                print(build(image, force=args.force).disk)
        elif args.command == "up":
            vm = up(args.name, args.image, memory=args.memory, smp=args.smp, firmware_delay=args.firmware_delay,
                    ssh_timeout=args.ssh_timeout, kexec_tools=args.with_kexec_tools, no_reboot=args.no_reboot,
                    bytecode_cache=args.bytecode_cache)
            print(json.dumps(vm.describe(), indent=2))
        elif args.command == "down":
            if args.all:
                log(f"stopped {down_all()} VM(s)")
            names = list(args.names)
            if args.prefix and run_dir().exists():
                names += [d.name for d in sorted(run_dir().iterdir()) if d.name.startswith(args.prefix) and (d / "vm.json").exists()]
            for name in names:
                down(name)
        elif args.command == "last-cold-boot":
            print(json.dumps(last_cold_boot(load_vm(args.name))))
        elif args.command == "status":
            if run_dir().exists():
                for directory in sorted(run_dir().iterdir()):
                    if (directory / "vm.json").exists():
                        vm = load_vm(directory.name)
                        state = f"running (pid {vm.pid()})" if vm.pid() else "stopped"
                        print(f"{vm.name}\t{vm.image or vm.dist}\tport {vm.port}\t{state}\t{vm.console}")
        elif args.command == "reset":
            reset(args.name, wait=not args.no_wait, ssh_timeout=args.ssh_timeout)
        elif args.command == "restart":
            print(json.dumps(restart(args.name, args.ssh_timeout, wait=not args.no_wait).describe(), indent=2))
        elif args.command == "ssh":
            vm = load_vm(args.name)
            return subprocess.run(ssh_cmd(vm, args.user) + args.cmd, check=False).returncode
        elif args.command == "inventory":
            sys.stdout.write(inventory(args.names, args.user))
        elif args.command == "measure-compare":
            variants = {}
            for item in args.variants:
                label, sep, directory = item.partition("=")
                if not sep or not Path(directory).is_dir():
                    raise LabError(f"measure-compare: {item!r} is not LABEL=DIR with an existing folder")
                variants[label] = Path(directory)
            sys.stdout.write(compare(variants))
        elif args.command == "measure":
            sys.stdout.write(measure(args.images, boots=args.boots, smp=args.smp, memory=args.memory, prefix=args.name))
        elif args.command == "measure-kexec":
            sys.stdout.write(measure_kexec(args.images, boots=args.boots, smp=args.smp, memory=args.memory,
                                           prefix=args.name, append=args.append))
    except LabError as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as exc:
        print(f"lab: error: command failed ({exc.returncode}): {' '.join(map(str, exc.cmd))}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
