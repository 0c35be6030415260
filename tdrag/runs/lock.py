"""One process at a time in a run directory: an advisory lock (``flock``) on ``RUN/.tdrag.lock``.

Without it a second ``tdrag train ... --overwrite`` started while the first still trains would
run beside it, both writing checkpoints, log.csv and predictions into the same folder: a silent
mix of two runs. With it the second (``train``, ``eval`` or ``cv``) refuses at once, in one line
naming the holder: its pid, host, command and start time, which the holder writes into the file.

The operating system releases the lock when the holding process ends, however it ends (SIGKILL
included), so a killed run never blocks its own ``--resume``. The file itself is never removed:
a process waiting on a removed file would hold a lock nobody else sees. The lock is advisory and
needs ``fcntl`` (Linux, macOS); elsewhere runs are not locked. The locking itself is
``tdrag.ownership.hold_lock``, which also keeps one writer per output folder.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from tdrag.errors import OutputError, TdragError
from tdrag.ownership import hold_lock


class RunBusyError(TdragError, RuntimeError):
    """Another process holds the run directory (the message names it)."""


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
    def refuse(holder: str) -> RunBusyError:
        return RunBusyError(f"{run_dir}: in use by {holder}; a run directory takes one process at a time: "
                            "wait for it to finish, or stop it")

    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644))  # can anything be written there?
    except OSError as exc:  # named as the run directory: the lock file is tdrag's business
        raise OutputError(f"{run_dir}: cannot be written ({exc.strerror or exc})") from None
    with hold_lock(lock_file, what, refuse):
        yield
