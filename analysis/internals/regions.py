"""Facial regions of the clips a model sees, and how much of a map falls in each.

Every pixel of every keyframe gets a region label, an index into
``tdrag.data.synthetic.REGIONS`` (outside, face, brows, eyes, cheeks, nose, mouth, occluder,
distractor), from one of two sources:

- **the renderer** (synthetic data): the label maps ``tdrag synth`` draws beside its masks,
  aligned with the clips exactly as the ground-truth masks are (:func:`region_label_maps`);
- **a canonical template** (real aligned face crops: DFEW, FERV39k and MAFW distribute them):
  :func:`canonical_region_template`, the same regions placed where they sit on an average aligned
  face. It is **approximate**: it ignores pose, expression and each dataset's own crop margins,
  and knows no occluders or distractors. Its anchors are the five-point reference of aligned
  112 x 112 face crops (ArcFace, Deng et al. 2019, insightface's ``arcface_dst``): eyes at
  (0.342, 0.462) and (0.657, 0.460), nose tip (0.500, 0.641), mouth corners (0.371, 0.825) and
  (0.632, 0.823), as fractions of the crop side; the brows sit 0.10 above the eyes, the cheeks
  below and outside them.

:func:`region_masses` and :func:`region_areas` then say, per clip, how much of a map's mass and
how many pixels each region holds: a map spread evenly gives every region its share of the area.
The mass counted is what rises above each frame's floor (its minimum, or 0 for a map with negative
values): a constant under the whole frame, such as a sigmoid attention's 0.5, says nothing about
where a map looks, and left in it would pull every region's share towards its area.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from analysis.internals.ground_truth import align_with_clips
from tdrag.data.synthetic.regions import OUTSIDE, PAINT_ORDER, REGIONS

#: The regions that show the face: its skin and its five parts (not the outside, occluders or
#: distractors). Agreement "within the face" ranks only these pixels.
FACE_REGIONS: tuple[str, ...] = ("face", "brows", "eyes", "cheeks", "nose", "mouth")

#: The canonical template: region -> ellipses ``((centre x, centre y), (half-width, half-height))``
#: in fractions of the crop side; parts are painted over the face in ``PAINT_ORDER``.
TEMPLATE: dict[str, tuple[tuple[tuple[float, float], tuple[float, float]], ...]] = {
    "face": (((0.500, 0.560), (0.400, 0.500)),),
    "cheeks": (((0.270, 0.640), (0.090, 0.090)), ((0.730, 0.640), (0.090, 0.090))),
    "nose": (((0.500, 0.580), (0.075, 0.110)),),
    "mouth": (((0.500, 0.824), (0.170, 0.075)),),
    "eyes": (((0.342, 0.462), (0.090, 0.050)), ((0.657, 0.460), (0.090, 0.050))),
    "brows": (((0.335, 0.362), (0.120, 0.050)), ((0.665, 0.360), (0.120, 0.050))),
}

_SHIFT = 4  # OpenCV sub-pixel bits


def canonical_region_template(size: int) -> np.ndarray:
    """The approximate region labels of an aligned face crop of ``size x size``: ``(S, S)`` uint8.

    Values index ``REGIONS``; never occluder or distractor (see the module docstring).
    """
    labels = np.full((int(size), int(size)), OUTSIDE, dtype=np.uint8)
    one = (1 << _SHIFT) * int(size)
    for name in ("face", *PAINT_ORDER):
        for (cx, cy), (ax, ay) in TEMPLATE[name]:
            cv2.ellipse(labels, (round(cx * one), round(cy * one)), (max(1, round(ax * one)), max(1, round(ay * one))),
                        0, 0, 360, REGIONS.index(name), -1, cv2.LINE_8, _SHIFT)
    return labels


def resize_labels(labels: np.ndarray, size: int) -> np.ndarray:
    """``(N, H, W)`` label maps -> ``(N, size, size)`` by nearest neighbour (labels never blend)."""
    labels = np.asarray(labels)
    if labels.shape[1:] == (size, size):
        return labels
    return np.stack([cv2.resize(m, (size, size), interpolation=cv2.INTER_NEAREST) for m in labels])


def region_label_maps(
    cache,
    rows: Sequence[int] | np.ndarray | torch.Tensor,
    synthetic_root: str | os.PathLike,
    crop: int = 112,
) -> torch.Tensor:
    """The renderer's region labels for cache rows, aligned with ``eval_transform(..., crop)`` as the
    ground-truth masks are: ``(B, T, crop, crop)`` uint8 on the CPU (SynthError for a set rendered
    before region maps were written)."""
    from tdrag.data.synthetic import load_clip_regions

    def load(video_id: str) -> np.ndarray:
        return load_clip_regions(Path(synthetic_root), video_id)

    labels = align_with_clips(cache, rows, load, resize_labels, crop, f"region maps under {synthetic_root}")
    return torch.from_numpy(labels.astype(np.uint8, copy=False))


def template_label_maps(count: int, frames: int, size: int, crop: int) -> torch.Tensor:
    """:func:`canonical_region_template` of the cached frame ``size``, centre-cropped to ``crop`` as the
    frames are, for ``count`` clips of ``frames`` keyframes: ``(count, frames, crop, crop)`` uint8."""
    from tdrag.data.augment import center_crop_box

    top, left = center_crop_box(size, crop)
    template = torch.from_numpy(canonical_region_template(size)[top : top + crop, left : left + crop].copy())
    return template.expand(int(count), int(frames), crop, crop).contiguous()


def has_region_maps(root: str | os.PathLike | None) -> bool:
    """Whether the synthetic set at ``root`` has the renderer's region maps (sets rendered before
    they existed have none)."""
    return root is not None and (Path(root) / "synthetic" / "regions").is_dir()


def run_region_maps(run, positions: Sequence[int] | np.ndarray) -> tuple[torch.Tensor, str]:
    """Region labels of an opened run's clips and where they come from.

    Returns:
        ``((B, T, crop, crop) uint8, source)``: source "renderer" (the synthetic set's own maps)
        or "template" (:func:`canonical_region_template`, approximate: real data, or a synthetic
        set rendered before region maps existed).
    """
    positions = np.asarray(positions, dtype=np.int64).reshape(-1)
    rows = run.rows[positions]
    if run.synthetic and has_region_maps(run.data_root):
        return region_label_maps(run.cache, rows, run.data_root, run.crop), "renderer"
    size = int(run.cache.frames.shape[2])
    return template_label_maps(len(rows), run.cache.num_frames, size, run.crop), "template"


def _per_region(values: torch.Tensor, labels: torch.Tensor, num_regions: int) -> torch.Tensor:
    b = values.shape[0]
    index = labels.reshape(b, -1).long().to(values.device)
    if index.numel() and int(index.max()) >= num_regions:
        raise ValueError(f"region labels go up to {int(index.max())}, beyond the {num_regions} regions")
    out = torch.zeros(b, num_regions, dtype=values.dtype, device=values.device)
    return out.scatter_add_(1, index, values.reshape(b, -1)).cpu()


def above_floor(maps: torch.Tensor) -> torch.Tensor:
    """``(B, T, H, W)`` maps minus each frame's floor, where the floor is the frame's minimum when
    that is positive and 0 otherwise; negative values become 0. float64."""
    values = maps.detach().double()
    floor = values.amin(dim=(-2, -1), keepdim=True).clamp(min=0)
    return (values - floor).clamp(min=0)


def face_pixels(labels: torch.Tensor) -> torch.Tensor:
    """``(B, T, H, W)`` region labels -> bool of the same shape: True where the pixel shows the face
    (one of :data:`FACE_REGIONS`); the ``within`` of ``auroc_in_mask`` for the AUROC within the face."""
    face = torch.tensor([REGIONS.index(r) for r in FACE_REGIONS], dtype=torch.long)
    return torch.isin(labels.long(), face.to(labels.device))


def region_masses(maps: torch.Tensor, labels: torch.Tensor, num_regions: int = len(REGIONS)) -> torch.Tensor:
    """Mass of each clip's map in each region, summed over its frames: ``(B, R)`` float64. The mass
    is the map above each frame's floor (:func:`above_floor`; see the module docstring).

    Args:
        maps: ``(B, T, H, W)`` attention, attribution or a 0/1 mask at frame size.
        labels: ``(B, T, H, W)`` region labels (values below ``num_regions``).
    """
    if maps.shape != labels.shape:
        raise ValueError(f"maps {tuple(maps.shape)} and region labels {tuple(labels.shape)} differ in shape")
    return _per_region(above_floor(maps), labels, num_regions)


def region_areas(labels: torch.Tensor, num_regions: int = len(REGIONS)) -> torch.Tensor:
    """Pixels of each region in each clip, summed over its frames: ``(B, R)`` float64."""
    return _per_region(torch.ones(labels.shape, dtype=torch.float64), labels, num_regions)
