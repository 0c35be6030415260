"""Decoding clips into the frame cache's memmap, in this process or in worker processes.

``decode_all(entries, folder, T, S, method, workers, ...)`` allocates ``frames.u8`` in full first
(``posix_fallocate``: a full disk is an error here, not a SIGBUS in a worker), then decodes every
clip (all frames for redundancy keyframes or ``verify``, only the ``T`` chosen ones for uniform
sampling), chooses its keyframes, resizes them to ``S x S`` with ``cv2.INTER_AREA`` and writes
its row; failed clips are returned with their reasons and the rows compacted. Workers are
"spawn" processes in a ``ProcessPoolExecutor``: a worker that dies ends the run with an error
instead of a hang.
"""

from __future__ import annotations

import errno
import logging
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm.auto import tqdm

from tdrag.data.cache import FRAMES_FILE, CacheError
from tdrag.data.clips import ClipError, SkippedClip, decode_image
from tdrag.data.keyframes import select_keyframes, uniform_indices
from tdrag.errors import human_size

log = logging.getLogger(__name__)

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


def _allocate(path: Path, nbytes: int) -> None:
    """Create ``path`` with ``nbytes`` really allocated: a full disk fails here, not as a SIGBUS later."""
    with open(path, "wb") as handle:
        if nbytes == 0:
            return
        try:
            os.posix_fallocate(handle.fileno(), 0, nbytes)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)):
                raise OSError(exc.errno, f"{exc.strerror} (the cache needs {human_size(nbytes)})", str(path)) from None
            handle.truncate(nbytes)  # a filesystem without fallocate: sparse file, as before
        except AttributeError:  # platforms without posix_fallocate
            handle.truncate(nbytes)


def decode_all(entries, tmp: Path, num: int, size: int, method: str, workers, strict: bool, progress: bool,
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
