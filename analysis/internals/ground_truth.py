"""Ground-truth masks of the synthetic set, aligned with the clips the model sees.

The synthetic generator writes, per clip, ``(L, S0, S0)`` masks of the regions that carry the
class signal in each source frame. The cache keeps T of the L frames (``source_frames`` in its
index), resized to S x S, and evaluation centre-crops them to ``crop``. This module repeats the
same selection, resize and crop on the masks so that ``mask[b, t]`` covers frame t of
``eval_transform(cache.frames[rows])[b]`` (:func:`align_with_clips`, which the facial-region
label maps of :mod:`analysis.internals.regions` go through too).

The scores (:func:`mass_in_mask`, :func:`auroc_in_mask`) are read against a reference that knows
no model: :func:`centre_prior`, a fixed blob over the centre of the crop. On centred face crops it
already scores well against the background, which a model's map gets for free.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
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


def align_with_clips(
    cache,
    rows: Sequence[int] | np.ndarray | torch.Tensor,
    load: Callable[[str], np.ndarray],
    resize: Callable[[np.ndarray, int], np.ndarray],
    crop: int,
    what: str,
) -> np.ndarray:
    """Per-source-frame arrays of cache rows, made to cover the clips ``eval_transform`` gives.

    Args:
        cache: a ``tdrag.data.cache.ClipCache`` (``open_cache``) or the cache folder.
        rows: cache row indices, in the order of the clips being scored.
        load: video id -> ``(L, S0, S0)`` array over the clip's source frames.
        resize: ``((T, S0, S0) array, S) -> (T, S, S)``, as the cache resized the frames.
        crop: the evaluation centre-crop size.
        what: what ``load`` reads (named when its frames do not fit the cache's).

    Returns:
        ``(B, T, crop, crop)`` array: row ``b``'s keyframes (``source_frames``), resized, centre-cropped.
    """
    from tdrag.data.augment import center_crop_box

    cache = _cache(cache)
    size = int(cache.frames.shape[2])
    top, left = center_crop_box(size, crop)
    rows = [int(r) for r in (rows.tolist() if hasattr(rows, "tolist") else rows)]
    out = None
    for b, row in enumerate(rows):
        entry = cache.index[row]
        video_id = str(entry["video_id"])
        arrays = load(video_id)
        source = np.asarray(entry["source_frames"], dtype=np.int64)
        if source.size and (source.min() < 0 or source.max() >= arrays.shape[0]):
            raise ValueError(
                f"cache row {row} (video {video_id}): source frames {source.tolist()} fall outside "
                f"the {arrays.shape[0]} {what}"
            )
        picked = resize(arrays[source], size)[:, top : top + crop, left : left + crop]
        if out is None:
            out = np.zeros((len(rows), int(cache.frames.shape[1]), crop, crop), dtype=picked.dtype)
        out[b] = picked
    return out if out is not None else np.zeros((0, int(cache.frames.shape[1]), crop, crop), dtype=bool)


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
    from tdrag.data.synthetic import load_clip_masks

    def load(video_id: str) -> np.ndarray:
        return load_clip_masks(Path(synthetic_root), video_id)[0]

    masks = align_with_clips(cache, rows, load, resize_masks, crop, f"masks under {synthetic_root}")
    return torch.from_numpy(masks.astype(bool, copy=False))


#: The name under which agreement tables list :func:`centre_prior`'s scores.
CENTRE_PRIOR = "centre prior (a fixed Gaussian over the centre of the crop, no model)"


def centre_prior(size: int) -> torch.Tensor:
    """A fixed map that knows nothing but where faces sit: a Gaussian over the centre of the crop
    (sigma = size / 6), ``(size, size)`` float32 in (0, 1]. Scored like a model's map, it says how
    much of an agreement figure on centred face crops a model gets for free."""
    axis = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    return torch.exp(-(axis[:, None] ** 2 + axis[None, :] ** 2) / (2 * (size / 6) ** 2))


def mass_in_mask(maps: torch.Tensor, masks: torch.Tensor, absolute: bool = False) -> torch.Tensor:
    """Share of each clip's positive map mass that lies inside its ground-truth mask: ``(B,)``.

    The one implementation of this score: attention's "mass in mask" and attribution's
    "relevance mass" are both this function (attention maps are non-negative, so their positive
    part is the map itself).

    Args:
        maps: ``(B, T, H, W)`` attention or attribution at frame size.
        masks: ``(B, T, H, W)`` bool (or 0/1) ground-truth regions.
        absolute: score ``|map|`` instead of its positive part (signed attributions).

    Returns:
        ``(B,)`` float32 on the CPU in [0, 1]: ``sum(mass * mask) / sum(mass)``. A map equal to 1
        on the mask and 0 elsewhere gives 1; a uniform map gives the mask's area (chance). NaN
        for a clip without ground truth or without positive mass.
    """
    if maps.dim() != 4:
        raise ValueError(f"maps: expected (B, T, H, W), got {tuple(maps.shape)}")
    if maps.shape != masks.shape:
        raise ValueError(f"maps {tuple(maps.shape)} and masks {tuple(masks.shape)} differ in shape")
    values = maps.detach().double()
    mass = values.abs() if absolute else values.clamp(min=0)
    inside_mask = masks.to(device=mass.device, dtype=torch.bool)
    total = mass.flatten(1).sum(1)
    inside = (mass * inside_mask).flatten(1).sum(1)
    ok = (total > 0) & inside_mask.flatten(1).any(1)
    share = inside / total.clamp(min=torch.finfo(torch.float64).tiny)
    return torch.where(ok, share, torch.full_like(share, float("nan"))).float().cpu()


def auroc_in_mask(maps: torch.Tensor, masks: torch.Tensor, absolute: bool = False,
                  within: torch.Tensor | None = None) -> torch.Tensor:
    """Threshold-free agreement: the AUROC of each frame's map as a detector of its mask's pixels.

    For every keyframe whose mask is neither empty nor the whole frame, the map's values rank the
    pixels; the AUROC is the probability that a random pixel inside the mask outranks a random
    pixel outside it (ties count one half), i.e. scikit-learn's
    ``roc_auc_score(mask.ravel(), map.ravel())`` on that frame. A clip's score is the mean over
    its scored frames. 0.5 is chance (a flat or random map), 1 a map higher on every signal pixel
    than on every other one. Unlike mass in mask, a constant floor under the map (a sigmoid's
    0.5, the residual's 1 + M) does not dilute it, and unlike the pointing game it uses every
    pixel, not one maximum.

    Computed with average ranks (Mann-Whitney U): ``(R_in - n_in (n_in + 1) / 2) / (n_in n_out)``,
    where ``R_in`` is the sum of the ranks of the mask's pixels among the frame's pixels.

    ``within`` restricts the contest to some pixels, for example the face: on centred face crops
    a fixed blob over the centre of the frame already scores well against the background, so the
    AUROC *within the face* (signal parts against the rest of the face) is the stricter test.

    Args:
        maps: ``(B, T, H, W)`` attention or attribution at frame size.
        masks: ``(B, T, H, W)`` bool (or 0/1) ground-truth regions.
        absolute: rank ``|map|`` (signed attributions) instead of the map itself.
        within: ``(B, T, H, W)`` bool, the pixels that take part (default: all); mask pixels
            outside it are ignored too.

    Returns:
        ``(B,)`` float32 on the CPU; NaN for a clip with no frame to score.
    """
    if maps.dim() != 4:
        raise ValueError(f"maps: expected (B, T, H, W), got {tuple(maps.shape)}")
    if maps.shape != masks.shape:
        raise ValueError(f"maps {tuple(maps.shape)} and masks {tuple(masks.shape)} differ in shape")
    b, t = maps.shape[:2]
    values = maps.detach().double().cpu().reshape(b * t, -1)
    if absolute:
        values = values.abs()
    inside = masks.detach().cpu().reshape(b * t, -1).bool()
    taking_part = torch.ones_like(inside) if within is None else within.detach().cpu().reshape(b * t, -1).bool()
    if within is not None and within.shape != masks.shape:
        raise ValueError(f"within {tuple(within.shape)} and masks {tuple(masks.shape)} differ in shape")
    inside = inside & taking_part
    # Pixels left out rank below every other one (-inf); subtracting their count gives the ranks
    # among the pixels that take part.
    values = torch.where(taking_part, values, torch.full_like(values, -torch.inf))
    left_out = (~taking_part).sum(1, keepdim=True).double()
    n_in = inside.sum(1).double()
    n_out = taking_part.sum(1).double() - n_in
    ordered, order = values.sort(dim=1)
    ranks = _average_ranks(ordered) - left_out  # of the sorted pixels
    rank_sum = (ranks * inside.gather(1, order)).sum(1)
    scored = (n_in > 0) & (n_out > 0)
    auc = (rank_sum - n_in * (n_in + 1) / 2) / (n_in * n_out).clamp(min=1)
    auc = torch.where(scored, auc, torch.full_like(auc, float("nan"))).reshape(b, t)
    per_clip = torch.nanmean(auc, dim=1)
    return per_clip.float()


def _average_ranks(ordered: torch.Tensor) -> torch.Tensor:
    """``(R, N)`` rows sorted ascending -> each place's 1-based rank, ties sharing the mean of the
    ranks they span (as ``scipy.stats.rankdata``), float64."""
    n = ordered.shape[1]
    place = torch.arange(n, device=ordered.device).expand_as(ordered)
    changes = ordered[:, 1:] != ordered[:, :-1]
    starts = torch.cat([torch.ones_like(ordered[:, :1], dtype=torch.bool), changes], dim=1)
    ends = torch.cat([changes, torch.ones_like(ordered[:, :1], dtype=torch.bool)], dim=1)
    first = torch.where(starts, place, torch.zeros_like(place)).cummax(dim=1).values
    last = torch.where(ends, place, torch.full_like(place, n)).flip(1).cummin(dim=1).values.flip(1)
    return (first + last).double() / 2 + 1


def agreement_with_truth(
    maps: Mapping[str, torch.Tensor],
    masks: torch.Tensor,
    face: torch.Tensor | None = None,
    extra: Mapping[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] | None = None,
) -> dict[str, dict[str, torch.Tensor]]:
    """Each map's agreement with the ground truth, and the same of :func:`centre_prior` as the
    reference (under :data:`CENTRE_PRIOR`, last).

    Args:
        maps: name -> ``(B, T, H, W)`` maps at the masks' size (H = W, the crop).
        masks: ``(B, T, H, W)`` bool ground truth.
        face: ``(B, T, H, W)`` bool, the face's pixels (``analysis.internals.regions.face_pixels``),
            or None when unknown.
        extra: more scores, name -> ``score(maps, masks) -> (B,)`` (e.g. the pointing game).

    Returns:
        name -> ``{"mass_in_mask", "auroc", "auroc_face", *extra}``, each ``(B,)`` float32 on the
        CPU (:func:`mass_in_mask`; :func:`auroc_in_mask` over the crop and ``within=face``, the
        latter NaN without ``face``).
    """
    scored = {**maps, CENTRE_PRIOR: centre_prior(masks.shape[-1]).expand_as(masks)}
    unknown = torch.full((masks.shape[0],), float("nan"))
    return {name: {"mass_in_mask": mass_in_mask(m, masks), "auroc": auroc_in_mask(m, masks),
                   "auroc_face": auroc_in_mask(m, masks, within=face) if face is not None else unknown,
                   **{key: score(m, masks) for key, score in (extra or {}).items()}}
            for name, m in scored.items()}
