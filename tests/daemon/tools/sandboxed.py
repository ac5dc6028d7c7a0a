"""Seeing a sandboxed command's processes from the host.

Inside the sandbox a command has its own PID namespace, so ``$!`` means nothing
on the host; tests instead start ``sleep`` with a unique duration and find its
host pids by command line.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import time
from pathlib import Path

import pytest

# The sandbox tests run wherever bubblewrap is; in CI they must run, never skip.
needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None and not os.environ.get("CI"),
    reason="bubblewrap (bwrap) is not installed",
)


def sleep_marker() -> str:
    """A ``sleep`` argument no other process uses: ``sleep 300.<random>``."""
    return f"300.{secrets.randbelow(10**9):09d}"


def host_pids(marker: str) -> list[int]:
    """Host pids of the live ``sleep <marker>`` processes."""
    wanted = f"sleep\0{marker}\0".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "cmdline").read_bytes() == wanted and _alive(entry):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _alive(entry: Path) -> bool:
    state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


async def started(marker: str, count: int = 1, within_s: float = 10.0) -> list[int]:
    """The host pids of ``sleep <marker>`` once ``count`` of them run; fails at the deadline."""
    deadline = time.monotonic() + within_s
    while True:
        pids = host_pids(marker)
        if len(pids) >= count:
            return pids
        if time.monotonic() > deadline:
            raise AssertionError(f"sleep {marker} not running within {within_s}s: {pids}")
        await asyncio.sleep(0.02)
