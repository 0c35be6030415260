"""Where a synthetic data set puts its clips and split files: DFEW's, FERV39k's or MAFW's layout.

Each layout is written as that dataset is distributed (see ``tdrag.data.dfew``, ``ferv39k``,
``mafw``), with that dataset's class list and label format, so ``tdrag prepare --dataset <name>``
reads a synthetic set with the real reader:

- ``dfew``: ``Clip/clip_224x224/<5-digit id>/<n>.jpg``; ``EmoLabel_DataSplit/{train,test}(single-
  labeled)/set_<k>.csv`` (k = 1..5, header ``video_name,label``, labels 1..7).
- ``ferv39k``: ``2_ClipsforFaceCrop/<Scene>/<Class>/<nnnn>/<n>.jpg`` (the id is that relative
  path; scenes are dealt to clips in turn from :data:`FERV39K_SCENES`, ``nnnn`` counts the clips of
  each scene and class from 0000); ``4_setups/All_scenes/{train,test}_All.csv`` and, per scene,
  ``4_setups/<Scene>/{train,test}_<Scene>.csv`` (rows ``<relative path> <ClassName>``). One
  train/test split: the clips of synthetic fold 1 are the test list.
- ``mafw``: ``data/frames/<5-digit id>/<n>.jpg``; ``Train & Test Set/single/no_caption/set_<k>/
  {train,test}.txt`` (k = 1..5, rows ``<id>.mp4 <class>``, MAFW's lower-case class names).

The masks and meta live under ``synthetic/`` in every layout, keyed by video id (a FERV39k id's
slashes become sub-folders of ``synthetic/masks/``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tdrag.atomic import write_text
from tdrag.data.labels import DFEW_CLASSES, FERV39K_CLASSES, MAFW_CLASSES, dfew_label_to_csv

NUM_FOLDS = 5
#: Scenes the synthetic FERV39k layout deals its clips to (a few of FERV39k's 22 scene names).
FERV39K_SCENES: tuple[str, ...] = ("Action", "DailyLife", "Interview", "Talkshow")


@dataclass(frozen=True)
class SynthLayout:
    """One dataset's layout: its class list, where clips go and how split files are written."""

    name: str
    classes: tuple[str, ...]
    clip_dir: Path  # relative to the data set root: clip folders are clip_dir / video_id
    own_entries: tuple[str, ...]  # top-level entries it writes (besides synthetic/)

    def video_ids(self, labels: np.ndarray) -> list[str]:
        """Video id of each clip (``labels``: 0-based classes in this layout's list)."""
        if self.name == "ferv39k":
            counts: dict[tuple[str, str], int] = {}
            ids = []
            for i, label in enumerate(labels):
                key = (FERV39K_SCENES[i % len(FERV39K_SCENES)], self.classes[int(label)])
                n = counts.get(key, 0)
                counts[key] = n + 1
                ids.append(f"{key[0]}/{key[1]}/{n:04d}")
            return ids
        return [f"{i + 1:05d}" for i in range(len(labels))]

    def write_splits(self, root: Path, ids: Sequence[str], labels: np.ndarray, folds: np.ndarray) -> None:
        """Write the split files of ``ids`` (test fold of each clip in ``folds``) under ``root``."""
        {"dfew": _dfew_splits, "ferv39k": _ferv39k_splits, "mafw": _mafw_splits}[self.name](
            root, list(ids), labels, folds, self.classes)

    def split_files(self) -> tuple[str, ...]:
        """Every file :meth:`write_splits` writes, ``/``-separated and relative to the root (the
        same for any clips): what a rewrite of the set may replace besides clips and ``synthetic/``."""
        return {"dfew": _dfew_split_files, "ferv39k": _ferv39k_split_files, "mafw": _mafw_split_files}[self.name]()


def _dfew_splits(root: Path, ids: list[str], labels: np.ndarray, folds: np.ndarray, classes) -> None:
    for split in ("train", "test"):
        folder = root / "EmoLabel_DataSplit" / f"{split}(single-labeled)"
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(1, NUM_FOLDS + 1):
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(["video_name", "label"])
            for vid, label, fold in zip(ids, labels, folds):
                if (fold == k) == (split == "test"):
                    writer.writerow([vid, dfew_label_to_csv(int(label))])
            write_text(folder / f"set_{k}.csv", buf.getvalue())


def _ferv39k_splits(root: Path, ids: list[str], labels: np.ndarray, folds: np.ndarray, classes) -> None:
    setups = {"All_scenes": ("All", None), **{scene: (scene, scene) for scene in FERV39K_SCENES}}
    for setup, (tag, scene) in setups.items():
        folder = root / "4_setups" / setup
        folder.mkdir(parents=True, exist_ok=True)
        for split in ("train", "test"):
            rows = [f"{vid} {classes[int(label)]}\n" for vid, label, fold in zip(ids, labels, folds)
                    if (fold == 1) == (split == "test") and (scene is None or vid.split("/", 1)[0] == scene)]
            write_text(folder / f"{split}_{tag}.csv", "".join(rows))


def _mafw_splits(root: Path, ids: list[str], labels: np.ndarray, folds: np.ndarray, classes) -> None:
    base = root / "Train & Test Set" / "single" / "no_caption"
    for k in range(1, NUM_FOLDS + 1):
        folder = base / f"set_{k}"
        folder.mkdir(parents=True, exist_ok=True)
        for split in ("train", "test"):
            rows = [f"{vid}.mp4 {classes[int(label)]}\n" for vid, label, fold in zip(ids, labels, folds)
                    if (fold == k) == (split == "test")]
            write_text(folder / f"{split}.txt", "".join(rows))


def _dfew_split_files() -> tuple[str, ...]:
    return tuple(f"EmoLabel_DataSplit/{split}(single-labeled)/set_{k}.csv" for split in ("train", "test")
                 for k in range(1, NUM_FOLDS + 1))


def _ferv39k_split_files() -> tuple[str, ...]:
    setups = {"All_scenes": "All", **{scene: scene for scene in FERV39K_SCENES}}
    return tuple(f"4_setups/{setup}/{split}_{tag}.csv" for setup, tag in setups.items() for split in ("train", "test"))


def _mafw_split_files() -> tuple[str, ...]:
    return tuple(f"Train & Test Set/single/no_caption/set_{k}/{split}.txt" for k in range(1, NUM_FOLDS + 1)
                 for split in ("train", "test"))


LAYOUTS: dict[str, SynthLayout] = {
    "dfew": SynthLayout("dfew", DFEW_CLASSES, Path("Clip") / "clip_224x224", ("Clip", "EmoLabel_DataSplit")),
    "ferv39k": SynthLayout("ferv39k", FERV39K_CLASSES, Path("2_ClipsforFaceCrop"), ("2_ClipsforFaceCrop", "4_setups")),
    "mafw": SynthLayout("mafw", MAFW_CLASSES, Path("data") / "frames", ("data", "Train & Test Set")),
}


def get_layout(name: str) -> SynthLayout:
    """The layout called ``name`` ("dfew" | "ferv39k" | "mafw")."""
    if name not in LAYOUTS:
        raise ValueError(f"unknown synthetic layout {name!r}; choose one of {', '.join(LAYOUTS)}")
    return LAYOUTS[name]
