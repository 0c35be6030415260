"""Batch transforms for cached clips, run on the batch's device.

Both transforms take the cache's layout, ``clips (B, T, S, S, 3)`` uint8 RGB channels-last, and
return the model's input, float ``(B, 3, T, crop, crop)`` normalised with ``NORM_MEAN`` /
``NORM_STD``. The same spatial box and flip apply to every frame of a clip (a clip is one
face; per-frame boxes would add jitter no video has).

- ``train_transform``: random resized crop (area fraction in ``scale``, aspect ratio in
  ``ratio``, as torchvision's RandomResizedCrop, integer boxes) and a random horizontal flip,
  sampled per clip; each clip's ``T`` frames are cropped and resized in one bilinear
  ``F.interpolate`` call, in uint8 on the CPU (its vectorised uint8 kernel keeps a CPU-only
  training loop from waiting on augmentation), in float32 on a GPU.
- ``eval_transform``: the deterministic centre crop (no resampling); ``center_crop_box`` gives
  its position so that analysis code can crop ground-truth masks the same way.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: Per-channel (RGB) mean and std of Kinetics-400 frames in [0, 1], as torchvision's video
#: models use; kept so that r3d_18 weights pretrained there can be loaded as they are.
NORM_MEAN: tuple[float, float, float] = (0.43216, 0.394666, 0.37645)
NORM_STD: tuple[float, float, float] = (0.22803, 0.22145, 0.216989)


def _check_clips(clips: torch.Tensor) -> tuple[int, int, int]:
    if clips.ndim != 5 or clips.shape[-1] != 3 or clips.shape[2] != clips.shape[3]:
        raise ValueError(f"clips must be (B, T, S, S, 3) channels-last, got shape {tuple(clips.shape)}")
    return clips.shape[0], clips.shape[1], clips.shape[2]


def _channel_view(values, like: torch.Tensor, channel_dim: int) -> torch.Tensor:
    shape = [1] * like.ndim
    shape[channel_dim] = 3
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(shape)


def _normalize_255_(frames: torch.Tensor, channel_dim: int) -> torch.Tensor:
    """In-place ``_normalize_255`` (saves a pass over the batch)."""
    scale = _channel_view([1.0 / (255.0 * s) for s in NORM_STD], frames, channel_dim)
    shift = _channel_view([m / s for m, s in zip(NORM_MEAN, NORM_STD)], frames, channel_dim)
    return frames.mul_(scale).sub_(shift)


def _default_channel_dim(x: torch.Tensor, channel_dim: int | None) -> int:
    if channel_dim is not None:
        return channel_dim
    return 1 if x.ndim == 5 else 0


def normalize(x: torch.Tensor, channel_dim: int | None = None) -> torch.Tensor:
    """Normalise images in [0, 1]: ``(x - NORM_MEAN) / NORM_STD`` per channel.

    ``x``: ``(B, 3, T, H, W)`` (channels on dim 1), ``(3, T, H, W)`` or ``(3, H, W)`` (dim 0);
    pass ``channel_dim`` for other layouts, e.g. 1 for ``(B, 3, H, W)``.
    """
    dim = _default_channel_dim(x, channel_dim)
    x = x.float()
    return (x - _channel_view(NORM_MEAN, x, dim)) / _channel_view(NORM_STD, x, dim)


def denormalize(x: torch.Tensor, channel_dim: int | None = None) -> torch.Tensor:
    """Undo the normalisation for display: float in [0, 1] (clamped), same shape as ``x``.

    ``x``: ``(B, 3, T, H, W)`` (channels on dim 1), ``(3, T, H, W)`` or ``(3, H, W)`` (dim 0);
    pass ``channel_dim`` for other layouts, e.g. 1 for ``(B, 3, H, W)``.
    """
    dim = _default_channel_dim(x, channel_dim)
    x = x.float()
    return (x * _channel_view(NORM_STD, x, dim) + _channel_view(NORM_MEAN, x, dim)).clamp(0.0, 1.0)


def center_crop_box(size: int, crop: int) -> tuple[int, int]:
    """``(top, left)`` of the centred ``crop x crop`` box in a ``size x size`` frame."""
    if not 0 < int(crop) <= int(size):
        raise ValueError(f"crop {crop} must be in 1..{size} (the cached frame size)")
    offset = (int(size) - int(crop)) // 2
    return offset, offset


def eval_transform(clips: torch.Tensor, crop: int = 112) -> torch.Tensor:
    """Deterministic centre crop and normalisation.

    Args:
        clips: ``(B, T, S, S, 3)`` uint8 RGB.
        crop: output side; at most ``S``.

    Returns:
        ``(B, 3, T, crop, crop)`` float32 on ``clips.device``.
    """
    _, _, size = _check_clips(clips)
    top, left = center_crop_box(size, crop)
    b, t = clips.shape[:2]
    out = torch.empty((b, 3, t, crop, crop), dtype=torch.float32, device=clips.device)
    out.copy_(clips[:, :, top : top + crop, left : left + crop, :].permute(0, 4, 1, 2, 3))
    return _normalize_255_(out, 1)


def sample_crop_params(
    batch: int,
    size: int,
    scale: tuple[float, float] = (0.6, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random integer boxes and flips for a batch, drawn on the generator's device (CPU default).

    Returns:
        ``boxes``: ``(B, 4)`` int64 ``(top, left, height, width)`` in pixels of the ``S x S``
        frame, inside the frame; ``flips``: ``(B,)`` bool. Both on the generator's device.
    """
    if not 0 < scale[0] <= scale[1] <= 1:
        raise ValueError(f"scale must satisfy 0 < min <= max <= 1, got {scale}")
    if not 0 < ratio[0] <= ratio[1]:
        raise ValueError(f"ratio must satisfy 0 < min <= max, got {ratio}")
    device = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand(batch, 5, generator=generator, device=device, dtype=torch.float64)
    area = (scale[0] + (scale[1] - scale[0]) * u[:, 0]) * size * size
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[:, 1]
    aspect = torch.exp(log_r)
    # Clamping a box that would overflow the frame keeps it valid; it only shrinks that side.
    width = torch.sqrt(area * aspect).round().clamp(1, size).long()
    height = torch.sqrt(area / aspect).round().clamp(1, size).long()
    left = torch.minimum((u[:, 2] * (size - width + 1)).long(), size - width)
    top = torch.minimum((u[:, 3] * (size - height + 1)).long(), size - height)
    flips = (u[:, 4] < 0.5) if flip else torch.zeros(batch, dtype=torch.bool, device=device)
    return torch.stack([top, left, height, width], dim=1), flips


def _resize_frames(frames: torch.Tensor, crop: int) -> torch.Tensor:
    """Bilinear resize of ``(T, 3, h, w)`` frames to ``crop x crop`` (no antialiasing).

    On the CPU uint8 frames are resized as uint8 (a vectorised kernel several times faster than
    float); elsewhere, and where that kernel is missing, in float32.
    """
    if frames.shape[-2:] == (crop, crop):
        return frames
    if frames.dtype == torch.uint8 and frames.device.type == "cpu":
        try:
            return F.interpolate(frames, size=(crop, crop), mode="bilinear", align_corners=False, antialias=False)
        except RuntimeError:
            pass
    return F.interpolate(frames.float(), size=(crop, crop), mode="bilinear", align_corners=False, antialias=False)


def crop_resize(clips: torch.Tensor, boxes: torch.Tensor, flips: torch.Tensor, crop: int) -> torch.Tensor:
    """Crop each clip's box from all its frames, resize to ``crop x crop``, mirror where flipped.

    Args:
        clips: ``(B, T, S, S, 3)`` uint8 RGB.
        boxes: ``(B, 4)`` integer ``(top, left, height, width)`` inside the frame.
        flips: ``(B,)`` bool.

    Returns:
        ``(B, T, 3, crop, crop)`` (uint8 on the CPU, float32 values 0..255 elsewhere); frames are
        resampled with bilinear interpolation, ``align_corners=False`` (box edges map to the
        output's edges).
    """
    b, t, size = _check_clips(clips)
    # Boxes differ per clip, so each clip is cropped and resized on its own (B small calls);
    # one box serves the clip's T frames, so each call still processes T frames at once.
    boxes_list = boxes.tolist()
    flips_list = flips.tolist()
    out = []
    for i in range(b):
        top, left, height, width = (int(v) for v in boxes_list[i])
        if height < 1 or width < 1 or top < 0 or left < 0 or top + height > size or left + width > size:
            raise ValueError(f"crop box {boxes_list[i]} (top, left, height, width) is not inside a {size}x{size} frame")
        frames = clips[i, :, top : top + height, left : left + width, :].permute(0, 3, 1, 2)  # (T, 3, h, w)
        frames = _resize_frames(frames, crop)
        if flips_list[i]:
            frames = frames.flip(-1)
        out.append(frames)
    dtype = torch.uint8 if all(f.dtype == torch.uint8 for f in out) else torch.float32
    return torch.stack([f.to(dtype) for f in out])


def train_transform(
    clips: torch.Tensor,
    crop: int = 112,
    scale: tuple[float, float] = (0.6, 1.0),
    flip: bool = True,
    generator: torch.Generator | None = None,
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> torch.Tensor:
    """Random resized crop, random horizontal flip and normalisation of a batch of clips.

    Args:
        clips: ``(B, T, S, S, 3)`` uint8 RGB on any device; the work happens there.
        crop: output side.
        scale: range of the box's area as a fraction of the frame's.
        flip: mirror each clip with probability 1/2.
        generator: source of randomness (boxes are drawn on its device, then moved), for
            reproducible batches; the global generator when None.
        ratio: range of the box's aspect ratio (width / height), sampled log-uniformly.

    Returns:
        ``(B, 3, T, crop, crop)`` float32 on ``clips.device``.
    """
    b, t, size = _check_clips(clips)
    boxes, flips = sample_crop_params(b, size, scale, ratio, flip, generator)
    return _crop_resize_normalize(clips, boxes, flips, crop)


def _crop_resize_normalize(clips: torch.Tensor, boxes: torch.Tensor, flips: torch.Tensor, crop: int) -> torch.Tensor:
    """``crop_resize`` then layout change and normalisation: ``(B, 3, T, crop, crop)`` float32."""
    b, t, _ = _check_clips(clips)
    x = crop_resize(clips, boxes, flips, crop)  # (B, T, 3, crop, crop)
    out = torch.empty((b, 3, t, crop, crop), dtype=torch.float32, device=clips.device)
    out.copy_(x.permute(0, 2, 1, 3, 4))
    return _normalize_255_(out, 1)
