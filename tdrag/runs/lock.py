"""One process at a time in a run directory: an advisory lock (``flock``) on ``RUN/.tdrag.lock``.

Without it a second ``tdrag train ... --overwrite`` started while the first still trains would
run beside it, both writing checkpoints, log.csv and predictions into the same folder: a silent
mix of two runs. With it the second (``train``, ``eval`` or ``cv``) refuses at once, in one line
naming the holder: its pid, host, command and start time, which the holder writes into the file.

The operating system releases the lock when the holding process ends, however it ends (SIGKILL
included), so a killed run never blocks its own ``--resume``. The file itself is never removed:
a process waiting on a removed file would hold a lock nobody else sees. The lock is advisory and
needs ``fcntl`` (Linux, macOS); elsewhere runs are not locked.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tdrag.errors import TdragError

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None


class RunBusyError(TdragError, RuntimeError):
    """Another process holds the run directory (the message names it)."""


def _command_line() -> str:
    """This process's command as a user would type it (``tdrag train --config x.yaml``)."""
    argv = list(sys.argv) or ["python"]
    first = Path(argv[0])
    if first.name == "__main__.py" and first.parent.name == "tdrag":
        argv[0] = "tdrag"
    else:
        argv[0] = first.name or "python"
    return shlex.join(argv)


def _holder(fd: int) -> str:
    """The holder as the lock file describes it: ``pid 123 on host (tdrag train ..., since 10:02:03)``."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode())
        command = info["command"] if info["command"].startswith("tdrag") else f"{info['what']} in {info['command']}"
        return f"pid {info['pid']} on {info['host']} ({command}, since {info['since']})"
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return "another process (it did not say which)"


@contextlib.contextmanager
def hold(lock_file: Path, run_dir: Path, what: str) -> Iterator[None]:
    """Hold ``run_dir`` through ``lock_file`` while the block runs.

    Args:
        lock_file: the run's lock file (created if missing, never removed).
        run_dir: the run directory, named in the refusal.
        what: what this process does there ("train", "eval", "cv"), shown to others when its command
            line is not a ``tdrag`` one (a notebook calling ``fit``).

    Raises:
        RunBusyError: another process holds it: ``<run_dir>: in use by pid ... on ... (...)``.
    """
    if fcntl is None:
        yield
        return
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunBusyError(f"{run_dir}: in use by {_holder(fd)}; a run directory takes one process at a time: "
                               "wait for it to finish, or stop it") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": _command_line(), "what": what,
                "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
