# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The VM's serial console with host timestamps.

QEMU connects its serial port to a Unix socket on which this logger (a detached process started by
`up`, run as a script: standard library only) listens. It writes every byte unchanged to
console.log, as QEMU's `-serial file:` did (the tests grep that file while the VM runs), and for
each line one record to console.times: `<host CLOCK_MONOTONIC seconds> <the line>` (carriage
returns dropped), stamped when the line's end arrived (the kernel and systemd write whole lines; a
boot loader may leave a partial line that the next program's first line completes).
CLOCK_MONOTONIC is one clock for every process of the host, so a test or the measurement can
compare these stamps with its own time.monotonic(). The logger ends when QEMU closes the socket
(QEMU exited or was killed).

  python3 console.py SOCKET CONSOLE_LOG TIMES_FILE [append]

append: a restarted VM's logger adds to both files (the earlier boots stay the tests' evidence).
"""
from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

ACCEPT_TIMEOUT = 60.0  # QEMU connects within a second of its start; a logger without a QEMU ends


def serve(socket_path: Path, console_log: Path, times_file: Path, append: bool = False) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(socket_path))
        server.listen(1)
        server.settimeout(ACCEPT_TIMEOUT)
        try:
            connection, _address = server.accept()
        except socket.timeout:
            return
        finally:
            socket_path.unlink()
        mode = "a" if append else "w"
        with connection, open(console_log, mode + "b", buffering=0) as raw, open(times_file, mode, encoding="utf-8") as times:
            pending = b""
            while True:
                chunk = connection.recv(65536)
                now = time.monotonic()
                if not chunk:
                    break
                raw.write(chunk)
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    text = line.replace(b"\r", b"").decode(errors="replace")
                    times.write(f"{now:.3f} {text}\n")
                if lines:
                    times.flush()
            if pending:
                text = pending.replace(b"\r", b"").decode(errors="replace")
                times.write(f"{time.monotonic():.3f} {text}\n")


def read_times(times_file: Path) -> list[tuple[float, str]]:
    """The records of a console.times file: (host monotonic seconds, line)."""
    records = []
    try:
        text = times_file.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return records
    for row in text.split("\n"):  # not splitlines(): a console line may hold other line-break characters
        stamp, _sep, line = row.partition(" ")
        try:
            records.append((float(stamp), line))
        except ValueError:
            continue
    return records


if __name__ == "__main__":
    serve(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), append=sys.argv[4:5] == ["append"])
