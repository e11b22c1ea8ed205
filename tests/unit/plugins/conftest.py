# Copyright (c) 2026, fastreboot.kexec contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fixtures shared by the plugin tests (internal to the tests)."""

from __future__ import annotations

import socket
import typing as t

import pytest


@pytest.fixture(name="name_lookups")
def name_lookups_fixture(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every socket.getaddrinfo call from now on, as (host, flags); the real lookup still answers."""
    lookups: list[tuple[str, int]] = []
    real_getaddrinfo = socket.getaddrinfo

    def recording_getaddrinfo(host: str, port: t.Any, *args: t.Any, **kwargs: t.Any) -> t.Any:
        lookups.append((host, kwargs.get("flags", 0)))
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", recording_getaddrinfo)
    return lookups
