"""Batches of cached clips: a Dataset over cache rows, a DataLoader, and the train/val split.

The Dataset yields the cache's uint8 frames untouched; augmentation and normalisation run on
whole batches on the batch's device (``tdrag.data.augment``), so DataLoader workers only copy
bytes out of the memory map. A batch is read in one call (``CacheClipDataset.__getitems__``,
which the DataLoader uses for map-style datasets): the clips are copied from the memmap straight
into one batch array, rows in ascending order, instead of one fresh array per clip that the
collate step then copies again. In the main process (``num_workers=0``) that batch array is
recycled once nothing refers to it any more (``augment._CpuOutputPool``), which spares the page
faults of fresh memory (100-180 per clip at 16 x 112 x 112 were measured); in worker processes it
is allocated in shared memory, where the batch has to go anyway. Typical use::

    cache = open_cache("cache/dfew")
    loader = make_loader(cache, cache.rows(1, "train"), batch_size=32, shuffle=True, num_workers=2)
    for clips, labels, rows in loader:
        clips, labels = to_device((clips, labels), device)
        x = train_transform(clips, crop=112)          # (B, 3, T, 112, 112) float
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from tdrag.data.augment import _CpuOutputPool
from tdrag.data.cache import ClipCache, open_cache


class CacheClipDataset(Dataset):
    """Clips of a frame cache at the given rows.

    Item ``i`` is ``(clip, label, row)``: ``clip`` a uint8 tensor ``(T, S, S, 3)`` (RGB, channels
    last, as stored), ``label`` the 0-based class, ``row`` the cache row (``rows[i]``), which maps
    back to ``cache.video_ids[row]``.
    """

    def __init__(self, cache: ClipCache | str | os.PathLike, rows: Sequence[int] | np.ndarray) -> None:
        self.cache = cache if isinstance(cache, ClipCache) else open_cache(cache)
        self.rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        n = len(self.cache)
        if self.rows.size and (self.rows.min() < 0 or self.rows.max() >= n):
            bad = self.rows[(self.rows < 0) | (self.rows >= n)][0]
            raise IndexError(f"{self.cache.path}: row {bad} out of range (the cache has {n} clips)")

    def __len__(self) -> int:
        return int(self.rows.size)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        row = int(self.rows[i])
        # np.array copies out of the read-only memmap into memory torch may own.
        clip = torch.from_numpy(np.array(self.cache.frames[row]))
        return clip, int(self.cache.labels[row]), row

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A whole batch: ``(clips (B, T, S, S, 3) uint8, labels (B,) int64, rows (B,) int64)``.

        Equal to collating ``[self[i] for i in indices]``, in one copy per clip into one array.
        """
        rows = self.rows[np.asarray(indices, dtype=np.int64)]
        shape = (len(rows), *self.cache.shape[1:])
        if torch.utils.data.get_worker_info() is not None:
            clips = torch.empty(shape, dtype=torch.uint8).share_memory_()
        else:
            clips = _BATCH_BUFFERS.empty(shape, dtype=np.uint8)
        out = clips.numpy()
        frames = self.cache.frames
        # Memmap reads in ascending row order (the file's order), written to their batch slots.
        for slot in np.argsort(rows, kind="stable"):
            out[slot] = frames[rows[slot]]
        labels = torch.from_numpy(self.cache.labels[rows].astype(np.int64))
        return clips, labels, torch.from_numpy(rows.copy())


#: Recycled batch arrays for loading in the main process (see the module docstring).
_BATCH_BUFFERS = _CpuOutputPool(per_shape=4, max_shapes=4)


def collate_batch(batch):
    """The DataLoader's collate function: a batch from ``__getitems__`` is already one; a list of
    single items (``__getitems__`` bypassed) is stacked as the default collate would."""
    if isinstance(batch, tuple) and len(batch) == 3 and isinstance(batch[0], torch.Tensor):
        return batch
    return torch.utils.data.default_collate(batch)


def make_loader(
    cache: ClipCache | str | os.PathLike,
    rows: Sequence[int] | np.ndarray,
    batch_size: int,
    shuffle: bool,
    num_workers: int = 0,
    seed: int = 0,
    drop_last: bool = False,
    sampler: Sampler | None = None,
) -> DataLoader:
    """A DataLoader of ``(clips (B, T, S, S, 3) uint8, labels (B,) int64, rows (B,) int64)``.

    Pinned memory when CUDA is available (for non-blocking copies), persistent workers when
    ``num_workers > 0``. Shuffling draws from a ``torch.Generator`` seeded with ``seed``, so the
    order of each epoch is reproducible. ``sampler`` replaces shuffling when given.
    """
    dataset = CacheClipDataset(cache, rows)
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    return DataLoader(
        dataset,
        batch_size=int(batch_size),
        shuffle=bool(shuffle) if sampler is None else False,
        sampler=sampler,
        num_workers=int(num_workers),
        pin_memory=torch.cuda.is_available(),
        drop_last=bool(drop_last),
        persistent_workers=int(num_workers) > 0,
        generator=generator,
        collate_fn=collate_batch,
    )


def to_device(batch: Sequence[torch.Tensor], device: torch.device | str) -> tuple[torch.Tensor, ...]:
    """Move each tensor of a batch to ``device`` (non-blocking: overlaps with compute when pinned)."""
    device = torch.device(device)
    return tuple(t.to(device, non_blocking=True) if isinstance(t, torch.Tensor) else t for t in batch)


def split_train_val(
    labels_of_rows: Sequence[int] | np.ndarray,
    rows: Sequence[int] | np.ndarray,
    fraction: float,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out ``fraction`` of ``rows`` for validation, stratified by class.

    Args:
        labels_of_rows: ``labels_of_rows[i]`` is the label of ``rows[i]`` (e.g.
            ``cache.labels[rows]``).
        rows: the training fold's cache rows.
        fraction: share held out per class, in [0, 1). Each class gives ``round(n * fraction)``
            of its ``n`` rows, at least one when ``n >= 2`` and ``fraction > 0``, and never its last.
        seed: the split is a function of (rows, labels, fraction, seed).

    Returns:
        ``(train_rows, val_rows)``: disjoint sorted int64 arrays whose union is ``rows``.
    """
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    labels = np.asarray(labels_of_rows, dtype=np.int64).reshape(-1)
    if labels.shape != rows.shape:
        raise ValueError(f"labels_of_rows has {labels.size} entries for {rows.size} rows")
    if not 0.0 <= float(fraction) < 1.0:
        raise ValueError(f"val fraction must be in [0, 1), got {fraction}")
    rng = np.random.default_rng(int(seed))
    val = []
    for c in np.unique(labels):
        members = np.sort(rows[labels == c])
        n = members.size
        k = int(round(n * float(fraction)))
        if fraction > 0 and n >= 2:
            k = min(max(k, 1), n - 1)
        else:
            k = min(k, n - 1) if n else 0
        val.append(rng.permutation(members)[:k])
    val_rows = np.sort(np.concatenate(val)) if val else np.zeros(0, dtype=np.int64)
    train_rows = np.sort(np.setdiff1d(rows, val_rows))
    return train_rows, val_rows.astype(np.int64)
