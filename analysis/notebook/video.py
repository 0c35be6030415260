"""Figures for ``tdrag.predict.inference`` results: the followed face and the prediction over windows.

Used by ``notebooks/07_your_video.ipynb``; each function returns a matplotlib Figure.
"""

from __future__ import annotations

import os

import numpy as np
from matplotlib.figure import Figure

from analysis.plotting import class_colors, new_figure
from tdrag.predict.drawing import keyframe_grid
from tdrag.predict.faces import FaceClip
from tdrag.predict.inference import VideoPrediction
from tdrag.runs.checkpoints import CheckpointChoice, select_checkpoint


def checkpoint_for(run_dir: str | os.PathLike, which: str = "auto") -> CheckpointChoice:
    """The checkpoint of ``run_dir`` (a run dir or a ``.pt`` file) the video notebook uses, and why.

    ``tdrag.runs.checkpoints.select_checkpoint``: best.pt only when chosen on a held-out validation
    split, otherwise last.pt. Nothing is trained here: a missing run raises ``CheckpointError``
    naming the path (the notebook's ``DEMO = True`` asks ``tdrag.train.demo.ensure_demo`` for one).
    """
    return select_checkpoint(run_dir, which)


def plot_face_track(face: FaceClip, samples: int = 8) -> Figure:
    """Where the crop box went (centre and side per frame; dots where the face was detected)
    above a row of evenly spaced face crops."""
    fig = new_figure(10, 5.2)
    grid = fig.add_gridspec(2, 1, height_ratios=[1.1, 1])
    ax = fig.add_subplot(grid[0])
    t = np.arange(face.num_frames) / face.fps
    for k, (name, colour) in enumerate([("centre x", "C0"), ("centre y", "C1"), ("side", "C2")]):
        ax.plot(t, face.boxes[:, k], color=colour, label=name)
        ax.plot(t[face.detected], face.boxes[face.detected, k], ".", color=colour, markersize=4)
    missed = face.sampled & ~face.detected
    if missed.any():
        ax.plot(t[missed], np.zeros(missed.sum()), "x", color="k", label="no face detected")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("pixels (source video)")
    ax.set_title(
        f"{face.path.name}: face detected on {100 * face.coverage:.0f}% of {int(face.sampled.sum())} sampled "
        f"frames, {face.num_tracks} track(s)"
    )
    ax.legend(loc="upper right", fontsize=8, ncol=4)
    strip = fig.add_subplot(grid[1])
    picks = np.linspace(0, face.num_frames - 1, min(samples, face.num_frames)).round().astype(int)
    strip.imshow(np.concatenate([face.frames[i] for i in picks], axis=1))
    strip.set_xticks([(i + 0.5) * face.frames.shape[2] for i in range(len(picks))])
    strip.set_xticklabels([f"{p / face.fps:.1f} s" for p in picks])
    strip.set_yticks([])
    strip.set_title("face crops (what the model is given, before its centre crop)")
    return fig


def plot_video_prediction(prediction: VideoPrediction, max_windows: int = 4) -> Figure:
    """Keyframes under their attention heatmap (one row per window, up to ``max_windows``) and
    the class probabilities of every window and of the whole video."""
    windows = prediction.windows
    names = prediction.class_names
    colours = class_colors(names)
    shown = min(len(windows), max_windows)
    grid_image = keyframe_grid(prediction)[: shown * prediction.keyframe_crops.shape[2]]
    fig = new_figure(11, 2.0 * shown + 3.2)
    spec = fig.add_gridspec(2, 2, height_ratios=[1.6 * shown, 3], width_ratios=[3, 1])
    ax = fig.add_subplot(spec[0, :])
    ax.imshow(grid_image)
    crop = prediction.keyframe_crops.shape[2]
    ax.set_yticks([(i + 0.5) * crop for i in range(shown)])
    ax.set_yticklabels([f"{w.start_s:.1f}-{w.end_s:.1f} s" for w in windows[:shown]])
    ax.set_xticks([(i + 0.5) * crop for i in range(prediction.keyframe_crops.shape[1])])
    ax.set_xticklabels([str(i + 1) for i in range(prediction.keyframe_crops.shape[1])])
    ax.set_xlabel("keyframe")
    stage = prediction.attention_stage
    ax.set_title(
        f"attention ({stage}) over each window's keyframes" if stage else "keyframes (this model has no attention maps)"
    )
    probs = np.stack([w.probabilities for w in windows])  # (W, C)
    centres = np.array([(w.start_s + w.end_s) / 2 for w in windows])
    over_time = fig.add_subplot(spec[1, 0])
    for c, name in enumerate(names):
        over_time.plot(centres, probs[:, c], "o-", color=colours[c], label=name)
    over_time.set_xlabel("window centre (s)")
    over_time.set_ylabel("probability")
    over_time.set_ylim(0, 1)
    over_time.set_title("per window")
    over_time.legend(fontsize=7, ncol=2)
    overall = fig.add_subplot(spec[1, 1])
    overall.barh(list(names)[::-1], prediction.probabilities[::-1], color=colours[::-1])
    overall.set_xlim(0, 1)
    overall.set_title(f"whole video: {prediction.top_class}")
    return fig


def windows_table(summary: dict):
    """The windows of a prediction JSON (``write_prediction``'s) as a table: seconds, top class, probability."""
    import pandas as pd

    return pd.DataFrame([{"window": w["index"] + 1, "seconds": f"{w['start_s']:.1f}-{w['end_s']:.1f}",
                          "top class": w["top_class"], "probability": round(w["probabilities"][w["top_class"]], 3)}
                         for w in summary["windows"]]).set_index("window")
