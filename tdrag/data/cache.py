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

import errno
import json
import logging
import multiprocessing
import os
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm.auto import tqdm

from tdrag import ownership
from tdrag.atomic import write_json
from tdrag.data.clips import SPLITS, ClipError, DatasetError, SkippedClip, decode_image, file_digest
from tdrag.data.datasets import get_reader
from tdrag.data.keyframes import KEYFRAME_METHODS, select_keyframes, uniform_indices
from tdrag.errors import TdragError

log = logging.getLogger(__name__)

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
        """The dataset's class names in label order (label ``i`` is ``class_names[i]``)."""
        from tdrag.data.labels import DFEW_CLASSES

        return tuple(self.manifest.get("classes") or DFEW_CLASSES)

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


# ----------------------------------------------------------------------------- decoding (workers)

_WORKER: dict[str, Any] = {}


def _init_worker(frames_path: str, shape: tuple[int, ...], method: str, verify: bool, single_process: bool) -> None:
    if not single_process:
        # One decode per process: OpenCV's own thread pool would oversubscribe the cores.
        cv2.setNumThreads(1)
    _WORKER.clear()
    _WORKER.update(frames=np.memmap(frames_path, dtype=np.uint8, mode="r+", shape=shape), method=method, verify=verify)


def _decode_all_frames(paths: Sequence[str]) -> np.ndarray:
    """Every frame of a clip, decoded straight into one RGB array ``(L, H, W, 3)``.

    (A BGR stack reversed with [..., ::-1] would be copied again by the keyframe selector, which
    costs about as much as the decoding.)
    """
    first = decode_image(paths[0])
    clip = np.empty((len(paths), *first.shape), dtype=np.uint8)
    for i, p in enumerate(paths):
        image = first if i == 0 else decode_image(p)
        if image.shape != first.shape:
            raise ClipError(f"{p}: frame size {image.shape[:2]} differs from the clip's first frame {first.shape[:2]}")
        cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=clip[i])
    return clip


def _process_clip(paths: Sequence[str], num: int, size: int, method: str, verify: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Decode, choose keyframes, resize: returns (keyframes (T, S, S, 3) RGB, indices (T,))."""
    if method == "uniform" and not verify:
        indices = uniform_indices(len(paths), num)
        decoded = {int(i): cv2.cvtColor(decode_image(paths[i]), cv2.COLOR_BGR2RGB) for i in np.unique(indices)}
        shapes = {image.shape for image in decoded.values()}
        if len(shapes) > 1:
            raise ClipError(f"{Path(paths[0]).parent}: keyframes differ in size {sorted(s[:2] for s in shapes)}")
    else:
        clip = _decode_all_frames(paths)
        indices = select_keyframes(clip, num, method)
        decoded = {int(i): clip[i] for i in np.unique(indices)}
    resized = {
        i: image if image.shape[:2] == (size, size) else cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        for i, image in decoded.items()
    }
    return np.stack([resized[int(i)] for i in indices]), np.asarray(indices, dtype=np.int64)


def _work(job: tuple[int, list[str]]) -> tuple[int, list[int] | None, str | None]:
    """Decode one clip into row ``row`` of the memmap; returns (row, source indices, error)."""
    row, paths = job
    frames = _WORKER["frames"]
    try:
        clip, indices = _process_clip(paths, frames.shape[1], frames.shape[2], _WORKER["method"], _WORKER["verify"])
    except ClipError as exc:
        return row, None, str(exc)
    frames[row] = clip
    return row, indices.tolist(), None


def _work_chunk(jobs: list[tuple[int, list[str]]]) -> list[tuple[int, list[int] | None, str | None]]:
    return [_work(job) for job in jobs]


# ----------------------------------------------------------------------------- building


@dataclass
class _Entry:
    video_id: str
    label: int
    frames: list[str]
    num_source_frames: int
    digest: str
    ignored: tuple[str, ...] = ()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale_temps(out: Path) -> None:
    """Remove temp folders left next to ``out`` by killed runs (their process is gone).

    Only folders named as this module names them and holding nothing but cache files.
    """
    for tmp in out.parent.glob(f".{out.name}.tmp-*"):
        try:
            pid = int(tmp.name.rsplit("-", 1)[1])
        except ValueError:
            continue
        if not tmp.is_dir() or ownership.foreign_entries(tmp, CACHE_FILES, own_prefixes=tuple(f".{n}." for n in CACHE_FILES)):
            continue
        if pid != os.getpid() and _pid_alive(pid):
            log.warning("%s: left alone, its process %d is still running", tmp, pid)
            continue
        log.info("removing %s left by an interrupted run", tmp)
        shutil.rmtree(tmp, ignore_errors=True)


def _read_manifest(out: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((out / MANIFEST_FILE).read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("complete") is True else None


def _check_destination(out: Path, root: Path) -> dict[str, Any] | None:
    """Refuse an ``out`` tdrag may not write; return the manifest of a finished cache there (or None)."""
    ownership.check_not_input(out, [root], "--out")
    if not out.exists():
        return None
    if not out.is_dir():
        raise CacheError(f"{out}: exists and is not a folder; choose another --out")
    if not is_cache_folder(out):
        ownership.refuse_foreign(out, CACHE_FILES, "it with a frame cache")
        raise CacheError(f"{out}: holds files named like a cache's, but no manifest tdrag wrote; "
                         "refusing to replace it (choose another --out)")
    return _read_manifest(out)


def _changed_sources(manifest: dict[str, Any], out: Path, fingerprint: dict[str, Any], entries: list[_Entry],
                     skipped: list[SkippedClip]) -> list[str]:
    """What differs between a finished cache's sources and the current ones (empty: nothing)."""
    old = manifest.get("fingerprint") or {}
    if old.get("digest") == fingerprint["digest"]:
        return []
    if not old:
        return ["the cache has no fingerprint of its sources (built by an older tdrag)"]
    changes = []
    old_files, new_files = old.get("split_files", {}), fingerprint["split_files"]
    for name in sorted(set(old_files) | set(new_files)):
        if name not in new_files:
            changes.append(f"split file {name} is gone")
        elif name not in old_files:
            changes.append(f"split file {name} is new")
        elif old_files[name] != new_files[name]:
            changes.append(f"split file {name} changed")
    try:
        index = json.loads((out / INDEX_FILE).read_text())
        skipped_before = {s["video_id"] for s in manifest.get("skipped", [])}
    except (OSError, ValueError, KeyError, TypeError):
        return changes or ["the cache's index cannot be read"]
    before = {row["video_id"]: (row.get("source_digest"), row.get("label")) for row in index}
    now = {e.video_id: (e.digest, e.label) for e in entries}
    skipped_now = {s.video_id for s in skipped}
    added = sorted(v for v in now if v not in before and v not in skipped_before)
    removed = sorted(v for v in before if v not in now)
    reframed = sorted(v for v in now if v in before and before[v][0] != now[v][0])
    relabelled = sorted(v for v in now if v in before and before[v][1] != now[v][1])
    recovered = sorted(v for v in now if v in skipped_before and v not in before)
    newly_bad = sorted(v for v in skipped_now if v in before)

    def some(ids: list[str]) -> str:
        return ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")

    for ids, what in ((relabelled, "label changed"), (reframed, "frame files changed"), (added, "new"),
                      (recovered, "readable now (skipped before)"), (removed, "gone or now unreadable"),
                      (newly_bad, "skipped now")):
        if ids:
            changes.append(f"{len(ids)} clip(s) {what} ({some(ids)})")
    return changes or ["the sources' fingerprint differs"]


def prepare_cache(
    root: str | os.PathLike,
    out: str | os.PathLike,
    frames: int = 16,
    size: int = 128,
    keyframes: str = "redundancy",
    workers: int | None = None,
    strict: bool = False,
    frames_dir: str = "auto",
    folds: Sequence[int] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    dataset: str = "dfew",
    verify: bool = False,
    layout_options: dict[str, Any] | None = None,
) -> Path:
    """Build the frame cache of a dataset tree at ``out`` (see the module docstring).

    Args:
        root: the dataset root as distributed (DFEW: holds ``Clip/`` and ``EmoLabel_DataSplit/``).
        out: cache folder to create.
        frames: T, keyframes per clip.
        size: S, side of the stored frames.
        keyframes: "redundancy" | "uniform".
        workers: decoding processes (None: all CPUs; 0 or 1: in this process).
        strict: raise on the first bad clip instead of skipping and listing it.
        frames_dir: DFEW only: "auto" | "clip_224x224" | "clip_224x224_16f".
        folds: folds whose split files are read (default: all of the dataset's).
        overwrite: rebuild a tdrag cache at ``out`` built with other settings or from sources
            that changed since.
        progress: show a tqdm bar.
        dataset: "dfew" | "ferv39k" | "mafw" (``tdrag.data.datasets``).
        verify: decode every frame of every clip, also with uniform keyframes.
        layout_options: further options of the reader's ``find_layout``.

    Returns:
        ``out``. A finished cache with the same settings and sources is left as it is.

    Raises:
        DatasetError: the tree cannot be read (or, with ``strict``, a clip is bad).
        CacheError: ``out`` holds a cache of other settings or sources and ``overwrite`` is
            False; the cache cannot be written.
        OutputError: ``out`` is not tdrag's to replace (foreign files, the dataset itself).
    """
    if keyframes not in KEYFRAME_METHODS:
        raise CacheError(f"--keyframes: unknown keyframe method {keyframes!r}; choose one of {', '.join(KEYFRAME_METHODS)}")
    for key, value in (("--frames", frames), ("--size", size)):
        if isinstance(value, bool) or int(value) < 1:
            raise CacheError(f"{key}: must be a positive integer, got {value}")
    reader = get_reader(dataset)
    options = dict(layout_options or {})
    if dataset == "dfew":
        options.setdefault("frames_dir", frames_dir)
    out = Path(out).expanduser().absolute()
    layout = reader.find_layout(root, **options)
    folds = tuple(reader.FOLDS if folds is None else (int(k) for k in folds))
    unknown = [k for k in folds if k not in reader.FOLDS]
    if unknown:
        raise DatasetError(f"folds {unknown}: {dataset} has folds {', '.join(map(str, reader.FOLDS))}")
    settings = {
        "dataset": dataset,
        "root": str(layout.root.resolve()),
        **reader.layout_settings(layout),
        "frames": int(frames),
        "size": int(size),
        "keyframes": keyframes,
        "folds": list(folds),
    }
    _clean_stale_temps(out)
    existing = _check_destination(out, layout.root)

    started = time.perf_counter()
    splits = reader.read_folds(layout, folds=folds, strict=strict)
    entries, fold_ids, skipped, ignored = _collect(splits, strict, reader.CLASSES)
    fingerprint = _fingerprint(layout.root, reader.split_files(layout, folds), entries)
    if existing is not None:
        old_settings = existing.get("settings")
        if old_settings == settings:
            changes = _changed_sources(existing, out, fingerprint, entries, skipped)
            if not changes:
                skipped_before = existing.get("skipped", [])
                if not (strict and skipped_before):
                    log.info("%s: cache already complete with the same settings and sources; nothing to do", out)
                    return out
                if not overwrite:
                    first = skipped_before[0]
                    raise CacheError(
                        f"{out}: built skipping {len(skipped_before)} bad clip(s) (first: {first['video_id']}: "
                        f"{first['reason']}), which --strict refuses; fix them and use --overwrite"
                    )
            elif not overwrite:
                raise CacheError(f"{out}: the sources changed since this cache was built ({'; '.join(changes)}); "
                                 "rebuild it with --overwrite, or use another --out")
            else:
                log.info("%s: sources changed (%s): rebuilding", out, "; ".join(changes))
        elif not overwrite:
            changed = ", ".join(f"{k}: {(old_settings or {}).get(k)!r} -> {v!r}" for k, v in settings.items()
                                if (old_settings or {}).get(k) != v)
            raise CacheError(f"{out}: a cache built with other settings is there ({changed}); use another --out or --overwrite")

    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    except OSError as exc:
        raise CacheError(f"{tmp}: cannot create the cache's working folder ({exc.strerror or exc})") from None
    try:
        rows, failures = _decode_all(entries, tmp, int(frames), int(size), keyframes, workers, strict, progress, verify)
        skipped += failures
        manifest = _write_outputs(tmp, rows, fold_ids, skipped, settings, int(frames), int(size), keyframes,
                                  reader.CLASSES, fingerprint, ignored, verify)
        manifest["elapsed_s"] = round(time.perf_counter() - started, 3)
        write_json(tmp / MANIFEST_FILE, manifest)  # written last: marks the folder complete
        _move_into_place(tmp, out, layout.root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info(
        "%s: %d clips x %d frames of %dx%d (%s keyframes), %d skipped, %.1f s",
        out, len(rows), frames, size, size, keyframes, len(skipped), manifest["elapsed_s"],
    )
    return out


def _fingerprint(root: Path, split_files: Sequence[Path], entries: list[_Entry]) -> dict[str, Any]:
    """Digests of the split files' content and of each listed clip's frame files, plus their digest."""
    import hashlib

    files = {}
    for path in split_files:
        try:
            name = str(Path(path).relative_to(root))
        except ValueError:
            name = str(path)
        try:
            files[name] = file_digest(path)
        except OSError as exc:
            raise DatasetError(f"{path}: cannot read split file ({exc.strerror or exc})") from None
    h = hashlib.sha256(json.dumps(files, sort_keys=True).encode())
    for e in entries:
        h.update(f"{e.video_id}\0{e.label}\0{e.digest}\n".encode())
    return {"digest": h.hexdigest()[:24], "split_files": files, "clips": len(entries)}


def _collect(splits, strict: bool, classes: Sequence[str]):
    """Unique clips over all folds (sorted by id), fold id lists, listing-time skips, ignored files."""
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
                    reason = f"label {classes[clip.label]} here but {classes[known.label]} in another split file"
                    if strict:
                        raise DatasetError(f"{result.split_file}: video {clip.video_id}: {reason}")
                    skipped.append(SkippedClip(clip.video_id, str(result.split_file), reason))
                    continue
                if known is None:
                    entries[clip.video_id] = _Entry(clip.video_id, clip.label, [str(p) for p in clip.frames],
                                                    len(clip.frames), clip.digest, tuple(clip.ignored))
                ids.append(clip.video_id)
            fold_ids[fold][split] = ids
    # A clip folder missing from six CSVs is one problem (same folder path): report it once.
    unique, seen = [], set()
    for s in skipped:
        key = (s.video_id, s.path)
        if key not in seen:
            seen.add(key)
            unique.append(s)
    ordered = [entries[k] for k in sorted(entries)]
    ignored = [{"video_id": e.video_id, "files": list(e.ignored)} for e in ordered if e.ignored]
    if ignored:
        log.warning("%d clip folder(s) hold images without a frame number, left out as not frames (first: %s: %s)",
                    len(ignored), ignored[0]["video_id"], ", ".join(ignored[0]["files"][:3]))
    return ordered, fold_ids, unique, ignored


def _allocate(path: Path, nbytes: int) -> None:
    """Create ``path`` with ``nbytes`` really allocated: a full disk fails here, not as a SIGBUS later."""
    with open(path, "wb") as handle:
        if nbytes == 0:
            return
        try:
            os.posix_fallocate(handle.fileno(), 0, nbytes)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)):
                raise OSError(exc.errno, f"{exc.strerror} (the cache needs {nbytes / 2**30:.2f} GiB)", str(path)) from None
            handle.truncate(nbytes)  # a filesystem without fallocate: sparse file, as before
        except AttributeError:  # platforms without posix_fallocate
            handle.truncate(nbytes)


def _decode_all(entries, tmp: Path, num: int, size: int, method: str, workers, strict: bool, progress: bool,
                verify: bool = False):
    """Decode every entry into ``tmp/frames.u8``; returns (kept rows, decode failures)."""
    shape = (len(entries), num, size, size, 3)
    frames_path = tmp / FRAMES_FILE
    _allocate(frames_path, int(np.prod(shape)))
    jobs = [(row, entry.frames) for row, entry in enumerate(entries)]
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    workers = max(1, min(workers, len(jobs) or 1))
    results: dict[int, list[int]] = {}
    failures: list[SkippedClip] = []
    bar = tqdm(total=len(jobs), unit="clip", desc="prepare", disable=not progress)
    initargs = (str(frames_path), shape, method, verify, workers == 1)

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
            _decode_in_pool(jobs, workers, initargs, handle)
    finally:
        bar.close()
        _WORKER.clear()

    kept = sorted(results)
    if len(kept) < len(entries):
        _compact(frames_path, shape, kept)
    return [(entries[r], results[r]) for r in kept], failures


def _decode_in_pool(jobs, workers: int, initargs, handle) -> None:
    """Decode ``jobs`` in ``workers`` processes, in chunks; a worker that dies (killed, out of
    memory) ends the run with a CacheError instead of leaving the pool waiting for it."""
    chunksize = max(1, min(16, len(jobs) // (workers * 8)))
    chunks = [jobs[i : i + chunksize] for i in range(0, len(jobs), chunksize)]
    # "spawn", not "fork": a forked child inherits OpenCV's (and torch's) thread pools with their
    # locks held by threads that do not exist in it, and can hang on its first OpenCV call.
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                               initargs=initargs)
    try:
        pending = {pool.submit(_work_chunk, chunk) for chunk in chunks}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                for result in future.result():
                    handle(result)
    except BrokenProcessPool:
        raise CacheError("a decoding worker process died (killed, or out of memory); nothing was written. "
                         "Retry with fewer --workers") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


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


def _write_outputs(tmp: Path, rows, fold_ids, skipped, settings, num: int, size: int, method: str,
                   classes: Sequence[str], fingerprint: dict[str, Any], ignored: list[dict[str, Any]],
                   verify: bool) -> dict[str, Any]:
    index = [
        {"video_id": e.video_id, "label": e.label, "source_frames": indices, "num_source_frames": e.num_source_frames,
         "source_digest": e.digest}
        for e, indices in rows
    ]
    write_json(tmp / INDEX_FILE, index)
    row_of = {e.video_id: r for r, (e, _) in enumerate(rows)}
    labels = [e.label for e, _ in rows]

    def per_class(row_list: list[int]) -> dict[str, int]:
        counts = np.bincount([labels[r] for r in row_list], minlength=len(classes))
        return {name: int(n) for name, n in zip(classes, counts)}

    folds, counts = {}, {}
    for fold, by_split in fold_ids.items():
        folds[str(fold)] = {}
        counts[str(fold)] = {}
        for split in SPLITS:
            rs = [row_of[v] for v in by_split.get(split, []) if v in row_of]
            folds[str(fold)][split] = rs
            counts[str(fold)][split] = {"clips": len(rs), "per_class": per_class(rs)}
    everything = method == "redundancy" or verify
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "dataset": settings["dataset"],
        "classes": list(classes),
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
        "ignored_files": ignored,
        "decoded": "all frames" if everything else "keyframes only (uniform sampling; --verify decodes every frame)",
        "fingerprint": fingerprint,
        "complete": True,
    }


def _move_into_place(tmp: Path, out: Path, root: Path) -> None:
    """Rename the finished temp folder to ``out``, replacing tdrag's own cache (or an empty folder) there."""
    if out.exists():
        _check_destination(out, root)  # re-check: it may have changed while we were decoding
        trash = out.parent / f".{out.name}.old-{os.getpid()}"
        shutil.rmtree(trash, ignore_errors=True)
        os.replace(out, trash)
        os.replace(tmp, out)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, out)
