"""Drawing a video prediction: keyframes under their attention heatmap (OpenCV's JET colormap),
the overlay video's captioned frames and the keyframe grid of ``<stem>_keyframes.png``."""

from __future__ import annotations

import cv2
import numpy as np

from tdrag.predict.inference import VideoPrediction

# Frames per second of the overlay video: one keyframe every quarter second is slow enough to see
# each heatmap, and a 16-keyframe window plays in 4 s.
OVERLAY_FPS = 4.0
# Side of each panel in the overlay video (the crop is upscaled to it, nearest-neighbour free).
OVERLAY_PANEL = 224


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
