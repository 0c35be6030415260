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

Memory format: the output is logically ``(B, 3, T, crop, crop)`` but stored in
``torch.channels_last_3d`` order, ``(B, T, crop, crop, 3)`` in memory, the cache's own order.
Casting to float is then a plain copy, not a transpose (the transpose was most of the CPU cost),
and it is the format the engine gives a model on CUDA anyway; Conv3d on the CPU accepts it too
(measured faster there as well: a width-16 TDRAG forward + backward took 0.81 s instead of 1.13 s
per batch of 16). Elementwise ops, ``reshape``, indexing and ``.numpy()`` work as on any tensor;
``x.view(...)`` across the channel dimension does not, so code that needs the plain layout calls
``x.contiguous()``. On the CPU the output's memory is recycled once nothing refers to it
(``_CpuOutputPool``), which spares a page fault per 4 KiB of every batch.
"""

from __future__ import annotations

import functools
import math
import threading
import weakref
from collections import OrderedDict

import numpy as np
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


@functools.lru_cache(maxsize=16)
def _row_affine(device: torch.device, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel ``1 / (255 * std)`` and ``mean / std`` repeated along a channels-last row of
    ``width`` pixels: ``(width * 3,)`` float32 each."""
    scale = torch.tensor([1.0 / (255.0 * s) for s in NORM_STD], dtype=torch.float32)
    shift = torch.tensor([m / s for m, s in zip(NORM_MEAN, NORM_STD)], dtype=torch.float32)
    return scale.repeat(width).to(device), shift.repeat(width).to(device)


def _normalize_255_cl_(frames: torch.Tensor) -> torch.Tensor:
    """Normalise 0..255 values in place: ``x / (255 * std) - mean / std`` per channel.

    ``frames``: contiguous channels-last float ``(..., W, 3)``. The per-channel factors are
    repeated along whole rows (``W * 3`` values): broadcasting a 3-vector over the innermost
    dimension defeats the vectorised CPU kernels (cast + normalise of 16 x 112 x 112 x 3 took 2.5
    instead of 0.54 ms per clip), a row-long vector does not.
    """
    width = frames.shape[-2]
    scale, shift = _row_affine(frames.device, width)
    rows = frames.view(-1, width * 3)
    rows.mul_(scale).sub_(shift)
    return frames


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
        ``(B, 3, T, crop, crop)`` float32 on ``clips.device``, in ``torch.channels_last_3d``
        memory format (see the module docstring).
    """
    b, t, size = _check_clips(clips)
    top, left = center_crop_box(size, crop)
    out = _empty_output((b, t, crop, crop, 3), clips.device)
    boxes = clips[:, :, top : top + crop, left : left + crop, :]
    if clips.device.type == "cpu":
        for i in range(b):  # clip by clip: normalised while still in cache
            _normalize_255_cl_(out[i].copy_(boxes[i]))
    else:
        _normalize_255_cl_(out.copy_(boxes))
    return out.permute(0, 4, 1, 2, 3)


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


class _CpuOutputPool:
    """Recycles the CPU memory of transform outputs that nobody refers to any more.

    Each pooled buffer is a numpy array kept here; a caller gets a tensor over a fresh *view* of
    it, and a weak reference to that view tells when the tensor and everything derived from it
    (views, ``.numpy()``, autograd's saved inputs) are gone: only then is the buffer handed out
    again. Why: a new 38.5 MB batch ``(16, 3, 16, 112, 112)`` float32 is faulted in 4 KiB at a
    time, 9,409 page faults costing about 30 ms of CPU on a 2-core VM, more than the transform's
    own work (benchmarks/RESULTS.md). A training or evaluation loop holds at most two outputs at
    once (the previous batch's until its name is rebound), so ``per_shape`` buffers per shape
    suffice; past that, and for shapes beyond ``max_shapes``, outputs are plain allocations
    (through numpy, which asks the kernel for transparent huge pages on large arrays).
    """

    def __init__(self, per_shape: int = 3, max_shapes: int = 4) -> None:
        self.per_shape = per_shape
        self.max_shapes = max_shapes
        self._pools: OrderedDict[tuple, list[tuple[np.ndarray, weakref.ref]]] = OrderedDict()
        self._lock = threading.Lock()

    def empty(self, shape: tuple[int, ...], dtype=np.float32) -> torch.Tensor:
        """An uninitialised CPU tensor of ``shape`` and ``dtype`` (float32 by default; contiguous)."""
        shape = tuple(int(v) for v in shape)
        key = (shape, np.dtype(dtype).str)
        with self._lock:
            entries = self._pools.get(key)
            if entries is None:
                if len(self._pools) >= self.max_shapes:
                    self._pools.popitem(last=False)  # the least recently used shape
                entries = self._pools[key] = []
            self._pools.move_to_end(key)
            for k, (base, in_use) in enumerate(entries):
                if in_use() is None:
                    view = base.view()
                    entries[k] = (base, weakref.ref(view))
                    return torch.from_numpy(view)
            base = np.empty(shape, dtype=dtype)
            if len(entries) >= self.per_shape:
                return torch.from_numpy(base)
            view = base.view()
            entries.append((base, weakref.ref(view)))
            return torch.from_numpy(view)

    def clear(self) -> None:
        """Forget every pooled buffer (outputs still in use stay valid: they own their view)."""
        with self._lock:
            self._pools.clear()


_CPU_OUTPUTS = _CpuOutputPool()


def _empty_output(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """An uninitialised float32 tensor for a transform's output (recycled memory on the CPU)."""
    if device.type == "cpu":
        return _CPU_OUTPUTS.empty(shape)
    return torch.empty(shape, dtype=torch.float32, device=device)


def _resize_frames(frames: torch.Tensor, crop: int) -> torch.Tensor:
    """Bilinear resize of ``(T, 3, h, w)`` frames to ``crop x crop`` (no antialiasing).

    On the CPU uint8 frames are resized as uint8 (a vectorised kernel several times faster than
    float); elsewhere, and where that kernel is missing, in float32. Frames cut from the cache's
    channels-last clips come out channels-last (``(T, crop, crop, 3)`` in memory), which is the
    order both kernels handle fastest.
    """
    if frames.shape[-2:] == (crop, crop):
        return frames
    if frames.dtype == torch.uint8 and frames.device.type == "cpu":
        try:
            return F.interpolate(frames, size=(crop, crop), mode="bilinear", align_corners=False, antialias=False)
        except RuntimeError:
            pass
    return F.interpolate(frames.float(), size=(crop, crop), mode="bilinear", align_corners=False, antialias=False)


def _resized_clips(clips: torch.Tensor, boxes: torch.Tensor, flips: torch.Tensor, crop: int):
    """Yield ``(i, frames)`` per clip: ``frames`` ``(T, 3, crop, crop)``, clip ``i`` cropped,
    resized and flipped (uint8 on the CPU, float32 values 0..255 elsewhere; a view of ``clips``
    when the box needs no resizing)."""
    b, t, size = _check_clips(clips)
    if boxes.shape != (b, 4) or flips.shape != (b,):
        raise ValueError(f"boxes must be ({b}, 4) and flips ({b},), got {tuple(boxes.shape)} and {tuple(flips.shape)}")
    # Boxes differ per clip, so each clip is cropped and resized on its own (B small calls);
    # one box serves the clip's T frames, so each call still processes T frames at once.
    boxes_list = boxes.tolist()
    flips_list = flips.tolist()
    for i in range(b):
        top, left, height, width = (int(v) for v in boxes_list[i])
        if height < 1 or width < 1 or top < 0 or left < 0 or top + height > size or left + width > size:
            raise ValueError(f"crop box {boxes_list[i]} (top, left, height, width) is not inside a {size}x{size} frame")
        frames = clips[i, :, top : top + height, left : left + width, :].permute(0, 3, 1, 2)  # (T, 3, h, w)
        frames = _resize_frames(frames, crop)
        if flips_list[i]:
            frames = frames.flip(-1)
        yield i, frames


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
    out = [frames for _, frames in _resized_clips(clips, boxes, flips, crop)]
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
        ``(B, 3, T, crop, crop)`` float32 on ``clips.device``, in ``torch.channels_last_3d``
        memory format (see the module docstring).
    """
    b, t, size = _check_clips(clips)
    boxes, flips = sample_crop_params(b, size, scale, ratio, flip, generator)
    return _crop_resize_normalize(clips, boxes, flips, crop)


def _crop_resize_normalize(clips: torch.Tensor, boxes: torch.Tensor, flips: torch.Tensor, crop: int) -> torch.Tensor:
    """``crop_resize`` and normalisation: ``(B, 3, T, crop, crop)`` float32, channels_last_3d.

    Each clip's resized frames, channels-last as the resize leaves them, go straight into its
    slot of the channels-last output: the cast to float is a plain contiguous copy, no
    transpose. On the CPU the normalisation runs clip by clip while the clip's 2.4 MB (at
    T = 16, crop = 112) is still in cache; on a GPU it is one pass over the batch.
    """
    b, t, _ = _check_clips(clips)
    out = _empty_output((b, t, crop, crop, 3), clips.device)
    on_cpu = clips.device.type == "cpu"
    for i, frames in _resized_clips(clips, boxes, flips, crop):
        out[i].copy_(frames.permute(0, 2, 3, 1))  # (T, 3, c, c) -> (T, c, c, 3), cast to float
        if on_cpu:
            _normalize_255_cl_(out[i])
    if not on_cpu:
        _normalize_255_cl_(out)
    return out.permute(0, 4, 1, 2, 3)
