# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""KexecLoader: validate a load request, decide idempotency, run kexec, keep the record.

The kernel replaces the loaded image only when a new load succeeds (kexec_load and kexec_file_load
build the new image first, then swap it in; only a crash image is freed first). So a failed
`kexec -l` leaves the previous image loaded, and its record, and the concatenated initrd it names,
stay valid: a new concatenation is staged apart and takes the record's file name only after success.
Every check still runs before `kexec -l`: bad input changes nothing on the host.

Idempotency trusts the record: the kernel says only *that* an image is loaded, not which, so an image
loaded by someone else after ours (a plain `kexec -l`) is not seen. force=true reloads regardless.
"""

from __future__ import annotations

import stat
import time
import typing as t
from dataclasses import dataclass, field

from ansible_collections.fastreboot.kexec.plugins.module_utils._codes import INPUT, KEXEC, RECORD, SIGNATURE, UNSUPPORTED
from ansible_collections.fastreboot.kexec.plugins.module_utils._load_spec import LOAD_OPTION_NAMES
from ansible_collections.fastreboot.kexec.plugins.module_utils._cmdline import (
    CmdlineError,
    check_one_line,
    cmdline_warnings,
    edit_cmdline,
    strip_boot_loader_params,
    syscalls_for_length,
    validate_cmdline,
)
from ansible_collections.fastreboot.kexec.plugins.module_utils._host import CommandRunner, HostFiles
from ansible_collections.fastreboot.kexec.plugins.module_utils._initrd_image import InitrdImageError, read_initrd_image
from ansible_collections.fastreboot.kexec.plugins.module_utils._kernel_image import (
    KernelImageError,
    file_load_refusal,
    read_kernel_image,
)
from ansible_collections.fastreboot.kexec.plugins.module_utils._kernels import (
    KernelChoice,
    KernelInventory,
    KernelSelectionError,
)
from ansible_collections.fastreboot.kexec.plugins.module_utils._paths import CONCATENATED_INITRD, KEXEC_LOADED
from ansible_collections.fastreboot.kexec.plugins.module_utils._record import (
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
from ansible_collections.fastreboot.kexec.plugins.module_utils._codes import KEXEC_TOOLS_MISSING

# kexec_load's own options; those it shares with kexec_reboot are _load_spec.LOAD_ARGUMENT_SPEC.
STATE_ARGUMENT_SPEC = {
    "state": {"type": "str", "default": "loaded", "choices": ["loaded", "unloaded"]},
    "force": {"type": "bool", "default": False},
}

SYSCALL_FLAGS = {"file": "-s", "legacy": "-c"}
EXIT_FILE_SYSCALL_UNAVAILABLE = 253  # kexec -s: EFALLBACK, kexec_file_load missing or image not understood
# strerror texts after "kexec_file_load failed:" that kexec-tools >= 2.0.27 itself answers with a
# fallback (ENOSYS, EINVAL, ENOEXEC, ENOTSUP); older releases exit 255 for them.
FILE_SYSCALL_FALLBACK_ERRORS = ("Function not implemented", "Invalid argument", "Exec format error", "Operation not supported")
# strerror texts after "kexec_file_load failed:" when the kernel refused the image's signature
# (kimage_validate_signature / verify_pefile_signature), with what each says about the file.
# Never retried with kexec_load: where signatures are demanded, kexec_load is refused or unsafe.
SIGNATURE_ERRORS = {
    "No data available": "it carries no signature",  # ENODATA
    "Required key not available": "it is signed by a key the kernel does not trust",  # ENOKEY
    "Key was rejected by service": "its signature was rejected (a revoked key, or a signature that does not match)",  # EKEYREJECTED
    "Bad message": "its signature is malformed",  # EBADMSG
    "Package not installed": "its signature uses an algorithm this kernel lacks",  # ENOPKG
    "Accessing a corrupted shared library": "its signature is malformed",  # ELIBBAD
    "Message too long": "its signature is malformed",  # EMSGSIZE
}
# Under lockdown, a kernel that does not enforce signatures answers an unverifiable image with EPERM.
LOCKDOWN_SIGNATURE_ERRORS = {"Operation not permitted": "its signature does not verify, and lockdown refuses unverified kernels"}
# kexec_load (and kexec -u without -s) where lockdown or IMA refuses it: EACCES (IMA cannot appraise an
# image without a file descriptor), EPERM (lockdown).
LEGACY_REFUSED_ERRORS = ("Permission denied", "Operation not permitted")
SIGNED_KERNELS_ONLY = "Secure Boot/lockdown needs a kernel signed by a key the kernel trusts (Debian's kernels are)"
INITRD_NONE_WORDS = ("false", "none", "no", "off")


class LoadError(Exception):
    """A request that cannot be (or was not) carried out. result holds the return values to report.

    code is the failure_code (_codes): what kind of failure, for callers that decide by it. The default
    is INPUT, the request's own fault, which makes no caller reboot in another way.
    """

    def __init__(self, msg: str, result: dict[str, t.Any] | None = None, code: str = INPUT) -> None:
        super().__init__(msg)
        self.msg = msg
        self.result = result or {}
        self.code = code
        self.warnings: list[str] = []


@dataclass
class LoadRequest:
    kernel: str = "default"
    initrd: t.Any = "auto"
    cmdline: t.Optional[str] = None
    append: t.Any = field(default_factory=list)  # a string or a list: split like a command line
    remove: t.Any = field(default_factory=list)
    syscall: str = "auto"
    allow_unsafe_files: bool = False
    state: str = "loaded"
    force: bool = False

    @classmethod
    def from_params(cls, params: dict[str, t.Any]) -> "LoadRequest":
        names = LOAD_OPTION_NAMES + tuple(STATE_ARGUMENT_SPEC)
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


def _lockdown_facts(support: dict[str, t.Any]) -> str:
    return f"lockdown={support.get('lockdown') or 'unknown'}, Secure Boot {support.get('secure_boot') or 'unknown'}"


def signature_refusal(syscall: str, output: str, kernel: str, support: dict[str, t.Any]) -> str | None:
    """The explanation of a kexec failure that is a signature or lockdown refusal, or None when it is not one.

    The words depend on the host's facts: the same errno under lockdown is Secure Boot, without it the
    kernel enforces kexec signatures by itself (CONFIG_KEXEC_SIG_FORCE, an IMA policy).
    """
    blocked = legacy_blocked(support)
    if syscall == "file":
        refusals = dict(SIGNATURE_ERRORS, **(LOCKDOWN_SIGNATURE_ERRORS if support.get("lockdown") in LOCKDOWN_ACTIVE else {}))
        why = next((why for text, why in refusals.items() if f"kexec_file_load failed: {text}" in output), None)
        if why is None:
            return None
        refused = f"the kernel refused to load {kernel}: {why} ({output})"
        if blocked:
            context = (
                f"{SIGNED_KERNELS_ONLY} ({_lockdown_facts(support)}): load a signed distribution kernel, "
                "or sign this one with a key enrolled in the UEFI db or shim's MOK list"
            )
        elif support.get("lockdown") == "none":
            context = (
                f"lockdown is off here ({_lockdown_facts(support)}), so this is not Secure Boot: this kernel demands signed "
                "kexec images by itself (CONFIG_KEXEC_SIG_FORCE or an IMA appraisal policy); load a kernel signed by a key it trusts"
            )
        else:
            context = (
                f"the lockdown state is unknown ({_lockdown_facts(support)}; securityfs is not mounted at /sys/kernel/security): "
                f"the kernel demands signed kexec images; {SIGNED_KERNELS_ONLY}"
            )
        return f"{refused}. {context}. kexec_load was not tried: it is refused or unsafe where signatures are demanded"
    if any(f"failed: {text}" in output for text in LEGACY_REFUSED_ERRORS):
        return (
            f"the kernel refused kexec_load for {kernel} ({output}), as it does under Secure Boot/lockdown "
            f"({_lockdown_facts(support)}) or an IMA policy: use syscall=file; {SIGNED_KERNELS_ONLY}"
        )
    return None


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
        self.trusted_uid = self.TRUSTED_UID if trusted_uid is None else trusted_uid
        self.records = RecordStore(self.host, self.trusted_uid)
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
            "would_fail_because": None,
        }
        try:
            return self._dispatch(request, support, base, check_mode)
        except LoadError as error:
            error.result = dict(base, **error.result)
            error.result["failure_code"] = error.code
            raise

    def _dispatch(self, request: LoadRequest, support: dict[str, t.Any], base: dict[str, t.Any], check_mode: bool) -> LoadOutcome:
        """Load or unload; every failure becomes a LoadError with its code."""
        try:
            if request.state == "unloaded":
                return self._unload(support, base, check_mode)
            return self._load(request, support, base, check_mode)
        except (CmdlineError, KernelImageError, KernelSelectionError) as error:
            raise LoadError(str(error), code=INPUT) from error
        except RecordError as error:
            raise LoadError(str(error), code=RECORD) from error
        except OSError as error:
            # A path the host cannot read as asked (a symlink loop, an I/O error): name it, load nothing.
            raise LoadError(
                f"cannot read the files of this request ({error}); fix the path or the file, nothing was loaded or unloaded",
                code=INPUT,
            ) from error

    # Validation ----------------------------------------------------------------------------------

    def _check_host(self, support: dict[str, t.Any], syscall: str, check_mode: bool = False) -> list[str]:
        """Fail on anything that stops a kexec. Returns the problems check mode lets pass (a real run fails on them).

        In check mode a missing kexec-tools is let pass: the role that installs it does not run in check mode.
        """
        problems = list(support["problems"])
        deferred = []
        if check_mode and not support.get("kexec_path"):
            deferred = [problem for problem, code in zip(problems, support.get("problem_codes") or []) if code == KEXEC_TOOLS_MISSING]
            problems = [problem for problem in problems if problem not in deferred]
        # The host's own problems make it unsupported; a syscall it refuses is the request's to change.
        code = UNSUPPORTED if problems else INPUT
        if syscall == "legacy" and support.get("lockdown") in LOCKDOWN_ACTIVE:
            problems.append(
                f"syscall=legacy but lockdown={support['lockdown']} refuses kexec_load: use syscall=file (or auto) "
                "with a kernel signed by a trusted key"
            )
        if problems:
            raise LoadError("; ".join(problems), code=code)
        return deferred

    @staticmethod
    def _defer(deferred: list[str], base: dict[str, t.Any]) -> list[str]:
        """Record what check mode let pass in the result (would_fail_because); returns the warnings that say so."""
        base["would_fail_because"] = deferred or None
        return [f"{problem} (check mode goes on; a real run fails here)" for problem in deferred]

    def _checked_file(self, path: str, what: str, allow_unsafe: bool, warnings: list[str]) -> str:
        """Resolve symlinks; refuse files that are missing or not regular, and files someone other than root could swap.

        Swapping needs write access to the file or to any directory looked into on the way to it (the
        parents of the file and of every symlink followed): all must be root-owned, not group/other-writable.
        """
        resolved = self.host.resolve(path)
        shown = path if resolved == path else f"{path} (-> {resolved})"
        info = self.host.lstat(resolved)
        if info is None:
            raise LoadError(f"{what} {shown} does not exist: check the path ({what} option)")
        if stat.S_ISDIR(info.st_mode):
            raise LoadError(f"{what} {shown} is a directory: pass the file itself, e.g. /boot/vmlinuz-RELEASE")
        if not stat.S_ISREG(info.st_mode):
            raise LoadError(f"{what} {shown} is not a regular file: pass a regular file")
        problems = self.host.trust_problems(path, self.trusted_uid)
        if problems:
            found = "; ".join(f"{'it' if where == resolved else 'directory ' + where} is {problem}" for where, problem in problems)
            owned = " ".join(dict.fromkeys(where for where, problem in problems if problem.startswith("owned")))
            writable = " ".join(dict.fromkeys(where for where, problem in problems if problem.startswith("writable")))
            fix = "; ".join(command for command in (f"chown root:root {owned}" if owned else "", f"chmod go-w {writable}" if writable else "") if command)
            problem = f"{what} {shown} could be swapped by a user other than root: {found}; whoever can write there decides what this host boots"
            if not allow_unsafe:
                raise LoadError(f"{problem}; fix it ({fix}) or set allow_unsafe_files=true")
            warnings.append(f"{problem} (allowed by allow_unsafe_files)")
        return resolved

    def _initrd_sources(self, request: LoadRequest, choice: KernelChoice) -> list[str]:
        mode, paths = parse_initrd_option(request.initrd)
        if mode == "none":
            return []
        if mode == "auto" and choice.initrds is not None:
            paths = choice.initrds  # the boot entry's own initrd lines (microcode included)
        elif mode == "auto":
            paths, _naming, looked_for = self.inventory.initrds_for(choice.image)
            if not paths:
                looked = ", ".join(looked_for) or "nothing: the file name follows no known scheme"
                raise LoadError(
                    f"no initramfs found for kernel {choice.image} (looked for {looked}): pass initrd=PATH, "
                    "or initrd=false if this kernel boots without one"
                )
        for path in paths:
            if not path.startswith("/"):
                # HostFiles would take it from /, whatever the task's working directory: refuse, do not guess.
                raise LoadError(f"initrd {path!r} is a relative path: give an absolute path, e.g. /{path.lstrip('./')}")
        return paths

    def _cmdline(self, request: LoadRequest, choice: KernelChoice) -> tuple[str, str]:
        """The final command line and where its base came from; append/remove are checked by edit_cmdline."""
        if request.cmdline is not None:
            check_one_line(request.cmdline, "cmdline")
            if not request.cmdline.strip():
                raise CmdlineError(
                    "cmdline is empty: the new kernel would get no root= and no other parameter; give the whole "
                    "command line, or leave cmdline unset to reuse the boot entry's (or the running) one"
                )
            base, source = request.cmdline, "cmdline"
        elif choice.options is not None:
            base, source = choice.options, "boot_entry"
        else:
            proc = self.inventory.running_cmdline()
            if proc is None:
                raise LoadError("cannot read /proc/cmdline to reuse the running command line: pass cmdline")
            base, source = strip_boot_loader_params(proc), "proc"
        cmdline = edit_cmdline(base, request.append, request.remove)
        if not cmdline.strip():
            raise CmdlineError(
                f"the command line is empty once remove is applied (cmdline_source {source}): the new kernel would get no parameter at all; "
                "remove less, or give the whole command line in cmdline"
            )
        return cmdline, source

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
        kernel = self._checked_file(choice.path_to_check, "kernel", request.allow_unsafe_files, warnings)
        image = read_kernel_image(self.host, kernel, self.machine)
        release = self.inventory.release_or_name(kernel, image.release)

        sources = [self._checked_file(path, "initrd", request.allow_unsafe_files, warnings) for path in self._initrd_sources(request, choice)]
        for source in sources:
            try:
                read_initrd_image(self.host, source)
            except InitrdImageError as error:
                raise LoadError(str(error)) from error
        initrd = None
        if len(sources) == 1:
            initrd = sources[0]
        elif sources:
            initrd = CONCATENATED_INITRD

        cmdline, cmdline_source = self._cmdline(request, choice)
        validate_cmdline(cmdline)
        warnings.extend(cmdline_warnings(cmdline))
        # Which syscalls can take this image and line, decided here so that kexec never sees them fail.
        syscalls = self._syscalls(request, support)
        legacy_refused = "lockdown/Secure Boot is active" if request.syscall == "auto" and "legacy" not in syscalls else None
        no_file_load = file_load_refusal(image)
        if no_file_load and "file" in syscalls:
            if syscalls == ["file"]:
                fix = f"kexec_load, which loads it, is refused here ({legacy_refused})" if legacy_refused else "use syscall=auto or syscall=legacy"
                raise LoadError(f"{no_file_load}: {fix}; or pass the vmlinuz image")
            syscalls = [syscall for syscall in syscalls if syscall != "file"]
            warnings.append(f"{no_file_load}, so only kexec_load is tried")
        syscalls, length_warnings = syscalls_for_length(cmdline, self.machine, image.cmdline_size, syscalls, legacy_refused)
        warnings.extend(length_warnings)
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
            syscalls=syscalls,
            warnings=warnings,
        )

    # Load ----------------------------------------------------------------------------------------

    def _load(self, request: LoadRequest, support: dict[str, t.Any], base: dict[str, t.Any], check_mode: bool) -> LoadOutcome:
        host_warnings = self._defer(self._check_host(support, request.syscall, check_mode), base)
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
        elif valid_record and request.force:
            reason = "forced"
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
        if reason is None and valid_record is not None:
            result.update(syscall=valid_record.get("syscall"), record=valid_record, msg=f"{plan.kernel} ({plan.kernel_release}) is already loaded")
            return LoadOutcome(result, plan.warnings, {"before": current_view, "after": current_view})

        why = {
            "not loaded": "nothing was loaded before",
            "no record": "an image loaded outside this collection (no record) is replaced",
            "record of an earlier boot": "the record found was from an earlier boot",
            "request differs": f"the loaded image differs in {', '.join(differences)}",
            "forced": "force=true reloads although the record says it is loaded",
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

        staged = self._staged_initrd(plan, result)
        try:
            syscall, failure, code = self._kexec_load(plan, staged or plan.initrd, result)
        except BaseException:
            if staged:
                self.records.remove_staged_initrd()
            raise
        if failure:
            raise self._failed_load(failure, syscall, loaded, valid_record, staged, result, code)
        if read_flag(self.host, KEXEC_LOADED) is False:
            self.records.remove()
            result.update(changed=bool(loaded), loaded=False, record=None, syscall=syscall)
            raise LoadError(f"kexec -l reported success but {KEXEC_LOADED} is 0: nothing is loaded", result, KEXEC)
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
        result.update(changed=True, loaded=True, syscall=syscall, record=None)
        try:
            # Only now may the concatenation take the name the old record uses: the old image is gone.
            if staged:
                self.records.commit_staged_initrd()
            self.records.write(new_record)
            if not staged:
                self.records.remove_concatenated_initrd()
        except OSError as error:
            try:
                self.records.remove()  # the old record no longer describes what is loaded
            except OSError:
                pass  # the error below says what went wrong first
            raise LoadError(
                f"{plan.kernel} was loaded, but its record could not be written ({error}): check /run; "
                "the next kexec_load loads it again", result, RECORD,
            ) from error
        diff["after"]["syscall"] = syscall
        call = "kexec_file_load" if syscall == "file" else "kexec_load"
        result.update(record=self.records.read(), msg=f"loaded {plan.kernel} ({plan.kernel_release}) with {call} ({why})")
        return LoadOutcome(result, plan.warnings, diff)

    def _staged_initrd(self, plan: LoadPlan, result: dict[str, t.Any]) -> str | None:
        """Concatenate a list of initrds apart from the file the loaded image's record names; None for one or none."""
        if len(plan.initrd_sources) < 2:
            return None
        staged = self.records.stage_concatenated_initrd(plan.initrd_sources)
        if sha256_of(self.host, [staged]) != plan.initrd_sha256:
            self.records.remove_staged_initrd()
            raise LoadError(
                f"{staged} does not match its sources after writing (an initrd changed meanwhile, or /run is full): "
                "check free space on /run and run again; nothing was loaded", result, RECORD,
            )
        return staged

    def _failed_load(
        self, failure: str, syscall: str, loaded: bool | None, valid_record: dict[str, t.Any] | None, staged: str | None, result: dict[str, t.Any],
        code: str,
    ) -> LoadError:
        """A kexec -l that failed replaced nothing: the image loaded before (if any) and its record stay."""
        if staged:
            self.records.remove_staged_initrd()
        now_loaded = read_flag(self.host, KEXEC_LOADED)
        if now_loaded and valid_record:
            state = (
                f"the image loaded before ({valid_record.get('kernel')}, {valid_record.get('kernel_release')}) is still loaded "
                "and its record kept: a failed load replaces nothing"
            )
        elif now_loaded:
            state = "the image loaded before (not by this collection) is still loaded: a failed load replaces nothing"
        elif now_loaded is None:
            state = f"{KEXEC_LOADED} is unreadable, so whether an image is still loaded is unknown"
        else:
            self.records.remove()  # nothing is loaded: a record left over describes nothing
            state = "nothing is loaded" if not loaded else "nothing is loaded any more (something unloaded the image meanwhile)"
        result.update(
            changed=bool(loaded) and now_loaded is False, loaded=bool(now_loaded),
            record=valid_record if now_loaded else None, syscall=syscall,
        )
        return LoadError(f"{failure}; {state}", result, code)

    def _kexec_load(self, plan: LoadPlan, initrd: str | None, result: dict[str, t.Any]) -> tuple[str, str | None, str]:
        """Run kexec -l with each syscall in turn (initrd: the file to pass).

        Returns (last syscall tried, failure or None, its failure_code: SIGNATURE for a refused image, else KEXEC).
        """
        kexec = t.cast(str, self.probe.kexec_path())
        failure = None
        syscall = plan.syscalls[0]
        for position, syscall in enumerate(plan.syscalls):
            argv = [kexec, "-l", SYSCALL_FLAGS[syscall], plan.kernel]
            if initrd:
                argv.append(f"--initrd={initrd}")
            argv.append(f"--append={plan.cmdline}")
            rc, out, err = self.runner.run(argv)
            output = (err or out).strip()
            result["attempts"].append({"syscall": syscall, "argv": argv, "rc": rc, "stderr": output})
            if rc == 0:
                return syscall, None, KEXEC
            has_fallback = position + 1 < len(plan.syscalls)
            refusal = signature_refusal(syscall, output, plan.kernel, result["support"])
            if refusal:
                return syscall, refusal, SIGNATURE
            unavailable = rc == EXIT_FILE_SYSCALL_UNAVAILABLE or any(
                f"kexec_file_load failed: {text}" in output for text in FILE_SYSCALL_FALLBACK_ERRORS
            )
            if syscall == "file" and unavailable and has_fallback:
                continue  # kexec_file_load unsupported or image not understood: try kexec_load
            failure = f"kexec -l {SYSCALL_FLAGS[syscall]} failed with exit code {rc}: {output or 'no output'}"
            if syscall == "file" and unavailable:
                failure += " (kexec_file_load is not available for this kernel/image"
                failure += ": kexec_load is refused under lockdown/Secure Boot)" if legacy_blocked(result["support"]) else ": try syscall=auto)"
            return syscall, failure, KEXEC
        return syscall, failure, KEXEC

    # Unload --------------------------------------------------------------------------------------

    def _unload(self, support: dict[str, t.Any], base: dict[str, t.Any], check_mode: bool) -> LoadOutcome:
        # Unloading only makes the next reboot colder, so an untrusted record directory does not stop it
        # (the guard relies on this); nothing is read from or removed through that directory.
        untrusted: str | None = None
        try:
            record = self.records.read()
        except RecordError as error:
            record, untrusted = None, str(error)
        loaded = support["kexec_loaded"]
        result = dict(base, record=record, syscall=None, attempts=[])
        diff = {"before": _view(record, loaded), "after": _view(None, False)}
        if not loaded:
            if not check_mode and untrusted is None:
                self.records.remove()  # a stale record describes nothing
            result.update(msg="nothing is loaded")
            return LoadOutcome(result, [untrusted] if untrusted else [], {"before": diff["after"], "after": diff["after"]})
        warnings = self._defer(self._check_host(support, "auto", check_mode), result)
        if untrusted:
            warnings.append(f"{untrusted} (the image is unloaded all the same; the record is neither read nor removed)")
        if check_mode:
            result.update(changed=True, msg="would unload the loaded kexec image")
            return LoadOutcome(result, warnings, diff)
        kexec = t.cast(str, self.probe.kexec_path())
        # kexec -u without -s is kexec_load, which lockdown refuses ("kexec unload failed: Permission denied"
        # with kexec-tools 2.0.25); kexec_file_load unloads whatever is loaded, however it was loaded.
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
            raise LoadError(
                f"kexec -u failed, the image is still loaded and its record kept: {output or 'no output'}", dict(result, loaded=True), KEXEC,
            )
        if untrusted is None:
            self.records.remove()
        result.update(changed=True, loaded=False, record=None, msg="unloaded the kexec image")
        return LoadOutcome(result, warnings, diff)
