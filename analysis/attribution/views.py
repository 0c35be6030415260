"""Attribution maps drawn over the keyframes: maps scaled for an overlay, a keyframe strip per
method, and per-keyframe importance bars.

    fig = plot_attribution_strip(run.frames([i])[0], {"saliency": maps[0]})
    fig = plot_frame_importance(attribute(model, x, target, "frame_ablation"), names)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from analysis.internals.attention import plot_keyframe_strip
from analysis.plotting import new_figure


def _numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    return x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)


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
        clip: (T, H, W, 3) uint8 display frames or a (3, T, H, W) normalised input clip.
        maps: row name (e.g. the method) -> (T, H, W) raw attribution of that clip.
        frames: keyframes shown (default: up to 8 evenly spread).
    """
    fig = plot_keyframe_strip(clip, {name: overlay_scale(m) for name, m in maps.items()}, frames=frames, title=title)
    # plot_keyframe_strip labels its colour bar for attention; here the scale is |map| / max.
    colorbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    for ax in colorbars:
        ax.set_ylabel("|attribution| / clip max")
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


# ---- run-level views for the attribution notebook (lists of figures/tables, or a Note) ----------


def attribution_strips(run, label, method: str = "integrated_gradients", count: int = 4, small: bool = False) -> list:
    """``method``'s map of the predicted class over the keyframes, for the first ``count`` clips of
    class ``label``; the per-method defaults of :mod:`analysis.attribution.defaults`."""
    from analysis.attribution.attribute import attribute_clips
    from analysis.plotting import Note, class_index

    c = class_index(label, run.class_names)
    positions = run.positions_of_class(c)[: int(count)]
    if len(positions) == 0:
        return [Note(f"No {run.class_names[c]} clips in this split.")]
    maps = attribute_clips(run, positions, method, small=small)
    frames = run.frames(positions)
    figures = []
    for j, i in enumerate(positions):
        pred = int(run.predictions[i])
        title = f"{run.video_ids[i]}: {method} of '{run.class_names[pred]}' (p={float(run.probabilities[i, pred]):.2f})"
        figures.append(plot_attribution_strip(frames[j], {method: maps[j]}, title=title))
    return figures


def methods_side_by_side(run, label, methods, small: bool = False) -> list:
    """Several methods on the first clip of class ``label``, one row each."""
    from analysis.attribution.attribute import attribute_clips
    from analysis.plotting import Note, class_index

    c = class_index(label, run.class_names)
    positions = run.positions_of_class(c)[:1]
    if len(positions) == 0:
        return [Note(f"No {run.class_names[c]} clips in this split.")]
    i = int(positions[0])
    maps = {m: attribute_clips(run, [i], m, small=small)[0] for m in methods}
    return [plot_attribution_strip(run.frames([i])[0], maps, title=f"{run.video_ids[i]}: methods side by side")]


def keyframe_importance(run, label, count: int = 4) -> list:
    """Frame ablation of the predicted class for the first ``count`` clips of class ``label``."""
    from analysis.attribution.attribute import attribute_clips
    from analysis.plotting import Note, class_index

    c = class_index(label, run.class_names)
    positions = run.positions_of_class(c)[: int(count)]
    if len(positions) == 0:
        return [Note(f"No {run.class_names[c]} clips in this split.")]
    importance = attribute_clips(run, positions, "frame_ablation")
    return [plot_frame_importance(importance, [run.video_ids[i] for i in positions],
                                  title=f"Frame importance, {run.class_names[c]} clips")]


def faithfulness_table(run, methods, per_class: int = 2, small: bool = False, steps: int | None = None):
    """Deletion / insertion AUC, pointing game and relevance mass (synthetic data) per method and
    class, over the first ``per_class`` clips of each class (``faithfulness_summary``); ``steps``
    points per deletion/insertion curve (default 16, 4 when ``small``)."""
    import numpy as np
    import torch

    from analysis.attribution.defaults import run_method_options
    from analysis.attribution.faithfulness import faithfulness_summary

    positions = np.concatenate([run.positions_of_class(c)[: int(per_class)] for c in range(run.num_classes)])
    x = run.inputs(positions)
    labels = torch.as_tensor(run.labels[positions])
    masks = run.masks(positions) if run.synthetic else None
    options = {m: run_method_options(run, m, small=small) for m in methods}
    steps = (4 if small else 16) if steps is None else int(steps)
    return faithfulness_summary(run.model, x, labels, options, masks=masks, class_names=run.class_names, steps=steps)
