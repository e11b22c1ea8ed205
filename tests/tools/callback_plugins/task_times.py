# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test tooling, not part of the collection: after each playbook, the slowest tasks and their wall time.

The suite's scenarios enable it (tests/tools/molecule.sh), so that a CI log says where a scenario's
minutes went.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: task_times
type: aggregate
short_description: the slowest tasks of a playbook, with their wall time
description:
  - At the end of each playbook, prints the 12 tasks that took longest (wall time, all hosts together).
"""

import time

from ansible.plugins.callback import CallbackBase

SHOWN = 12


class CallbackModule(CallbackBase):
    """Times each task from its start to the next task's start (or the end of the playbook)."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._times: list[list] = []  # [name, start, end]

    def _close_last(self) -> None:
        if self._times and self._times[-1][2] is None:
            self._times[-1][2] = time.monotonic()

    def v2_playbook_on_task_start(self, task, is_conditional) -> None:  # pylint: disable=unused-argument
        self._close_last()
        self._times.append([task.get_name().strip(), time.monotonic(), None])

    def v2_playbook_on_handler_task_start(self, task) -> None:
        self.v2_playbook_on_task_start(task, False)

    def v2_playbook_on_stats(self, stats) -> None:  # pylint: disable=unused-argument
        self._close_last()
        if not self._times:
            return
        total = self._times[-1][2] - self._times[0][1]
        self._display.display(f"task_times: {len(self._times)} tasks in {total:.0f} s; the slowest:")
        for name, start, end in sorted(self._times, key=lambda item: item[1] - item[2])[:SHOWN]:
            self._display.display(f"  {end - start:7.1f} s  {name}")
        self._times = []
