"""Run a trained model on video files: face crops, windows, probabilities, attention overlays.

For one video (``predict_video``):

1. ``tdrag.data.video.extract_face_clip`` follows the main face and crops every frame to the
   checkpoint's cache size S (``DataConfig.size``), as ``tdrag prepare`` stores DFEW frames.
2. The frames are cut into consecutive **windows** of about ``window`` seconds (the video is split
   into ``round(duration / window)`` equal parts, at least one), because the model was trained on
   short clips (DFEW's are 1-5 s) and a minute of video squeezed into 16 keyframes would look
   nothing like them. ``window=None`` (or a window longer than the video) makes one window.
3. In each window, T keyframes (``DataConfig.frames``) are chosen with the checkpoint's method
   (``DataConfig.keyframes``: redundancy or uniform), centre-cropped to ``DataConfig.crop`` and
   normalised exactly as in evaluation (``tdrag.data.augment.eval_transform``).
4. ``model.inspect`` gives each window's class probabilities (softmax of the logits) and, for
   models with attention, the spatial attention maps, upsampled to the keyframes by
   ``tdrag.models.upsample_attention`` (as the analysis notebooks do). **The video's probabilities are the mean of
   its windows' probabilities** (windows are of equal length, so this weighs every second alike).

``write_prediction`` then writes, atomically, ``<stem>.json`` (probabilities by class name, top
class, windows, face coverage, model and checkpoint), ``<stem>_overlay.mp4`` (each keyframe's face
crop beside the same crop under its attention heatmap, window by window) and
``<stem>_keyframes.png`` (the overlays as a grid: one row per window, one column per keyframe).
Heatmaps use OpenCV's JET colormap.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from tdrag.atomic import write_json
from tdrag.config import Config
from tdrag.data.augment import center_crop_box, eval_transform
from tdrag.data.keyframes import select_keyframes
from tdrag.data.labels import DFEW_CLASSES
from tdrag.data.video import FaceClip, extract_face_clip, write_video
from tdrag.models import upsample_attention
from tdrag.runtime import eval_mode

log = logging.getLogger(__name__)

# Frames per second of the overlay video: one keyframe every quarter second is slow enough to see
# each heatmap, and a 16-keyframe window plays in 4 s.
OVERLAY_FPS = 4.0
# Side of each panel in the overlay video (the crop is upscaled to it, nearest-neighbour free).
OVERLAY_PANEL = 224


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


def class_names_for(config: Config) -> tuple[str, ...]:
    """The class names of the checkpoint's dataset (``data.dataset``: DFEW, FERV39k or MAFW), when
    their number matches the model's; ``class_<i>`` otherwise."""
    from tdrag.data.datasets import get_reader

    n = config.model.num_classes
    try:
        classes = tuple(get_reader(config.data.dataset).CLASSES)
    except Exception:  # noqa: BLE001 - an unknown dataset name in an old checkpoint
        classes = DFEW_CLASSES
    if len(classes) == n:
        return classes
    return DFEW_CLASSES if n == len(DFEW_CLASSES) else tuple(f"class_{i}" for i in range(n))


#: Marks the JSON ``tdrag predict`` writes, so that a later run recognises (and may replace) it.
PREDICTION_FORMAT = "tdrag-prediction"


def _check_replaceable(out_dir: Path, stem: str, names: dict[str, str]) -> None:
    """Refuse to replace files of ``stem`` in ``out_dir`` that are not a previous tdrag prediction."""
    from tdrag.errors import OutputError

    json_path = out_dir / f"{stem}.json"
    ours = False
    if json_path.exists():
        try:
            ours = json.loads(json_path.read_text()).get("format") == PREDICTION_FORMAT
        except (OSError, ValueError, AttributeError):
            ours = False
        if not ours:
            raise OutputError(f"{json_path}: exists and is not a tdrag prediction; refusing to replace it "
                              "(choose another --out)")
    for name in names.values():
        if (out_dir / name).exists() and not ours:
            raise OutputError(f"{out_dir / name}: exists without the tdrag prediction {json_path.name} beside it; "
                              "refusing to replace it (choose another --out)")


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
    maps upsampled to the keyframes by ``tdrag.models.upsample_attention`` (trilinear in time and
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
) -> VideoPrediction:
    """Classify a FaceClip whose crops are ``config.data.size`` pixels square.

    Args:
        model: a tdrag model (``inspect`` returning ModelInspection), in eval mode.
        config: the checkpoint's Config (frames, size, crop, keyframes, num_classes).
        window: seconds per window (see :func:`window_bounds`); None = one window.
        attention_stage: stage whose attention map is drawn; default the deepest one the model
            has (the most class-specific).
        batch_size: windows per forward pass.
    """
    data = config.data
    if face.frames.shape[1] != data.size:
        raise ValueError(f"{face.path}: face crops are {face.frames.shape[1]} px, the checkpoint expects {data.size}")
    device = torch.device(device)
    bounds = window_bounds(face.num_frames, face.fps, window)
    keyframes = [start + select_keyframes(face.frames[start:end], data.frames, data.keyframes) for start, end in bounds]
    clips = np.stack([face.frames[k] for k in keyframes])  # (W, T, S, S, 3)

    probabilities, attention, stage = [], [], None
    for first in range(0, len(clips), batch_size):
        batch = torch.from_numpy(clips[first : first + batch_size]).to(device)
        x = eval_transform(batch, crop=data.crop)
        with eval_mode(model):
            seen = model.inspect(x)
        probabilities.append(torch.softmax(seen.logits.float(), dim=1).cpu().numpy().astype(np.float64))
        if seen.attention:
            if stage is None:
                stage = attention_stage or list(seen.attention)[-1]
                if stage not in seen.attention:
                    raise ValueError(f"model has no attention at {stage!r} (has {', '.join(seen.attention)})")
            attention.append(attention_per_keyframe(seen.attention[stage], data.frames, data.crop))
    probabilities = np.concatenate(probabilities)
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
        class_names=class_names_for(config),
        probabilities=probabilities.mean(axis=0),
        windows=windows,
        face=face,
        keyframe_crops=np.ascontiguousarray(_centre_crop(clips, data.crop)),
        attention=np.concatenate(attention) if attention else None,
        attention_stage=stage,
    )


def predict_video(
    model: nn.Module,
    config: Config,
    path: str | os.PathLike,
    window: float | None = None,
    device: str | torch.device = "cpu",
    attention_stage: str | None = None,
    **face_options: Any,
) -> VideoPrediction:
    """Follow the face in the video at ``path`` and classify it (see the module docstring).

    ``face_options`` go to :func:`tdrag.data.video.extract_face_clip` (detect_every, margin, ...).
    Raises ``tdrag.data.video.VideoError`` / ``NoFaceError`` naming the file for unusable input.
    """
    face = extract_face_clip(path, size=config.data.size, **face_options)
    if face.coverage < 0.5:
        log.warning("%s: the face was detected on only %.0f%% of the sampled frames", face.path, 100 * face.coverage)
    return predict_face_clip(model, config, face, window=window, device=device, attention_stage=attention_stage)


# --------------------------------------------------------------------------------------------
# Drawing


def attention_overlay(
    frames: np.ndarray,
    maps: np.ndarray,
    alpha: float = 0.45,
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Blend a JET heatmap of ``maps`` over ``frames``.

    Args:
        frames: ``(N, H, W, 3)`` uint8 RGB.
        maps: ``(N, H, W)`` float.
        alpha: weight of the heatmap.
        value_range: (low, high) mapped to the colormap's ends; default the min and max over all
            of ``maps``, so keyframes of one video share a scale and stay comparable.
    Returns:
        ``(N, H, W, 3)`` uint8 RGB.
    """
    low, high = value_range if value_range is not None else (float(maps.min()), float(maps.max()))
    scaled = np.clip((maps - low) / max(high - low, 1e-8), 0, 1)
    out = np.empty_like(frames)
    for i in range(len(frames)):
        heat = cv2.applyColorMap((scaled[i] * 255).astype(np.uint8), cv2.COLORMAP_JET)  # BGR
        heat = cv2.cvtColor(heat, cv2.COLOR_BGR2RGB)
        out[i] = cv2.addWeighted(frames[i], 1 - alpha, heat, alpha, 0)
    return out


def overlay_frames(prediction: VideoPrediction) -> np.ndarray:
    """``(W, T, crop, crop, 3)`` uint8 RGB: keyframes under their attention heatmap (the plain
    crops for models without attention)."""
    crops = prediction.keyframe_crops
    if prediction.attention is None:
        return crops.copy()
    flat = crops.reshape((-1,) + crops.shape[2:])
    return attention_overlay(flat, prediction.attention.reshape((-1,) + crops.shape[2:4])).reshape(crops.shape)


def _caption(panel: np.ndarray, text: str) -> np.ndarray:
    """``panel: (H, W, 3)`` RGB with a black caption bar of ``text`` below it."""
    bar = np.zeros((22, panel.shape[1], 3), np.uint8)
    cv2.putText(bar, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([panel, bar], axis=0)


def overlay_video_frames(prediction: VideoPrediction, panel: int = OVERLAY_PANEL) -> list[np.ndarray]:
    """Frames of the overlay video: per keyframe, the crop and its overlay side by side, with a
    caption naming the window, its time span and its top class. Each ``(panel + 22, 2 * panel, 3)``
    uint8 RGB (one panel wide for models without attention)."""
    overlays = overlay_frames(prediction)
    frames = []
    for w, window in enumerate(prediction.windows):
        top = int(np.argmax(window.probabilities))
        for t in range(overlays.shape[1]):
            parts = [prediction.keyframe_crops[w, t]]
            if prediction.attention is not None:
                parts.append(overlays[w, t])
            row = np.concatenate([cv2.resize(p, (panel, panel), interpolation=cv2.INTER_LINEAR) for p in parts], axis=1)
            text = (
                f"{window.start_s:.1f}-{window.end_s:.1f}s  key {t + 1}/{overlays.shape[1]}  "
                f"{prediction.class_names[top]} {window.probabilities[top]:.2f}"
            )
            frames.append(_caption(row, text))
    return frames


def keyframe_grid(prediction: VideoPrediction) -> np.ndarray:
    """``(W * crop, T * crop, 3)`` uint8 RGB: one row per window, one column per keyframe."""
    overlays = overlay_frames(prediction)
    return np.concatenate([np.concatenate(list(row), axis=1) for row in overlays], axis=0)


# --------------------------------------------------------------------------------------------
# Writing


def _named(class_names: tuple[str, ...], values: np.ndarray) -> dict[str, float]:
    return {name: float(v) for name, v in zip(class_names, values)}


def prediction_to_dict(
    prediction: VideoPrediction,
    config: Config,
    checkpoint: str | os.PathLike,
    outputs: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The JSON written for a video: plain types only."""
    face = prediction.face
    names = prediction.class_names
    return {
        "format": PREDICTION_FORMAT,
        "video": str(prediction.path),
        "model": config.model.name,
        "checkpoint": str(checkpoint),
        "classes": list(names),
        "probabilities": _named(names, prediction.probabilities),
        "top_class": prediction.top_class,
        "top_probability": float(prediction.probabilities[prediction.top_index]),
        "aggregation": "mean of the window probabilities",
        "fps": face.fps,
        "frames": face.num_frames,
        "duration_s": face.duration,
        "face": {
            "coverage": face.coverage,
            "sampled_frames": int(face.sampled.sum()),
            "detected_frames": int(face.detected.sum()),
            "tracks": face.num_tracks,
            "detector": "OpenCV Haar cascade haarcascade_frontalface_default.xml",
        },
        "input": {
            "keyframes": config.data.keyframes,
            "frames_per_window": config.data.frames,
            "size": config.data.size,
            "crop": config.data.crop,
        },
        "attention_stage": prediction.attention_stage,
        "windows": [
            {
                "index": w.index,
                "start_s": w.start_s,
                "end_s": w.end_s,
                "start_frame": w.start_frame,
                "end_frame": w.end_frame,
                "keyframes": [int(k) for k in w.keyframes],
                "probabilities": _named(names, w.probabilities),
                "top_class": names[int(np.argmax(w.probabilities))],
            }
            for w in prediction.windows
        ],
        "outputs": outputs or {},
    }


def write_prediction(
    prediction: VideoPrediction,
    config: Config,
    checkpoint: str | os.PathLike,
    out_dir: str | os.PathLike,
    stem: str | None = None,
) -> dict[str, Path]:
    """Write ``<stem>.json``, ``<stem>_overlay.mp4`` and ``<stem>_keyframes.png`` into ``out_dir``.

    Everything is first written into a hidden staging folder inside ``out_dir`` and renamed into
    place only when all three files exist, the JSON last (its presence means the set is complete);
    on any error the staging folder is removed and nothing new appears in ``out_dir``.

    Returns:
        ``{"json": path, "overlay_video": path, "keyframes_png": path}``.
    """
    out_dir = Path(out_dir)
    stem = stem or prediction.path.stem
    out_dir.mkdir(parents=True, exist_ok=True)
    names = {"overlay_video": f"{stem}_overlay.mp4", "keyframes_png": f"{stem}_keyframes.png"}
    _check_replaceable(out_dir, stem, names)
    staging = Path(tempfile.mkdtemp(prefix=f".predict-{stem}-", dir=out_dir))
    try:
        write_video(staging / names["overlay_video"], overlay_video_frames(prediction), OVERLAY_FPS)
        ok, png = cv2.imencode(".png", cv2.cvtColor(keyframe_grid(prediction), cv2.COLOR_RGB2BGR))
        if not ok:
            raise OSError(f"{out_dir / names['keyframes_png']}: PNG encoding failed")
        (staging / names["keyframes_png"]).write_bytes(png.tobytes())
        write_json(staging / f"{stem}.json", prediction_to_dict(prediction, config, checkpoint, outputs=names))
        paths = {key: out_dir / name for key, name in names.items()}
        for key, path in paths.items():
            os.replace(staging / path.name, path)
        paths["json"] = out_dir / f"{stem}.json"
        os.replace(staging / f"{stem}.json", paths["json"])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {"json": paths["json"], **{k: v for k, v in paths.items() if k != "json"}}
