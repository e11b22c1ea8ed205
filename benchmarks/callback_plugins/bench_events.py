# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark tooling, not part of the collection: every task's start and result as JSON lines.

The benchmark (benchmarks/reboot_benchmark.py) enables it and reads the file named by
FASTREBOOT_BENCH_EVENTS instead of parsing the default callback's text. Times are the controller's
CLOCK_MONOTONIC, the clock that the lab's console logger stamps console lines with.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: bench_events
type: notification
short_description: task starts and results as JSON lines, for the reboot benchmark
description:
  - Appends one JSON object per line to the file named by the environment variable FASTREBOOT_BENCH_EVENTS.
  - C(task_start) with the task's name; C(task_end) with the host, the status and the task's result.
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "bench_events"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._path = os.environ.get("FASTREBOOT_BENCH_EVENTS")

    def _write(self, record: dict) -> None:
        if not self._path:
            return
        record["t"] = time.monotonic()
        with open(self._path, "a", encoding="utf-8") as events:
            events.write(json.dumps(record, default=str) + "\n")

    def v2_playbook_on_task_start(self, task, is_conditional) -> None:  # pylint: disable=unused-argument
        self._write({"event": "task_start", "task": task.get_name().strip()})

    def _task_end(self, result, status: str) -> None:
        # ansible-core >= 2.19 (the benchmark runs the newest, .venv): host and result, not _host and _result.
        self._write({"event": "task_end", "task": result.task_name.strip(), "host": result.host.get_name(),
                     "status": status, "result": dict(result.result)})

    def v2_runner_on_ok(self, result) -> None:
        self._task_end(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False) -> None:  # pylint: disable=unused-argument
        self._task_end(result, "failed")

    def v2_runner_on_skipped(self, result) -> None:
        self._task_end(result, "skipped")

    def v2_runner_on_unreachable(self, result) -> None:
        self._task_end(result, "unreachable")
