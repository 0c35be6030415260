"""The views of one class's dossier page, each a figure, a table or a :class:`~analysis.plotting.Note`
computed from an opened run (its one cached inspection pass; attributions where asked):

    run = open_run("runs/demo/run")
    class_metrics(run, "Sad")                      # precision, recall, F1, support (tdrag.metrics)
    confusion_row(run, "Sad")                      # Sad clips predicted as..., and clips mistaken for Sad
    plot_clip_evidence(run, run.most_confident("Sad")[0], "integrated_gradients")
    plot_class_attention(run, "Sad")               # the class-mean attention per stage
    plot_class_trajectories(run, "Sad")            # against its nearest competitor class
    plot_class_frame_importance(run, "Sad")        # per-keyframe importance (frame ablation)
    ground_truth_agreement(run, "Sad", "saliency") # synthetic data: attention / attribution vs the masks

``python -m analysis dossier`` runs ``notebooks/dossier_class.ipynb`` (a short sequence of these
calls) once per class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from analysis.attribution.attribute import attribute_clips
from analysis.attribution.faithfulness import pointing_game
from analysis.attribution.methods import FRAME_METHODS
from analysis.attribution.views import overlay_scale, plot_frame_importance
from analysis.internals.attention import plot_keyframe_strip, select_keyframes_to_show
from analysis.internals.ground_truth import mass_in_mask
from analysis.internals.trajectories import fit_pca, plot_trajectories
from analysis.plotting import Note, class_index, new_figure
from tdrag import metrics


def class_summary(run) -> pd.DataFrame:
    """Every class of the run: support, predicted, precision, recall, F1 (``tdrag.metrics.per_class``
    over the run's analysed clips), indexed by class name."""
    figures = metrics.per_class(run.labels, run.predictions, run.num_classes)
    return pd.DataFrame({k: figures[k] for k in ("support", "predicted", "precision", "recall", "f1")},
                        index=pd.Index(list(run.class_names), name="class"))


def class_metrics(run, label: int | str) -> pd.DataFrame:
    """One row: the class's precision, recall, F1 and support, next to the run's WAR and UAR."""
    c = class_index(label, run.class_names)
    row = class_summary(run).iloc[[c]].copy()
    row["WAR (all classes)"] = metrics.war(run.labels, run.predictions, run.num_classes)
    row["UAR (all classes)"] = metrics.uar(run.labels, run.predictions, run.num_classes)
    return row


def confusion_row(run, label: int | str) -> pd.DataFrame:
    """The class's confusion-matrix row and column, one line per class.

    Columns: ``predicted as`` (clips of this class predicted as each class), ``% of class`` (that
    row, row-normalised: ``tdrag.metrics.normalize_rows``) and ``mistaken for it`` (clips of each
    other class predicted as this one: the column).
    """
    c = class_index(label, run.class_names)
    counts = metrics.confusion_matrix(run.labels, run.predictions, run.num_classes)
    rates = metrics.normalize_rows(counts)
    name = run.class_names[c]
    return pd.DataFrame({f"{name} predicted as": counts[c], f"% of {name}": 100.0 * rates[c],
                         f"mistaken for {name}": counts[:, c]},
                        index=pd.Index(list(run.class_names), name="class"))


def nearest_competitor(run, label: int | str) -> int:
    """The other class that the class's clips give the most probability on average (ties: the lower
    index); the class it is most easily taken for."""
    c = class_index(label, run.class_names)
    positions = run.positions_of_class(c)
    if len(positions) == 0 or run.num_classes < 2:
        return (c + 1) % max(run.num_classes, 1)
    mean = run.probabilities[positions].mean(dim=0).clone()
    mean[c] = -1.0
    return int(mean.argmax())


def plot_clip_evidence(run, position: int, method: str = "integrated_gradients", small: bool = False,
                       frames_shown: int = 8) -> Figure:
    """One clip's keyframes, each attention stage over them (from the cached pass) and one
    attribution of the predicted class (scaled by ``|map| / clip max``)."""
    i = int(position)
    images = run.frames([i])[0]
    maps = {f"attention\n{stage}": m[0] for stage, m in run.attention_maps([i]).items()}
    if method not in FRAME_METHODS:
        maps[method.replace("_", " ")] = overlay_scale(attribute_clips(run, [i], method, small=small)[0])
    label, pred = int(run.labels[i]), int(run.predictions[i])
    p = float(run.probabilities[i, pred])
    title = (f"{run.video_ids[i]}: true {run.class_names[label]}, predicted {run.class_names[pred]} (p={p:.2f}); "
             f"{method.replace('_', ' ')} of the prediction")
    return plot_keyframe_strip(images, maps, frames=select_keyframes_to_show(images.shape[0], frames_shown), title=title)


def clip_evidence(run, label: int | str, correct: bool = True, count: int = 3, method: str = "integrated_gradients",
                  small: bool = False) -> list:
    """:func:`plot_clip_evidence` of the class's most confident correct clips (``correct=True``) or
    its most confusing wrong ones, or ``[Note]`` when there are none."""
    c = class_index(label, run.class_names)
    positions = run.most_confident(c, correct=correct, count=count)
    if len(positions) == 0:
        kind = "correctly classified" if correct else "misclassified"
        return [Note(f"No {kind} {run.class_names[c]} clips among the {len(run.positions_of_class(c))} analysed.")]
    return [plot_clip_evidence(run, int(i), method, small=small) for i in positions]


def plot_class_attention(run, label: int | str) -> Figure | Note:
    """The class-mean attention map of each stage (over the class's clips, averaged over time)."""
    c = class_index(label, run.class_names)
    if not run.has_attention:
        return Note(f"`{run.config.model.name}` has no attention stages.")
    positions = run.positions_of_class(c)
    if len(positions) == 0:
        return Note(f"No {run.class_names[c]} clips in this split.")
    stages = list(run.attention)
    fig = new_figure(2.6 * len(stages) + 0.8, 2.9)
    axes = fig.subplots(1, len(stages), squeeze=False)[0]
    image = None
    for ax, stage in zip(axes, stages):
        mean = run.attention_maps(positions, [stage])[stage].mean(dim=(0, 1))
        image = ax.imshow(mean.numpy(), cmap="viridis", vmin=0.0, vmax=1.0)
        ax.set_title(stage, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="mean attention")
    fig.suptitle(f"{run.class_names[c]}: mean attention per stage over {len(positions)} clips (averaged over time)",
                 fontsize=10)
    return fig


def plot_class_trajectories(run, label: int | str, competitor: int | str | None = None) -> Figure | Note:
    """GRU hidden-state trajectories (a PCA plane fitted on every analysed clip) of the class and of
    its nearest competitor (:func:`nearest_competitor` unless given), with both class means."""
    c = class_index(label, run.class_names)
    if not run.has_gru:
        return Note(f"`{run.config.model.name}` has no GRU: no hidden-state trajectories.")
    other = nearest_competitor(run, c) if competitor is None else class_index(competitor, run.class_names)
    pca = fit_pca(run.hidden_states, k=2)
    traj = pca.transform(run.hidden_states)
    keep = np.isin(run.labels, [c, other])
    if not keep.any():
        return Note(f"No {run.class_names[c]} or {run.class_names[other]} clips in this split.")
    return plot_trajectories(traj[keep], run.labels[keep], run.class_names, pca=pca,
                             title=f"{run.class_names[c]} against its nearest competitor, {run.class_names[other]}")


def plot_class_frame_importance(run, label: int | str, count: int = 6) -> Figure | Note:
    """Per-keyframe importance (frame ablation: the drop of the predicted logit when a keyframe
    becomes the mean colour) of up to ``count`` clips of the class."""
    c = class_index(label, run.class_names)
    positions = run.positions_of_class(c)[: int(count)]
    if len(positions) == 0:
        return Note(f"No {run.class_names[c]} clips in this split.")
    importance = attribute_clips(run, positions, "frame_ablation")
    return plot_frame_importance(importance, [run.video_ids[i] for i in positions],
                                 title=f"{run.class_names[c]}: keyframe importance (frame ablation of the prediction)")


def ground_truth_agreement(run, label: int | str, method: str = "integrated_gradients", small: bool = False,
                           count: int | None = None) -> pd.DataFrame | Note:
    """On synthetic data: how much of the class's attention (each stage) and of ``method``'s
    attribution falls inside the ground-truth masks.

    Columns: ``mass_in_mask`` (mean share of positive mass inside: ``mass_in_mask``), ``mask_area``
    (the share a uniform map gets: chance), ``ratio`` (> 1: concentrated on the ground truth) and
    ``pointing_game`` (the frames whose maximum falls inside), over the class's clips.
    """
    c = class_index(label, run.class_names)
    if not run.synthetic:
        return Note("No ground-truth masks for this dataset (only the synthetic data has them).")
    positions = run.positions_of_class(c)
    if count is not None:
        positions = positions[: int(count)]
    if len(positions) == 0:
        return Note(f"No {run.class_names[c]} clips in this split.")
    masks = run.masks(positions)
    area = float(masks.flatten(1).float().mean(1).mean())
    maps = {f"attention {stage}": m for stage, m in run.attention_maps(positions).items()}
    if method not in FRAME_METHODS:
        maps[method] = attribute_clips(run, positions, method, small=small)
    records = []
    for name, m in maps.items():
        share = float(torch.nanmean(mass_in_mask(m, masks)))
        records.append({"map": name, "clips": len(positions), "mass_in_mask": share, "mask_area": area,
                        "ratio": share / area if area > 0 else float("nan"),
                        "pointing_game": float(torch.nanmean(pointing_game(m, masks)))})
    return pd.DataFrame.from_records(records).set_index("map")


__all__: Sequence[str] = [
    "class_metrics", "class_summary", "clip_evidence", "confusion_row", "ground_truth_agreement",
    "nearest_competitor", "plot_class_attention", "plot_class_frame_importance", "plot_class_trajectories",
    "plot_clip_evidence",
]
