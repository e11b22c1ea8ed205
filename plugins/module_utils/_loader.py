# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""KexecLoader: validate a load request, decide idempotency, run kexec, keep the record.

Order matters: the kernel frees the loaded image as soon as a new load starts, so every check runs
before `kexec -l`, and a failed load is reported as "nothing is loaded any more".
"""

from __future__ import annotations

import os
import stat
import time
import typing as t
from dataclasses import dataclass, field

from ansible_collections.fastreboot.kexec.plugins.module_utils._load_spec import LOAD_OPTION_NAMES
from ansible_collections.fastreboot.kexec.plugins.module_utils._cmdline import (
    CmdlineError,
    command_line_limit,
    edit_cmdline,
    strip_boot_loader_params,
    validate_cmdline,
)
from ansible_collections.fastreboot.kexec.plugins.module_utils._host import CommandRunner, HostFiles
from ansible_collections.fastreboot.kexec.plugins.module_utils._kernel_image import (
    KernelImageError,
    read_kernel_image,
    release_from_file_name,
)
from ansible_collections.fastreboot.kexec.plugins.module_utils._kernels import (
    KernelChoice,
    KernelInventory,
    KernelSelectionError,
)
from ansible_collections.fastreboot.kexec.plugins.module_utils._record import (
    CONCATENATED_INITRD,
    KEXEC_LOADED,
    RecordError,
    RecordStore,
    current_boot_id,
    differing_fields,
    read_flag,
    record_problem,
    sha256_of,
)
from ansible_collections.fastreboot.kexec.plugins.module_utils._support import (
    LOCKDOWN_ACTIVE,
    SupportProbe,
    legacy_blocked,
)

# The options kexec_load shares with the kexec_reboot action (doc fragment fastreboot.kexec.load_options).
STATE_ARGUMENT_SPEC = {"state": {"type": "str", "default": "loaded", "choices": ["loaded", "unloaded"]}}

SYSCALL_FLAGS = {"file": "-s", "legacy": "-c"}
EXIT_FILE_SYSCALL_UNAVAILABLE = 253  # kexec -s: EFALLBACK, kexec_file_load missing or image not understood
# strerror texts after "kexec_file_load failed:" that kexec-tools >= 2.0.27 itself answers with a
# fallback (ENOSYS, EINVAL, ENOEXEC, ENOTSUP); older releases exit 255 for them.
FILE_SYSCALL_FALLBACK_ERRORS = ("Function not implemented", "Invalid argument", "Exec format error", "Operation not supported")
SIGNATURE_ERRORS = (
    "Key was rejected by service",  # EKEYREJECTED
    "Required key not available",  # ENOKEY
    "Bad message",  # EBADMSG
    "Package not installed",  # ENOPKG
    "Accessing a corrupted shared library",  # ELIBBAD
    "Message too long",  # EMSGSIZE
)
INITRD_NONE_WORDS = ("false", "none", "no", "off")


class LoadError(Exception):
    """A request that cannot be (or was not) carried out. result holds the return values to report."""

    def __init__(self, msg: str, result: dict[str, t.Any] | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.result = result or {}
        self.warnings: list[str] = []


@dataclass
class LoadRequest:
    kernel: str = "default"
    initrd: t.Any = "auto"
    cmdline: t.Optional[str] = None
    append: t.List[str] = field(default_factory=list)
    remove: t.List[str] = field(default_factory=list)
    syscall: str = "auto"
    allow_unsafe_files: bool = False
    state: str = "loaded"

    @classmethod
    def from_params(cls, params: dict[str, t.Any]) -> "LoadRequest":
        names = LOAD_OPTION_NAMES + ("state",)
        return cls(**{name: params[name] for name in names if params.get(name) is not None})


@dataclass
class LoadOutcome:
    result: dict[str, t.Any]
    warnings: t.List[str]
    diff: t.Optional[dict[str, t.Any]] = None


@dataclass
class LoadPlan:
    """What a request resolves to, fully validated."""

    kernel: str
    kernel_release: str
    kernel_selected_by: str
    kernel_sha256: str
    initrd: t.Optional[str]
    initrd_sources: t.List[str]
    initrd_sha256: t.Optional[str]
    cmdline: str
    cmdline_source: str
    syscalls: t.List[str]
    warnings: t.List[str] = field(default_factory=list)

    def identity(self) -> dict[str, t.Any]:
        return {
            "kernel": self.kernel,
            "kernel_sha256": self.kernel_sha256,
            "initrd_sha256": self.initrd_sha256,
            "cmdline": self.cmdline,
        }


def parse_initrd_option(value: t.Any) -> tuple[str, list[str]]:
    """initrd option -> ("auto", []), ("none", []) or ("paths", [...])."""
    if value is None or value == "auto":
        return "auto", []
    if value is False or (isinstance(value, str) and value.strip().lower() in INITRD_NONE_WORDS):
        return "none", []
    if isinstance(value, str) and value.strip():
        return "paths", [value.strip()]
    if isinstance(value, (list, tuple)) and value and all(isinstance(item, str) and item.strip() for item in value):
        return "paths", [item.strip() for item in value]
    raise LoadError(
        f"initrd={value!r} is not understood: use auto, a path, a list of paths (concatenated in order), "
        "or false for no initrd"
    )


def _view(source: dict[str, t.Any] | None, loaded: bool | None) -> dict[str, t.Any]:
    """The record-ish dict shown in diff mode."""
    source = source or {}
    view = {name: source.get(name) for name in ("kernel", "kernel_release", "kernel_sha256", "initrd", "initrd_sha256", "cmdline", "syscall")}
    view["loaded"] = bool(loaded)
    return view


class KexecLoader:
    """Loads (or unloads) the next kernel. Host facts come from files below root; commands go through runner.

    trusted_uid is the owner kernel and initrd files must have (TRUSTED_UID, root); tests pass their own uid.
    root defaults to HostFiles.DEFAULT_ROOT ("/").
    """

    TRUSTED_UID = 0

    def __init__(
        self,
        runner: CommandRunner,
        root: str | None = None,
        machine: str | None = None,
        trusted_uid: int | None = None,
        clock: t.Callable[[], float] = time.time,
    ) -> None:
        self.runner = runner
        self.host = HostFiles(root)
        self.probe = SupportProbe(self.host, runner, machine)
        self.machine = self.probe.machine
        self.inventory = KernelInventory(self.host, runner)
        self.records = RecordStore(self.host)
        self.trusted_uid = self.TRUSTED_UID if trusted_uid is None else trusted_uid
        self.clock = clock

    # Entry point ---------------------------------------------------------------------------------

    def run(self, request: LoadRequest, check_mode: bool = False) -> LoadOutcome:
        support = self.probe.probe()
        base = {
            "changed": False,
            "loaded": bool(support["kexec_loaded"]),
            "boot_id": current_boot_id(self.host),
            "running_release": self.inventory.running_release(),
            "support": support,
        }
        try:
            if request.state == "unloaded":
                return self._unload(support, base, check_mode)
            return self._load(request, support, base, check_mode)
        except LoadError as error:
            error.result = dict(base, **error.result)
            raise
        except (CmdlineError, KernelImageError, KernelSelectionError, RecordError) as error:
            raise LoadError(str(error), dict(base)) from error
        except OSError as error:
            # A path the host cannot read as asked (a symlink loop, an I/O error): name it, load nothing.
            raise LoadError(
                f"cannot read the files of this request ({error}); fix the path or the file, nothing was loaded or unloaded",
                dict(base),
            ) from error

    # Validation ----------------------------------------------------------------------------------

    def _check_host(self, support: dict[str, t.Any], syscall: str, check_mode: bool = False) -> list[str]:
        """Fail on anything that stops a kexec. Returns warnings.

        In check mode a missing kexec-tools only warns: the role that installs it does not run in check mode.
        """
        problems = list(support["problems"])
        warnings = []
        if check_mode and not support.get("kexec_path"):
            missing = [problem for problem in problems if "kexec-tools" in problem and "not installed" in problem]
            problems = [problem for problem in problems if problem not in missing]
            warnings = [f"{problem} (check mode goes on; a real run fails here)" for problem in missing]
        if syscall == "legacy" and support.get("lockdown") in LOCKDOWN_ACTIVE:
            problems.append(
                f"syscall=legacy but lockdown={support['lockdown']} refuses kexec_load: use syscall=file (or auto) "
                "with a kernel signed by a trusted key"
            )
        if problems:
            raise LoadError("; ".join(problems))
        return warnings

    def _checked_file(self, path: str, what: str, allow_unsafe: bool, warnings: list[str]) -> str:
        """Resolve symlinks and refuse files that are missing, not regular, or writable by non-root."""
        resolved = self.host.resolve(path)
        shown = path if resolved == path else f"{path} (-> {resolved})"
        info = self.host.lstat(resolved)
        if info is None:
            raise LoadError(f"{what} {shown} does not exist: check the path ({what} option)")
        if stat.S_ISDIR(info.st_mode):
            raise LoadError(f"{what} {shown} is a directory: pass the file itself, e.g. /boot/vmlinuz-RELEASE")
        if not stat.S_ISREG(info.st_mode):
            raise LoadError(f"{what} {shown} is not a regular file: pass a regular file")
        unsafe = []
        if info.st_uid != self.trusted_uid:
            unsafe.append(f"owned by uid {info.st_uid} instead of root")
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            unsafe.append(f"writable by group or others (mode {stat.S_IMODE(info.st_mode):04o})")
        if unsafe:
            problem = f"{what} {shown} is {' and '.join(unsafe)}: whoever can write it decides what this host boots"
            if not allow_unsafe:
                raise LoadError(f"{problem}; fix it (chown root:root, chmod go-w) or set allow_unsafe_files=true")
            warnings.append(f"{problem} (allowed by allow_unsafe_files)")
        return resolved

    def _initrd_sources(self, request: LoadRequest, choice: KernelChoice) -> list[str]:
        mode, paths = parse_initrd_option(request.initrd)
        if mode == "none":
            return []
        if mode == "paths":
            return paths
        if choice.initrds is not None:
            return choice.initrds  # the boot entry's own initrd lines (microcode included)
        found, _naming, looked_for = self.inventory.initrds_for(choice.image)
        if not found:
            looked = ", ".join(looked_for) or "nothing: the file name follows no known scheme"
            raise LoadError(
                f"no initramfs found for kernel {choice.image} (looked for {looked}): pass initrd=PATH, "
                "or initrd=false if this kernel boots without one"
            )
        return found

    def _cmdline(self, request: LoadRequest, choice: KernelChoice) -> tuple[str, str]:
        for item in [request.cmdline or ""] + list(request.append) + list(request.remove):
            if "\n" in item or "\r" in item or "\0" in item:
                raise CmdlineError(
                    f"{item!r} contains a line break or NUL; the kernel command line is one line: remove it"
                )
        if request.cmdline is not None:
            base, source = request.cmdline, "cmdline"
        elif choice.options is not None:
            base, source = choice.options, "boot_entry"
        else:
            proc = self.inventory.running_cmdline()
            if proc is None:
                raise LoadError("cannot read /proc/cmdline to reuse the running command line: pass cmdline")
            base, source = strip_boot_loader_params(proc), "proc"
        return edit_cmdline(base, request.append, request.remove), source

    def _syscalls(self, request: LoadRequest, support: dict[str, t.Any]) -> list[str]:
        if request.syscall in ("file", "legacy"):
            return [request.syscall]
        # auto: never try kexec_load under lockdown/Secure Boot, it is refused there.
        return ["file"] if legacy_blocked(support) else ["file", "legacy"]

    def plan(self, request: LoadRequest, support: dict[str, t.Any]) -> LoadPlan:
        """Resolve and validate a request without touching anything."""
        warnings: list[str] = []
        choice = self.inventory.select(request.kernel)
        warnings.extend(choice.warnings)
        kernel = self._checked_file(choice.image, "kernel", request.allow_unsafe_files, warnings)
        image = read_kernel_image(self.host, kernel, self.machine)
        release = image.release or choice.release or release_from_file_name(kernel) or os.path.basename(kernel)

        sources = [self._checked_file(path, "initrd", request.allow_unsafe_files, warnings) for path in self._initrd_sources(request, choice)]
        initrd = None
        if len(sources) == 1:
            initrd = sources[0]
        elif sources:
            initrd = CONCATENATED_INITRD

        cmdline, cmdline_source = self._cmdline(request, choice)
        validate_cmdline(cmdline, command_line_limit(self.machine, image.cmdline_size), self.machine)
        return LoadPlan(
            kernel=kernel,
            kernel_release=release,
            kernel_selected_by=choice.selected_by,
            kernel_sha256=sha256_of(self.host, [kernel]) or "",
            initrd=initrd,
            initrd_sources=sources,
            initrd_sha256=sha256_of(self.host, sources),
            cmdline=cmdline,
            cmdline_source=cmdline_source,
            syscalls=self._syscalls(request, support),
            warnings=warnings,
        )

    # Load ----------------------------------------------------------------------------------------

    def _load(self, request: LoadRequest, support: dict[str, t.Any], base: dict[str, t.Any], check_mode: bool) -> LoadOutcome:
        host_warnings = self._check_host(support, request.syscall, check_mode)
        plan = self.plan(request, support)
        plan.warnings[:0] = host_warnings
        try:
            return self._load_plan(request, plan, base, check_mode)
        except LoadError as error:
            error.warnings = plan.warnings + error.warnings
            raise

    def _load_plan(self, request: LoadRequest, plan: LoadPlan, base: dict[str, t.Any], check_mode: bool) -> LoadOutcome:
        loaded = base["support"]["kexec_loaded"]
        record = self.records.read()
        reason = record_problem(record, base["boot_id"], loaded)
        valid_record = record if reason is None else None
        differences = differing_fields(valid_record, plan.identity(), request.syscall) if valid_record else []
        if differences:
            reason = "request differs"
        current_view = _view(valid_record, loaded)
        result = dict(
            base,
            kernel=plan.kernel,
            kernel_release=plan.kernel_release,
            kernel_selected_by=plan.kernel_selected_by,
            kernel_sha256=plan.kernel_sha256,
            initrd=plan.initrd,
            initrd_sources=plan.initrd_sources,
            initrd_sha256=plan.initrd_sha256,
            cmdline=plan.cmdline,
            cmdline_source=plan.cmdline_source,
            reloaded_reason=reason,
            attempts=[],
        )
        if valid_record and not differences:
            result.update(syscall=valid_record.get("syscall"), record=valid_record, msg=f"{plan.kernel} ({plan.kernel_release}) is already loaded")
            return LoadOutcome(result, plan.warnings, {"before": current_view, "after": current_view})

        why = {
            "not loaded": "nothing was loaded before",
            "no record": "an image loaded outside this collection (no record) is replaced",
            "record of an earlier boot": "the record found was from an earlier boot",
            "request differs": f"the loaded image differs in {', '.join(differences)}",
        }[t.cast(str, reason)]
        if reason == "no record":
            plan.warnings.append("an image was already loaded by something else (no record of this collection); it is replaced")
        planned = dict(plan.identity(), initrd=plan.initrd, kernel_release=plan.kernel_release, syscall=plan.syscalls[0])
        diff = {"before": current_view, "after": _view(planned, True)}
        if check_mode:
            result.update(
                changed=True, syscall=plan.syscalls[0], record=record,
                msg=f"would load {plan.kernel} ({plan.kernel_release}): {why}",
            )
            return LoadOutcome(result, plan.warnings, diff)

        if len(plan.initrd_sources) > 1:
            self.records.write_concatenated_initrd(plan.initrd_sources)
            if sha256_of(self.host, [CONCATENATED_INITRD]) != plan.initrd_sha256:
                raise LoadError(f"{CONCATENATED_INITRD} does not match its sources after writing: check free space on /run", result)
        syscall, failure = self._kexec_load(plan, result)
        if failure:
            self.records.remove()
            now_loaded = read_flag(self.host, KEXEC_LOADED)
            state = "nothing is loaded any more (the kernel drops the old image when a load starts)" if not now_loaded else "an image is still loaded"
            result.update(changed=bool(loaded) and not now_loaded, loaded=bool(now_loaded), record=None, syscall=syscall)
            raise LoadError(f"{failure}; {state}", result)
        if read_flag(self.host, KEXEC_LOADED) is False:
            self.records.remove()
            result.update(changed=bool(loaded), loaded=False, record=None, syscall=syscall)
            raise LoadError(f"kexec -l reported success but {KEXEC_LOADED} is 0: nothing is loaded", result)
        new_record = dict(
            plan.identity(),
            boot_id=base["boot_id"],
            initrd=plan.initrd,
            initrd_sources=plan.initrd_sources,
            kernel_release=plan.kernel_release,
            kernel_selected_by=plan.kernel_selected_by,
            syscall=syscall,
            loaded_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock())),
        )
        self.records.write(new_record)
        if len(plan.initrd_sources) < 2:
            self.records.remove_concatenated_initrd()
        diff["after"]["syscall"] = syscall
        call = "kexec_file_load" if syscall == "file" else "kexec_load"
        result.update(
            changed=True, loaded=True, syscall=syscall, record=self.records.read(),
            msg=f"loaded {plan.kernel} ({plan.kernel_release}) with {call} ({why})",
        )
        return LoadOutcome(result, plan.warnings, diff)

    def _kexec_load(self, plan: LoadPlan, result: dict[str, t.Any]) -> tuple[str, str | None]:
        """Run kexec -l with each syscall in turn. Returns (last syscall tried, failure message or None)."""
        kexec = t.cast(str, self.probe.kexec_path())
        failure = None
        syscall = plan.syscalls[0]
        for position, syscall in enumerate(plan.syscalls):
            argv = [kexec, "-l", SYSCALL_FLAGS[syscall], plan.kernel]
            if plan.initrd:
                argv.append(f"--initrd={plan.initrd}")
            argv.append(f"--append={plan.cmdline}")
            rc, out, err = self.runner.run(argv)
            output = (err or out).strip()
            result["attempts"].append({"syscall": syscall, "argv": argv, "rc": rc, "stderr": output})
            if rc == 0:
                return syscall, None
            has_fallback = position + 1 < len(plan.syscalls)
            if any(text in output for text in SIGNATURE_ERRORS):
                return syscall, (
                    f"the kernel rejected the signature of {plan.kernel} ({output}): under Secure Boot/lockdown only "
                    "kernels signed by a trusted key can be kexec'ed; load a signed distribution kernel or enroll its key. "
                    "kexec_load was not tried (it is refused under lockdown)"
                )
            unavailable = rc == EXIT_FILE_SYSCALL_UNAVAILABLE or any(
                f"kexec_file_load failed: {text}" in output for text in FILE_SYSCALL_FALLBACK_ERRORS
            )
            if syscall == "file" and unavailable and has_fallback:
                continue  # kexec_file_load unsupported or image not understood: try kexec_load
            failure = f"kexec -l {SYSCALL_FLAGS[syscall]} failed with exit code {rc}: {output or 'no output'}"
            if syscall == "file" and unavailable:
                failure += " (kexec_file_load is not available for this kernel/image"
                failure += ": kexec_load is refused under lockdown/Secure Boot)" if legacy_blocked(result["support"]) else ": try syscall=auto)"
            return syscall, failure
        return syscall, failure

    # Unload --------------------------------------------------------------------------------------

    def _unload(self, support: dict[str, t.Any], base: dict[str, t.Any], check_mode: bool) -> LoadOutcome:
        record = self.records.read()
        loaded = support["kexec_loaded"]
        result = dict(base, record=record, syscall=None, attempts=[])
        diff = {"before": _view(record, loaded), "after": _view(None, False)}
        if not loaded:
            if not check_mode:
                self.records.remove()  # a stale record describes nothing
            result.update(msg="nothing is loaded")
            return LoadOutcome(result, [], {"before": diff["after"], "after": diff["after"]})
        self._check_host(support, "auto")
        if check_mode:
            result.update(changed=True, msg="would unload the loaded kexec image")
            return LoadOutcome(result, [], diff)
        kexec = t.cast(str, self.probe.kexec_path())
        syscalls = ["file"] if legacy_blocked(support) else ["file", "legacy"]
        output = ""
        rc = -1
        for syscall in syscalls:
            argv = [kexec, "-u", SYSCALL_FLAGS[syscall]]
            rc, out, err = self.runner.run(argv)
            output = (err or out).strip()
            result["attempts"].append({"syscall": syscall, "argv": argv, "rc": rc, "stderr": output})
            result["syscall"] = syscall
            if rc == 0:
                break
        now_loaded = read_flag(self.host, KEXEC_LOADED)
        if now_loaded or (rc != 0 and now_loaded is None):
            raise LoadError(f"kexec -u failed, the image is still loaded: {output or 'no output'}", dict(result, loaded=True))
        self.records.remove()
        result.update(changed=True, loaded=False, record=None, msg="unloaded the kexec image")
        return LoadOutcome(result, [], diff)
