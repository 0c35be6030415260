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


def error_message(exc: BaseException) -> str:
    """The one line a command prints (after ``error: ``) for a failure the user can fix.

    Every kind a command reports is said the same way: a tdrag error or a bad value by its
    message, an OSError by its path and reason (:func:`describe_os_error`), Ctrl-C as
    ``interrupted``, an exhausted memory with what to try.
    """
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, OSError) and not isinstance(exc, TdragError):
        message = describe_os_error(exc)
    else:
        message = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, MemoryError):
        message = f"out of memory ({message}); use a smaller batch or fewer workers"
    return message


def human_size(nbytes: float) -> str:
    """``3.7 MB``, ``1.20 GiB``: a size as a user reads it (decimal below a GiB, binary above)."""
    if nbytes >= 2**30:
        return f"{nbytes / 2**30:.2f} GiB"
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{int(nbytes)} bytes"


def quiet_teardown() -> None:
    """Keep the interpreter's teardown quiet after Ctrl-C has been reported in its one line.

    An interrupt can leave objects half-finished (an asyncio task of a notebook client, a
    coroutine never awaited, a socket closed in ``__del__``); the interpreter would report each
    as it collects them, with a traceback, after the command's ``interrupted``: no news to the
    user, who asked for the stop.
    """
    import logging
    import sys
    import warnings

    warnings.simplefilter("ignore")
    sys.unraisablehook = lambda unraisable: None
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
