"""Ground-truth masks of the synthetic set, aligned with the clips the model sees.

The synthetic generator writes, per clip, ``(L, S0, S0)`` masks of the regions that carry the
class signal in each source frame. The cache keeps T of the L frames (``source_frames`` in its
index), resized to S x S, and evaluation centre-crops them to ``crop``. This module repeats the
same selection, resize and crop on the masks so that ``mask[b, t]`` covers frame t of
``eval_transform(cache.frames[rows])[b]``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch


def _cache(cache):
    if isinstance(cache, (str, os.PathLike)):
        from tdrag.data.cache import open_cache

        return open_cache(cache)
    return cache


def resize_masks(masks: np.ndarray, size: int) -> np.ndarray:
    """``(N, H, W)`` 0/1 masks -> ``(N, size, size)`` bool (bilinear, then >= 0.5)."""
    masks = np.asarray(masks)
    if masks.shape[1:] == (size, size):
        return masks > 0
    out = np.empty((masks.shape[0], size, size), dtype=bool)
    for i, m in enumerate(masks):
        # Bilinear on the 0/1 values then a 0.5 threshold keeps a region's area when shrinking,
        # where nearest-neighbour would drop thin regions (brows, mouth corners).
        out[i] = cv2.resize(m.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR) >= 0.5
    return out


def ground_truth_masks(
    cache,
    rows: Sequence[int] | np.ndarray | torch.Tensor,
    synthetic_root: str | os.PathLike,
    crop: int = 112,
) -> torch.Tensor:
    """Ground-truth masks for cache rows, aligned with ``eval_transform(..., crop)``.

    Args:
        cache: a ``tdrag.data.cache.ClipCache`` (``open_cache``) or the cache folder.
        rows: cache row indices, in the order of the clips being scored.
        synthetic_root: the synthetic dataset root (holds ``synthetic/masks/<id>.npz``).
        crop: the evaluation centre-crop size.

    Returns:
        ``(B, T, crop, crop)`` bool tensor on the CPU.
    """
    from tdrag.data.loader import center_crop_box
    from tdrag.data.synthetic import load_clip_masks

    cache = _cache(cache)
    size = int(cache.frames.shape[2])
    top, left = center_crop_box(size, crop)
    rows = [int(r) for r in (rows.tolist() if hasattr(rows, "tolist") else rows)]
    out = np.zeros((len(rows), int(cache.frames.shape[1]), crop, crop), dtype=bool)
    for b, row in enumerate(rows):
        entry = cache.index[row]
        video_id = str(entry["video_id"])
        masks, _apex = load_clip_masks(Path(synthetic_root), video_id)
        source = np.asarray(entry["source_frames"], dtype=np.int64)
        if source.size and (source.min() < 0 or source.max() >= masks.shape[0]):
            raise ValueError(
                f"cache row {row} (video {video_id}): source frames {source.tolist()} fall outside "
                f"the {masks.shape[0]} masks under {synthetic_root}"
            )
        picked = resize_masks(masks[source], size)
        out[b] = picked[:, top : top + crop, left : left + crop]
    return torch.from_numpy(out)
