"""Processes by PID, safe against PID reuse: what the dev cluster, `make up` and the tests use
to start, watch and stop the processes they started (and only those)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_start_time(pid: int) -> int | None:
    """Kernel start time of ``pid`` (clock ticks since boot), or None if gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # Field 2 (comm) may contain spaces; everything after the last ')' is well-formed.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def alive(pid: int, start_time: int) -> bool:
    """True while ``pid`` is still the very process we started (not a reused PID)."""
    return proc_start_time(pid) == start_time


def terminate(
    pid: int, start_time: int, timeout: float, popen: subprocess.Popen[bytes] | None
) -> None:
    """SIGTERM, wait up to ``timeout``, then SIGKILL; reap if it is our child."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        if not alive(pid, start_time):
            break
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if popen is not None and popen.poll() is not None:
                break
            if not alive(pid, start_time):
                break
            time.sleep(0.1)
    if popen is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=5)


def die_with_parent() -> None:
    """preexec_fn: the kernel SIGKILLs the child when the test process dies.

    Why: a pytest run killed by a CI timeout must not leave an apiserver behind. SIGKILL,
    not SIGTERM: nobody is left to wait for a graceful shutdown, and kube-apiserver takes
    tens of seconds to finish one when etcd is dying at the same moment.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Proc:
    name: str
    pid: int
    start_time: int
    popen: subprocess.Popen[bytes] | None = None
