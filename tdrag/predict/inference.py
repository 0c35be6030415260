"""Run a trained model on video files: face crops, windows, probabilities, attention overlays.

For one video (``predict_video``):

1. ``tdrag.predict.faces.extract_face_clip`` follows the main face and crops every frame to the
   checkpoint's cache size S (``DataConfig.size``), as ``tdrag prepare`` stores DFEW frames.
2. The frames are cut into consecutive **windows** of about ``window`` seconds (the video is split
   into ``round(duration / window)`` equal parts, at least one), because the model was trained on
   short clips (DFEW's are 1-5 s) and a minute of video squeezed into 16 keyframes would look
   nothing like them. ``window=None`` (or a window longer than the video) makes one window.
3. In each window, T keyframes (``DataConfig.frames``) are chosen with the checkpoint's method
   (``DataConfig.keyframes``: redundancy or uniform), centre-cropped to ``DataConfig.crop`` and
   normalised exactly as in evaluation: through the same loop (``tdrag.models.forward.forward_clips``).
4. ``model.inspect`` gives each window's class probabilities (softmax of the logits) and, for
   models with attention, the spatial attention maps, upsampled to the keyframes by
   ``tdrag.models.inspection.upsample_attention`` (as the analysis notebooks do). **The video's
   probabilities are the mean of its windows' probabilities** (windows are of equal length, so
   this weighs every second alike).

``tdrag.predict.output.write_prediction`` then writes, atomically, ``<stem>.json`` (probabilities
by class name, top class, windows, face coverage, model and checkpoint), ``<stem>_overlay.mp4``
(each keyframe's face crop beside the same crop under its attention heatmap, window by window)
and ``<stem>_keyframes.png`` (the overlays window by window, each keyframe labelled with its index
and time, each window with its span and top class), drawn by ``tdrag.predict.drawing`` with
OpenCV's JET colormap.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tdrag.config import Config
from tdrag.data.augment import center_crop_box
from tdrag.data.keyframes import select_keyframes
from tdrag.models.forward import forward_clips
from tdrag.models.inspection import upsample_attention
from tdrag.predict.faces import FaceClip, extract_face_clip
from tdrag.runs.checkpoints import dataset_class_names

log = logging.getLogger(__name__)


@dataclass
class WindowPrediction:
    """One window of a video and what the model says about it."""

    index: int
    # Frames [start_frame, end_frame) of the video; seconds [start_s, end_s).
    start_frame: int
    end_frame: int
    start_s: float
    end_s: float
    # (T,) int64 keyframe indices into the whole video's frames.
    keyframes: np.ndarray
    # (C,) float64 class probabilities.
    probabilities: np.ndarray


@dataclass
class VideoPrediction:
    """A video's prediction, its windows and what is needed to draw the overlay."""

    path: Path
    class_names: tuple[str, ...]
    # (C,) mean of the windows' probabilities.
    probabilities: np.ndarray
    windows: list[WindowPrediction]
    face: FaceClip
    # (W, T, crop, crop, 3) uint8 RGB: each window's keyframes as the model sees them (centre crop).
    keyframe_crops: np.ndarray
    # (W, T, crop, crop) float32 in [0, 1]: attention per keyframe upsampled to the crop, or None
    # for models without attention.
    attention: np.ndarray | None
    # Which stage's attention ("layer4", ...), or None.
    attention_stage: str | None

    @property
    def top_index(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def top_class(self) -> str:
        return self.class_names[self.top_index]


def window_bounds(num_frames: int, fps: float, window: float | None) -> list[tuple[int, int]]:
    """Split ``num_frames`` frames into ``round(duration / window)`` (>= 1) equal windows.

    Returns:
        ``[(start, end), ...]`` consecutive frame ranges covering ``0..num_frames``, each non-empty.
    """
    if num_frames < 1:
        raise ValueError("a video needs at least one frame")
    if window is None:
        return [(0, num_frames)]
    if window <= 0:
        raise ValueError(f"window must be > 0 seconds, got {window}")
    count = int(min(num_frames, max(1, round(num_frames / (window * fps)))))
    edges = np.linspace(0, num_frames, count + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def _centre_crop(frames: np.ndarray, crop: int) -> np.ndarray:
    """``frames: (..., S, S, 3)`` -> the centre ``(..., crop, crop, 3)``: the box eval_transform
    crops (``tdrag.data.augment.center_crop_box``, the one centre crop)."""
    top, left = center_crop_box(frames.shape[-2], crop)
    return frames[..., top : top + crop, left : left + crop, :]


def attention_per_keyframe(maps: torch.Tensor, frames: int, crop: int) -> np.ndarray:
    """``maps: (B, 1, T', H', W')`` -> ``(B, T, crop, crop)`` float32 in the maps' range: the stage
    maps upsampled to the keyframes by ``tdrag.models.inspection.upsample_attention`` (trilinear in time and
    space), the same maps the analysis notebooks draw for the same clip."""
    return upsample_attention(maps.detach().float().cpu(), (frames, crop, crop)).numpy()


@torch.no_grad()
def predict_face_clip(
    model: nn.Module,
    config: Config,
    face: FaceClip,
    window: float | None = None,
    device: str | torch.device = "cpu",
    attention_stage: str | None = None,
    batch_size: int = 8,
    class_names: Sequence[str] | None = None,
) -> VideoPrediction:
    """Classify a FaceClip whose crops are ``config.data.size`` pixels square.

    Args:
        model: a tdrag model (``inspect`` returning ModelInspection), in eval mode.
        config: the checkpoint's Config (frames, size, crop, keyframes, num_classes).
        window: seconds per window (see :func:`window_bounds`); None = one window.
        attention_stage: stage whose attention map is drawn; default the deepest one the model
            has (the most class-specific).
        batch_size: windows per forward pass.
        class_names: the checkpoint's classes (``tdrag.runs.checkpoints.checkpoint_class_names``);
            default the classes of the dataset its config names, where those came from.
    """
    data = config.data
    if face.frames.shape[1] != data.size:
        raise ValueError(f"{face.path}: face crops are {face.frames.shape[1]} px, the checkpoint expects {data.size}")
    device = torch.device(device)
    bounds = window_bounds(face.num_frames, face.fps, window)
    keyframes = [start + select_keyframes(face.frames[start:end], data.frames, data.keyframes) for start, end in bounds]
    clips = np.stack([face.frames[k] for k in keyframes])  # (W, T, S, S, 3)

    batches = ((clips[first : first + batch_size],) for first in range(0, len(clips), batch_size))
    seen, _ = forward_clips(model, batches, crop=data.crop, device=device, inspect=True)
    probabilities = torch.softmax(seen.logits, dim=1).numpy().astype(np.float64)
    attention, stage = None, None
    if seen.attention:
        stage = attention_stage or list(seen.attention)[-1]
        if stage not in seen.attention:
            raise ValueError(f"model has no attention at {stage!r} (has {', '.join(seen.attention)})")
        attention = attention_per_keyframe(seen.attention[stage], data.frames, data.crop)
    windows = [
        WindowPrediction(
            index=i,
            start_frame=start,
            end_frame=end,
            start_s=start / face.fps,
            end_s=end / face.fps,
            keyframes=keyframes[i].astype(np.int64),
            probabilities=probabilities[i],
        )
        for i, (start, end) in enumerate(bounds)
    ]
    return VideoPrediction(
        path=face.path,
        class_names=tuple(class_names) if class_names is not None else dataset_class_names(config, str(face.path)),
        probabilities=probabilities.mean(axis=0),
        windows=windows,
        face=face,
        keyframe_crops=np.ascontiguousarray(_centre_crop(clips, data.crop)),
        attention=attention,
        attention_stage=stage,
    )


def predict_video(
    model: nn.Module,
    config: Config,
    path: str | os.PathLike,
    window: float | None = None,
    device: str | torch.device = "cpu",
    attention_stage: str | None = None,
    class_names: Sequence[str] | None = None,
    **face_options: Any,
) -> VideoPrediction:
    """Follow the face in the video at ``path`` and classify it (see the module docstring).

    ``face_options`` go to :func:`tdrag.predict.faces.extract_face_clip` (detect_every, margin, ...).
    Raises ``tdrag.predict.video.VideoError`` / ``tdrag.predict.faces.NoFaceError`` naming the file for unusable input.
    """
    face = extract_face_clip(path, size=config.data.size, **face_options)
    if face.coverage < 0.5:
        log.warning("%s: the face was detected on only %.0f%% of the sampled frames", face.path, 100 * face.coverage)
    return predict_face_clip(model, config, face, window=window, device=device, attention_stage=attention_stage,
                             class_names=class_names)
