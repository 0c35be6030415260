"""Drawing a video prediction: keyframes under their attention heatmap (OpenCV's JET colormap),
the overlay video's captioned frames, the bare keyframe grid (for figures that add their own
labels) and the labelled sheet written as ``<stem>_keyframes.png``."""

from __future__ import annotations

import cv2
import numpy as np

from tdrag.predict.inference import VideoPrediction

# Frames per second of the overlay video: one keyframe every quarter second is slow enough to see
# each heatmap, and a 16-keyframe window plays in 4 s.
OVERLAY_FPS = 4.0
# Side of each panel in the overlay video (the crop is upscaled to it, nearest-neighbour free).
OVERLAY_PANEL = 224
# The keyframe sheet: side of each keyframe's panel (a 112 px crop upscaled a little, so that its
# caption fits under it) and keyframes per line (16 keyframes: two lines of a page-wide 1152 px).
SHEET_PANEL = 144
SHEET_COLUMNS = 8
_CAPTION = 22
_FONT = cv2.FONT_HERSHEY_SIMPLEX


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


def _bar(width: int, text: str, height: int = _CAPTION, scale: float = 0.45) -> np.ndarray:
    """``(height, width, 3)`` black RGB bar with ``text`` in white on it (smaller when it would not fit)."""
    bar = np.zeros((height, width, 3), np.uint8)
    text_width = cv2.getTextSize(text, _FONT, scale, 1)[0][0]
    scale = max(0.3, scale * min(1.0, (width - 8) / max(text_width, 1)))
    cv2.putText(bar, text, (4, height - 6), _FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return bar


def _caption(panel: np.ndarray, text: str) -> np.ndarray:
    """``panel: (H, W, 3)`` RGB with a black caption bar of ``text`` below it."""
    return np.concatenate([panel, _bar(panel.shape[1], text)], axis=0)


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


def sheet_captions(prediction: VideoPrediction) -> dict:
    """The words of the keyframe sheet: ``{"title": str, "windows": [str] per window,
    "keyframes": [[str] per keyframe] per window}``. A keyframe is named by its index in the window
    and its time in the video; a window by its span and its top class with probability."""
    names, probs = prediction.class_names, prediction.probabilities
    stage = f"attention of {prediction.attention_stage}" if prediction.attention_stage else "no attention"
    title = (f"{prediction.path.name}: {prediction.top_class} {probs[prediction.top_index]:.2f} "
             f"(mean of {len(prediction.windows)} window(s)); {stage}")
    windows, keyframes = [], []
    for window in prediction.windows:
        top = int(np.argmax(window.probabilities))
        windows.append(f"window {window.index + 1}/{len(prediction.windows)}  {window.start_s:.1f}-{window.end_s:.1f} s"
                       f"  {names[top]} {window.probabilities[top]:.2f}")
        keyframes.append([f"key {t + 1}  {frame / prediction.face.fps:.2f} s"
                          for t, frame in enumerate(window.keyframes)])
    return {"title": title, "windows": windows, "keyframes": keyframes}


def keyframe_sheet(prediction: VideoPrediction, panel: int = SHEET_PANEL, columns: int = SHEET_COLUMNS) -> np.ndarray:
    """The labelled ``<stem>_keyframes.png``: a title line (the video's class and probability, the
    attention stage shown), then per window a header (span, top class, probability) over its
    keyframes under their attention, ``columns`` to a line, each ``panel`` px with its index and
    time beneath (:func:`sheet_captions`).

    Returns:
        ``(H, columns' * panel, 3)`` uint8 RGB, ``columns' = min(columns, T)``.
    """
    overlays = overlay_frames(prediction)
    words = sheet_captions(prediction)
    count = overlays.shape[1]
    columns = min(columns, count)
    width = columns * panel
    parts = [_bar(width, words["title"], height=30, scale=0.5)]
    for w, header in enumerate(words["windows"]):
        parts.append(_bar(width, header, height=26))
        tiles = [_caption(cv2.resize(overlays[w, t], (panel, panel), interpolation=cv2.INTER_LINEAR),
                          words["keyframes"][w][t]) for t in range(count)]
        tiles += [np.zeros_like(tiles[0])] * (-count % columns)  # an incomplete last line
        parts += [np.concatenate(tiles[i : i + columns], axis=1) for i in range(0, len(tiles), columns)]
    return np.concatenate(parts, axis=0)
