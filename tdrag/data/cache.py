"""Frame cache: decode each clip once, keep its keyframes as one uint8 memory-mapped array.

Decoding JPEGs every epoch starves a GPU; ``prepare_cache`` (``tdrag prepare``) reads a dataset
as distributed (``--dataset dfew|ferv39k|mafw``, see ``tdrag.data.datasets``), decodes each clip
once in worker processes, selects ``T`` keyframes, resizes them to ``S x S`` and stores::

    CACHE/frames.u8       raw uint8 (N, T, S, S, 3) RGB, C order (np.memmap)
    CACHE/index.json      per row: video_id, label (0-based), source_frames (T indices into the
                          clip's frame list, in frame-number order), num_source_frames,
                          source_digest (the clip's frame files: names, sizes, times)
    CACHE/manifest.json   dataset, classes (the dataset's class list, in label order), shape, T,
                          S, keyframe method, settings, folds {"1": {"train": [rows], "test":
                          [rows]}, ...}, counts per fold/split/class, skipped clips with their
                          reasons, ignored files, which frames were decoded, the fingerprint of
                          the sources, complete: true

Every clip listed in any fold's split files is stored once; folds are row lists over the one
array. Rows follow the sorted video ids.

Building it is ``tdrag.data.prepare`` (``prepare_cache``); decoding in worker processes is
``tdrag.data.decode``.

Decoding. Uniform sampling only needs the ``T`` chosen frames, so only those are decoded, unless
``verify`` asks for every frame (then a corrupt frame anywhere in a clip is reported); the
manifest's ``decoded`` says which. The redundancy method needs every frame's content: all frames
are decoded in colour and the keyframes chosen on them, as
``tdrag.data.keyframes.select_keyframes`` would on any decoded clip (video files included), and
only the ``T`` keyframes are resized. This runs at about 1.1x the frames/s of a bare
``cv2.imread`` + resize loop over the same files (benchmarks/RESULTS.md). Frames are resized with
``cv2.INTER_AREA`` (straight to ``S x S``).

Freshness. The manifest holds a fingerprint of what the cache was built from: the content of
every split file and, per clip, the names, sizes and modification times of its frame files. A
second run with the same settings and sources does nothing; when the settings or the sources
differ (a label edited in a split file, frames added or replaced) it refuses, naming what
changed, unless ``overwrite=True``, which rebuilds.

Safety. The cache is built in a sibling folder ``.<name>.tmp-<pid>`` and renamed into place only
after ``manifest.json`` with ``complete: true`` is written, so a killed run never leaves a cache
that looks complete; temp folders of dead processes are removed by the next run. The frames file
is allocated in full before any decoding (``posix_fallocate``), so a full disk is an error at the
start rather than a SIGBUS in a worker, and a worker that dies ends the run with an error instead
of a hang. ``overwrite`` replaces only a folder that is recognisably a tdrag cache (its own three
files and nothing else) or empty, never the dataset root or a folder holding it
(``tdrag.ownership``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from tdrag.errors import TdragError

FRAMES_FILE = "frames.u8"
INDEX_FILE = "index.json"
MANIFEST_FILE = "manifest.json"
CACHE_FILES = (FRAMES_FILE, INDEX_FILE, MANIFEST_FILE)
FORMAT = "tdrag-frame-cache"
FORMAT_VERSION = 1


class CacheError(TdragError, RuntimeError):
    """A cache folder that is missing, incomplete, built from other sources or settings, or not tdrag's."""


# ----------------------------------------------------------------------------- reading


class ClipCache:
    """A finished frame cache, opened read-only.

    Attributes:
        path: the cache folder.
        manifest: ``manifest.json`` as a dict.
        index: ``index.json``: one dict per row.
        labels: ``(N,)`` int64 0-based labels.
        video_ids: the rows' video ids.
        frames: ``(N, T, S, S, 3)`` uint8 read-only memmap (opened lazily, and again in each
            DataLoader worker: pickling a ClipCache never copies the frames).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        manifest_path = self.path / MANIFEST_FILE
        if not self.path.is_dir():
            raise CacheError(f"{self.path}: frame cache not found (build it with `tdrag prepare --out {self.path}`)")
        if not manifest_path.is_file():
            raise CacheError(f"{manifest_path}: no manifest; {self.path} is not a finished frame cache (run `tdrag prepare` again)")
        try:
            self.manifest: dict[str, Any] = json.loads(manifest_path.read_text())
            self.index: list[dict[str, Any]] = json.loads((self.path / INDEX_FILE).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CacheError(f"{self.path}: cannot read the cache's JSON files ({exc})") from None
        if not isinstance(self.manifest, dict) or self.manifest.get("complete") is not True:
            raise CacheError(f"{manifest_path}: cache is not marked complete (an interrupted run?); run `tdrag prepare` again")
        try:
            self.shape = tuple(int(v) for v in self.manifest["shape"])
            self.labels = np.asarray([row["label"] for row in self.index], dtype=np.int64)
            self.video_ids = [str(row["video_id"]) for row in self.index]
        except (KeyError, TypeError, ValueError) as exc:
            raise CacheError(f"{self.path}: the cache's manifest or index is malformed ({exc!r})") from None
        if len(self.shape) != 5:
            raise CacheError(f"{manifest_path}: shape {list(self.shape)} is not (N, T, S, S, 3)")
        frames_path = self.path / FRAMES_FILE
        expected = int(np.prod(self.shape))
        size = frames_path.stat().st_size if frames_path.is_file() else -1
        if size != expected:
            raise CacheError(f"{frames_path}: expected {expected} bytes for shape {self.shape}, found {max(size, 0)}")
        if len(self.index) != self.shape[0]:
            raise CacheError(f"{self.path / INDEX_FILE}: {len(self.index)} rows, but frames hold {self.shape[0]}")
        self._frames: np.memmap | None = None

    @property
    def frames(self) -> np.memmap:
        if self._frames is None:
            self._frames = np.memmap(self.path / FRAMES_FILE, dtype=np.uint8, mode="r", shape=self.shape)
        return self._frames

    @property
    def num_frames(self) -> int:
        """T, keyframes per clip."""
        return self.shape[1]

    @property
    def size(self) -> int:
        """S, side of the cached frames."""
        return self.shape[2]

    @property
    def dataset(self) -> str:
        """The dataset the cache was read from ("dfew", "ferv39k", "mafw")."""
        return str(self.manifest.get("settings", {}).get("dataset", "dfew"))

    @property
    def class_names(self) -> tuple[str, ...]:
        """The dataset's class names in label order (label ``i`` is ``class_names[i]``), as the
        manifest lists them (manifests older than that list: the dataset reader's classes)."""
        from tdrag.data.datasets import get_reader

        return tuple(self.manifest.get("classes") or get_reader(self.dataset).CLASSES)

    @property
    def folds(self) -> list[int]:
        """The folds the cache holds, ascending."""
        return sorted(int(k) for k in self.manifest.get("folds", {}))

    @property
    def fingerprint(self) -> str | None:
        """Digest of the sources the cache was built from (None for caches from before fingerprints)."""
        return (self.manifest.get("fingerprint") or {}).get("digest")

    def __len__(self) -> int:
        return self.shape[0]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_frames"] = None
        return state

    def check_fold(self, fold: int, key: str = "data.fold") -> None:
        """Raise CacheError naming ``key`` unless the cache holds ``fold``."""
        if int(fold) not in self.folds:
            raise CacheError(f"{key}: fold {fold} is not in the cache {self.path} (it has folds "
                             f"{', '.join(map(str, self.folds))})")

    def rows(self, fold: int, split: str) -> np.ndarray:
        """Row indices of ``split`` ("train" | "test") in ``fold``: ``(n,)`` int64."""
        self.check_fold(fold)
        folds = self.manifest["folds"]
        if split not in folds[str(fold)]:
            raise CacheError(f"{self.path}: split {split!r} not in fold {fold} (choose one of {', '.join(folds[str(fold)])})")
        return np.asarray(folds[str(fold)][split], dtype=np.int64)

    def __repr__(self) -> str:
        return f"ClipCache({str(self.path)!r}, shape={self.shape}, keyframes={self.manifest.get('keyframes')!r})"


def open_cache(path: str | os.PathLike) -> ClipCache:
    """Open a finished cache; raises ``CacheError`` naming the path if it is missing or incomplete."""
    return ClipCache(path)


def is_cache_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder tdrag may replace as its own cache: empty, or holding only
    the cache's files with a manifest tdrag wrote."""
    path = Path(path)
    if not path.is_dir():
        return False
    names = {e.name for e in os.scandir(path)}
    if not names:
        return True
    if not names <= set(CACHE_FILES) or MANIFEST_FILE not in names:
        return False
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(manifest, dict) and (manifest.get("format") in (FORMAT, FORMAT_VERSION)) and "settings" in manifest
