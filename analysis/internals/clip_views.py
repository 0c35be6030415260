"""Single-clip internals views: a clip's GRU trajectory against the class means and its class
probabilities over the GRU steps. Used by the class explorer, the trajectory notebook and the
dossier."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from analysis.internals.trajectories import PCA, label_pca_axes
from analysis.plotting import class_colors, new_figure


def _numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    return x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)


def plot_step_probabilities(
    step_probs: np.ndarray | torch.Tensor,
    label: int | None = None,
    *,
    class_names: Sequence[str],
    title: str | None = None,
) -> Figure:
    """Class probabilities after each GRU step of one clip.

    Args:
        step_probs: (T, C) softmax of ``step_logits`` of one clip (T = 1 for a model without GRU).
        label: the true class, drawn thicker and named in the legend.
        class_names: the C class names in label order (the run's).
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
    class_names: Sequence[str],
    pca: PCA | None = None,
    title: str | None = None,
) -> Figure:
    """One clip's 2-D hidden-state trajectory against its class mean (other class means faint).

    Args:
        clip_trajectory: (T, >=2) projected hidden states of the clip.
        class_means: (C, T, >=2) from ``analysis.internals.trajectories.class_mean_trajectories`` (NaN rows
            for absent classes are skipped).
        label: the clip's true class (whose mean is drawn dashed and thick).
        class_names: the C class names in label order (the run's).
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


