"""Read MAFW as it is distributed: frame folders plus the five-fold single-expression split lists.

Layout (``root`` is the folder that holds ``data/`` and ``Train & Test Set/``)::

    root/data/frames/<clip>/<frames>                              frames of each clip (JPEG or PNG)
    root/Train & Test Set/single/no_caption/set_<k>/train.txt     k = 1..5
    root/Train & Test Set/single/no_caption/set_<k>/test.txt

Each row of a list is ``<clip>.mp4 <class>``, separated by a space and with no header, for example
``00025.mp4 anger``; the clip's id (``video_id``) is its name without ``.mp4`` (``00025``), which is
its folder under ``data/frames/``. Classes are MAFW's eleven single-expression classes in MAFW's
order (:data:`tdrag.data.labels.MAFW_CLASSES`: anger 0, disgust 1, fear 2, happiness 3, neutral 4,
sadness 5, surprise 6, contempt 7, anxiety 8, helplessness 9, disappointment 10), and the lists name
them in lower case, they hold no numbers.

What this follows: the public code that reads these files, MAE-DFER
(github.com/sunlicai/MAE-DFER, ``preprocess/mafw.py``: lists ``single/no_caption/set_<k>/train.txt``
and ``test.txt`` read space-separated without header, ``<name>.mp4`` mapped to
``data/frames/<name>``, and its label list in the order above, the one MAFW's README gives).
MAE-DFER renames the split folder ``split/``; DFER-CLIP (github.com/zengqunzhao/DFER-CLIP,
``annotation/preprocessing.py``) uses another class order in its own annotation files, which we
do not follow: a cache's class list is MAFW's.

Variants accepted: a renamed split folder (``split/``, ``Train&Test Set/``, ``Train_Test_Set/``,
or ``split_dir=`` any folder holding ``set_<k>/``, ``no_caption/set_<k>/`` or
``single/no_caption/set_<k>/``); frames directly under ``root/frames/`` or at ``frames_dir=``;
ids without the ``.mp4`` (or with another video suffix) and without zero padding; rows separated by
a comma or tabs; class names in any case; PNG or JPEG frames.

Bad input is reported with its path and reason, as for DFEW (``tdrag.data.dfew``): a clip-level
problem (an unknown class, a row without a label, a name with a slash, a clip listed twice, a
missing or empty clip folder) skips the clip and records a ``SkippedClip``; with ``strict=True``
the first one raises. A missing frames folder, split folder or list always raises ``MAFWError``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tdrag.data.clips import SPLITS, ClipFolders, DatasetError, SplitCollector, SplitResult
from tdrag.data.ferv39k import read_list_rows
from tdrag.data.labels import MAFW_CLASSES, mafw_label

log = logging.getLogger(__name__)

NAME = "mafw"
CLASSES = MAFW_CLASSES
FOLDS = (1, 2, 3, 4, 5)
FRAMES_DIRS = ("data/frames", "frames")
SPLIT_ROOTS = ("Train & Test Set", "Train&Test Set", "Train_Test_Set", "Train and Test Set", "split")
SUBSET = ("single", "no_caption")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")
#: Keyword options of find_layout (tdrag prepare passes them through).
LAYOUT_OPTIONS = ("frames_dir", "split_dir")


class MAFWError(DatasetError):
    """A MAFW folder, list or clip that cannot be used; the message names the path and the problem."""


@dataclass(frozen=True)
class MAFWLayout:
    """Where a MAFW copy keeps its clips and its single-expression split lists (see ``find_layout``)."""

    root: Path
    clip_root: Path
    split_dir: Path  # holds set_1/ ... set_5/

    def list_path(self, fold: int, split: str) -> Path:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return self.split_dir / f"set_{int(fold)}" / f"{split}.txt"


def _under(root: Path, name: str) -> Path:
    path = Path(name).expanduser()
    return path if path.is_absolute() else root / path


def _sets_folder(folder: Path) -> Path | None:
    """The folder holding ``set_<k>/`` at or below ``folder`` (``single/no_caption/``, ``no_caption/``)."""
    for candidate in (folder / SUBSET[0] / SUBSET[1], folder / SUBSET[1], folder):
        if candidate.is_dir() and any(p.name.startswith("set_") and p.is_dir() for p in candidate.iterdir()):
            return candidate
    return None


def find_layout(root: str | os.PathLike, frames_dir: str = "auto", split_dir: str = "auto") -> MAFWLayout:
    """Locate the frames folder and the single-expression split lists of a MAFW copy.

    Args:
        root: folder holding ``data/frames/`` and ``Train & Test Set/``.
        frames_dir: the frames folder (``"auto"``: ``data/frames`` or ``frames``), under ``root``
            or absolute.
        split_dir: the split folder (``"auto"``: ``Train & Test Set`` or a renamed one, see the
            module docstring), under ``root`` or absolute; it, its ``no_caption/`` or its
            ``single/no_caption/`` must hold ``set_<k>/``.

    Raises:
        MAFWError: naming what was expected where.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise MAFWError(f"{root}: MAFW root folder not found (expected a folder holding data/frames/ and 'Train & Test Set/')")
    if frames_dir in ("auto", "", None):
        found = [root / n for n in FRAMES_DIRS if (root / n).is_dir()]
        if not found:
            raise MAFWError(f"{root}: no data/frames/ folder; expected the MAFW frames under {root / 'data' / 'frames'}/<clip>/ "
                            f"(point --root at the folder that holds data/ and 'Train & Test Set/')")
        clip_root = found[0]
    else:
        clip_root = _under(root, str(frames_dir))
        if not clip_root.is_dir():
            raise MAFWError(f"{clip_root}: frames folder not found (frames_dir={frames_dir!r})")

    expected = root / SPLIT_ROOTS[0] / SUBSET[0] / SUBSET[1]
    if split_dir in ("auto", "", None):
        sets = None
        for name in SPLIT_ROOTS:
            if (root / name).is_dir():
                sets = _sets_folder(root / name)
                if sets is not None:
                    break
        if sets is None:
            raise MAFWError(f"{root}: no single-expression split lists; expected {expected}/set_<k>/train.txt and test.txt "
                            f"(or pass split_dir=)")
    else:
        folder = _under(root, str(split_dir))
        if not folder.is_dir():
            raise MAFWError(f"{folder}: split folder not found (split_dir={split_dir!r})")
        sets = _sets_folder(folder)
        if sets is None:
            raise MAFWError(f"{folder}: no set_<k>/ folders in it, in no_caption/ or in single/no_caption/")
    return MAFWLayout(root=root, clip_root=clip_root, split_dir=sets)


def clip_name(name: str) -> str:
    """A list's clip name without its video suffix (``"00025.mp4" -> "00025"``)."""
    name = name.strip()
    stem, suffix = os.path.splitext(name)
    return stem if suffix.lower() in VIDEO_SUFFIXES else name


def _read_split(layout: MAFWLayout, index: ClipFolders, fold: int, split: str, strict: bool) -> SplitResult:
    list_path = layout.list_path(fold, split)
    collect = SplitCollector(fold, split, list_path, strict, MAFWError, index.frames)
    for line, raw_name, raw_label in read_list_rows(list_path, MAFWError, "split list"):
        where = f"{list_path}:{line}"
        name = clip_name(raw_name)
        if not raw_label:
            collect.skip(name, where, f"row {raw_name!r} has no class (expected '<clip>.mp4 <class>')")
            continue
        try:
            label = mafw_label(raw_label)
        except ValueError as exc:
            collect.skip(name, where, f"video {raw_name!r}: {exc}")
            continue
        if not name or name in (".", "..") or "/" in name or "\\" in name:
            collect.skip(name, where, f"video {raw_name!r}: not a clip name (a MAFW clip is one folder under "
                                      f"{layout.clip_root})")
            continue
        folder_name = index.folder_name(name)
        if collect.first_time(folder_name or name, line, where, raw_name):
            collect.add_folder(folder_name or name, label, layout.clip_root / (folder_name or name), where)
    return collect.result


def _layout(root: str | os.PathLike | MAFWLayout, options: dict) -> MAFWLayout:
    return root if isinstance(root, MAFWLayout) else find_layout(root, **options)


def read_split(root: str | os.PathLike | MAFWLayout, fold: int, split: str, strict: bool = False,
               **options) -> SplitResult:
    """The clips of ``split`` ("train" | "test") in fold ``fold`` (1..5); ``options``: see ``find_layout``."""
    layout = _layout(root, options)
    return _read_split(layout, ClipFolders(layout.clip_root), fold, split, strict)


def read_folds(root: str | os.PathLike | MAFWLayout, folds: Sequence[int] = FOLDS, strict: bool = False,
               **options) -> dict[int, dict[str, SplitResult]]:
    """``{fold: {"train": SplitResult, "test": SplitResult}}`` for each fold in ``folds``."""
    layout = _layout(root, options)
    index = ClipFolders(layout.clip_root)
    return {int(k): {s: _read_split(layout, index, k, s, strict) for s in SPLITS} for k in folds}


def split_files(layout: MAFWLayout, folds: Sequence[int] = FOLDS) -> list[Path]:
    """The split lists of ``folds`` (what a cache's fingerprint covers besides the frames)."""
    return [layout.list_path(k, s) for k in folds for s in SPLITS]


def layout_settings(layout: MAFWLayout) -> dict[str, str]:
    """What of the layout a cache records: the folders read."""
    return {"frames_dir": str(layout.clip_root), "split_dir": str(layout.split_dir)}
