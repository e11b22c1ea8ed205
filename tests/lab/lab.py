# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The QEMU lab: Debian disk images that boot through SeaBIOS and GRUB, and VMs started from them.

Commands (see tests/lab/README.md):
  lab.py build DIST [--force]              build (or reuse) the cached image of DIST (bookworm, trixie)
  lab.py up NAME --dist DIST [options]     start a VM on a copy-on-write overlay, wait for SSH, print JSON
  lab.py down NAME... | --all              stop VMs; no QEMU process is left behind
  lab.py status                            the lab's VMs and whether their QEMU runs
  lab.py ssh NAME [--user U] [CMD...]      log in (or run CMD) on a VM
  lab.py reset NAME [--no-wait]           press the reset button (firmware reboot), wait for SSH
  lab.py inventory NAME...                 an Ansible YAML inventory of running VMs

Only the standard library: the lab runs before any virtual environment exists.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import inspect
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

LAB_DIR = Path(__file__).resolve().parent
RECIPE_DIR = LAB_DIR / "image"
REPO_DIR = LAB_DIR.parent.parent
DISTS = ("bookworm", "trixie")
QEMU_NAME_PREFIX = "fastreboot-lab-"
DISK_SIZE = "4G"
FIRSTBOOT_TIMEOUT = 900
DEFAULT_SSH_TIMEOUT = 300
GUEST_USERS = ("root", "lab")


class LabError(Exception):
    """A lab failure with a message meant for the person running the tests."""


def cache_dir() -> Path:
    """Images live outside the checkout so every clone and CI run on this machine reuses them."""
    base = os.environ.get("FASTREBOOT_LAB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "fastreboot-kexec", "lab"
    )
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_dir() -> Path:
    path = Path(os.environ.get("FASTREBOOT_LAB_RUN") or REPO_DIR / "tests" / "output" / "lab")
    path.mkdir(parents=True, exist_ok=True)
    return path


def log(message: str) -> None:
    print(f"lab: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Images


def host_apt_uris() -> tuple[str, str]:
    """The Debian archive and security URIs of the host's apt configuration (never hard-coded here)."""
    main_uri = security_uri = ""
    entries: list[tuple[str, list[str]]] = []
    sources_d = Path("/etc/apt/sources.list.d")
    for path in sorted(sources_d.glob("*.sources")):
        for stanza in path.read_text().split("\n\n"):
            fields = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                key, _sep, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if "deb" in fields.get("types", "").split() and "uris" in fields:
                entries.append((fields["uris"].split()[0], fields.get("suites", "").split()))
    for path in [Path("/etc/apt/sources.list"), *sorted(sources_d.glob("*.list"))]:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            words = [w for w in line.split() if not w.startswith("[")]
            if len(words) >= 3 and words[0] == "deb":
                entries.append((words[1], [words[2]]))
    for uri, suites in entries:
        if any(s.endswith("-security") or s.endswith("/updates") for s in suites):
            security_uri = security_uri or uri
        elif suites:
            main_uri = main_uri or uri
    if not main_uri:
        raise LabError("no Debian archive found in the host's apt sources (/etc/apt/sources.list*): "
                       "configure apt on this machine first")
    return main_uri, security_uri


def sources_for(dist: str) -> str:
    main_uri, security_uri = host_apt_uris()
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    text = (f"Types: deb\nURIs: {main_uri}\nSuites: {dist} {dist}-updates\nComponents: main\n"
            f"Signed-By: {keyring}\n")
    if security_uri:
        text += (f"\nTypes: deb\nURIs: {security_uri}\nSuites: {dist}-security\nComponents: main\n"
                 f"Signed-By: {keyring}\n")
    return text


def packages() -> list[str]:
    lines = (RECIPE_DIR / "packages.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def recipe_hash(dist: str) -> str:
    """Hash of everything that shapes an image: the recipe folder and the build code below."""
    digest = hashlib.sha256(dist.encode())
    for path in sorted(RECIPE_DIR.iterdir()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for func in (build_rootfs, assemble_disk, run_firstboot):
        digest.update(inspect.getsource(func).encode())
    return digest.hexdigest()[:12]


@dataclass
class Image:
    dist: str
    disk: Path
    key: Path

    @property
    def ready(self) -> bool:
        return self.disk.exists() and self.key.exists()


def image_for(dist: str) -> Image:
    stem = cache_dir() / f"{dist}-{recipe_hash(dist)}"
    return Image(dist, stem.with_suffix(".qcow2"), stem.with_suffix(".key"))


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise LabError(f"{what} needs root (mmdebstrap, chroot, mkfs): run it as root, e.g. with sudo")


def build_rootfs(dist: str, rootdir: Path, root_uuid: str, pubkey: str, sources: Path) -> None:
    env = dict(os.environ, LAB_DIST=dist, LAB_ROOT_UUID=root_uuid, LAB_PUBKEY=pubkey,
               LAB_RECIPE_DIR=str(RECIPE_DIR))
    cmd = [
        "mmdebstrap", "--variant=apt", "--mode=root", "--format=directory",
        "--include=" + ",".join(packages()),
        # Smaller, faster images: no documentation or translations.
        "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-include=/usr/share/doc/*/copyright", "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--skip=cleanup/apt/lists", "--skip=cleanup/apt/cache",
        "--customize-hook=sh " + str(RECIPE_DIR / "customize.sh") + ' "$1"',
        dist, str(rootdir), str(sources),
    ]
    subprocess.run(cmd, check=True, env=env)


def assemble_disk(rootdir: Path, root_uuid: str, raw: Path) -> None:
    """One MBR partition holding an ext4 filesystem made from the tree, without loop devices."""
    part = raw.with_suffix(".part")
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "labroot", "-U", root_uuid, "-d", str(rootdir),
                    str(part), DISK_SIZE], check=True)
    offset_mib = 1
    part_bytes = part.stat().st_size
    with open(raw, "wb") as disk:
        disk.truncate(part_bytes + offset_mib * 1024 * 1024)
    subprocess.run(["sfdisk", "--quiet", str(raw)], input=b"label: dos\nstart=2048, type=83, bootable\n",
                   check=True)
    subprocess.run(["dd", f"if={part}", f"of={raw}", "bs=1M", f"seek={offset_mib}", "conv=notrunc,sparse",
                    "status=none"], check=True)
    part.unlink()


def run_firstboot(disk: Path, rootdir: Path, root_uuid: str, workdir: Path) -> None:
    """Boot the new disk once, straight into its kernel, so the guest installs GRUB itself."""
    kernels = sorted(p for p in (rootdir / "boot").glob("vmlinuz-*") if "cloud" not in p.name)
    kernel = kernels[-1]
    initrd = rootdir / "boot" / kernel.name.replace("vmlinuz-", "initrd.img-")
    shutil.copy(kernel, workdir / "vmlinuz")
    shutil.copy(initrd, workdir / "initrd.img")
    console = workdir / "firstboot-console.log"
    cmd = qemu_base_cmd(memory=1024, smp=2) + [
        "-drive", f"file={disk},if=virtio,format=raw,cache=unsafe",
        "-kernel", str(workdir / "vmlinuz"), "-initrd", str(workdir / "initrd.img"),
        "-append", f"root=UUID={root_uuid} ro console=ttyS0,115200n8",
        "-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0",
        "-serial", f"file:{console}", "-no-reboot",
    ]
    try:
        subprocess.run(cmd, check=True, timeout=FIRSTBOOT_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"first boot did not finish in {FIRSTBOOT_TIMEOUT}s; console log: {console}") from exc
    text = console.read_text(errors="replace")
    if "LAB-FIRSTBOOT-OK" not in text:
        keep = cache_dir() / "last-firstboot-console.log"
        shutil.copy(console, keep)
        raise LabError(f"first boot did not install the boot loader; console log: {keep}")


def build(dist: str, force: bool = False) -> Image:
    if dist not in DISTS:
        raise LabError(f"unknown lab distribution {dist!r}; choose one of {', '.join(DISTS)}")
    image = image_for(dist)
    if image.ready and not force:
        return image
    require_root(f"building the {dist} lab image")
    started = time.monotonic()
    log(f"building the {dist} image {image.disk.name} (a few minutes; cached afterwards)")
    with tempfile.TemporaryDirectory(prefix=f"lab-build-{dist}-", dir=cache_dir()) as tmp:
        work = Path(tmp)
        key = work / "key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"fastreboot-lab-{dist}",
                        "-f", str(key)], check=True)
        sources = work / "sources"
        sources.write_text(sources_for(dist))
        root_uuid = str(uuid.uuid4())
        rootdir = work / "root"
        build_rootfs(dist, rootdir, root_uuid, key.with_suffix(".pub").read_text().strip(), sources)
        raw = work / "disk.raw"
        assemble_disk(rootdir, root_uuid, raw)
        run_firstboot(raw, rootdir, root_uuid, work)
        qcow = work / "disk.qcow2"
        subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(qcow)], check=True)
        # Old images of this distribution are stale now: remove them.
        for old in cache_dir().glob(f"{dist}-*.*"):
            old.unlink()
        os.replace(key, image.key)
        os.replace(qcow, image.disk)
        image.disk.chmod(0o444)
    log(f"built {image.disk} in {time.monotonic() - started:.0f}s")
    return image


# ---------------------------------------------------------------------------------------------
# VMs


def qemu_base_cmd(memory: int, smp: int) -> list[str]:
    cpu = os.environ.get("FASTREBOOT_LAB_CPU", "max")
    return ["qemu-system-x86_64", "-machine", "pc,accel=tcg", "-cpu", cpu, "-m", str(memory),
            "-smp", str(smp), "-display", "none", "-nodefaults"]


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

    @property
    def dir(self) -> Path:
        return vm_dir(self.name)

    def pid(self) -> int | None:
        try:
            pid = int(Path(self.pidfile).read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if qemu_alive(pid, self.name) else None

    def save(self) -> None:
        (self.dir / "vm.json").write_text(json.dumps(asdict(self), indent=2) + "\n")

    def describe(self) -> dict:
        data = asdict(self)
        data.update(address="127.0.0.1", users=list(GUEST_USERS), pid=self.pid())
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


def ssh_banner(port: int, timeout: float = 2.0) -> bool:
    """QEMU's forwarder accepts TCP even while the guest's sshd is down: only the banner proves sshd."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def ssh_cmd(vm: VM, user: str = "root", connect_timeout: int = 10) -> list[str]:
    return ["ssh", "-i", vm.key, "-p", str(vm.port), "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
            "-o", f"ConnectTimeout={connect_timeout}", f"{user}@127.0.0.1"]


def console_tail(vm: VM, lines: int = 25) -> str:
    try:
        text = Path(vm.console).read_text(errors="replace").splitlines()
    except OSError:
        return "(no console output)"
    return "\n".join(text[-lines:])


def wait_for_ssh(vm: VM, timeout: float) -> float:
    """Wait until a root login works; returns the seconds it took. Fails early if QEMU dies."""
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        if vm.pid() is None:
            raise LabError(f"VM {vm.name}: QEMU exited during boot; console log: {vm.console}\n"
                           f"--- last console lines ---\n{console_tail(vm)}")
        if ssh_banner(vm.port):
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


def up(name: str, dist: str, memory: int = 1024, smp: int = 1, firmware_delay: int = 0,
       ssh_timeout: float = DEFAULT_SSH_TIMEOUT) -> VM:
    image = build(dist)
    directory = vm_dir(name)
    if directory.exists():
        with contextlib.suppress(LabError):
            down(name)
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    overlay = directory / "overlay.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(image.disk),
                    str(overlay)], check=True)
    key = directory / "id_ed25519"
    shutil.copy(image.key, key)
    key.chmod(0o600)
    last_error = ""
    for _attempt in range(5):
        vm = VM(name=name, dist=dist, port=free_port(), key=str(key), console=str(directory / "console.log"),
                pidfile=str(directory / "qemu.pid"), overlay=str(overlay), firmware_delay=firmware_delay)
        cmd = qemu_base_cmd(memory, smp) + [
            "-name", QEMU_NAME_PREFIX + name,
            "-drive", f"file={overlay},if=virtio,format=qcow2,cache=unsafe",
            "-netdev", f"user,id=net0,hostfwd=tcp:127.0.0.1:{vm.port}-:22",
            "-device", "virtio-net-pci,netdev=net0",
            "-serial", f"file:{vm.console}", "-daemonize", "-pidfile", vm.pidfile,
            "-monitor", f"unix:{directory / 'monitor.sock'},server,nowait",
        ]
        if firmware_delay > 0:
            # SeaBIOS shows its boot menu prompt this long on every firmware boot: a slow POST.
            cmd += ["-boot", f"menu=on,splash-time={firmware_delay * 1000}"]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode == 0:
            vm.save()
            break
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


# ---------------------------------------------------------------------------------------------
# CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lab.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="build or reuse a cached image")
    p_build.add_argument("dists", nargs="+", choices=DISTS)
    p_build.add_argument("--force", action="store_true", help="rebuild even if cached")
    p_up = sub.add_parser("up", help="start a VM and wait for SSH")
    p_up.add_argument("name")
    p_up.add_argument("--dist", choices=DISTS, default="bookworm")
    p_up.add_argument("--memory", type=int, default=1024, help="MiB (default 1024)")
    p_up.add_argument("--smp", type=int, default=1, help="virtual CPUs (default 1)")
    p_up.add_argument("--firmware-delay", type=int, default=0, metavar="SECONDS",
                      help="slow firmware: seconds SeaBIOS waits on every firmware boot")
    p_up.add_argument("--ssh-timeout", type=float, default=DEFAULT_SSH_TIMEOUT)
    p_down = sub.add_parser("down", help="stop VMs")
    p_down.add_argument("names", nargs="*")
    p_down.add_argument("--all", action="store_true")
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
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            for dist in args.dists:
                print(build(dist, force=args.force).disk)
        elif args.command == "up":
            vm = up(args.name, args.dist, memory=args.memory, smp=args.smp, firmware_delay=args.firmware_delay,
                    ssh_timeout=args.ssh_timeout)
            print(json.dumps(vm.describe(), indent=2))
        elif args.command == "down":
            if args.all:
                log(f"stopped {down_all()} VM(s)")
            for name in args.names:
                down(name)
        elif args.command == "status":
            if run_dir().exists():
                for directory in sorted(run_dir().iterdir()):
                    if (directory / "vm.json").exists():
                        vm = load_vm(directory.name)
                        state = f"running (pid {vm.pid()})" if vm.pid() else "stopped"
                        print(f"{vm.name}\t{vm.dist}\tport {vm.port}\t{state}\t{vm.console}")
        elif args.command == "reset":
            monitor(args.name, "system_reset")
            if not args.no_wait:
                time.sleep(2)
                log(f"{args.name}: SSH ready {wait_for_ssh(load_vm(args.name), args.ssh_timeout):.1f}s after reset")
        elif args.command == "ssh":
            vm = load_vm(args.name)
            return subprocess.run(ssh_cmd(vm, args.user) + args.cmd, check=False).returncode
        elif args.command == "inventory":
            sys.stdout.write(inventory(args.names, args.user))
    except LabError as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as exc:
        print(f"lab: error: command failed ({exc.returncode}): {' '.join(map(str, exc.cmd))}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
