"""Frame cache: decode each DFEW clip once, keep its keyframes as one uint8 memory-mapped array.

Decoding JPEGs every epoch starves a GPU; ``prepare_cache`` (``tdrag prepare``) decodes each
clip once in worker processes, selects ``T`` keyframes, resizes them to ``S x S`` and stores::

    CACHE/frames.u8       raw uint8 (N, T, S, S, 3) RGB, C order (np.memmap)
    CACHE/index.json      per row: video_id, label (0-based), source_frames (T indices into the
                          clip's frame list, in frame-number order), num_source_frames
    CACHE/manifest.json   shape, T, S, keyframe method, settings, folds {"1": {"train": [rows],
                          "test": [rows]}, ...}, counts per fold/split/class, skipped clips with
                          their reasons, complete: true

Every clip listed in any fold's CSVs is stored once (in DFEW each clip is in exactly one test
set); folds are row lists over the one array. Rows follow the sorted video ids.

Decoding. Uniform sampling only needs the ``T`` chosen frames, so only those are decoded. The
redundancy method needs every frame's content: all frames are decoded in colour and the
keyframes chosen on them, as ``tdrag.data.keyframes.select_keyframes`` would on any decoded clip
(video files included), and only the ``T`` keyframes are resized. This runs at about 1.1x the
frames/s of a bare ``cv2.imread`` + resize loop over the same files (benchmarks/RESULTS.md).
Choosing on reduced grey decodes (``cv2.IMREAD_REDUCED_GRAYSCALE_4``) and decoding the ``T``
keyframes again in colour was measured too: about 40% less CPU on clips of 60 frames (less on
short clips), but it selects on other thumbnails than the keyframe module sees at prediction
time, so the cache keeps the exact selection. Frames are resized with ``cv2.INTER_AREA``
(straight to ``S x S``; DFEW frames are square).

Safety. The cache is built in a sibling folder ``.<name>.tmp-<pid>`` and renamed into place only
after ``manifest.json`` with ``complete: true`` is written, so a killed run never leaves a cache
that looks complete; temp folders of dead processes are removed by the next run. A second run
with the same settings does nothing; with other settings it refuses unless ``overwrite=True``.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm.auto import tqdm

from tdrag.atomic import write_json
from tdrag.data.dfew import FOLDS, SPLITS, ClipError, DFEWError, SkippedClip, decode_image, find_layout, read_folds
from tdrag.data.keyframes import KEYFRAME_METHODS, select_keyframes, uniform_indices
from tdrag.data.labels import DFEW_CLASSES

log = logging.getLogger(__name__)

FRAMES_FILE = "frames.u8"
INDEX_FILE = "index.json"
MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1


class CacheError(Exception):
    """A cache folder that is missing, incomplete, or built with other settings."""


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
        except (OSError, json.JSONDecodeError) as exc:
            raise CacheError(f"{self.path}: cannot read the cache's JSON files ({exc})") from exc
        if self.manifest.get("complete") is not True:
            raise CacheError(f"{manifest_path}: cache is not marked complete (an interrupted run?); run `tdrag prepare` again")
        self.shape = tuple(int(v) for v in self.manifest["shape"])
        frames_path = self.path / FRAMES_FILE
        expected = int(np.prod(self.shape))
        size = frames_path.stat().st_size if frames_path.is_file() else -1
        if size != expected:
            raise CacheError(f"{frames_path}: expected {expected} bytes for shape {self.shape}, found {max(size, 0)}")
        if len(self.index) != self.shape[0]:
            raise CacheError(f"{self.path / INDEX_FILE}: {len(self.index)} rows, but frames hold {self.shape[0]}")
        self.labels = np.asarray([row["label"] for row in self.index], dtype=np.int64)
        self.video_ids = [str(row["video_id"]) for row in self.index]
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

    def __len__(self) -> int:
        return self.shape[0]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_frames"] = None
        return state

    def rows(self, fold: int, split: str) -> np.ndarray:
        """Row indices of ``split`` ("train" | "test") in ``fold``: ``(n,)`` int64."""
        folds = self.manifest["folds"]
        if str(fold) not in folds:
            raise CacheError(f"{self.path}: fold {fold} not in this cache (it has folds {', '.join(folds)})")
        if split not in folds[str(fold)]:
            raise CacheError(f"{self.path}: split {split!r} not in fold {fold} (choose one of {', '.join(folds[str(fold)])})")
        return np.asarray(folds[str(fold)][split], dtype=np.int64)

    def __repr__(self) -> str:
        return f"ClipCache({str(self.path)!r}, shape={self.shape}, keyframes={self.manifest.get('keyframes')!r})"


def open_cache(path: str | os.PathLike) -> ClipCache:
    """Open a finished cache; raises ``CacheError`` naming the path if it is missing or incomplete."""
    return ClipCache(path)


# ----------------------------------------------------------------------------- decoding (workers)

_WORKER: dict[str, Any] = {}


def _init_worker(frames_path: str, shape: tuple[int, ...], method: str, single_process: bool) -> None:
    if not single_process:
        # One decode per process: OpenCV's own thread pool would oversubscribe the cores.
        cv2.setNumThreads(1)
    _WORKER.clear()
    _WORKER.update(frames=np.memmap(frames_path, dtype=np.uint8, mode="r+", shape=shape), method=method)


def _process_clip(paths: Sequence[str], num: int, size: int, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Decode, choose keyframes, resize: returns (keyframes (T, S, S, 3) RGB, indices (T,))."""
    if method == "uniform":
        indices = uniform_indices(len(paths), num)
        decoded = {int(i): cv2.cvtColor(decode_image(paths[i]), cv2.COLOR_BGR2RGB) for i in np.unique(indices)}
    else:
        first = decode_image(paths[0])
        # Decode straight into one RGB array: a BGR stack reversed with [..., ::-1] would be
        # copied again by the keyframe selector, which costs about as much as the decoding.
        clip = np.empty((len(paths), *first.shape), dtype=np.uint8)
        for i, p in enumerate(paths):
            image = first if i == 0 else decode_image(p)
            if image.shape != first.shape:
                raise ClipError(f"{p}: frame size {image.shape[:2]} differs from the clip's first frame {first.shape[:2]}")
            cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=clip[i])
        indices = select_keyframes(clip, num, method)
        decoded = {int(i): clip[i] for i in np.unique(indices)}
    resized = {
        i: image if image.shape[:2] == (size, size) else cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        for i, image in decoded.items()
    }
    return np.stack([resized[int(i)] for i in indices]), np.asarray(indices, dtype=np.int64)


def _work(job: tuple[int, list[str]]) -> tuple[int, list[int] | None, str | None]:
    """Worker entry: writes row ``row`` of the memmap; returns (row, source indices, error)."""
    row, paths = job
    frames = _WORKER["frames"]
    try:
        clip, indices = _process_clip(paths, frames.shape[1], frames.shape[2], _WORKER["method"])
    except ClipError as exc:
        return row, None, str(exc)
    frames[row] = clip
    return row, indices.tolist(), None


# ----------------------------------------------------------------------------- building


@dataclass
class _Entry:
    video_id: str
    label: int
    frames: list[str]
    num_source_frames: int


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale_temps(out: Path) -> None:
    """Remove temp folders left next to ``out`` by killed runs (their process is gone)."""
    for tmp in out.parent.glob(f".{out.name}.tmp-*"):
        try:
            pid = int(tmp.name.rsplit("-", 1)[1])
        except ValueError:
            continue
        if pid != os.getpid() and _pid_alive(pid):
            log.warning("%s: left alone, its process %d is still running", tmp, pid)
            continue
        log.info("removing %s left by an interrupted run", tmp)
        shutil.rmtree(tmp, ignore_errors=True)


def _existing_settings(out: Path) -> dict[str, Any] | None:
    """Settings of a finished cache at ``out``, or None when it is not one."""
    try:
        manifest = json.loads((out / MANIFEST_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return manifest.get("settings") if manifest.get("complete") is True else None


def prepare_cache(
    root: str | os.PathLike,
    out: str | os.PathLike,
    frames: int = 16,
    size: int = 128,
    keyframes: str = "redundancy",
    workers: int | None = None,
    strict: bool = False,
    frames_dir: str = "auto",
    folds: Sequence[int] = FOLDS,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Build the frame cache of a DFEW-format tree at ``out`` (see the module docstring).

    Args:
        root: DFEW root (holds ``Clip/`` and ``EmoLabel_DataSplit/``).
        out: cache folder to create.
        frames: T, keyframes per clip.
        size: S, side of the stored frames.
        keyframes: "redundancy" | "uniform".
        workers: decoding processes (None: all CPUs; 0 or 1: in this process).
        strict: raise on the first bad clip instead of skipping and listing it.
        frames_dir: "auto" | "clip_224x224" | "clip_224x224_16f".
        folds: DFEW folds whose CSVs are read.
        overwrite: replace a finished cache built with other settings.
        progress: show a tqdm bar.

    Returns:
        ``out``. A finished cache with the same settings is left as it is.

    Raises:
        DFEWError: the tree cannot be read (or, with ``strict``, a clip is bad).
        CacheError: ``out`` holds something else and ``overwrite`` is False.
    """
    if keyframes not in KEYFRAME_METHODS:
        raise ValueError(f"unknown keyframe method {keyframes!r}; choose one of {', '.join(KEYFRAME_METHODS)}")
    if int(frames) < 1 or int(size) < 1:
        raise ValueError(f"frames and size must be positive, got frames={frames}, size={size}")
    out = Path(out).expanduser().absolute()
    layout = find_layout(root, frames_dir)
    settings = {
        "dataset": "dfew",
        "root": str(layout.root.resolve()),
        "frames_dir": layout.frames_dir,
        "frames": int(frames),
        "size": int(size),
        "keyframes": keyframes,
        "folds": [int(k) for k in folds],
    }
    _clean_stale_temps(out)
    if out.exists():
        existing = _existing_settings(out)
        if existing == settings:
            skipped_before = json.loads((out / MANIFEST_FILE).read_text()).get("skipped", [])
            if not (strict and skipped_before):
                log.info("%s: cache already complete with the same settings; nothing to do", out)
                return out
            if not overwrite:
                first = skipped_before[0]
                raise CacheError(
                    f"{out}: built skipping {len(skipped_before)} bad clip(s) (first: {first['video_id']}: "
                    f"{first['reason']}), which --strict refuses; fix them and use --overwrite"
                )
        if not overwrite:
            if existing is not None:
                changed = ", ".join(f"{k}: {existing.get(k)!r} -> {v!r}" for k, v in settings.items() if existing.get(k) != v)
                raise CacheError(f"{out}: a cache built with other settings is there ({changed}); use another --out or --overwrite")
            if not out.is_dir() or any(out.iterdir()):
                raise CacheError(f"{out}: exists and is not a finished tdrag cache; use another --out or --overwrite")

    started = time.perf_counter()
    splits = read_folds(layout, folds=folds, strict=strict)
    entries, fold_ids, skipped = _collect(splits, strict)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        rows, failures = _decode_all(entries, tmp, int(frames), int(size), keyframes, workers, strict, progress)
        skipped += failures
        manifest = _write_outputs(tmp, rows, fold_ids, skipped, settings, int(frames), int(size), keyframes)
        manifest["elapsed_s"] = round(time.perf_counter() - started, 3)
        write_json(tmp / MANIFEST_FILE, manifest)  # written last: marks the folder complete
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info(
        "%s: %d clips x %d frames of %dx%d (%s keyframes), %d skipped, %.1f s",
        out, len(rows), frames, size, size, keyframes, len(skipped), manifest["elapsed_s"],
    )
    return out


def _collect(splits, strict: bool):
    """Unique clips over all folds (sorted by id), fold id lists, and listing-time skips."""
    entries: dict[str, _Entry] = {}
    fold_ids: dict[int, dict[str, list[str]]] = {}
    skipped: list[SkippedClip] = []
    for fold, by_split in splits.items():
        fold_ids[fold] = {}
        for split, result in by_split.items():
            skipped += result.skipped
            ids = []
            for clip in result.clips:
                known = entries.get(clip.video_id)
                if known is not None and known.label != clip.label:
                    reason = (
                        f"label {DFEW_CLASSES[clip.label]} here but {DFEW_CLASSES[known.label]} in another split CSV"
                    )
                    if strict:
                        raise DFEWError(f"{result.csv_path}: video {clip.video_id}: {reason}")
                    skipped.append(SkippedClip(clip.video_id, str(result.csv_path), reason))
                    continue
                if known is None:
                    entries[clip.video_id] = _Entry(clip.video_id, clip.label, [str(p) for p in clip.frames], len(clip.frames))
                ids.append(clip.video_id)
            fold_ids[fold][split] = ids
    # A clip folder missing from six CSVs is one problem (same folder path): report it once.
    unique, seen = [], set()
    for s in skipped:
        key = (s.video_id, s.path)
        if key not in seen:
            seen.add(key)
            unique.append(s)
    return [entries[k] for k in sorted(entries)], fold_ids, unique


def _decode_all(entries, tmp: Path, num: int, size: int, method: str, workers, strict: bool, progress: bool):
    """Decode every entry into ``tmp/frames.u8``; returns (kept rows, decode failures)."""
    shape = (len(entries), num, size, size, 3)
    frames_path = tmp / FRAMES_FILE
    with open(frames_path, "wb") as handle:
        handle.truncate(int(np.prod(shape)))
    jobs = [(row, entry.frames) for row, entry in enumerate(entries)]
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    workers = max(1, min(workers, len(jobs) or 1))
    results: dict[int, list[int]] = {}
    failures: list[SkippedClip] = []
    bar = tqdm(total=len(jobs), unit="clip", desc="prepare", disable=not progress)
    initargs = (str(frames_path), shape, method, workers == 1)

    def handle(result) -> None:
        row, indices, error = result
        if error is not None:
            if strict:
                raise ClipError(error)
            log.warning("skipping clip %s: %s", entries[row].video_id, error)
            failures.append(SkippedClip(entries[row].video_id, str(Path(entries[row].frames[0]).parent), error))
        else:
            results[row] = indices
        bar.update()

    try:
        if workers == 1:
            _init_worker(*initargs)
            for job in jobs:
                handle(_work(job))
        else:
            chunksize = max(1, min(16, len(jobs) // (workers * 8)))
            with multiprocessing.get_context().Pool(workers, initializer=_init_worker, initargs=initargs) as pool:
                for result in pool.imap_unordered(_work, jobs, chunksize=chunksize):
                    handle(result)
    finally:
        bar.close()
        _WORKER.clear()

    kept = sorted(results)
    if len(kept) < len(entries):
        _compact(frames_path, shape, kept)
    return [(entries[r], results[r]) for r in kept], failures


def _compact(frames_path: Path, shape: tuple[int, ...], kept: list[int]) -> None:
    """Move the kept rows down over the failed ones and shrink the file."""
    frames = np.memmap(frames_path, dtype=np.uint8, mode="r+", shape=shape)
    for new, old in enumerate(kept):
        if new != old:
            frames[new] = frames[old]
    frames.flush()
    del frames
    with open(frames_path, "r+b") as handle:
        handle.truncate(len(kept) * int(np.prod(shape[1:])))


def _write_outputs(tmp: Path, rows, fold_ids, skipped, settings, num: int, size: int, method: str) -> dict[str, Any]:
    index = [
        {"video_id": e.video_id, "label": e.label, "source_frames": indices, "num_source_frames": e.num_source_frames}
        for e, indices in rows
    ]
    write_json(tmp / INDEX_FILE, index)
    row_of = {e.video_id: r for r, (e, _) in enumerate(rows)}
    labels = [e.label for e, _ in rows]

    def per_class(row_list: list[int]) -> dict[str, int]:
        counts = np.bincount([labels[r] for r in row_list], minlength=len(DFEW_CLASSES))
        return {name: int(n) for name, n in zip(DFEW_CLASSES, counts)}

    folds, counts = {}, {}
    for fold, by_split in fold_ids.items():
        folds[str(fold)] = {}
        counts[str(fold)] = {}
        for split in SPLITS:
            rs = [row_of[v] for v in by_split.get(split, []) if v in row_of]
            folds[str(fold)][split] = rs
            counts[str(fold)][split] = {"clips": len(rs), "per_class": per_class(rs)}
    return {
        "format": FORMAT_VERSION,
        "classes": list(DFEW_CLASSES),
        "shape": [len(rows), num, size, size, 3],
        "dtype": "uint8",
        "frames": num,
        "size": size,
        "keyframes": method,
        "settings": settings,
        "num_clips": len(rows),
        "counts_total": per_class(list(range(len(rows)))),
        "counts": counts,
        "folds": folds,
        "skipped": [s.as_dict() for s in skipped],
        "complete": True,
    }


def _move_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished temp folder to ``out``, replacing what was there."""
    if out.exists():
        trash = out.parent / f".{out.name}.old-{os.getpid()}"
        shutil.rmtree(trash, ignore_errors=True)
        os.replace(out, trash)
        os.replace(tmp, out)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, out)
