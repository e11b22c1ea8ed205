# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Lab VMs: QEMU (TCG) on a copy-on-write overlay of an image, SSH on a free local port."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from . import console as console_logger
from .base import GUEST_USERS, LabError, cache_dir, log, qemu_base_cmd, run_dir
from .collection import BANNER_TIMEOUT, BANNER_WAIT, read_ssh_banner
from .images import build

QEMU_NAME_PREFIX = "fastreboot-lab-"
DEFAULT_SSH_TIMEOUT = 300
LOGGER_START_TIMEOUT = 10.0
# The image variant with kexec-tools, for scenarios that do not test its installation, installed as
# the role does (apt; bookworm's kexec-tools needs libxenmisc, which is not in the image's apt cache,
# so this may use the network like the role), with the role's default debconf answer (Debian's init
# scripts do not kexec every reboot).
KEXEC_TOOLS_INSTALL = (
    "echo 'kexec-tools kexec-tools/load_kexec boolean false' | debconf-set-selections && "
    "DEBIAN_FRONTEND=noninteractive apt-get install -y -q kexec-tools >/dev/null && "
    "dpkg-query -W kexec-tools && systemctl poweroff"
)


@dataclass
class VM:
    name: str
    dist: str
    port: int
    key: str
    console: str
    pidfile: str
    overlay: str
    firmware_delay: int
    # Host CLOCK_MONOTONIC when QEMU was started: console.times and the measurement count from it.
    started: float = 0.0

    @property
    def dir(self) -> Path:
        return vm_dir(self.name)

    @property
    def console_times(self) -> Path:
        return Path(self.console).with_name("console.times")

    def pid(self) -> int | None:
        try:
            pid = int(Path(self.pidfile).read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            return None
        return pid if qemu_alive(pid, self.name) else None

    def save(self) -> None:
        (self.dir / "vm.json").write_text(json.dumps(asdict(self), indent=2) + "\n")

    def describe(self) -> dict:
        data = asdict(self)
        data.update(address="127.0.0.1", users=list(GUEST_USERS), pid=self.pid(), console_times=str(self.console_times))
        return data


def vm_dir(name: str) -> Path:
    return run_dir() / name


def load_vm(name: str) -> VM:
    path = vm_dir(name) / "vm.json"
    try:
        return VM(**json.loads(path.read_text()))
    except FileNotFoundError as exc:
        raise LabError(f"no lab VM named {name!r} (looked for {path})") from exc


def qemu_alive(pid: int, name: str) -> bool:
    """True if pid is our QEMU for this VM (not a recycled pid of something else)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return (QEMU_NAME_PREFIX + name).encode() in cmdline


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ssh_cmd(vm: VM, user: str = "root", connect_timeout: int = 10) -> list[str]:
    return ["ssh", "-i", vm.key, "-p", str(vm.port), "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
            "-o", f"ConnectTimeout={connect_timeout}", f"{user}@127.0.0.1"]


def console_tail(vm: VM, lines: int = 25) -> str:
    try:
        text = Path(vm.console).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no console output)"
    return "\n".join(text[-lines:])


def wait_for_ssh(vm: VM, timeout: float) -> float:
    """Wait until a root login works; returns the seconds it took. Fails early if QEMU dies.

    Readiness is the collection's own banner reader: QEMU's forwarder accepts TCP even while the
    guest's sshd is down, so only the SSH banner proves sshd. The reader holds the connection while
    the forwarder reaches for the guest (the banner comes through it as soon as sshd listens), which
    also keeps the burst of dropped connections that OpenSSH >= 9.8 would charge as penalties small.
    """
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        if vm.pid() is None:
            raise LabError(f"VM {vm.name}: QEMU exited during boot; console log: {vm.console}\n"
                           f"--- last console lines ---\n{console_tail(vm)}")
        left = deadline - time.monotonic()
        if read_ssh_banner("127.0.0.1", vm.port, min(BANNER_TIMEOUT, left), wait=min(BANNER_WAIT, left)):
            # A login can hang while the guest is still starting (slow key exchange under TCG): such a
            # try is one failed attempt, the overall deadline decides.
            try:
                probe = subprocess.run(ssh_cmd(vm, connect_timeout=5) + ["true"], capture_output=True,
                                       timeout=max(5.0, min(30.0, deadline - time.monotonic())), check=False)
            except subprocess.TimeoutExpired:
                probe = None
            if probe is not None and probe.returncode == 0:
                return time.monotonic() - started
        time.sleep(0.5)
    raise LabError(f"VM {vm.name}: no SSH login within {timeout:.0f}s; console log: {vm.console}\n"
                   f"--- last console lines ---\n{console_tail(vm)}")


def qemu_vm_options() -> list[str]:
    """Options of every lab VM beyond the common part (FASTREBOOT_LAB_QEMU_ARGS adds more, for experiments)."""
    return ["-device", "virtio-rng-pci"] + shlex.split(os.environ.get("FASTREBOOT_LAB_QEMU_ARGS", ""))


def start_console_logger(directory: Path) -> tuple[subprocess.Popen, Path]:
    """The console logger, detached (it outlives this process, as QEMU does), listening before QEMU starts."""
    sock = directory / "console.sock"
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()
    with open(directory / "console-logger.err", "ab") as errors:
        logger = subprocess.Popen(  # pylint: disable=consider-using-with  # runs on after we return
            [sys.executable, console_logger.__file__, str(sock), str(directory / "console.log"),
             str(directory / "console.times")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors, start_new_session=True)
    deadline = time.monotonic() + LOGGER_START_TIMEOUT
    while not sock.exists():
        if logger.poll() is not None or time.monotonic() > deadline:
            logger.kill()
            raise LabError(f"the console logger did not start; see {directory / 'console-logger.err'}")
        time.sleep(0.02)
    return logger, sock


def up(name: str, dist: str, memory: int = 1024, smp: int = 2, firmware_delay: int = 0,
       ssh_timeout: float = DEFAULT_SSH_TIMEOUT, kexec_tools: bool = False) -> VM:
    """Start a VM on a fresh overlay of the dist's image (with kexec-tools installed if asked) and wait for SSH."""
    image = build(dist)
    backing = kexec_tools_image(dist) if kexec_tools else image.disk
    return start(name, dist, backing, image.key, memory, smp, firmware_delay, ssh_timeout)


def kexec_tools_image(dist: str) -> Path:
    """The dist's image with kexec-tools installed: a read-only qcow2 layer over the bare image, made once
    (one boot of the bare image, about a minute) and removed with it when the recipe changes."""
    image = build(dist)
    layer = image.disk.with_name(image.disk.stem + "-kexec-tools.qcow2")
    with open(cache_dir() / f"{dist}.lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel `up`s of one dist build the layer once
        if layer.exists():
            return layer
        started = time.monotonic()
        name = f"image-{dist}-kexec-tools"
        vm = start(name, dist, image.disk, image.key, 1024, 1, 0, DEFAULT_SSH_TIMEOUT)
        try:
            result = subprocess.run(ssh_cmd(vm) + [KEXEC_TOOLS_INSTALL], capture_output=True, text=True,
                                    timeout=300, check=False)
            deadline = time.monotonic() + 120
            while vm.pid() is not None and time.monotonic() < deadline:
                time.sleep(0.5)
            if vm.pid() is not None or "kexec-tools" not in result.stdout:
                raise LabError(f"installing kexec-tools into the {dist} image failed: {result.stderr.strip()[-500:]}; "
                               f"console log: {vm.console}")
        finally:
            down(name)
        partial = layer.with_suffix(".partial")
        shutil.move(vm.overlay, partial)
        partial.chmod(0o444)
        os.replace(partial, layer)
        shutil.rmtree(vm.dir, ignore_errors=True)
    log(f"built {layer} in {time.monotonic() - started:.0f}s")
    return layer


def start(name: str, dist: str, backing: Path, image_key: Path, memory: int, smp: int, firmware_delay: int,
          ssh_timeout: float) -> VM:
    directory = vm_dir(name)
    if directory.exists():
        with contextlib.suppress(LabError):
            down(name)
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    overlay = directory / "overlay.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(backing),
                    str(overlay)], check=True)
    key = directory / "id_ed25519"
    shutil.copy(image_key, key)
    key.chmod(0o600)
    last_error = ""
    for _attempt in range(5):
        vm = VM(name=name, dist=dist, port=free_port(), key=str(key), console=str(directory / "console.log"),
                pidfile=str(directory / "qemu.pid"), overlay=str(overlay), firmware_delay=firmware_delay)
        logger, console_sock = start_console_logger(directory)
        cmd = qemu_base_cmd(memory, smp) + qemu_vm_options() + [
            "-name", QEMU_NAME_PREFIX + name,
            "-drive", f"file={overlay},if=virtio,format=qcow2,cache=unsafe",
            "-netdev", f"user,id=net0,hostfwd=tcp:127.0.0.1:{vm.port}-:22",
            "-device", "virtio-net-pci,netdev=net0",
            "-chardev", f"socket,id=serial0,path={console_sock}", "-serial", "chardev:serial0",
            "-daemonize", "-pidfile", vm.pidfile,
            "-monitor", f"unix:{directory / 'monitor.sock'},server,nowait",
        ]
        if firmware_delay > 0:
            # SeaBIOS shows its boot menu prompt this long on every firmware boot: a slow POST.
            cmd += ["-boot", f"menu=on,splash-time={firmware_delay * 1000}"]
        vm.started = time.monotonic()
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode == 0:
            vm.save()
            break
        logger.kill()
        last_error = result.stderr.strip()
        if "hostfwd" not in last_error and "host forwarding" not in last_error:
            break
    else:
        vm = None
    if vm is None or not Path(vm.pidfile).exists():
        raise LabError(f"QEMU did not start for {name}: {last_error}")
    log(f"{name}: {dist} VM started (pid {vm.pid()}, ssh port {vm.port}, console {vm.console})")
    try:
        took = wait_for_ssh(vm, ssh_timeout)
    except BaseException:
        down(name)
        raise
    log(f"{name}: SSH ready after {took:.1f}s")
    return vm


def monitor(name: str, command: str) -> str:
    """Send one command to the VM's QEMU monitor (e.g. system_reset: the reset button)."""
    sock_path = vm_dir(name) / "monitor.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        try:
            sock.connect(str(sock_path))
        except OSError as exc:
            raise LabError(f"VM {name}: no QEMU monitor at {sock_path} ({exc}); is it running?") from exc
        sock.sendall(command.encode() + b"\n")
        time.sleep(0.5)
        try:
            return sock.recv(65536).decode(errors="replace")
        except OSError:
            return ""


def down(name: str) -> bool:
    """Stop a VM's QEMU: SIGTERM, then SIGKILL. True if a process was stopped."""
    directory = vm_dir(name)
    pid = None
    with contextlib.suppress(LabError):
        pid = load_vm(name).pid()
    if pid is None:
        pid = find_qemu(name)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    for _tick in range(50):
        if not qemu_alive(pid, name):
            break
        time.sleep(0.1)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(FileNotFoundError):
        (directory / "qemu.pid").unlink()
    log(f"{name}: stopped")
    return True


def find_qemu(name: str | None = None) -> int | None:
    for pid in lab_qemu_pids():
        if name is None or qemu_alive(pid, name):
            return pid
    return None


def lab_qemu_pids() -> list[int]:
    """Lab QEMUs of this run folder only: another checkout's lab on the same machine is left alone."""
    pids = []
    mine = str(run_dir()).encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (any(a.startswith(QEMU_NAME_PREFIX.encode()) for a in args) and b"-name" in args
                and any(mine in a for a in args)):
            pids.append(int(proc.name))
    return pids


def down_all() -> int:
    stopped = 0
    if run_dir().exists():
        for directory in sorted(run_dir().iterdir()):
            if (directory / "vm.json").exists() and down(directory.name):
                stopped += 1
    for pid in lab_qemu_pids():  # strays whose state folder is gone
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            stopped += 1
    return stopped


def inventory(names: list[str], user: str = "root") -> str:
    lines = ["all:", "  hosts:"]
    for name in names:
        vm = load_vm(name)
        lines += [
            f"    {name}:",
            "      ansible_host: 127.0.0.1",
            f"      ansible_port: {vm.port}",
            f"      ansible_user: {user}",
            f"      ansible_ssh_private_key_file: {vm.key}",
            "      ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
            "      ansible_python_interpreter: /usr/bin/python3",
            f"      lab_console_log: {vm.console}",
            f"      lab_dist: {vm.dist}",
        ]
    return "\n".join(lines) + "\n"
