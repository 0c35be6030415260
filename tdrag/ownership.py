"""The one rule for every command that writes: tdrag removes or replaces only its own output.

What tdrag may delete or replace:

- a **frame cache** folder (``tdrag prepare``) holding nothing but the cache's own files
  (``frames.u8``, ``index.json``, ``manifest.json``) and a manifest that tdrag wrote;
- the **files of a run** (``tdrag train``): ``config.yaml``, ``log.csv``, ``predictions.csv``,
  ``checkpoints/last.pt`` and ``best.pt``, and the report files tdrag writes into ``report/``,
  one by one; any other file in a run folder stays where it is (and so does the run's lock file,
  ``.tdrag.lock``, which ``tdrag.runs.lock`` never removes);
- a **synthetic data set** (``tdrag synth``) holding nothing but what ``tdrag synth`` writes;
- the files of a **prediction** or a **dossier** it wrote before, recognised by their content.

Never a folder holding anything else, at any depth (:func:`foreign_files` walks the whole tree a
writer replaces as one), never an input (a dataset root, a cache being read), never a folder that
contains an input, and no output inside a folder tdrag may later rebuild as a whole
(:func:`check_not_inside`). Every refusal is an ``OutputError`` naming the path and the reason,
raised before anything is removed.

One writer per output: :func:`hold_output` holds an advisory lock beside the output while a
command builds and moves it into place, so two writers of one output never both succeed; the
holder may then remove the working folders killed writers left (:func:`remove_leftovers`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from tdrag.errors import OutputError

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None

log = logging.getLogger(__name__)


def _resolved(path: str | os.PathLike) -> Path:
    return Path(path).expanduser().resolve()


def contains(folder: str | os.PathLike, path: str | os.PathLike) -> bool:
    """Whether ``path`` is ``folder`` itself or lies inside it (after resolving links)."""
    folder, path = _resolved(folder), _resolved(path)
    return path == folder or folder in path.parents


def check_not_input(out: str | os.PathLike, inputs: Iterable[str | os.PathLike | None], what: str) -> None:
    """Refuse an output location that is an input, or a folder holding one.

    Args:
        out: the folder that would be written, replaced or cleared.
        inputs: the paths read by the same command (``None`` entries are skipped).
        what: the option naming ``out`` in the message (``--out``, ``train.run_dir``).

    Raises:
        OutputError: ``<out>: <what> is (or contains) the input <input>; ...``.
    """
    for source in inputs:
        if source is None or str(source) == "":
            continue
        if contains(out, source):
            relation = "is" if _resolved(out) == _resolved(source) else "contains"
            raise OutputError(f"{out}: {what} {relation} the input {source}; choose a separate folder for the output")


def foreign_entries(folder: str | os.PathLike, own: Iterable[str], own_prefixes: Sequence[str] = ()) -> list[str]:
    """Names in ``folder`` that tdrag did not write: not in ``own`` and not starting with ``own_prefixes``."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    own = set(own)
    return sorted(e.name for e in os.scandir(folder) if e.name not in own and not e.name.startswith(tuple(own_prefixes)))


def refuse_foreign(folder: str | os.PathLike, own: Iterable[str], what: str, own_prefixes: Sequence[str] = ()) -> None:
    """Raise OutputError when ``folder`` holds entries tdrag did not write (a user's files)."""
    strangers = foreign_entries(folder, own, own_prefixes)
    if strangers:
        shown = ", ".join(repr(n) for n in strangers[:3]) + (f" and {len(strangers) - 3} more" if len(strangers) > 3 else "")
        raise OutputError(f"{folder}: holds {shown}, which tdrag did not write; refusing to replace {what} "
                          "(move those away, or choose another folder)")


def remove_files(folder: str | os.PathLike, relative_paths: Iterable[str]) -> list[Path]:
    """Remove the listed files (paths relative to ``folder``) where present; then remove the
    sub-folders they were in if, and only if, that left them empty. Returns what was removed."""
    folder = Path(folder)
    removed: list[Path] = []
    parents: set[Path] = set()
    for rel in relative_paths:
        path = folder / rel
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed.append(path)
            if path.parent != folder:
                parents.add(path.parent)
    for parent in sorted(parents, key=lambda p: len(p.parts), reverse=True):
        try:
            parent.rmdir()  # only succeeds when empty
        except OSError:
            pass
    return removed


def remove_tree(path: str | os.PathLike) -> None:
    """Delete a folder tdrag has recognised as wholly its own (callers check first)."""
    shutil.rmtree(path)


# ------------------------------------------------------------------------------ deep ownership


def _ancestors(relative: str) -> list[str]:
    """``a/b/c.txt`` -> ``["a", "a/b"]``."""
    parts = relative.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _raise(exc: OSError) -> None:
    raise exc  # a folder that cannot be listed cannot be vouched for: refuse rather than guess


def foreign_files(folder: str | os.PathLike, own_files: Iterable[str], own_dirs: Iterable[str] = ()) -> list[str]:
    """What ``folder`` holds, at any depth, that tdrag did not write (``/``-separated paths relative to it).

    Args:
        folder: a folder tdrag is about to replace as a whole.
        own_files: the files it wrote there (relative paths); their folders are its own too.
        own_dirs: further folders it makes even when they stay empty.

    Returns:
        Every file or link not in ``own_files`` and every folder that is neither one of tdrag's
        nor above one of its files (named once, not its content), sorted. A link is never
        tdrag's: it writes plain files.

    Raises:
        OSError: a folder under ``folder`` cannot be listed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    own = set(own_files)
    dirs = set(own_dirs) | {d for f in own for d in _ancestors(f)}
    found = []
    for here, subdirs, files in os.walk(folder, onerror=_raise):
        rel = Path(here).relative_to(folder).as_posix()
        prefix = "" if rel == "." else rel + "/"
        for name in list(subdirs):
            path = prefix + name
            if path not in dirs or os.path.islink(os.path.join(here, name)):
                found.append(path)
                subdirs.remove(name)  # named once; its content goes with it
        found += [prefix + name for name in files
                  if prefix + name not in own or os.path.islink(os.path.join(here, name))]
    return sorted(found)


def refuse_foreign_files(folder: str | os.PathLike, own_files: Iterable[str], what: str,
                         own_dirs: Iterable[str] = ()) -> None:
    """Raise OutputError naming what ``folder`` holds, at any depth, that tdrag did not write."""
    strangers = foreign_files(folder, own_files, own_dirs)
    if strangers:
        more = f" and {len(strangers) - 3} more" if len(strangers) > 3 else ""
        shown = ", ".join(repr(n) for n in strangers[:3]) + more
        raise OutputError(f"{folder}: holds {shown}, which tdrag did not write; refusing to replace {what} "
                          "(move those away, or choose another folder)")


def check_removable(folder: str | os.PathLike, what: str) -> None:
    """Refuse to replace ``folder`` when part of it cannot be removed (a read-only sub-folder).

    Checked before anything moves: found only after the new output is in place, the old one would
    stay half-deleted under a hidden name.

    Raises:
        OutputError: ``<folder>: cannot replace <what>: <sub-folder> is read-only ...``.
    """
    folder = Path(folder)
    for here, subdirs, _ in os.walk(folder, onerror=_raise):
        if not os.access(here, os.W_OK | os.X_OK):
            shown = "it" if Path(here) == folder else repr(Path(here).relative_to(folder).as_posix())
            raise OutputError(f"{folder}: cannot replace {what}: {shown} is read-only (make it writable, or "
                              "choose another folder)")
        subdirs[:] = [d for d in subdirs if not os.path.islink(os.path.join(here, d))]


def check_not_inside(out: str | os.PathLike, inputs: Iterable[str | os.PathLike | None], what: str,
                     kind: str) -> None:
    """Refuse an output that lies inside one of ``inputs``: folders tdrag may later rebuild as a
    whole, deleting whatever sits in them.

    Args:
        out: the folder that would be written.
        inputs: the folders it may not sit in (``None`` and ``""`` entries are skipped).
        what: the option naming ``out`` in the message.
        kind: what such an input is and what replaces it, e.g. "a frame cache, which `tdrag prepare
            --overwrite` replaces as a whole".

    Raises:
        OutputError: ``<out>: <what> lies inside <input>, <kind>; choose a folder outside it``.
    """
    for source in inputs:
        if source is None or str(source) == "":
            continue
        if _resolved(source) in _resolved(out).parents:
            raise OutputError(f"{out}: {what} lies inside {source}, {kind}; choose a folder outside it")


# ------------------------------------------------------------------------------ writers, one at a time


class OutputBusyError(OutputError):
    """Another process is writing the same output (the message names it)."""


def command_line() -> str:
    """This process's command as a user would type it (``tdrag train --config x.yaml``)."""
    argv = list(sys.argv) or ["python"]
    first = Path(argv[0])
    if first.name == "__main__.py" and first.parent.name == "tdrag":
        argv[0] = "tdrag"
    elif first.name == "__main__.py":
        argv[0:1] = ["python", "-m", first.parent.name]
    else:
        argv[0] = first.name or "python"
    return shlex.join(argv)


def lock_holder(fd: int) -> str:
    """The holder as a lock file describes it: ``pid 123 on host (tdrag train ..., since 10:02:03)``."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode())
        command = info["command"]
        if not command.startswith(("tdrag", "python -m")):
            command = f"{info['what']} in {command}"
        return f"pid {info['pid']} on {info['host']} ({command}, since {info['since']})"
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return "another process (it did not say which)"


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _acquire(lock_file: Path, refuse: Callable[[str], Exception], removable: bool) -> int:
    """An open descriptor of ``lock_file`` holding its flock; ``refuse(holder)`` is raised when taken."""
    while True:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = lock_holder(fd)
            os.close(fd)
            raise refuse(holder) from None
        except BaseException:
            os.close(fd)
            raise
        # A file its previous holder removes on release may have gone between open and flock:
        # then this lock guards nothing, and the file now at that path is the one to take.
        if not removable or _same_file(fd, lock_file):
            return fd
        os.close(fd)


@contextlib.contextmanager
def hold_lock(lock_file: str | os.PathLike, what: str, refuse: Callable[[str], Exception],
              removable: bool = False) -> Iterator[None]:
    """Hold an advisory lock (``flock``) on ``lock_file`` while the block runs.

    The file records who holds it (pid, host, command, ``what``, start time) for the refusal of
    the next one. The operating system releases the lock when the process ends, however it ends.

    Args:
        lock_file: created if missing.
        what: what this process does ("train", "prepare"), shown when its command line says less.
        refuse: builds the error raised when another process holds it, from ``lock_holder``'s text.
        removable: remove the file on release (it is hidden beside a user's folder); takers then
            check that the file they locked is still the one at ``lock_file``.
    """
    if fcntl is None:  # Windows: no flock; not locked
        yield
        return
    lock_file = Path(lock_file)
    fd = _acquire(lock_file, refuse, removable)
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command_line(), "what": what,
                "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        yield
    finally:
        if removable:
            with contextlib.suppress(OSError):
                lock_file.unlink()  # still holding it: whoever opened it meanwhile retries
        os.close(fd)  # releases the lock


def output_lock_file(out: str | os.PathLike) -> Path:
    """The hidden lock file beside an output folder or file: ``<parent>/.<name>.tdrag-lock``."""
    out = Path(out).absolute()
    return out.parent / f".{out.name}.tdrag-lock"


@contextlib.contextmanager
def hold_output(out: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold the output ``out`` (a folder or file tdrag replaces as a whole) for this process.

    A second writer to the same output refuses at once instead of both finishing and one result
    silently replacing the other. The lock file sits beside ``out`` (whose folder is created) and
    is removed when the block ends.

    Raises:
        OutputBusyError: another process holds it: ``<out>: being written by pid ... (...)``.
        OutputError: ``out``'s folder cannot be created or written (named as ``out``).
    """
    out = Path(out).absolute()
    lock_file = output_lock_file(out)

    def refuse(holder: str) -> OutputBusyError:
        return OutputBusyError(f"{out}: being written by {holder}; two writers to one output cannot both "
                               "succeed: wait for it to finish, or choose another output")

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644))  # can anything be written here?
    except OSError as exc:
        raise OutputError(_unwritable(out, exc)) from None
    with hold_lock(lock_file, what, refuse, removable=True):
        yield


def _unwritable(out: Path, exc: OSError) -> str:
    """Why nothing can be written at ``out``, in one line naming ``out`` (not a lock or staging file)."""
    for folder in out.parents:
        if folder.exists() or folder.is_symlink():
            if not folder.is_dir():
                return f"{out}: {folder} is a file, not a folder; choose another output"
            break
    return f"{out}: cannot be written in {out.parent} ({exc.strerror or exc})"


def remove_leftovers(folder: str | os.PathLike, prefixes: Sequence[str]) -> list[Path]:
    """Remove the hidden working folders in ``folder`` that killed writers left behind.

    Call only while holding the output they were for (:func:`hold_output`): no live writer then
    uses any of them. ``prefixes`` start the names of that writer's own working folders
    (``.<name>.partial-``); files and links so named are left alone.
    """
    removed = []
    for entry in os.scandir(folder):
        if entry.name.startswith(tuple(prefixes)) and entry.is_dir(follow_symlinks=False):
            log.info("removing %s, left by an interrupted run", entry.path)
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed


def swap_into_place(new: str | os.PathLike, out: str | os.PathLike, trash: str | os.PathLike) -> None:
    """Replace the folder ``out`` by the finished folder ``new``, the old one going through the
    empty folder ``trash`` (beside ``out``), which is then removed with it.

    When a rename fails, the old ``out`` is put back where it was and ``trash`` removed, so a
    failure leaves the previous output as it was; should even that fail, the old one is left in
    ``trash``, never deleted. The error (an OSError) is raised.
    """
    new, out, trash = Path(new), Path(out), Path(trash)
    moved = False
    try:
        os.replace(out, trash / out.name)
        moved = True
        os.replace(new, out)
    except OSError:
        if moved:
            os.replace(trash / out.name, out)
        trash.rmdir()
        raise
    shutil.rmtree(trash, ignore_errors=True)
