"""Read FERV39k as it is distributed: face-crop frame folders plus the scene setups' split lists.

Layout (``root`` is the folder that holds ``2_ClipsforFaceCrop/`` and ``4_setups/``)::

    root/2_ClipsforFaceCrop/<Scene>/<Class>/<nnnn>/<frames>     face crops of each clip (JPEG or PNG)
    root/4_setups/All_scenes/train_All.csv                        the train list
    root/4_setups/All_scenes/test_All.csv                         the test list
    root/4_setups/<Scene>/train_<...>.csv, test_<...>.csv         per-scene setups (optional)

Each row of a list is ``<relative path> <ClassName>``, separated by a space and with no header,
for example ``Interview/Happy/0118 Happy``; the relative path is the clip's folder under
``2_ClipsforFaceCrop/`` and is the clip's ``video_id`` here (ids hold slashes). There is one
train/test split: fold 1. Classes are the seven of :data:`tdrag.data.labels.FERV39K_CLASSES`
in the order the public FERV39k code uses (Happy 0, Sad 1, Neutral 2, Angry 3, Surprise 4,
Disgust 5, Fear 6), and the lists name them ("Happy"), they hold no numbers.

What this follows: the public FERV39k code that reads these files, MAE-DFER
(github.com/sunlicai/MAE-DFER, ``preprocess/ferv39k.py``: ``4_setups/All_scenes``,
``train_All.csv`` / ``test_All.csv`` read space-separated without header, paths joined to
``2_ClipsforFaceCrop``, and its ``label2idx``; the lists it derives,
``saved/data/ferv39k/all_scenes/*.csv``, show ``<Scene>/<Class>/<nnnn>`` paths).

Variants accepted: another setup than ``All_scenes`` (``setup="<Scene>"``: its folder under
``4_setups/``, whose lists are ``train_<...>.csv`` / ``test_<...>.csv``); a renamed split folder
(``setups/``, or ``split_dir=`` any folder, absolute or relative to ``root``); a renamed frames
folder (``frames_dir=``); an extra nested ``2_ClipsforFaceCrop/2_ClipsforFaceCrop/`` level left
by unzipping; rows separated by a comma or tabs; backslashes in paths; paths written absolute by
a preprocessing script (``/data/FERV39k/2_ClipsforFaceCrop/Action/Angry/0001``: the part after
the frames folder's name is used); class names in any case; PNG or JPEG frames.

Bad input is reported with its path and reason, as for DFEW (``tdrag.data.dfew``): a clip-level
problem (an unknown class, a row without a label, a path that leaves the frames folder, a clip
listed twice, a missing or empty clip folder) skips the clip and records a ``SkippedClip``; with
``strict=True`` the first one raises. A missing frames folder, setup folder or list always raises
``FERV39kError``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tdrag.data.clips import SPLITS, DatasetError, FrameFolders, SplitCollector, SplitResult
from tdrag.data.labels import FERV39K_CLASSES, ferv39k_label

log = logging.getLogger(__name__)

NAME = "ferv39k"
CLASSES = FERV39K_CLASSES
FOLDS = (1,)
FRAMES_DIR = "2_ClipsforFaceCrop"
SPLIT_DIRS = ("4_setups", "setups", "4_Setups", "Setups")
DEFAULT_SETUP = "All_scenes"
LIST_SUFFIXES = (".csv", ".txt")
#: Keyword options of find_layout (tdrag prepare passes them through).
LAYOUT_OPTIONS = ("setup", "frames_dir", "split_dir")


class FERV39kError(DatasetError):
    """A FERV39k folder, list or clip that cannot be used; the message names the path and the problem."""


@dataclass(frozen=True)
class FERV39kLayout:
    """Where a FERV39k copy keeps its clips and the lists of one setup (see ``find_layout``)."""

    root: Path
    clip_root: Path
    setup: str
    setup_dir: Path
    lists: dict[str, Path]

    def list_path(self, fold: int, split: str) -> Path:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if int(fold) not in FOLDS:
            raise FERV39kError(f"fold {fold}: FERV39k has one train/test split, fold 1")
        return self.lists[split]


def _under(root: Path, name: str) -> Path:
    path = Path(name).expanduser()
    return path if path.is_absolute() else root / path


def _setup_tag(setup: str) -> str:
    """``All_scenes`` -> ``All`` (train_All.csv); a scene setup keeps its name."""
    return "All" if setup.lower() == DEFAULT_SETUP.lower() else setup


def _find_list(folder: Path, split: str, setup: str) -> Path:
    tag = _setup_tag(setup)
    for suffix in LIST_SUFFIXES:
        exact = folder / f"{split}_{tag}{suffix}"
        if exact.is_file():
            return exact
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in LIST_SUFFIXES
                   and p.name.lower().startswith(f"{split}_"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise FERV39kError(f"{folder}: no {split} list (expected {folder / f'{split}_{tag}.csv'})")
    raise FERV39kError(f"{folder}: several {split} lists ({', '.join(p.name for p in found)}); "
                       f"expected one, {split}_{tag}.csv")


def find_layout(root: str | os.PathLike, setup: str = DEFAULT_SETUP, frames_dir: str = "auto",
                split_dir: str = "auto") -> FERV39kLayout:
    """Locate the frames folder and the split lists of one setup of a FERV39k copy.

    Args:
        root: folder holding ``2_ClipsforFaceCrop/`` and ``4_setups/``.
        setup: ``"All_scenes"`` (the benchmark) or a scene setup's folder name under ``4_setups/``.
        frames_dir: the face-crop folder (``"auto"``: ``2_ClipsforFaceCrop``), a name under
            ``root`` or an absolute path.
        split_dir: the folder holding the setup folders (``"auto"``: ``4_setups`` or
            ``setups``), under ``root`` or absolute.

    Raises:
        FERV39kError: naming what was expected where.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FERV39kError(f"{root}: FERV39k root folder not found (expected a folder holding {FRAMES_DIR}/ and 4_setups/)")
    name = FRAMES_DIR if frames_dir in ("auto", "", None) else str(frames_dir)
    clip_root = _under(root, name)
    if not clip_root.is_dir():
        raise FERV39kError(
            f"{root}: no {name}/ folder; expected the FERV39k face crops under {clip_root}/<Scene>/<Class>/<nnnn>/ "
            f"(point --root at the folder that holds {FRAMES_DIR}/ and 4_setups/)"
        )
    nested = clip_root / clip_root.name  # unzipping into a folder of the same name
    if nested.is_dir():
        clip_root = nested

    if split_dir in ("auto", "", None):
        found = [root / n for n in SPLIT_DIRS if (root / n).is_dir()]
        if not found:
            raise FERV39kError(f"{root}: no 4_setups/ folder; expected the split lists in "
                               f"{root / '4_setups' / DEFAULT_SETUP}/train_All.csv and test_All.csv")
        split_parent = found[0]
    else:
        split_parent = _under(root, str(split_dir))
        if not split_parent.is_dir():
            raise FERV39kError(f"{split_parent}: split folder not found (split_dir={split_dir!r})")
    setup = str(setup or DEFAULT_SETUP)
    setup_dir = split_parent / setup
    if not setup_dir.is_dir():
        matches = [p for p in split_parent.iterdir() if p.is_dir() and p.name.lower() == setup.lower()]
        if matches:
            setup_dir = matches[0]
        elif any(p.name.lower().startswith("train_") for p in split_parent.iterdir() if p.is_file()):
            setup_dir = split_parent  # the lists themselves (split_dir pointed at a setup folder)
        else:
            known = sorted(p.name for p in split_parent.iterdir() if p.is_dir())
            raise FERV39kError(f"{split_parent}: no setup folder {setup!r} "
                               f"(found: {', '.join(known) if known else 'none'})")
    lists = {split: _find_list(setup_dir, split, setup) for split in SPLITS}
    return FERV39kLayout(root=root, clip_root=clip_root, setup=setup, setup_dir=setup_dir, lists=lists)


_SEPARATOR = re.compile(r"\s+|,")


def read_list_rows(path: Path, error: type[DatasetError], what: str) -> list[tuple[int, str, str]]:
    """``(line number, name, label)`` of a headerless two-column list (space, tab or comma separated).

    Blank lines and ``#`` comments are left out; a row with one column has the label ``""``.
    The name is everything before the last separator, so a name may hold spaces.
    """
    if not path.is_file():
        raise error(f"{path}: {what} not found")
    try:
        text = path.read_text(encoding="utf-8-sig")  # drop a byte-order mark from spreadsheet tools
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read {what} ({exc})") from exc
    rows = []
    for line, raw in enumerate(text.splitlines(), start=1):
        row = raw.strip()
        if not row or row.startswith("#"):
            continue
        parts = [m for m in _SEPARATOR.finditer(row)]
        if not parts:
            rows.append((line, row, ""))
            continue
        last = parts[-1]
        rows.append((line, row[: last.start()].strip().rstrip(","), row[last.end():].strip()))
    return rows


def normalise_clip_path(name: str, frames_dir_name: str = FRAMES_DIR) -> str | None:
    """A list's clip path as a clean relative POSIX path (the video id), or None if unusable.

    Backslashes become slashes; a path written through the frames folder (absolute or not) keeps
    the part after it; ``..``, ``.`` and empty parts are refused.
    """
    text = name.strip().replace("\\", "/")
    marker = f"{frames_dir_name}/"
    if marker in text:
        text = text.split(marker, 1)[1]
    while text.startswith("./"):
        text = text[2:]
    text = text.rstrip("/")
    if not text or text.startswith("/"):
        return None
    parts = PurePosixPath(text).parts
    if any(p in ("", ".", "..") for p in parts) or ":" in parts[0]:
        return None
    return "/".join(parts)


def _read_split(layout: FERV39kLayout, frames: FrameFolders, fold: int, split: str, strict: bool) -> SplitResult:
    list_path = layout.list_path(fold, split)
    collect = SplitCollector(fold, split, list_path, strict, FERV39kError, frames)
    for line, name, raw_label in read_list_rows(list_path, FERV39kError, "split list"):
        where = f"{list_path}:{line}"
        if not raw_label:
            collect.skip(name, where, f"row {name!r} has no class (expected '<relative path> <ClassName>')")
            continue
        try:
            label = ferv39k_label(raw_label)
        except ValueError as exc:
            collect.skip(name, where, f"video {name!r}: {exc}")
            continue
        vid = normalise_clip_path(name, layout.clip_root.name)
        if vid is None:
            collect.skip(name, where, f"video {name!r}: not a relative path inside {layout.clip_root}")
            continue
        if collect.first_time(vid, line, where, vid):
            collect.add_folder(vid, label, layout.clip_root / vid, where)
    return collect.result


def _layout(root: str | os.PathLike | FERV39kLayout, options: dict) -> FERV39kLayout:
    return root if isinstance(root, FERV39kLayout) else find_layout(root, **options)


def read_split(root: str | os.PathLike | FERV39kLayout, fold: int = 1, split: str = "train", strict: bool = False,
               **options) -> SplitResult:
    """The clips of ``split`` ("train" | "test") of fold 1 (``options``: see ``find_layout``)."""
    return _read_split(_layout(root, options), FrameFolders(), fold, split, strict)


def read_folds(root: str | os.PathLike | FERV39kLayout, folds: Sequence[int] = FOLDS, strict: bool = False,
               **options) -> dict[int, dict[str, SplitResult]]:
    """``{1: {"train": SplitResult, "test": SplitResult}}`` (FERV39k has only fold 1)."""
    layout = _layout(root, options)
    frames = FrameFolders()
    return {int(k): {s: _read_split(layout, frames, k, s, strict) for s in SPLITS} for k in folds}


def split_files(layout: FERV39kLayout, folds: Sequence[int] = FOLDS) -> list[Path]:
    """The train and test lists (what a cache's fingerprint covers besides the frames)."""
    return [layout.list_path(k, s) for k in folds for s in SPLITS]


def layout_settings(layout: FERV39kLayout) -> dict[str, str]:
    """What of the layout a cache records: the setup and the folders read."""
    return {"setup": layout.setup, "frames_dir": str(layout.clip_root), "split_dir": str(layout.setup_dir)}
