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

Never a folder holding anything else, never an input (a dataset root, a cache being read) and
never a folder that contains an input. Every refusal is an ``OutputError`` naming the path and
the reason, raised before anything is removed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

from tdrag.errors import OutputError


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
