"""Read DFEW as it is distributed: clip folders of JPEG frames plus the five-fold split CSVs.

Layout (``root`` is the folder that holds ``Clip/`` and ``EmoLabel_DataSplit/``)::

    root/Clip/clip_224x224/<5-digit id>/1.jpg, 2.jpg, ...      (all frames of each clip)
    root/Clip/clip_224x224_16f/<5-digit id>/1.jpg ... 16.jpg   (the 16-frame variant)
    root/EmoLabel_DataSplit/train(single-labeled)/set_<k>.csv  (k = 1..5, header video_name,label)
    root/EmoLabel_DataSplit/test(single-labeled)/set_<k>.csv

Variants seen in the wild and accepted: ``single_labeled`` with an underscore, ids without zero
padding in the CSVs (``1`` for folder ``00001``), an extra nested level left by unzipping
(``clip_224x224/clip_224x224/<id>/``). Frames are ordered by the number in their file name
(``2.jpg`` before ``10.jpg``); hidden files and unnumbered images are not frames
(``tdrag.data.clips.list_frames``).

Bad input is reported with its path and reason. A clip-level problem (label outside 1..7, an id
listed twice, a missing or empty clip folder) skips the clip and records a ``SkippedClip``; with
``strict=True`` the first one raises. A JPEG that does not decode is found when the clip is
decoded (``load_frames``, ``tdrag prepare``), not while listing. A problem with a whole file or
folder (no ``Clip/`` folder, a missing CSV, a CSV with the wrong header) always raises
``DFEWError``: silently dropping a whole split would train on nothing. The record types and
the decoding are shared with the other readers (``tdrag.data.clips``).

Example::

    result = read_split("/data/DFEW", fold=1, split="train")
    clip = result.clips[0]
    frames = load_frames(clip)            # (L, 224, 224, 3) uint8 RGB
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tdrag.data.clips import (  # noqa: F401 - re-exported: the DFEW reader's public names
    FRAME_SUFFIXES,
    SPLITS,
    Clip,
    ClipError,
    ClipFolders,
    DatasetError,
    SplitCollector,
    SkippedClip,
    SplitResult,
    decode_image,
    file_digest,
    frame_number,
    list_frames,
    load_frames,
    sorted_frames,
)
from tdrag.data.labels import DFEW_CLASSES, dfew_label_from_csv

log = logging.getLogger(__name__)

NAME = "dfew"
CLASSES = DFEW_CLASSES
FOLDS = (1, 2, 3, 4, 5)
FRAMES_DIRS = ("clip_224x224", "clip_224x224_16f")
CSV_HEADER = ("video_name", "label")
#: Keyword options of find_layout (tdrag prepare passes them through).
LAYOUT_OPTIONS = ("frames_dir",)


class DFEWError(DatasetError):
    """A DFEW folder, CSV or clip that cannot be used; the message names the path and the problem."""


#: A labelled DFEW clip (the shared record type; the old name stays for callers).
DFEWClip = Clip


@dataclass(frozen=True)
class DFEWLayout:
    """Where a DFEW copy keeps its clips and split CSVs (see ``find_layout``)."""

    root: Path
    clip_root: Path
    frames_dir: str
    split_dirs: dict[str, Path]

    def csv_path(self, fold: int, split: str) -> Path:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return self.split_dirs[split] / f"set_{int(fold)}.csv"


def find_layout(root: str | os.PathLike, frames_dir: str = "auto") -> DFEWLayout:
    """Locate the clip folder and the split CSV folders of a DFEW copy.

    Args:
        root: folder holding ``Clip/`` and ``EmoLabel_DataSplit/``.
        frames_dir: ``"clip_224x224"`` (all frames), ``"clip_224x224_16f"`` (16 frames per clip)
            or ``"auto"``: the full one when present, otherwise the 16-frame one.

    Raises:
        DFEWError: naming what was expected where.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DFEWError(f"{root}: DFEW root folder not found (expected a folder holding Clip/ and EmoLabel_DataSplit/)")
    clip_parent = root / "Clip"
    if not clip_parent.is_dir():
        raise DFEWError(
            f"{root}: no Clip/ folder; expected the DFEW frames under {clip_parent}/clip_224x224/<id>/ "
            f"(point --root at the folder that holds Clip/ and EmoLabel_DataSplit/)"
        )
    if frames_dir == "auto":
        candidates = [name for name in FRAMES_DIRS if (clip_parent / name).is_dir()]
        if not candidates:
            raise DFEWError(
                f"{clip_parent}: neither clip_224x224/ nor clip_224x224_16f/ found "
                f"(expected {clip_parent}/clip_224x224/<5-digit id>/<n>.jpg)"
            )
        frames_dir = candidates[0]
    elif frames_dir not in FRAMES_DIRS:
        raise ValueError(f"frames_dir must be 'auto' or one of {FRAMES_DIRS}, got {frames_dir!r}")
    clip_root = clip_parent / frames_dir
    if not clip_root.is_dir():
        raise DFEWError(f"{clip_root}: clip folder not found (frames_dir={frames_dir!r})")
    # Unzipping the archive into a folder of the same name leaves an extra level.
    nested = clip_root / frames_dir
    if nested.is_dir():
        clip_root = nested

    split_parent = root / "EmoLabel_DataSplit"
    if not split_parent.is_dir():
        raise DFEWError(
            f"{root}: no EmoLabel_DataSplit/ folder; expected the split CSVs in "
            f"{split_parent}/train(single-labeled)/set_<k>.csv and test(single-labeled)/set_<k>.csv"
        )
    split_dirs: dict[str, Path] = {}
    for split in SPLITS:
        options = [split_parent / f"{split}(single-labeled)", split_parent / f"{split}(single_labeled)"]
        found = [p for p in options if p.is_dir()]
        if not found:
            raise DFEWError(f"{split_parent}: no {split}(single-labeled)/ folder (expected {options[0]})")
        split_dirs[split] = found[0]
    return DFEWLayout(root=root, clip_root=clip_root, frames_dir=frames_dir, split_dirs=split_dirs)


def _read_csv_rows(csv_path: Path) -> list[tuple[int, str, str]]:
    """(line number, video_name, label) rows of a split CSV after checking its header."""
    if not csv_path.is_file():
        raise DFEWError(f"{csv_path}: split CSV not found")
    try:
        # utf-8-sig drops a byte-order mark that spreadsheet tools add.
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError) as exc:
        raise DFEWError(f"{csv_path}: cannot read split CSV ({exc})") from exc
    if not rows:
        raise DFEWError(f"{csv_path}: empty file, expected the header 'video_name,label'")
    header = tuple(cell.strip().lower() for cell in rows[0])
    if header != CSV_HEADER:
        raise DFEWError(f"{csv_path}: wrong header {','.join(rows[0])!r}, expected 'video_name,label'")
    out = []
    for line, row in enumerate(rows[1:], start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        out.append((line, row[0].strip() if row else "", row[1].strip() if len(row) > 1 else ""))
    return out


def _read_split(layout: DFEWLayout, index: ClipFolders, fold: int, split: str, strict: bool) -> SplitResult:
    csv_path = layout.csv_path(fold, split)
    collect = SplitCollector(fold, split, csv_path, strict, DFEWError, index.frames)
    for line, csv_id, raw_label in _read_csv_rows(csv_path):
        where = f"{csv_path}:{line}"
        try:
            label = dfew_label_from_csv(raw_label)
        except ValueError as exc:
            collect.skip(csv_id, where, f"video {csv_id!r}: {exc}")
            continue
        name = index.folder_name(csv_id)
        if collect.first_time(name or csv_id, line, where, csv_id):
            collect.add_folder(name or csv_id, label, layout.clip_root / (name or csv_id), where)
    return collect.result


def read_split(
    root: str | os.PathLike | DFEWLayout,
    fold: int,
    split: str,
    strict: bool = False,
    frames_dir: str = "auto",
) -> SplitResult:
    """The clips of ``split`` ("train" | "test") in fold ``fold`` (1..5).

    Args:
        root: DFEW root folder (or a ``DFEWLayout`` from ``find_layout``).
        strict: raise on the first bad clip instead of skipping it.
        frames_dir: see ``find_layout``.
    """
    layout = root if isinstance(root, DFEWLayout) else find_layout(root, frames_dir)
    return _read_split(layout, ClipFolders(layout.clip_root), fold, split, strict)


def read_folds(
    root: str | os.PathLike | DFEWLayout,
    folds: Sequence[int] = FOLDS,
    strict: bool = False,
    frames_dir: str = "auto",
) -> dict[int, dict[str, SplitResult]]:
    """``{fold: {"train": SplitResult, "test": SplitResult}}`` for each fold in ``folds``."""
    layout = root if isinstance(root, DFEWLayout) else find_layout(root, frames_dir)
    index = ClipFolders(layout.clip_root)
    return {int(k): {s: _read_split(layout, index, k, s, strict) for s in SPLITS} for k in folds}


def split_files(layout: DFEWLayout, folds: Sequence[int] = FOLDS) -> list[Path]:
    """The split CSVs of ``folds`` (what a cache's fingerprint covers besides the frames)."""
    return [layout.csv_path(k, s) for k in folds for s in SPLITS]


def layout_settings(layout: DFEWLayout) -> dict[str, str]:
    """What of the layout a cache records in its settings (which frame folder was read)."""
    return {"frames_dir": layout.frames_dir}
