"""Maps computed once per clip: the store an opened run keeps for each attribution method and options.

An opened ``Run`` holds one :class:`MapStore` per method and options (``run.attributions``, filled
by ``analysis.attribution.attribute.attribute_clips``), keyed by the clip's position and the class
a map explains. Views that need the same map (the dossier's index and its class pages, a page's
clip strips and its ground-truth scores) then compute it once::

    store = MapStore()
    store.put(3, 1, torch.rand(8, 56, 56))     # clip 3's map of class 1
    store.get(3, 1).shape                      # (8, 56, 56); None for a map not computed yet
    pairs = store.save_new(folder / "maps-0-0.npy")   # the maps not saved yet -> their (position, target) pairs
    again = MapStore.load([(folder / "maps-0-0.npy", pairs)])   # memory-mapped: only what is read is loaded

A store is saved in parts, each part the maps made since the previous one (:meth:`save_new`), so
a run saved again after more maps were made writes only those. Every map of a store has one shape
(one method on one run's clips): ``(T, H, W)``, or ``(T,)`` for frame ablation; maps are CPU
float32 tensors.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

Key = tuple[int, int]


class MapStore:
    """Maps by ``(position, target)``: those added in this process (:meth:`put`) and those of saved
    parts (:meth:`load`), read from their memory-mapped files when asked for."""

    def __init__(self) -> None:
        self._maps: dict[Key, torch.Tensor] = {}
        self._files: list[np.ndarray] = []  # the loaded parts, (M_k, ...) memory-mapped
        self._rows: dict[Key, tuple[int, int]] = {}  # (position, target) -> (part, row) of a loaded map
        self._saved: set[Key] = set()  # keys written by save_new (so not written again)

    def __len__(self) -> int:
        return len(self._maps.keys() | self._rows.keys())

    def __contains__(self, key: Key) -> bool:
        key = _key(*key)
        return key in self._maps or key in self._rows

    def keys(self) -> Iterator[Key]:
        """The ``(position, target)`` pairs held, loaded ones first."""
        yield from self._rows
        yield from (k for k in self._maps if k not in self._rows)

    def get(self, position: int, target: int) -> torch.Tensor | None:
        """The map of clip ``position`` explaining class ``target``, or None when not computed."""
        key = _key(position, target)
        if key in self._maps:
            return self._maps[key]
        if key in self._rows:
            part, row = self._rows[key]
            # A copy: the file is read-only, and a page's tensor must not pin or alias it.
            return torch.from_numpy(np.array(self._files[part][row], dtype=np.float32))
        return None

    def put(self, position: int, target: int, value: torch.Tensor) -> None:
        """Keep ``value`` (detached, CPU float32) as the map of ``(position, target)``."""
        self._maps[_key(position, target)] = value.detach().to("cpu", torch.float32)

    def take(self, other: MapStore) -> None:
        """Keep every map of ``other`` (a store filled elsewhere, e.g. by another thread) not held here."""
        for key in other.keys():
            if key not in self:
                self.put(*key, other.get(*key))

    def missing(self, keys: Iterable[Key]) -> list[Key]:
        """The pairs among ``keys`` without a map yet, once each, in order."""
        return [k for k in dict.fromkeys(_key(*k) for k in keys) if k not in self]

    def save_new(self, path: str | os.PathLike, everything: bool = False) -> list[list[int]]:
        """Write the maps made here since the last save (``everything``: every map held, loaded ones
        too, for a new folder) to ``path``, one ``.npy`` of shape ``(M, ...)`` written atomically;
        returns their ``[position, target]`` pairs in row order ([] and no file when there is none)."""
        from tdrag.atomic import atomic_path

        done = set() if everything else self._saved | set(self._rows)
        keys = [k for k in self.keys() if k not in done]
        if not keys:
            return []
        shape = tuple(self.get(*keys[0]).shape)
        with atomic_path(path) as tmp:
            # Filled row by row: the maps are not stacked in memory a second time.
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(keys), *shape))
            for i, k in enumerate(keys):
                out[i] = self.get(*k).numpy()
            out.flush()
            del out
        self._saved.update(keys)
        return [[p, t] for p, t in keys]

    @classmethod
    def load(cls, parts: Sequence[tuple[str | os.PathLike, Sequence[Sequence[int]]]]) -> MapStore:
        """The store saved in ``parts``: ``(path, pairs)`` of each :meth:`save_new`."""
        store = cls()
        for path, pairs in parts:
            maps = np.load(Path(path), mmap_mode="r")
            if maps.shape[0] != len(pairs):
                raise ValueError(f"{path}: holds {maps.shape[0]} maps, its index lists {len(pairs)}")
            store._rows.update({_key(p, t): (len(store._files), row) for row, (p, t) in enumerate(pairs)})
            store._files.append(maps)
        return store


def _key(position: int, target: int) -> Key:
    return int(position), int(target)
