"""The views of one class's dossier page, each a figure, a table or a :class:`~analysis.plotting.Note`
computed from an opened run (its one cached inspection pass; attributions where asked):

    run = open_run("runs/demo/run")
    class_metrics(run, "Sad")                      # precision, recall, F1, support (tdrag.metrics)
    confusion_row(run, "Sad")                      # Sad clips predicted as..., and clips mistaken for Sad
    clip_evidence(run, "Sad", method="gradcam")    # its most confident clips: strips and animations
    plot_class_attention(run, "Sad")               # the class-mean attention per stage
    plot_class_trajectories(run, "Sad")            # against its nearest competitor class
    plot_class_frame_importance(run, "Sad")        # per-keyframe importance (frame ablation)
    scores = class_scores(run, "Sad", "saliency")  # one pass: regions and (synthetic) ground truth
    ground_truth_agreement(scores)                 # attention / attribution against the masks
    region_profile_view(scores, "Sad")             # which facial regions the evidence sits in

``python -m analysis dossier`` runs ``notebooks/dossier_class.ipynb`` (a short sequence of these
calls) once per class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from analysis.attribution.animation import Animation, animate
from analysis.attribution.attribute import attribute_clips
from analysis.attribution.methods import FRAME_METHODS, TITLES
from analysis.attribution.views import overlay_scale, plot_frame_importance
from analysis.internals.attention import plot_keyframe_strip, select_keyframes_to_show
from analysis.internals.trajectories import fit_pca, plot_trajectories
from analysis.plotting import Note, class_index, new_figure
from analysis.report.region_profile import (SOURCES, MapScores, agreement_table, plot_region_profile, region_profile,
                                            score_maps)
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


def clip_maps(run, position: int, method: str = "integrated_gradients", small: bool = False) -> dict[str, torch.Tensor]:
    """One clip's maps as shown: each attention stage (from the cached pass) and ``method``'s
    attribution of the predicted class scaled by ``|map| / clip max``; name -> ``(T, crop, crop)``."""
    i = int(position)
    maps = {f"attention {stage}": m[0] for stage, m in run.attention_maps([i]).items()}
    if method not in FRAME_METHODS:
        maps[TITLES.get(method, method)] = overlay_scale(attribute_clips(run, [i], method, small=small)[0])
    return maps


def plot_clip_evidence(run, position: int, method: str = "integrated_gradients", small: bool = False,
                       frames_shown: int = 8, maps: dict[str, torch.Tensor] | None = None) -> Figure:
    """One clip's keyframes, each attention stage over them (from the cached pass) and one
    attribution of the predicted class (scaled by ``|map| / clip max``); ``maps`` from
    :func:`clip_maps` when already computed."""
    i = int(position)
    images = run.frames([i])[0]
    maps = clip_maps(run, i, method, small) if maps is None else maps
    label, pred = int(run.labels[i]), int(run.predictions[i])
    p = float(run.probabilities[i, pred])
    title = (f"{run.video_ids[i]}: true {run.class_names[label]}, predicted {run.class_names[pred]} (p={p:.2f}); "
             f"{TITLES.get(method, method)} of the prediction")
    rows = {name.replace("attention ", "attention\n"): m for name, m in maps.items()}
    return plot_keyframe_strip(images, rows, frames=select_keyframes_to_show(images.shape[0], frames_shown), title=title)


def clip_animation_of(run, position: int, maps: dict[str, torch.Tensor], stage: str | None = None) -> Animation:
    """The clip as motion (:mod:`analysis.attribution.animation`): its keyframes, the attention of
    ``stage`` (default the deepest) and the attribution among ``maps`` (from :func:`clip_maps`)."""
    stages = [name for name in maps if name.startswith("attention ")]
    keep = f"attention {stage}" if stage else (stages[-1] if stages else None)
    if keep is not None and keep not in maps:
        raise ValueError(f"no attention stage {stage!r}; the model has {[s.split(' ', 1)[1] for s in stages]}")
    return animate(run, position, {name: m for name, m in maps.items() if name == keep or name not in stages})


def clip_evidence(run, label: int | str, correct: bool = True, count: int = 3, method: str = "integrated_gradients",
                  small: bool = False, stage: str | None = None) -> list:
    """For the class's most confident correct clips (``correct=True``) or its most confusing wrong
    ones: each clip's :func:`plot_clip_evidence` strip followed by its animation (the attention of
    ``stage``, default the deepest, and the attribution; GIF with an MP4 link); ``[Note]`` when
    there are none."""
    c = class_index(label, run.class_names)
    positions = run.most_confident(c, correct=correct, count=count)
    if len(positions) == 0:
        kind = "correctly classified" if correct else "misclassified"
        return [Note(f"No {kind} {run.class_names[c]} clips among the {len(run.positions_of_class(c))} analysed.")]
    shown: list = []
    for i in positions:
        maps = clip_maps(run, int(i), method, small)
        shown += [plot_clip_evidence(run, int(i), method, maps=maps), clip_animation_of(run, int(i), maps, stage)]
    return shown


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


def class_scores(run, label: int | str, method: str = "integrated_gradients", small: bool = False,
                 count: int | None = None) -> MapScores:
    """One pass over the class's clips (the first ``count``; all by default) scoring each attention
    stage and ``method``'s attribution against the facial regions and, on synthetic data, the ground
    truth (:func:`analysis.report.region_profile.score_maps`): what :func:`ground_truth_agreement` and
    :func:`region_profile_view` show."""
    c = class_index(label, run.class_names)
    positions = run.positions_of_class(c)
    if count is not None:
        positions = positions[: int(count)]
    return score_maps(run, positions, [method], small=small)


def ground_truth_agreement(scores: MapScores, digits: int = 3) -> pd.DataFrame | Note:
    """On synthetic data: how each attention stage and the attribution agree with the ground-truth
    masks over the class's clips (:func:`analysis.report.region_profile.agreement_table`, rounded to
    ``digits``): mass in the masks against their area (chance), pointing game, AUROC (0.5 = chance)
    and AUROC within the face; the last row scores a centre prior (no model) the same way."""
    if len(scores.positions) == 0:
        return Note("No clips of this class in this split.")
    if scores.mask_area is None:
        return Note("No ground-truth masks for this dataset (only the synthetic data has them).")
    return agreement_table(scores).round(digits)


def region_profile_view(scores: MapScores, label: int | str) -> list:
    """Where the class's evidence sits by facial region: what the regions are, and the bars of
    :func:`analysis.report.region_profile.plot_region_profile` (model against truth)."""
    name = scores.class_names[class_index(label, scores.class_names)]
    if len(scores.positions) == 0:
        return [Note(f"No {name} clips in this split.")]
    source = SOURCES[scores.region_source]
    truth = ("; the hatched bars are the ground truth, the regions that carry the class's signal in the renderer"
             if scores.truth_mass is not None else "; no ground truth for this dataset")
    return [Note(f"Facial regions: {source}{truth}."), plot_region_profile(region_profile(scores), name)]


__all__: Sequence[str] = [
    "class_metrics", "class_scores", "class_summary", "clip_animation_of", "clip_evidence", "clip_maps",
    "confusion_row", "ground_truth_agreement", "nearest_competitor", "plot_class_attention",
    "plot_class_frame_importance", "plot_class_trajectories", "plot_clip_evidence", "region_profile_view",
]
