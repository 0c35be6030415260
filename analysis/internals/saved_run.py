"""An opened run's passes on disk: its inspection and the attribution maps made so far, saved once
and loaded by every process that shows the same run (the dossier's class pages) instead of being
computed again.

    save_run(run, folder)                          # after run.inspection (and any attribute_clips)
    run = open_run(run_dir, ..., saved=folder)     # the same checkpoint and clips: nothing recomputed

``folder`` holds ``saved_run.json`` (what the passes belong to and the index of the maps),
``inspection.pt`` (the :class:`~analysis.internals.run.SplitInspection`, loadable with
``torch.load(weights_only=True)``) and ``maps-<k>-<part>.npy`` files: the maps of attribution
method and options ``k``, one part per save (:class:`~analysis.internals.map_store.MapStore`,
memory-mapped when loaded). Saving again adds parts: the dossier saves after each class's maps, so
that class's page can start while the next class is attributed. A saved run is
loaded only into the run it was made from: the same checkpoint file (path, size, modification
time), frame cache, split, crop and clips; anything else is refused, naming the difference.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from analysis.internals.map_store import MapStore

FORMAT = "tdrag-saved-run/1"
INDEX = "saved_run.json"
INSPECTION = "inspection.pt"
#: Each field of :func:`identity`, and how a saved run that differs in it is described.
_DIFFERENCES = {"checkpoint": "another checkpoint", "checkpoint_size": "another version of the checkpoint",
                "checkpoint_mtime_ns": "another version of the checkpoint", "cache": "another frame cache",
                "split": "another split", "crop": "another crop", "rows": "other clips"}


def identity(run) -> dict[str, Any]:
    """What a saved run must match to be loaded: checkpoint file, frame cache, split, crop, clips."""
    checkpoint = Path(run.checkpoint.path).resolve()
    stat = checkpoint.stat()
    return {"checkpoint": str(checkpoint), "checkpoint_size": stat.st_size, "checkpoint_mtime_ns": stat.st_mtime_ns,
            "cache": str(Path(run.cache.path).resolve()), "split": run.split, "crop": run.crop,
            "rows": [int(r) for r in run.rows]}


def save_run(run, folder: str | os.PathLike) -> Path:
    """Write ``run``'s inspection (computed now if it was not) and the maps in ``run.attributions``
    to ``folder`` (created); returns it. Saving the same run to the same folder again writes only
    the maps made since (a new part per store), then the index that lists them: a reader that
    loads the folder meanwhile sees the index before or after, never a part half-written.

    Raises:
        ValueError: ``folder`` holds the saved passes of another run.
    """
    from tdrag.atomic import atomic_path, write_json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    mine = {"format": FORMAT, **identity(run)}
    index = _read_index(folder) if (folder / INDEX).is_file() else None
    fresh = index is None
    if fresh:
        with atomic_path(folder / INSPECTION) as tmp:
            torch.save(_inspection_dict(run.inspection), tmp)
        index = {**mine, "maps": {}}
    elif any(index.get(k) != v for k, v in mine.items()):
        raise ValueError(f"{folder}: holds the saved passes of another run; save to a new folder")
    for key, store in run.attributions.items():
        parts = index["maps"].setdefault(key, [])
        name = f"maps-{list(index['maps']).index(key)}-{len(parts)}.npy"
        pairs = store.save_new(folder / name, everything=fresh)
        if pairs:
            parts.append({"file": name, "pairs": pairs})
    write_json(folder / INDEX, index)
    return folder


def read_saved(run, folder: str | os.PathLike) -> tuple[dict[str, Any], dict[str, MapStore]]:
    """The inspection's fields and the maps saved in ``folder`` (:func:`save_run`) for ``run``:
    ``open_run(..., saved=folder)`` builds the run's inspection from the fields (this module
    imports nothing of ``analysis.internals.run``, so neither imports the other in a circle).

    Raises:
        ValueError: ``folder`` holds no saved run, or one of another checkpoint, cache, split,
            crop or set of clips.
    """
    folder = Path(folder)
    index = _read_index(folder)
    mine = identity(run)
    for field, what in _DIFFERENCES.items():
        if index.get(field) != mine[field]:
            raise ValueError(f"{folder}: saved for {what} than the run opened ({run.run_dir}); "
                             "save it again from this run")
    raw = torch.load(folder / INSPECTION, weights_only=True)
    maps = {key: MapStore.load([(folder / part["file"], part["pairs"]) for part in parts])
            for key, parts in index["maps"].items()}
    return {k: _from_saved(k, v) for k, v in raw.items()}, maps


def _read_index(folder: Path) -> dict[str, Any]:
    try:
        index = json.loads((folder / INDEX).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{folder}: no saved run there ({INDEX}: {exc})") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise ValueError(f"{folder / INDEX}: not a saved run of format {FORMAT}")
    return index


def _inspection_dict(inspection) -> dict[str, Any]:
    """The inspection's fields as torch.load(weights_only=True) reads them: tensors, dicts, lists, None."""
    out = {}
    for f in dataclasses.fields(inspection):
        value = getattr(inspection, f.name)
        out[f.name] = torch.from_numpy(np.asarray(value)) if isinstance(value, np.ndarray) else value
    return out


def _from_saved(name: str, value: Any) -> Any:
    # rows and labels are numpy arrays in a SplitInspection (saved as tensors).
    return value.numpy() if name in ("rows", "labels") and isinstance(value, torch.Tensor) else value
