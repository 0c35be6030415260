"""The attribution maps a dossier's class pages share with its index, made two classes at a time.

The dossier gives a class's page to its page kernels once the maps the page shares with the index
are saved (:mod:`analysis.report.dossier`). Made one class after another on one thread, these maps
were the build's critical path: the pages waited for them while a core idled. Here two threads make
two classes' maps at once (on the CPU; one thread on a GPU, :func:`map_threads`), each on its own
copy of the run (its own copy of the model and its own map stores: the threads share nothing they
write), and the maps come back in class order, kept in the run. torch lets go of the GIL inside its
kernels, so the two threads keep two cores busy.

    for name in shared_maps_by_class(run, [("Happy", positions), ...], views, small=False):
        save_run(run, folder)             # the class's maps are in run.attributions now
"""

from __future__ import annotations

import queue
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from analysis.internals.map_store import MapStore

#: Classes whose maps are made at once on the CPU.
MAP_THREADS = 2


def map_threads(device) -> int:
    """Threads making maps for a run on ``device``: :data:`MAP_THREADS` on the CPU, one on a GPU. The
    GPU is busy with one (it fills the GPU; the pages run on the CPU) and the GRU's gradient
    attributions switch cuDNN off and on around its forward, a switch global to the process that
    two threads would leave in each other's state."""
    return MAP_THREADS if torch.device(device).type == "cpu" else 1


def shared_maps_by_class(run, classes: Sequence[tuple[str, np.ndarray]], views: Sequence[str], small: bool = False,
                         threads: int | None = None) -> Iterator[str]:
    """For each ``(name, positions)`` of ``classes``, in order: make the temporal ``views``' maps of the
    clips at ``positions`` (``analysis.attribution.temporal.keyframe_importance``), keep them in
    ``run.attributions`` and yield ``name``. Up to ``threads`` classes (default :func:`map_threads`)
    are in the making at once; leaving the loop early cancels the classes not started."""
    from analysis.attribution.temporal import keyframe_importance

    threads = map_threads(run.device) if threads is None else int(threads)
    idle: queue.SimpleQueue = queue.SimpleQueue()
    for _ in range(threads):
        idle.put(run.for_another_thread())

    def make(positions: np.ndarray) -> dict[str, MapStore]:
        worker = idle.get()
        try:
            worker.attributions = {}
            keyframe_importance(worker, positions, views, small=small)
            return worker.attributions
        finally:
            idle.put(worker)

    makers = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="dossier-maps")
    try:
        futures: list[Future | None] = [makers.submit(make, positions) if len(positions) else None
                                        for _, positions in classes]
        for (name, _), future in zip(classes, futures):
            for key, store in (future.result() if future is not None else {}).items():
                run.attributions.setdefault(key, MapStore()).take(store)
            yield name
    finally:
        makers.shutdown(wait=True, cancel_futures=True)
