"""Single-clip views: its GRU trajectory against the class means, its class probabilities over the
GRU steps, and attribution maps scaled for an overlay. Used by the class explorer
(:mod:`analysis.widgets`) and the trajectory notebook.

Example::

    probs = result.step_logits[i].softmax(-1)                     # (T_gru, C)
    fig = plot_step_probabilities(probs, label=result.labels[i])
    fig = plot_clip_trajectory(traj[i], class_mean_trajectories(traj, labels), label=labels[i])
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from analysis.plots import class_colors, new_figure
from analysis.trajectories import PCA, label_pca_axes
from tdrag.data.labels import DFEW_CLASSES


def _numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    return x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)


def figure_png(fig: Figure, dpi: int = 80) -> bytes:
    """PNG bytes of a matplotlib Figure (for ipywidgets.Image and IPython.display.Image)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def overlay_scale(maps: np.ndarray | torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Scale one clip's attribution maps to [0, 1] for an overlay: ``|m| / max |m|``.

    Signed maps (Integrated Gradients, occlusion) are shown by magnitude: the overlay says where
    the evidence is, not its sign. One scale for the whole clip keeps frames comparable.

    Args:
        maps: (T, H, W) attribution of one clip.
    Returns:
        (T, H, W) float32 in [0, 1] (all zeros for an all-zero map).
    """
    m = torch.as_tensor(maps).detach().float().abs()
    return m / m.max().clamp_min(eps)


def plot_attribution_strip(
    clip: torch.Tensor,
    maps: Mapping[str, np.ndarray | torch.Tensor],
    title: str | None = None,
    frames: Sequence[int] | None = None,
) -> Figure:
    """Keyframes with one row per attribution map, each scaled by :func:`overlay_scale`.

    Args:
        clip: (3, T, H, W) normalised input clip.
        maps: row name (e.g. the method) -> (T, H, W) raw attribution of that clip.
        frames: keyframes shown (default: up to 8 evenly spread).
    """
    from analysis.attention import plot_keyframe_strip

    fig = plot_keyframe_strip(clip, {name: overlay_scale(m) for name, m in maps.items()}, frames=frames, title=title)
    # plot_keyframe_strip labels its colour bar for attention; here the scale is |map| / max.
    colorbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    for ax in colorbars:
        ax.set_ylabel("|attribution| / clip max")
    return fig


def plot_step_probabilities(
    step_probs: np.ndarray | torch.Tensor,
    label: int | None = None,
    class_names: Sequence[str] = DFEW_CLASSES,
    title: str | None = None,
) -> Figure:
    """Class probabilities after each GRU step of one clip.

    Args:
        step_probs: (T, C) softmax of ``step_logits`` of one clip (T = 1 for a model without GRU).
        label: the true class, drawn thicker and named in the legend.
    """
    probs = _numpy(step_probs)
    if probs.ndim != 2 or probs.shape[1] != len(class_names):
        raise ValueError(f"step_probs must be (T, {len(class_names)}), got shape {probs.shape}")
    steps = np.arange(1, probs.shape[0] + 1)
    colours = class_colors(class_names)
    fig = new_figure(5.2, 3.6)
    ax = fig.subplots()
    for c, name in enumerate(class_names):
        true = label is not None and c == int(label)
        ax.plot(steps, probs[:, c], marker="o", markersize=3 + 2 * true, linewidth=3.0 if true else 1.3,
                color=colours[c], label=f"{name} (true)" if true else name, zorder=3 if true else 2)
    ax.set_xlabel("GRU step (prediction after step t)")
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1)
    ax.set_xticks(steps)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="upper left")
    ax.set_title(title or "Class probabilities over time", fontsize=10)
    return fig


def plot_clip_trajectory(
    clip_trajectory: np.ndarray | torch.Tensor,
    class_means: np.ndarray,
    label: int,
    class_names: Sequence[str] = DFEW_CLASSES,
    pca: PCA | None = None,
    title: str | None = None,
) -> Figure:
    """One clip's 2-D hidden-state trajectory against its class mean (other class means faint).

    Args:
        clip_trajectory: (T, >=2) projected hidden states of the clip.
        class_means: (C, T, >=2) from ``analysis.trajectories.class_mean_trajectories`` (NaN rows
            for absent classes are skipped).
        label: the clip's true class (whose mean is drawn dashed and thick).
        pca: labels the axes with their explained variance when given.
    """
    traj = _numpy(clip_trajectory)[:, :2]
    means = np.asarray(class_means, dtype=np.float64)[..., :2]
    colours = class_colors(class_names)
    label = int(label)
    fig = new_figure(5.2, 3.6)
    ax = fig.subplots()
    for c, name in enumerate(class_names):
        if c == label or np.isnan(means[c]).any():
            continue
        ax.plot(means[c, :, 0], means[c, :, 1], color=colours[c], alpha=0.35, linewidth=1.2, label=f"{name} mean")
    if not np.isnan(means[label]).any():
        ax.plot(means[label, :, 0], means[label, :, 1], color=colours[label], linestyle="--", linewidth=2.5,
                label=f"{class_names[label]} mean (true class)")
    ax.plot(traj[:, 0], traj[:, 1], color="black", linewidth=2.0, marker="o", markersize=4, label="this clip", zorder=4)
    ax.scatter(traj[0, 0], traj[0, 1], facecolors="white", edgecolors="black", s=70, linewidths=1.5, zorder=5)
    if len(traj) > 1:
        ax.annotate("", xy=traj[-1], xytext=traj[-2], zorder=6,
                    arrowprops=dict(arrowstyle="-|>", color="black", lw=2.0, mutation_scale=16))
    label_pca_axes(ax, pca)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    ax.set_title(title or "GRU trajectory (o = first step, arrow = last)", fontsize=10)
    return fig


def plot_frame_importance(
    importance: np.ndarray | torch.Tensor,
    names: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Per-keyframe importance (e.g. ``frame_ablation``) of a few clips as grouped bars.

    Args:
        importance: (B, T) logit drop per keyframe (signed: > 0 means the frame helped).
        names: B clip names for the legend.
    """
    values = _numpy(importance)
    if values.ndim != 2:
        raise ValueError(f"importance must be (B, T), got shape {values.shape}")
    b, t = values.shape
    names = list(names) if names is not None else [f"clip {i}" for i in range(b)]
    width = 0.8 / max(b, 1)
    fig = new_figure(max(5.0, 0.5 * t + 2.5), 3.4)
    ax = fig.subplots()
    for i in range(b):
        ax.bar(np.arange(t) + (i - (b - 1) / 2) * width, values[i], width=width, label=names[i])
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(np.arange(t))
    ax.set_xlabel("keyframe")
    ax.set_ylabel("logit drop when replaced")
    ax.grid(axis="y", alpha=0.3)
    if b <= 10:
        ax.legend(fontsize=7)
    ax.set_title(title or "Frame importance (frame ablation)", fontsize=10)
    return fig


def message_figure(text: str, width: float = 5.2, height: float = 3.6) -> Figure:
    """A blank figure carrying one message (e.g. "this model has no GRU")."""
    fig = new_figure(width, height)
    ax = fig.subplots()
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=11)
    return fig
