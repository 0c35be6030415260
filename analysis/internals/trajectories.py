"""How TDRAG decides over time: GRU hidden-state trajectories and per-step predictions.

The GRU reads one pooled feature vector per time step; its hidden state after step t is a point in
``hidden``-dimensional space and a clip traces a trajectory through it. A PCA fitted on all states
of a split (every clip, every step) projects the trajectories to 2-D. The classifier applied after
each step (``step_logits``) gives a readout per step: the *decision step* of a clip is the first
step from which its predicted class no longer changes (0 = decided from the first step).

What a step readout means depends on the model: with causal time, step s has seen keyframes up to
s only; otherwise every step already summarises the whole clip; and only a run trained per step
(``train.step_loss``) supervised the intermediate readouts. ``run.step_readout_meaning()``
(``tdrag.models.inspection.step_readout_meaning``) says which, and every view of them should show it.

Example::

    pca = fit_pca(run.hidden_states, k=2)
    traj = pca.transform(run.hidden_states)                   # (N, T_gru, 2)
    fig = plot_trajectories(traj, run.labels, run.class_names)
    steps = decision_steps(run.step_logits)                   # (N,)
    acc = accuracy_per_step(run.step_logits, run.labels, run.num_classes)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from analysis.plotting import class_colors, new_figure


def _numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


@dataclass
class PCA:
    """A fitted principal-component projection (numpy SVD, no scikit-learn).

    Attributes:
        mean: (D,) mean of the fitted states.
        components: (k, D) orthonormal principal axes, largest variance first.
        explained_variance_ratio: (k,) share of the total variance along each axis.
    """

    mean: np.ndarray
    components: np.ndarray
    explained_variance_ratio: np.ndarray

    def transform(self, states: np.ndarray | torch.Tensor) -> np.ndarray:
        """(..., D) -> (..., k) coordinates."""
        states = _numpy(states).astype(np.float64)
        return (states - self.mean) @ self.components.T


def fit_pca(states: np.ndarray | torch.Tensor, k: int = 2) -> PCA:
    """Fit a PCA on every state.

    Args:
        states: (N, T, D) hidden states (all steps of all clips are pooled) or (M, D).
        k: number of components (at most min(M, D)).
    """
    x = _numpy(states).astype(np.float64)
    x = x.reshape(-1, x.shape[-1])
    if x.shape[0] < 2:
        raise ValueError(f"PCA needs at least 2 states, got {x.shape[0]}")
    k = int(k)
    if not 1 <= k <= min(x.shape):
        raise ValueError(f"k={k} components out of range for {x.shape[0]} states of dimension {x.shape[1]}")
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    var = s**2
    total = var.sum()
    ratio = var[:k] / total if total > 0 else np.zeros(k)
    components = vt[:k]
    # Fix each axis's sign (largest-magnitude loading positive) so refits give the same picture.
    signs = np.sign(components[np.arange(k), np.abs(components).argmax(axis=1)])
    components = components * np.where(signs == 0, 1.0, signs)[:, None]
    return PCA(mean=mean, components=components, explained_variance_ratio=ratio)


def class_mean_trajectories(
    trajectories: np.ndarray | torch.Tensor, labels: Sequence[int] | np.ndarray, num_classes: int
) -> np.ndarray:
    """Mean trajectory per true class.

    Args:
        trajectories: (N, T, k) projected (or raw (N, T, D)) states.
        labels: (N,) class indices.
        num_classes: C, the run's number of classes.
    Returns:
        (C, T, k) float64, NaN rows for classes without clips.
    """
    traj = _numpy(trajectories).astype(np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape[0] != traj.shape[0]:
        raise ValueError(f"{traj.shape[0]} trajectories but {labels.shape[0]} labels")
    means = np.full((num_classes, *traj.shape[1:]), np.nan)
    for c in range(num_classes):
        if (labels == c).any():
            means[c] = traj[labels == c].mean(axis=0)
    return means


def step_predictions(step_logits: np.ndarray | torch.Tensor) -> np.ndarray:
    """(N, T, C) per-step logits -> (N, T) int64 predicted class after each step."""
    logits = _numpy(step_logits)
    if logits.ndim != 3:
        raise ValueError(f"step logits must be (N, T, C), got shape {logits.shape}")
    return logits.argmax(axis=2).astype(np.int64)


def decision_steps(steps: np.ndarray | torch.Tensor) -> np.ndarray:
    """First GRU step from which each clip's predicted class no longer changes.

    Args:
        steps: (N, T, C) per-step logits or (N, T) per-step predicted classes.
    Returns:
        (N,) int64 in 0..T-1 (0-based; T-1 means the class changed at the very last step).
    """
    preds = _numpy(steps)
    if preds.ndim == 3:
        preds = step_predictions(preds)
    if preds.ndim != 2 or preds.shape[1] == 0:
        raise ValueError(f"expected (N, T) predictions or (N, T, C) logits, got shape {preds.shape}")
    differs = preds != preds[:, -1:]  # steps whose prediction is not the final one
    num_steps = preds.shape[1]
    # Last step that differs from the final prediction, plus one; 0 when none differs.
    last_differing = num_steps - 1 - np.argmax(differs[:, ::-1], axis=1)
    return np.where(differs.any(axis=1), last_differing + 1, 0).astype(np.int64)


def accuracy_per_step(
    steps: np.ndarray | torch.Tensor,
    labels: Sequence[int] | np.ndarray,
    num_classes: int,
) -> pd.DataFrame:
    """Accuracy of the prediction available after each GRU step.

    Args:
        steps: (N, T, C) per-step logits or (N, T) per-step predicted classes.
        labels: (N,) true classes.
        num_classes: C, the run's number of classes (labels must lie in 0..C-1).
    Returns:
        DataFrame with one row per step: step (1-based, as in "after step t"), war (overall
        accuracy) and uar (mean recall over the classes present).
    """
    preds = _numpy(steps)
    if preds.ndim == 3:
        preds = step_predictions(preds)
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape[0] != preds.shape[0]:
        raise ValueError(f"{preds.shape[0]} clips of predictions but {labels.shape[0]} labels")
    if labels.size == 0:
        raise ValueError("accuracy_per_step: no clips")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must lie in 0..{num_classes - 1}, got {int(labels.min())}..{int(labels.max())}")
    correct = preds == labels[:, None]  # (N, T)
    present = [c for c in range(num_classes) if (labels == c).any()]
    uar = np.mean([correct[labels == c].mean(axis=0) for c in present], axis=0)
    return pd.DataFrame({"step": np.arange(1, preds.shape[1] + 1), "war": correct.mean(axis=0), "uar": uar})


def decision_step_table(
    steps: np.ndarray | torch.Tensor,
    labels: Sequence[int] | np.ndarray,
    class_names: Sequence[str],
) -> pd.DataFrame:
    """Per-class summary of decision steps.

    Args:
        steps: (N, T, C) per-step logits or (N, T) per-step predictions.
        labels: (N,) true classes.
        class_names: the C class names in label order (the run's).
    Returns:
        DataFrame indexed by class (plus "all"): clips, mean and median decision step (0-based),
        share decided at step 0, and accuracy of the final prediction.
    """
    preds = _numpy(steps)
    if preds.ndim == 3:
        preds = step_predictions(preds)
    labels = np.asarray(labels, dtype=np.int64)
    decision = decision_steps(preds)
    correct = preds[:, -1] == labels
    records = []
    groups = [(name, labels == c) for c, name in enumerate(class_names)] + [("all", np.ones_like(labels, bool))]
    for name, sel in groups:
        if not sel.any():
            continue
        records.append(
            {
                "class": name,
                "clips": int(sel.sum()),
                "decision_step_mean": float(decision[sel].mean()),
                "decision_step_median": float(np.median(decision[sel])),
                "decided_at_start": float((decision[sel] == 0).mean()),
                "final_accuracy": float(correct[sel].mean()),
            }
        )
    return pd.DataFrame.from_records(records).set_index("class")


def label_pca_axes(ax, pca: "PCA | None") -> None:
    """Name a PC1/PC2 scatter's axes, with each component's share of the variance when known."""
    if pca is not None and pca.explained_variance_ratio.size >= 2:
        ev = pca.explained_variance_ratio
        ax.set_xlabel(f"PC1 ({100 * ev[0]:.1f}% var)")
        ax.set_ylabel(f"PC2 ({100 * ev[1]:.1f}% var)")
    else:
        ax.set_xlabel("PC1")
        ax.set_ylabel("PC2")


def plot_trajectories(
    trajectories: np.ndarray | torch.Tensor,
    labels: Sequence[int] | np.ndarray,
    class_names: Sequence[str],
    pca: PCA | None = None,
    max_per_class: int = 30,
    show_means: bool = True,
    title: str | None = None,
    seed: int = 0,
) -> Figure:
    """2-D trajectories coloured by true class, time marked by growing markers and an arrow.

    Thin faint lines are single clips (at most ``max_per_class`` per class, drawn at random with
    ``seed``); thick lines are class means, with dots growing and darkening with the step, a circle
    at the first step and an arrow into the last one.

    Args:
        trajectories: (N, T, >=2) projected states (``pca.transform(hidden_states)``).
        labels: (N,) true classes.
        class_names: the C class names in label order (the run's).
        pca: if given, its explained variance labels the axes.
    """
    traj = _numpy(trajectories).astype(np.float64)
    if traj.ndim != 3 or traj.shape[-1] < 2:
        raise ValueError(f"trajectories must be (N, T, >=2) projected states, got shape {traj.shape}")
    traj = traj[..., :2]
    labels = np.asarray(labels, dtype=np.int64)
    colours = class_colors(class_names)
    num_steps = traj.shape[1]
    rng = np.random.default_rng(seed)
    fig = new_figure(7.0, 5.5)
    ax = fig.subplots()
    for c in range(len(class_names)):
        idx = np.flatnonzero(labels == c)
        if idx.size > max_per_class:
            idx = rng.choice(idx, max_per_class, replace=False)
        for i in idx:
            ax.plot(traj[i, :, 0], traj[i, :, 1], color=colours[c], alpha=0.15, linewidth=0.8)
            ax.scatter(traj[i, -1, 0], traj[i, -1, 1], color=colours[c], alpha=0.3, s=8)
    if show_means:
        means = class_mean_trajectories(traj, labels, len(class_names))
        sizes = np.linspace(10, 60, num_steps)
        step_alpha = np.linspace(0.35, 1.0, num_steps)
        for c, name in enumerate(class_names):
            if np.isnan(means[c]).any():
                continue
            m = means[c]
            ax.plot(m[:, 0], m[:, 1], color=colours[c], linewidth=2.5, label=f"{name} (n={(labels == c).sum()})")
            for t in range(num_steps):
                ax.scatter(m[t, 0], m[t, 1], color=colours[c], s=sizes[t], alpha=step_alpha[t],
                           edgecolors="black", linewidths=0.4, zorder=3)
            ax.scatter(m[0, 0], m[0, 1], facecolors="white", edgecolors=colours[c], s=70, linewidths=2, zorder=4)
            if num_steps > 1:
                ax.annotate("", xy=m[-1], xytext=m[-2], zorder=5,
                            arrowprops=dict(arrowstyle="-|>", color=colours[c], lw=2.5, mutation_scale=18))
        ax.legend(fontsize=8, title="true class (mean)", title_fontsize=8, loc="best")
    label_pca_axes(ax, pca)
    ax.set_title(title or f"GRU hidden-state trajectories ({num_steps} steps; o = first step, arrow = last)")
    ax.grid(alpha=0.3)
    return fig


def plot_accuracy_per_step(table: pd.DataFrame, title: str | None = None) -> Figure:
    """Line plot of ``accuracy_per_step``'s WAR and UAR against the GRU step."""
    fig = new_figure(5.5, 3.8)
    ax = fig.subplots()
    for column, marker in (("war", "o"), ("uar", "s")):
        if column in table:
            ax.plot(table["step"], 100 * table[column], marker=marker, label=column.upper())
    ax.set_xlabel("GRU step (prediction after step t)")
    ax.set_ylabel("accuracy (%)")
    ax.set_xticks(table["step"])
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title or "Accuracy as a function of GRU step")
    return fig


def plot_decision_steps(
    steps: np.ndarray | torch.Tensor,
    labels: Sequence[int] | np.ndarray,
    class_names: Sequence[str],
    title: str | None = None,
) -> Figure:
    """Stacked histogram of decision steps (1-based on the axis), coloured by true class
    (``class_names``: the run's, in label order)."""
    preds = _numpy(steps)
    if preds.ndim == 3:
        preds = step_predictions(preds)
    labels = np.asarray(labels, dtype=np.int64)
    decision = decision_steps(preds) + 1
    num_steps = preds.shape[1]
    colours = class_colors(class_names)
    fig = new_figure(5.5, 3.8)
    ax = fig.subplots()
    bins = np.arange(0.5, num_steps + 1.5)
    present = [c for c in range(len(class_names)) if (labels == c).any()]
    ax.hist([decision[labels == c] for c in present], bins=bins, stacked=True,
            color=[colours[c] for c in present], label=[class_names[c] for c in present])
    ax.set_xlabel("decision step (prediction final from this GRU step on)")
    ax.set_ylabel("clips")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xticks(np.arange(1, num_steps + 1))
    ax.legend(fontsize=8, title="true class", title_fontsize=8)
    ax.set_title(title or "When the decision forms")
    return fig
