"""Atomic file writes: nothing half-written is ever left under a final name.

Every writer in tdrag (configs, CSV/JSON reports, checkpoints, caches, predictions) goes through
``atomic_path``: it yields a temporary path in the destination folder (same filesystem, so the
final ``os.replace`` is atomic) and removes the temporary file if the body raises.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; on success rename it to ``path``.

    Example::

        with atomic_path("runs/x/checkpoints/last.pt") as tmp:
            torch.save(state, tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:  # named as the file being written: the temporary name means nothing to a user
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates 0600 files; give the result the permissions a plain open() would.
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def follow_umask(folder: str | os.PathLike) -> None:
    """Give a folder made by ``tempfile.mkdtemp`` (mode 0700) the mode ``mkdir`` would have given it.

    Staging folders are renamed into place as the output itself: left at 0700, a data set or a
    dossier made on a shared machine could not be read by the group the umask lets in.
    """
    os.chmod(folder, 0o777 & ~_umask())
