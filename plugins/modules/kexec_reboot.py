# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This file only documents the action plugin plugins/action/kexec_reboot.py, like
# ansible.builtin.reboot's module file; the code runs on the controller.

from __future__ import annotations

DOCUMENTATION = r"""
module: kexec_reboot
short_description: Reboot a Linux host through kexec, wait for it and prove which kernel booted
version_added: 1.0.0
description:
  - Checks the host, loads the next kernel with M(fastreboot.kexec.kexec_load) (same options) unless
    O(use_loaded=true), reboots it through kexec - skipping firmware POST and the boot loader - waits for it, and
    proves that the new boot runs the loaded kernel release and command line.
  - The load runs in this task, right before the trigger, with C(force=true) - whatever was loaded before, by this
    collection or anything else, is replaced - so that what the proof compares with is what this task loaded. The
    kernel offers no way to read back a loaded image.
  - Nothing changes on the host before every check that can refuse has passed - bad options, the C(local) connection,
    the controller itself, a host without systemd under O(method=auto), a program of the trigger missing from
    O(search_paths), a failing O(boot_time_command). Then the load runs; a host that cannot kexec (no C(kexec) binary,
    C(kernel.kexec_load_disabled), a container, lockdown against the chosen syscall) or an image that did not load
    fail the task without a reboot - or, with O(cold_fallback=true), a host that cannot kexec gets an ordinary reboot
    instead.
  - A drop-in for M(ansible.builtin.reboot) - its options are accepted with its meaning (O(search_paths),
    O(boot_time_command), float and negative delays, O(test_command), O(msg), O(reboot_timeout), O(connect_timeout));
    O(reboot_command) only together with O(cold_fallback=true). It returns RV(rebooted) and RV(elapsed) like the builtin.
  - By default the reboot is a clean shutdown with C(systemctl kexec) (services stopped, file systems unmounted).
    C(systemctl --no-block kexec) queues the job and returns at once, so a refusal fails the task at once and the
    task does not depend on the login that sent it; a connection that drops at that moment is expected. With
    O(pre_reboot_delay) (or O(method=immediate)) the reboot runs from a transient C(systemd-run) unit instead.
  - The wait is bounded by one deadline, O(reboot_timeout). Over SSH the task probes often and cheaply - a TCP
    connect to the SSH port that reads the C(SSH-2.0-) banner, about twice a second (a connection that a port
    forwarder accepts for the host that is down is held up to 10 seconds instead) - and logs in only once sshd
    answers, reading C(/proc/sys/kernel/random/boot_id), C(uname -r) and C(/proc/cmdline) in one login. It sees
    the new boot's sshd answer within about a second of sshd starting (RV(timings.sshd_answered)) and logs in at
    once; that first login then takes as long as the host needs for key exchange and its PAM session. Each login
    is bounded (O(connect_timeout) plus 10 seconds) and abandoned when it hangs - its ssh process is killed and the
    connection reset in the background. The host name is resolved once, before the reboot, so no DNS lookup runs in
    the wait.
  - Progress, one line per phase and host, at C(-v) - loaded, shutdown started, host down, sshd back, new boot seen,
    new boot proven, boot finished; every probe at C(-vvv). Each line starts with the host name.
  - The banner probe is used only when the connection is SSH and the host's SSH port answers with a banner before
    the reboot (an C(ssh_config) C(ProxyJump) or C(HostName) alias does not); otherwise the task waits by logins.
  - systemd silently falls back to a normal firmware reboot when C(kexec -e) fails. The task therefore compares the
    booted release and command line (whitespace-normalized) with what was loaded and fails, naming both, when they
    differ, unless O(allow_fallback=true).
  - The C(local) connection is refused, and so is a host whose boot_id equals the controller's, because both would
    reboot the controller.
  - When the login that sends the trigger fails in a way that proves the command never ran (it never connected, or
    privilege escalation failed - a become timeout, a wrong or missing sudo password), the task fails at once with
    that cause. A connection that drops while the command runs is taken as the host going down.
extends_documentation_fragment:
  - fastreboot.kexec.load_options
  - action_common_attributes
  - action_common_attributes.flow
  - action_common_attributes.conn
options:
  use_loaded:
    description:
      - V(true) reboots into the image that is already loaded (by M(fastreboot.kexec.kexec_load) or anything else)
        and loads nothing. The load options (O(kernel), O(initrd), O(cmdline), O(append), O(remove), O(syscall),
        O(allow_unsafe_files)) must not be set then.
      - The task fails when no image is loaded. C(kernel.kexec_load_disabled=1) does not stop it, since that switch
        forbids further loads, not the jump into an image loaded before it was set.
      - When the loaded image has no record of this collection (loaded by something else), what boots is unknown - the
        task warns and proves only the new boot_id, plus the release when O(expect_release) is set.
    type: bool
    default: false
  expect_release:
    description:
      - The kernel release (C(uname -r)) the new boot must run.
      - Normally known from the loaded image; set it to verify an image loaded outside this collection
        (O(use_loaded=true)). When the loaded image has a known release that differs, the task fails before the reboot.
    type: str
  method:
    description:
      - How the host is rebooted into the loaded image.
      - V(systemd) runs C(systemctl kexec) - a clean shutdown (services stopped, file systems unmounted), then the jump.
      - V(immediate) runs C(sync) then C(kexec -e) - no shutdown at all. Running services are killed and file systems
        are not unmounted, so unsaved data is lost and journaling file systems replay their journal. Only for
        emergencies or hosts without systemd.
      - V(auto) is V(systemd) when the host runs systemd (C(/run/systemd/system) exists); on other hosts the task
        fails and says to choose V(immediate) explicitly.
    type: str
    choices: [auto, systemd, immediate]
    default: auto
  pre_reboot_delay:
    description:
      - Seconds to wait on the host, after the task triggers the reboot, before the shutdown starts. Whole seconds
        (a systemd timer, or C(sleep) without systemd), not rounded to minutes as M(ansible.builtin.reboot) does on
        Linux.
      - Like the builtin, a fraction is dropped and a negative value means 0.
      - O(reboot_timeout) counts from the end of this delay.
    type: float
    default: 0
  post_reboot_delay:
    description:
      - Seconds the controller waits after the host is back and verified (new boot, proof, O(test_command), boot
        finished), before the task returns - for services that need time to settle. Fractions count; a negative
        value means 0, like M(ansible.builtin.reboot).
      - Not counted in O(reboot_timeout); it lengthens the task by exactly this much.
    type: float
    default: 0
  reboot_timeout:
    description:
      - The one deadline, in seconds, for everything after the shutdown starts (after O(pre_reboot_delay)) - the host
        coming back in a new boot, the proof, O(test_command) and O(wait_for_boot_finished). It bounds the task, no
        probe starts after it and none runs past it.
      - When it passes, the task fails with what was last seen - no SSH banner, logins failing, boot_id unchanged, or a
        new boot that never finished booting.
    type: int
    default: 600
  connect_timeout:
    description:
      - Seconds for one connection attempt while waiting (the connection's C(timeout) option, SSH C(ConnectTimeout)).
        A banner probe waits at most 2 seconds or this, whichever is shorter; a login at most this plus 10 seconds.
      - Must be shorter than O(reboot_timeout).
    type: int
    default: 5
  test_command:
    description:
      - Command run on the rebooted host (through the shell, with become when the task uses it) that must succeed
        before the task does. It is retried until it succeeds or O(reboot_timeout) passes.
    type: str
    default: whoami
  boot_time_command:
    description:
      - Option of M(ansible.builtin.reboot) - a command whose output changes with every boot.
      - The new boot is always told by its boot_id (C(/proc/sys/kernel/random/boot_id), read in the state login); the
        default is the builtin's default command, which reads the same and adds nothing.
      - Any other command is run (with become, like the builtin) before the reboot - it must succeed and print
        something - and again once the new boot_id is seen, until its output differs from the first one, within
        O(reboot_timeout). A command whose output changes at every run therefore proves nothing.
    type: str
    default: cat /proc/sys/kernel/random/boot_id
  search_paths:
    description:
      - Option of M(ansible.builtin.reboot) (where it looks for C(shutdown)) - the folders where the trigger's
        programs C(systemctl), C(systemd-run), C(kexec) and C(setsid) are looked up on the host, in order, before the
        default folders, so that a list made for the builtin (such as C(/lib/molly-guard)) keeps working.
      - The trigger runs them by absolute path; C(PATH) on the host is not used for them. A program the chosen method
        needs that is in none of the folders fails the task before anything changes on the host.
      - Each entry must be an absolute folder of letters, digits and C(._+@-).
      - M(fastreboot.kexec.kexec_load) finds C(kexec) for the load on its own.
    type: list
    elements: str
    default: [/sbin, /bin, /usr/sbin, /usr/bin, /usr/local/sbin]
  reboot_command:
    description:
      - Option of M(ansible.builtin.reboot) - here the command of the cold reboot of O(cold_fallback), used only when
        the host cannot kexec. It runs through C(/bin/sh) with become, like the builtin runs it, after the C(wall) of
        O(msg) and the removal of the kexec-requested marker; O(pre_reboot_delay) is waited on the controller before
        it runs. Unset, the cold reboot is C(systemctl --no-block reboot), or C(shutdown -r now) without systemd.
      - Without O(cold_fallback=true) it is refused - the task fails before anything runs - because this action starts
        the kexec itself (C(systemctl kexec) after writing the marker that the role's guard checks, or
        C(sync; kexec -e)); a command of its own would reboot through firmware or be stopped by the guard. Choose the
        kexec trigger with O(method); for a normal firmware reboot everywhere use M(ansible.builtin.reboot).
    type: str
  wait_for_boot_finished:
    description:
      - Wait until C(systemctl is-system-running) reports V(running) or V(degraded) (with a warning), so that the next
        task finds every service started. Maintenance (emergency or rescue) mode fails the task at once.
      - Skipped on hosts without systemd.
    type: bool
    default: true
  allow_fallback:
    description:
      - When the new boot does not run the loaded release and command line, the host came back through firmware -
        the kexec did not happen (systemd falls back to a normal reboot when C(kexec -e) fails), or the new kernel
        crashed and the machine reset. By default the task fails and names both kernels.
      - V(true) accepts such a reboot with a warning and RV(fallback=true).
      - Not the same as O(cold_fallback), which reboots the ordinary way a host that cannot kexec at all.
    type: bool
    default: false
  cold_fallback:
    description:
      - V(true) gives a host that cannot kexec an ordinary (cold) reboot instead of failing the task, for fleets where
        some hosts cannot kexec. The result then says RV(method=cold) and why, in RV(cold_fallback_reason).
      - It applies only when the refusal comes before the trigger - never once a kexec reboot has started - and only
        to refusals that say the host cannot kexec, by the codes of M(fastreboot.kexec.kexec_load) - its
        RV(fastreboot.kexec.kexec_load#module:failure_code) V(unsupported) (kexec-tools missing,
        C(kernel.kexec_load_disabled=1), no kexec in the kernel, a container, no C(CAP_SYS_BOOT), lockdown without
        C(kexec_file_load)) or V(signature) (the kernel refused the image's signature, or lockdown refused
        C(kexec_load)); with O(use_loaded=true) the support facts of M(fastreboot.kexec.kexec_info) that rule out the
        jump. The C(kexec) program missing from O(search_paths) with O(method=immediate) counts too. A bad request - a
        missing file, a bad option or command line - still fails the task, and nothing is rebooted.
      - The cold reboot removes the kexec-requested marker first (so that the role's guard unloads a loaded image),
        then runs C(systemctl --no-block reboot) with C(SYSTEMCTL_SKIP_AUTO_KEXEC=1) (systemd 255 and newer would
        otherwise kexec into a loaded image), or C(shutdown -r now) detached on hosts without systemd, both looked up
        in O(search_paths); or O(reboot_command). O(msg), O(pre_reboot_delay), O(reboot_timeout), O(test_command),
        O(boot_time_command) and O(wait_for_boot_finished) apply as for a kexec.
      - The proof of a cold reboot is the new boot alone (a new boot_id, and O(boot_time_command) when set); no
        kernel release or command line is expected.
      - In a container the cold reboot is what M(ansible.builtin.reboot) would do there; it cannot reboot the
        container's host either.
    type: bool
    default: false
  msg:
    description:
      - Message broadcast to logged-in users (C(wall)) before the reboot. It is passed to C(wall) on standard input,
        never on a command line. An empty string sends none.
    type: str
    default: Reboot (kexec) initiated by Ansible
attributes:
  action:
    support: full
  async:
    support: none
  become:
    support: full
    details:
      - The load, the trigger and O(test_command) run with become; the probes that read boot_id and the boot state
        do not need it.
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details:
      - Reads the host's state, runs M(fastreboot.kexec.kexec_load) in check mode (what would be loaded) and reports
        the method and trigger that would run - V(cold) and RV(cold_fallback_reason) for a host that O(cold_fallback)
        would reboot cold. Nothing is loaded and nothing reboots.
  connection:
    support: full
    details:
      - The C(local) connection is refused. SSH connections get the fast banner probe.
  delegation:
    support: none
  diff_mode:
    support: none
  platform:
    platforms: linux
notes:
  - With O(method=systemd) the task writes C(/run/fastreboot-kexec/kexec-requested) (mode 0600, in a root-owned 0700
    folder, through a temporary file and a rename) just before C(systemctl kexec) - the boot_id of the current boot
    and the time the kexec is due. The guard unit of the role C(fastreboot.kexec.kexec) lets a kexec through only for
    a marker of the current boot at most 10 minutes past due, so that ordinary reboots stay cold while an image is
    loaded. The task removes the marker again when the reboot did not start (the trigger failed or never ran, or the
    old boot still answered at the deadline).
  - Works with C(become), forks and C(serial), and ad hoc - C(ansible all -b -m fastreboot.kexec.kexec_reboot -a kernel=latest).
  - The probes that read boot_id log in as the connection user without become. While a host boots, C(/run/nologin)
    refuses users other than root until C(systemd-user-sessions.service) has started; those logins count as not back yet.
  - Each banner probe is an SSH connection that ends before authentication; sshd logs it, and OpenSSH 9.8 and newer
    charge it one second of C(PerSourcePenalties) (C(noauth)). While the old boot still answers, the task therefore
    probes only once a second, which stays below the penalty threshold. A login refused during boot (C(/run/nologin))
    costs five seconds (C(authfail)); after such refusals the task spaces its next login so that its estimate of the
    penalties stays below the threshold (one quick retry, then about one every six seconds).
  - The timeout message always ends with advice to look at the host's console, where systemd-shutdown and the
    kernel report why a kexec failed.
seealso:
  - module: fastreboot.kexec.kexec_load
  - module: fastreboot.kexec.kexec_info
  - module: ansible.builtin.reboot
author:
  - fastreboot.kexec contributors (@fastreboot)
"""

EXAMPLES = r"""
- name: Reboot into the boot loader's default kernel through kexec
  fastreboot.kexec.kexec_reboot:

- name: Reboot into the newest installed kernel, with a serial console, 20 minutes at most
  fastreboot.kexec.kexec_reboot:
    kernel: latest
    append:
      - console=ttyS0,115200
    reboot_timeout: 1200

- name: Load in one task, reboot in another (for example in a handler)
  block:
    - name: Load the next kernel
      fastreboot.kexec.kexec_load:
        kernel: latest

    - name: Reboot into it
      fastreboot.kexec.kexec_reboot:
        use_loaded: true

- name: Reboot a host without systemd (no clean shutdown, services are killed)
  fastreboot.kexec.kexec_reboot:
    method: immediate
    pre_reboot_delay: 10
    msg: Rebooting in 10 seconds

- name: A task written for ansible.builtin.reboot, with only the module name changed
  fastreboot.kexec.kexec_reboot:
    msg: Rebooting for a kernel update
    post_reboot_delay: 1.5
    connect_timeout: 20
    test_command: uptime
    search_paths: [/lib/molly-guard, /sbin, /usr/sbin, /bin, /usr/bin]
    boot_time_command: cat /proc/sys/kernel/random/boot_id

- name: Kexec where possible, an ordinary reboot on hosts that cannot kexec (a mixed fleet)
  fastreboot.kexec.kexec_reboot:
    cold_fallback: true
  register: reboot

- name: Say which hosts rebooted cold, and why
  ansible.builtin.debug:
    msg: "rebooted cold: {{ reboot.cold_fallback_reason }}"
  when: reboot.method == 'cold'

- name: Accept a firmware reboot if kexec fails, and report it
  fastreboot.kexec.kexec_reboot:
    allow_fallback: true
  register: reboot

- name: Show how the host came back
  ansible.builtin.debug:
    msg: "{{ reboot.kernel_after }} after {{ reboot.downtime }}s down; firmware fallback: {{ reboot.fallback }}"
"""

RETURN = r"""
rebooted:
  description:
    - Whether the host came back in a new boot (a new boot_id was seen).
    - V(false) in check mode and when the task failed before the host came back; M(ansible.builtin.reboot) says
      V(true) in both cases.
  returned: always
  type: bool
  sample: true
changed:
  description: V(true) once the reboot was triggered, and in check mode; otherwise whether the load changed anything.
  returned: always
  type: bool
  sample: true
elapsed:
  description:
    - Seconds from the trigger to the end of the task, O(pre_reboot_delay) and O(post_reboot_delay) included, with two
      decimals.
    - M(ansible.builtin.reboot) returns whole seconds (an integer); a number either way, so comparisons and
      arithmetic work alike (C(elapsed | int) gives the builtin's value).
    - V(0.0) when the task failed before the trigger.
  returned: always
  type: float
  sample: 31.42
downtime:
  description:
    - Seconds from the start of the shutdown (the trigger plus O(pre_reboot_delay)) to the first successful login
      into the new boot.
    - V(null) when the host did not come back.
  returned: always
  type: float
  sample: 17.8
timings:
  description:
    - Seconds from the trigger (the same origin as RV(elapsed)) to each step of the wait, to tell how long the
      host took to come back from how long it took to finish booting.
  returned: when the host came back
  type: dict
  contains:
    sshd_answered:
      description:
        - The new boot's sshd answered the banner probe (the first of the unbroken run of answers that led to the
          new boot). The time from here to RV(timings.new_boot_seen) is the login itself.
      type: float
      returned: when the host came back and the SSH banner was probed (RV(probe) is C(ssh_banner))
    new_boot_seen:
      description: The first login that read a new boot_id.
      type: float
      returned: when the host came back
    test_command_ok:
      description: O(test_command) succeeded.
      type: float
      returned: when the host came back and the test command succeeded
    boot_finished:
      description: C(systemctl is-system-running) said running or degraded (O(wait_for_boot_finished)).
      type: float
      returned: when the wait for the finished boot ran and succeeded
  sample: {"sshd_answered": 19.8, "new_boot_seen": 21.3, "test_command_ok": 22.9, "boot_finished": 24.1}
preflight:
  description:
    - What the task did before the trigger - the preflight login, the load (or the read of the loaded image) and,
      when set, O(boot_time_command) - and how long it took.
  returned: when the task reached the trigger (not in check mode)
  type: dict
  contains:
    seconds:
      description: Seconds from the start of the task to the trigger.
      type: float
    round_trips:
      description:
        - Logins and module runs on the host before the trigger (with pipelining each is one round trip over the
          connection; without it a module run takes several). By default two - the preflight login and the load
          (or the read of the loaded image with O(use_loaded)); one more with O(boot_time_command).
      type: int
  sample: {"seconds": 6.4, "round_trips": 2}
startup_times:
  description:
    - The new boot's own account of its start, in seconds, from C(systemd-analyze time), read in the login that
      waits for the finished boot (no extra round trip). Only the parts that systemd knows are present -
      V(firmware) and V(loader) where the boot loader recorded them in EFI variables (systemd-boot on real
      firmware; after a kexec there is none), V(kernel), V(initrd) where the initramfs runs systemd,
      V(userspace) - and V(total). The guest's clock, not the controller's (under emulation it can run slow).
    - Null when the wait for the finished boot did not run (O(wait_for_boot_finished=false), no systemd) or
      C(systemd-analyze) printed no startup line.
  returned: always
  type: dict
  sample: {"kernel": 9.179, "userspace": 14.935, "total": 24.114}
kernel_before:
  description: The kernel release that ran before the reboot (C(uname -r)).
  returned: when the host's state could be read
  type: str
  sample: 6.1.0-25-amd64
kernel_after:
  description: The kernel release the new boot runs.
  returned: when the host came back
  type: str
  sample: 6.1.0-26-amd64
cmdline:
  description: The command line of the new boot (C(/proc/cmdline)).
  returned: when the host came back
  type: str
  sample: root=UUID=0b7d6e2c-6e1f-4a58-9c52-3d1c1f0e2a77 ro quiet console=ttyS0,115200
boot_id_before:
  description: The boot_id before the reboot.
  returned: when the host's state could be read
  type: str
  sample: 8c2d1c9a-1f7b-4d8e-9a3e-2b6f0c7d5e41
boot_id_after:
  description: The boot_id of the new boot.
  returned: when the host came back
  type: str
  sample: 3e9b7a52-6c0d-4f1e-8b2a-9d4c5e6f7a81
method:
  description:
    - How the reboot was (or in check mode would be) triggered - V(systemd) or V(immediate) for a kexec, V(cold) for
      the ordinary reboot of O(cold_fallback).
  returned: when the preflight passed
  type: str
  sample: systemd
cold_fallback_reason:
  description: Why the host could not kexec and got an ordinary reboot instead (O(cold_fallback=true)).
  returned: when RV(method) is V(cold)
  type: str
  sample: >-
    kernel.kexec_load_disabled=1 forbids kexec until the next cold boot (the switch is one-way): reboot normally,
    and do not set it in sysctl.d if you want kexec
trigger:
  description:
    - The command (argv) that starts the detached reboot on the host, its programs by absolute path (O(search_paths)).
    - For a cold reboot an environment assignment may come first (C(SYSTEMCTL_SKIP_AUTO_KEXEC=1)), as C(env) takes it;
      with O(reboot_command), C(/bin/sh -c) and that command.
  returned: when the preflight passed
  type: list
  elements: str
  sample: [/usr/bin/systemctl, --no-block, kexec]
probe:
  description: How the wait noticed the host - V(ssh_banner) (banner, then one login) or V(login) (logins only).
  returned: when the preflight passed
  type: str
  sample: ssh_banner
fallback:
  description:
    - V(true) when the new boot does not run the loaded release and command line - the host went through firmware.
      The task fails then unless O(allow_fallback=true).
    - Always V(false) for the cold reboot of O(cold_fallback) (RV(method=cold)), where nothing was expected of the kernel.
  returned: always
  type: bool
  sample: false
kernel_selected_by:
  description:
    - How the loaded kernel was chosen, from M(fastreboot.kexec.kexec_load) - V(path), V(default), V(latest),
      V(running), or V(latest) with the reason the boot loader could not be read.
  returned: when the load ran (not with O(use_loaded=true))
  type: str
  sample: default
load:
  description:
    - The result of M(fastreboot.kexec.kexec_load) - what was loaded (C(kernel), C(kernel_release), C(cmdline),
      C(initrd), C(syscall)), the host's C(support) facts and the rest of its return values.
    - With O(use_loaded=true), the C(loaded) section of M(fastreboot.kexec.kexec_info) instead.
  returned: when the load ran
  type: dict
  sample:
    changed: true
    loaded: true
    kernel: /boot/vmlinuz-6.1.0-26-amd64
    kernel_release: 6.1.0-26-amd64
    kernel_selected_by: default
    initrd: /boot/initrd.img-6.1.0-26-amd64
    cmdline: root=UUID=0b7d6e2c-6e1f-4a58-9c52-3d1c1f0e2a77 ro quiet
    syscall: file
msg:
  description: What happened, or why the task failed and what to do.
  returned: always
  type: str
  sample: rebooted by kexec into 6.1.0-26-amd64 in 31.42s (17.8s down)
"""
