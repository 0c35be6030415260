"""The one base class of every error a user can cause, so the CLI reports them alike.

Every tdrag error names what is wrong and where, in its message: ``<path or key>: <problem>``.
The ``tdrag`` command prints such an error as the single line ``error: <message>`` and exits
non-zero, with no traceback (``tdrag -v`` adds it for debugging). Library callers can catch
``TdragError`` for all of them, or the specific subclasses (``ConfigError``, ``CacheError``,
``CheckpointError``, ``DatasetError``, ...), which also derive from the builtin a caller would
expect (``ValueError``, ``RuntimeError``, ``FileNotFoundError``).
"""

from __future__ import annotations

import errno
import os


class TdragError(Exception):
    """A failure caused by input, configuration or the environment, described in one line."""


class OutputError(TdragError, OSError):
    """An output location tdrag refuses to write to, replace or clear (the message says why)."""


def describe_os_error(exc: OSError) -> str:
    """``<path>: <reason>`` for an OSError (disk full, permission denied, ...), in one line."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        reason = f"{reason} (free some space, or write to another disk)"
    where = exc.filename if exc.filename is not None else None
    if where is None:
        return reason
    where = os.fsdecode(where) if isinstance(where, (bytes, os.PathLike)) else str(where)
    return f"{where}: {reason}"
