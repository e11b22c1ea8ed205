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
from .base import FIRMWARES, GUEST_USERS, LabError, cache_dir, firmware_options, log, ovmf_file, qemu_base_cmd, run_dir
from .collection import BANNER_TIMEOUT, BANNER_WAIT, read_ssh_banner
from .images import ImageSpec, build, spec_for

QEMU_NAME_PREFIX = "fastreboot-lab-"
DEFAULT_SSH_TIMEOUT = 300
LOGGER_START_TIMEOUT = 10.0
# The image variant with kexec-tools, for scenarios that do not test its installation, installed as
# the role does (apt; kexec-tools needs libxen* packages, which the BIOS images' apt cache lacks, so
# there this may use the network like the role; guest.sh caches them, as the UEFI images have it),
# with the role's default debconf answer (Debian's init scripts do not kexec every reboot).
KEXEC_TOOLS_INSTALL = (
    "echo 'kexec-tools kexec-tools/load_kexec boolean false' | debconf-set-selections && "
    "DEBIAN_FRONTEND=noninteractive apt-get install -y -q kexec-tools >/dev/null && "
    "dpkg-query -W kexec-tools && systemctl poweroff"
)
BYTECODE_CACHE = Path(__file__).resolve().parent.parent / "image" / "fastreboot_lab_pyc.py"
# Installs the cache (stdin: its source) where the guest's Python imports it at every start.
BYTECODE_CACHE_INSTALL = (
    "install -d -m 0700 -o root -g root /var/cache/fastreboot-lab-pyc && "
    "cat > /usr/lib/python3/dist-packages/fastreboot_lab_pyc.py && "
    "echo 'import fastreboot_lab_pyc' > /usr/lib/python3/dist-packages/fastreboot_lab_pyc.pth"
)


@dataclass
class VM:  # pylint: disable=too-many-instance-attributes  # the saved state of one VM (vm.json)
    name: str
    dist: str  # the Debian release
    port: int
    key: str
    console: str
    pidfile: str
    overlay: str
    firmware_delay: int
    # Host CLOCK_MONOTONIC when QEMU was last started: console.times and the measurement count from it.
    started: float = 0.0
    image: str = ""  # the lab image (bookworm, trixie, uefi-...); older vm.json files lack it
    firmware: str = "bios"
    efi_vars: str = ""  # the VM's own OVMF variable store (UEFI), kept across restarts
    memory: int = 1024
    smp: int = 2
    no_reboot: bool = False  # QEMU -no-reboot: a firmware reset ends the VM

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
        data.update(address="127.0.0.1", users=list(GUEST_USERS), pid=self.pid(), console_times=str(self.console_times),
                    image=self.image or self.dist)
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
            why = (" (a firmware reset ends this VM, --no-reboot: `lab.py restart NAME` starts it again)"
                   if vm.no_reboot else "")
            raise LabError(f"VM {vm.name}: QEMU exited during boot{why}; console log: {vm.console}\n"
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


def start_console_logger(directory: Path, append: bool = False) -> tuple[subprocess.Popen, Path]:
    """The console logger, detached (it outlives this process, as QEMU does), listening before QEMU starts.
    A restarted VM's logger appends: the console of the earlier boots is the tests' evidence."""
    sock = directory / "console.sock"
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()
    with open(directory / "console-logger.err", "ab") as errors:
        logger = subprocess.Popen(  # pylint: disable=consider-using-with  # runs on after we return
            [sys.executable, console_logger.__file__, str(sock), str(directory / "console.log"),
             str(directory / "console.times"), *(["append"] if append else [])],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors, start_new_session=True)
    deadline = time.monotonic() + LOGGER_START_TIMEOUT
    while not sock.exists():
        if logger.poll() is not None or time.monotonic() > deadline:
            logger.kill()
            raise LabError(f"the console logger did not start; see {directory / 'console-logger.err'}")
        time.sleep(0.02)
    return logger, sock


def up(name: str, image: str = "bookworm", memory: int = 1024, smp: int = 2, firmware_delay: int = 0,
       ssh_timeout: float = DEFAULT_SSH_TIMEOUT, kexec_tools: bool = False, no_reboot: bool = False,
       bytecode_cache: bool = False) -> VM:
    """Start a VM on a fresh overlay of the image (with kexec-tools installed if asked) and wait for SSH.

    image: a lab image name (images.IMAGES: bookworm, trixie, uefi-sdboot-trixie, ...). no_reboot: QEMU
    ends the VM on a firmware reset instead of booting again (a kexec that fell back to a cold reboot
    shows as a dead VM; `restart` starts it again). bytecode_cache: the guest's Python keeps Ansible's
    modules compiled (image/fastreboot_lab_pyc.py), for test VMs; a benchmark VM runs without it.
    """
    spec = spec_for(image)
    disk = build(image)
    backing = kexec_tools_image(image) if kexec_tools else disk.disk
    vm = start(name, spec, backing, disk.key, memory, smp, firmware_delay, ssh_timeout, no_reboot)
    if bytecode_cache:
        install_bytecode_cache(vm)
    return vm


def install_bytecode_cache(vm: VM) -> None:
    result = subprocess.run(ssh_cmd(vm) + [BYTECODE_CACHE_INSTALL], input=BYTECODE_CACHE.read_bytes(),
                            capture_output=True, timeout=120, check=False)
    if result.returncode != 0:
        raise LabError(f"VM {vm.name}: installing the bytecode cache failed: "
                       f"{result.stderr.decode(errors='replace').strip()[-500:]}")


def kexec_tools_image(image: str) -> Path:
    """The image with kexec-tools installed: a read-only qcow2 layer over the bare image, made once
    (one boot of the bare image, about a minute) and removed with it when the recipe changes."""
    spec = spec_for(image)
    disk = build(image)
    layer = disk.disk.with_name(disk.disk.stem + "-kexec-tools.qcow2")
    with open(cache_dir() / f"{image}.lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel `up`s of one image build the layer once
        if layer.exists():
            return layer
        started = time.monotonic()
        name = f"image-{image}-kexec-tools"
        vm = start(name, spec, disk.disk, disk.key, 1024, 1, 0, DEFAULT_SSH_TIMEOUT)
        try:
            result = subprocess.run(ssh_cmd(vm) + [KEXEC_TOOLS_INSTALL], capture_output=True, text=True,
                                    timeout=300, check=False)
            deadline = time.monotonic() + 120
            while vm.pid() is not None and time.monotonic() < deadline:
                time.sleep(0.5)
            if vm.pid() is not None or "kexec-tools" not in result.stdout:
                raise LabError(f"installing kexec-tools into the {image} image failed: {result.stderr.strip()[-500:]}; "
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


def start(name: str, spec: ImageSpec, backing: Path, image_key: Path, memory: int, smp: int,  # pylint: disable=too-many-arguments
          firmware_delay: int, ssh_timeout: float, no_reboot: bool = False) -> VM:
    """A new VM: its folder, an overlay over backing, its key and (UEFI) variable store; then boot it."""
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
    efi_vars = ""
    if FIRMWARES[spec.firmware].vars_template:
        # The VM's own writable copy: OVMF and the guest (bootctl set-default, mokutil) write to it.
        efi_vars = str(directory / "efi-vars.fd")
        shutil.copy(ovmf_file(FIRMWARES[spec.firmware].vars_template), efi_vars)
    vm = VM(name=name, dist=spec.dist, port=0, key=str(key), console=str(directory / "console.log"),
            pidfile=str(directory / "qemu.pid"), overlay=str(overlay), firmware_delay=firmware_delay,
            image=spec.name, firmware=spec.firmware, efi_vars=efi_vars, memory=memory, smp=smp,
            no_reboot=no_reboot)
    return boot(vm, ssh_timeout, new_port=True)


def restart(name: str, ssh_timeout: float = DEFAULT_SSH_TIMEOUT, wait: bool = True) -> VM:
    """Start a VM that ended (powered off, killed, or reset under --no-reboot) again: the same overlay,
    variable store, port and key, so its inventory stays valid; the console log goes on."""
    vm = load_vm(name)
    if vm.pid() is not None:
        raise LabError(f"VM {name} is running (pid {vm.pid()}): `lab.py reset` presses its reset button")
    return boot(vm, ssh_timeout, new_port=False, wait=wait)


def boot(vm: VM, ssh_timeout: float, new_port: bool, wait: bool = True) -> VM:
    """Start QEMU for a VM (a free local port for SSH when new_port) and wait for a root login."""
    directory = vm.dir
    last_error = ""
    launched = False
    for _attempt in range(5):
        if new_port:
            vm.port = free_port()
        logger, console_sock = start_console_logger(directory, append=not new_port)
        cmd = qemu_base_cmd(vm.memory, vm.smp, vm.firmware) + qemu_vm_options() + [
            "-name", QEMU_NAME_PREFIX + vm.name,
            *firmware_options(vm.firmware, Path(vm.efi_vars) if vm.efi_vars else None),
            "-drive", f"file={vm.overlay},if=virtio,format=qcow2,cache=unsafe",
            "-netdev", f"user,id=net0,hostfwd=tcp:127.0.0.1:{vm.port}-:22",
            "-device", "virtio-net-pci,netdev=net0",
            "-chardev", f"socket,id=serial0,path={console_sock}", "-serial", "chardev:serial0",
            "-daemonize", "-pidfile", vm.pidfile,
            "-monitor", f"unix:{directory / 'monitor.sock'},server,nowait",
        ]
        if vm.firmware_delay > 0:
            # The firmware shows its boot menu prompt this long on every firmware boot: a slow POST.
            cmd += ["-boot", f"menu=on,splash-time={vm.firmware_delay * 1000}"]
        if vm.no_reboot:
            cmd.append("-no-reboot")
        with contextlib.suppress(FileNotFoundError):
            Path(vm.pidfile).unlink()  # an ended QEMU's
        vm.started = time.monotonic()
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode == 0:
            vm.save()
            launched = True
            break
        logger.kill()
        last_error = result.stderr.strip()
        if "hostfwd" not in last_error and "host forwarding" not in last_error:
            break
        if not new_port:
            time.sleep(2)  # the port may still be held by the ended QEMU's last connections
    if not launched or not Path(vm.pidfile).exists():
        raise LabError(f"QEMU did not start for {vm.name}: {last_error}")
    log(f"{vm.name}: {vm.image or vm.dist} VM started (pid {vm.pid()}, ssh port {vm.port}, console {vm.console})")
    if not wait:
        return vm
    try:
        took = wait_for_ssh(vm, ssh_timeout)
    except BaseException:
        down(vm.name)
        raise
    log(f"{vm.name}: SSH ready after {took:.1f}s")
    return vm


def reset(name: str, wait: bool = True, ssh_timeout: float = DEFAULT_SSH_TIMEOUT) -> None:
    """The reset button (a firmware reboot). A VM that has ended, or that ends on the reset (--no-reboot),
    is started again on its overlay, as the button would boot it. With wait, returns once a root login works."""
    vm = load_vm(name)
    if vm.pid() is not None:
        monitor(name, "system_reset")
        if not vm.no_reboot:
            if wait:
                time.sleep(2)
                log(f"{name}: SSH ready {wait_for_ssh(vm, ssh_timeout):.1f}s after reset")
            return
        deadline = time.monotonic() + 30
        while vm.pid() is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        if vm.pid() is not None:
            down(name)
    log(f"{name}: QEMU has ended; starting it again on its overlay")
    restart(name, ssh_timeout, wait=wait)


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
            f"      lab_image: {vm.image or vm.dist}",
            f"      lab_firmware: {vm.firmware}",
        ]
    return "\n".join(lines) + "\n"
