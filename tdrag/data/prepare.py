"""Building a frame cache: ``prepare_cache`` (``tdrag prepare``); see ``tdrag.data.cache`` for the format.

Order of work: the destination is checked (``tdrag.ownership``: only an empty folder or tdrag's
own cache may be replaced, never the dataset or a folder holding it), the dataset is listed and
fingerprinted, and what to do with a finished cache already at ``out`` is decided by
:func:`decide_cache` (``tdrag.data.cache_decision``: reuse it, rebuild it, or refuse, a pure function of what is
there and what is asked, tested as a table), then every clip is decoded
(``tdrag.data.decode``) into a hidden sibling folder ``.<name>.tmp-<pid>``, which is renamed into
place only after ``manifest.json`` (``complete: true``) is written. Temp folders of dead
processes are removed by the next run. The whole build holds ``out``
(``tdrag.ownership.hold_output``): a second ``prepare`` into the same folder refuses at once, and
what is in place is checked again, ownership and settings, just before the rename.

Messages name ``prepare_cache``'s parameters (``out``, ``overwrite=True``, ...); a front end says
them in its own words with :meth:`PrepareError.reworded` (``tdrag prepare``: its flags).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tdrag import ownership
from tdrag.atomic import write_json
from tdrag.data.cache import (
    CACHE_FILES,
    FORMAT,
    FORMAT_VERSION,
    INDEX_FILE,
    MANIFEST_FILE,
    CacheError,
    is_cache_folder,
)
from tdrag.data.cache_decision import (
    CacheAction,
    CacheDecision,
    CacheDifference,
    FoundCache,
    PrepareError,
    decide_cache,
    refusal,
)
from tdrag.data.clips import SPLITS, DatasetError, SkippedClip, file_digest
from tdrag.data.datasets import get_reader
from tdrag.data.keyframes import KEYFRAME_METHODS, KEYFRAME_RULES
from tdrag.data.synthetic.dataset import is_synthetic_root

log = logging.getLogger(__name__)

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
    # A previous cache set aside by a replace that was killed before its removal (callers hold
    # ``out``, so no live run is replacing it now).
    ownership.remove_leftovers(out.parent, (f".{out.name}.old-",))


def _read_manifest(out: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((out / MANIFEST_FILE).read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("complete") is True else None


def _check_destination(out: Path, root: Path) -> dict[str, Any] | None:
    """Refuse an ``out`` tdrag may not write; return the manifest of a finished cache there (or None)."""
    ownership.check_not_input(out, [root], "out")
    if is_synthetic_root(root):
        ownership.check_not_inside(out, [root], "out",
                                   "a synthetic data set, which `tdrag synth` replaces as a whole")
    if not out.exists():
        return None
    if not out.is_dir():
        raise PrepareError("{out}: exists and is not a folder; pass another {p[out]}", out=out)
    if not is_cache_folder(out):
        ownership.refuse_foreign(out, CACHE_FILES, "it with a frame cache")
        raise PrepareError("{out}: holds files named like a cache's, but no manifest tdrag wrote; refusing to "
                           "replace it (pass another {p[out]})", out=out)
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
        raise PrepareError("{p[keyframes]}: unknown keyframe method {method!r}; choose one of {choices}",
                           method=keyframes, choices=", ".join(KEYFRAME_METHODS))
    for template, value in (("{p[frames]}: must be a positive integer, got {value}", frames),
                            ("{p[size]}: must be a positive integer, got {value}", size)):
        if isinstance(value, bool) or int(value) < 1:
            raise PrepareError(template, value=value)
    reader = get_reader(dataset)
    options = dict(layout_options or {})
    if dataset == "dfew":
        options.setdefault("frames_dir", frames_dir)
    out = Path(out).expanduser().absolute()
    layout = reader.find_layout(root, **options)
    folds = tuple(reader.FOLDS if folds is None else (int(k) for k in folds))
    settings = _settings(reader, layout, dataset, int(frames), int(size), keyframes, folds)
    started = time.perf_counter()
    with ownership.hold_output(out, "prepare"):  # a second writer of out refuses meanwhile
        _clean_stale_temps(out)
        existing = _check_destination(out, layout.root)
        splits = reader.read_folds(layout, folds=folds, strict=strict)
        entries, fold_ids, skipped, ignored = _collect(splits, strict, reader.CLASSES)
        fingerprint = _fingerprint(layout.root, reader.split_files(layout, folds), entries)
        found = None if existing is None else _found_cache(existing, settings, out, fingerprint, entries, skipped)
        if not _go_ahead(out, found, decide_cache(found, strict=strict, overwrite=overwrite)):
            return out
        tmp = _working_folder(out)
        try:
            manifest = _build(tmp, entries, fold_ids, skipped, ignored, settings, fingerprint, reader.CLASSES,
                              (workers, strict, progress, verify))
            manifest["elapsed_s"] = round(time.perf_counter() - started, 3)
            write_json(tmp / MANIFEST_FILE, manifest)  # written last: marks the folder complete
            _move_into_place(tmp, out, layout.root, existing)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    log.info("%s: %d clips x %d frames of %dx%d (%s keyframes), %d skipped, %.1f s", out, manifest["num_clips"],
             frames, size, size, keyframes, len(manifest["skipped"]), manifest["elapsed_s"])
    return out


def _build(tmp: Path, entries: list[_Entry], fold_ids, skipped: list[SkippedClip], ignored, settings: dict[str, Any],
           fingerprint: dict[str, Any], classes: Sequence[str], how: tuple) -> dict[str, Any]:
    """Decode every clip into ``tmp`` and write its index; return the manifest (not written yet).

    ``how``: ``(workers, strict, progress, verify)`` as ``prepare_cache`` takes them.
    """
    from tdrag.data.decode import decode_all

    workers, strict, progress, verify = how
    frames, size, keyframes = settings["frames"], settings["size"], settings["keyframes"]
    rows, failures = decode_all(entries, tmp, frames, size, keyframes, workers, strict, progress, verify)
    return _write_outputs(tmp, rows, fold_ids, skipped + failures, settings, frames, size, keyframes, classes,
                          fingerprint, ignored, verify)


def _settings(reader, layout, dataset: str, frames: int, size: int, keyframes: str,
              folds: tuple[int, ...]) -> dict[str, Any]:
    """The settings a cache is built with (its manifest's ``settings``); DatasetError for an unknown fold."""
    unknown = [k for k in folds if k not in reader.FOLDS]
    if unknown:
        raise DatasetError(f"folds {unknown}: {dataset} has folds {', '.join(map(str, reader.FOLDS))}")
    return {
        "dataset": dataset,
        "root": str(layout.root.resolve()),
        **reader.layout_settings(layout),
        "frames": frames,
        "size": size,
        "keyframes": keyframes,
        "keyframe_rule": KEYFRAME_RULES[keyframes],
        "folds": list(folds),
    }


def _found_cache(existing: dict[str, Any], settings: dict[str, Any], out: Path, fingerprint: dict[str, Any],
                 entries: list[_Entry], skipped: list[SkippedClip]) -> FoundCache:
    """What the finished cache at ``out`` (its manifest ``existing``) holds against these settings
    and sources; reads its index when the sources' fingerprints differ."""
    old_settings = existing.get("settings") or {}
    changed = tuple(f"{k}: {old_settings.get(k)!r} -> {v!r}" for k, v in settings.items() if old_settings.get(k) != v)
    if not changed and old_settings != settings:  # a key only the old cache has
        changed = tuple(f"{k}: {v!r} -> None" for k, v in old_settings.items() if k not in settings)
    return FoundCache(changed, tuple(_changed_sources(existing, out, fingerprint, entries, skipped)),
                      tuple(existing.get("skipped", [])))


def _go_ahead(out: Path, found: FoundCache | None, decision: CacheDecision) -> bool:
    """Act on the decision: True to build, False to leave the cache at ``out``; a refusal raises."""
    if decision.action is CacheAction.REFUSE:
        raise refusal(out, found, decision.difference)
    if decision.action is CacheAction.REUSE:
        log.info("%s: cache already complete with the same settings and sources; nothing to do", out)
        return False
    if decision.action is CacheAction.REBUILD:
        detail = {CacheDifference.SETTINGS: ", ".join(found.changed_settings),
                  CacheDifference.SOURCES: "; ".join(found.changed_sources),
                  CacheDifference.SKIPPED: f"{len(found.skipped)} clip(s) skipped"}[decision.difference]
        log.info("%s: %s differ (%s): rebuilding, as overwrite asks", out, decision.difference.value, detail)
    return True


def _working_folder(out: Path) -> Path:
    """A fresh ``.<name>.tmp-<pid>`` beside ``out``, where the cache is built."""
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    except OSError as exc:
        raise CacheError(f"{tmp}: cannot create the cache's working folder ({exc.strerror or exc})") from None
    return tmp


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


def _move_into_place(tmp: Path, out: Path, root: Path, seen: dict[str, Any] | None) -> None:
    """Rename the finished temp folder to ``out``, replacing tdrag's own cache (or an empty folder) there.

    ``seen`` is the manifest of the cache that was at ``out`` when this build began (None: none).
    Whatever is there now is checked again, ownership and settings both: a cache another writer
    (one that took no lock, e.g. an older tdrag) finished there meanwhile is not silently replaced.
    """
    if out.exists():
        now = _check_destination(out, root)  # re-check: it may have changed while we were decoding
        if now is not None and now != seen:
            settings = now.get("settings") or {}
            raise PrepareError("{out}: another cache (size {size}, {frames} frames) was written there while this one "
                               "was being built; it is kept and this build discarded. Run again (with "
                               "{p[overwrite]} to replace it), or pass another {p[out]}", out=out,
                               size=settings.get("size"), frames=settings.get("frames"))
        ownership.check_removable(out, "the cache there")
        trash = out.parent / f".{out.name}.old-{os.getpid()}"
        shutil.rmtree(trash, ignore_errors=True)
        os.replace(out, trash)
        os.replace(tmp, out)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, out)
