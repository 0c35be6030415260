"""Time, checked: each temporal view's per-keyframe importance scored against the synthetic
temporal ground truth, as the spatial views are scored against the masks.

The renderer records which frames of a clip carry the evidence that separates its class from its
nearest class (``tdrag.data.synthetic.timeline``: for a shared-apex twin, the transition frames
its twin could not show; for the other classes, the frames in which their parts visibly move).
A keyframe is an **evidence keyframe** when its source frame is one of those.

Views, each a ``(B, T)`` importance per keyframe (higher = more important to the true class):

- ``frame ablation``: the drop of the true class's logit when the keyframe becomes the mean
  colour (``analysis.attribution.methods.frame_ablation``);
- ``integrated gradients``: Integrated Gradients of the true class summed over each keyframe;
- ``attention <stage>``: the mean of the stage's spatial attention map over each keyframe
  (stages that halve time give two keyframes one value);
- ``GRU gain``: how much the true class's probability rises at the GRU step that covers the
  keyframe (against 1/C before the first step);
- ``decision step``: 1 for the keyframes of the step from which the prediction no longer
  changes (``analysis.internals.trajectories.decision_steps``), 0 elsewhere.

Each view is scored per clip by the AUROC of its importance as a detector of the evidence
keyframes (0.5 = chance; ties count one half; a clip whose keyframes are all or none evidence is
skipped), averaged per class, beside the same score of a **prior that knows no model**: closeness
to the clip's most expressive keyframe (the one differing most from the first keyframe). A view
that agrees no better than the prior says nothing the pixels did not already say.

    table = temporal_agreement(run)            # class, view, auroc, prior_auroc, clips
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from analysis.internals.ground_truth import auroc_in_mask
from analysis.internals.order_tests import most_expressive_keyframe
from analysis.internals.trajectories import decision_steps

FRAME_ABLATION, INTEGRATED_GRADIENTS, GRU_GAIN, DECISION_STEP = (
    "frame ablation", "integrated gradients", "GRU gain", "decision step")
PRIOR = "prior: closeness to the most expressive keyframe"


def has_temporal_truth(root: str | os.PathLike | None) -> bool:
    """Whether ``root`` is a synthetic data set with temporal ground truth (``synthetic/temporal/``)."""
    return root is not None and (Path(root) / "synthetic" / "temporal").is_dir()


def evidence_keyframes(cache, rows: Sequence[int] | np.ndarray, root: str | os.PathLike) -> np.ndarray:
    """``(B, T)`` bool: whether each cache row's keyframe (its ``source_frames``) is an evidence frame
    of its clip (``tdrag.data.synthetic.load_clip_timeline``)."""
    from tdrag.data.synthetic import load_clip_timeline

    out = np.zeros((len(rows), int(cache.num_frames)), dtype=bool)
    for b, row in enumerate(np.asarray(rows, dtype=np.int64).tolist()):
        entry = cache.index[row]
        evidence = load_clip_timeline(root, str(entry["video_id"])).evidence
        source = np.asarray(entry["source_frames"], dtype=np.int64)
        if source.size and (source.min() < 0 or source.max() >= len(evidence)):
            raise ValueError(f"cache row {row} (video {entry['video_id']}): source frames {source.tolist()} fall "
                             f"outside the clip's {len(evidence)} frames of temporal ground truth")
        out[b] = evidence[source]
    return out


def expressive_prior(clips: np.ndarray | torch.Tensor) -> np.ndarray:
    """``(B, T)`` the prior's importance: minus the distance (in keyframes) to each clip's most
    expressive keyframe. ``clips``: ``(B, T, S, S, 3)`` uint8."""
    apex = most_expressive_keyframe(clips)
    return -np.abs(np.arange(int(clips.shape[1]))[None] - apex[:, None]).astype(np.float64)


def steps_to_keyframes(values: np.ndarray, frames: int) -> np.ndarray:
    """``(B, S)`` per-step values -> ``(B, T)``: keyframe ``k`` takes the value of the step that
    covers it, ``floor(k * S / T)`` (a stage that halves time covers two keyframes a step)."""
    values = np.asarray(values)
    steps = values.shape[1]
    return values[:, (np.arange(int(frames)) * steps) // int(frames)]


def gru_gain(step_logits: torch.Tensor | np.ndarray, labels: Sequence[int] | np.ndarray) -> np.ndarray:
    """``(B, S)``: the rise of the true class's probability at each GRU step (1/C before the first)."""
    logits = torch.as_tensor(step_logits).float()
    probs = logits.softmax(dim=2)[torch.arange(logits.shape[0]), :, torch.as_tensor(np.asarray(labels))]  # (B, S)
    before = torch.cat([torch.full_like(probs[:, :1], 1.0 / logits.shape[2]), probs[:, :-1]], dim=1)
    return (probs - before).numpy()


def available_views(run) -> list[str]:
    """The views an opened run's model has (attention stages and GRU views only where it has them)."""
    views = [FRAME_ABLATION, INTEGRATED_GRADIENTS]
    views += [f"attention {stage}" for stage in run.attention]
    if run.has_gru:
        views += [GRU_GAIN, DECISION_STEP]
    return views


def keyframe_importance(run, positions: Sequence[int] | np.ndarray, views: Sequence[str] | None = None,
                        small: bool = False) -> dict[str, np.ndarray]:
    """view -> ``(B, T)`` importance of each keyframe of the clips at ``positions`` for their true
    class (the views of the module docstring; ``small``: Integrated Gradients' coarse settings)."""
    from analysis.attribution.attribute import attribute_clips

    positions = np.asarray(positions, dtype=np.int64).reshape(-1)
    frames = int(run.cache.num_frames)
    views = available_views(run) if views is None else list(views)
    out: dict[str, np.ndarray] = {}
    for view in views:
        if view == FRAME_ABLATION:
            out[view] = attribute_clips(run, positions, "frame_ablation", target="label").numpy()
        elif view == INTEGRATED_GRADIENTS:
            maps = attribute_clips(run, positions, "integrated_gradients", target="label", small=small)
            out[view] = maps.sum(dim=(2, 3)).numpy()
        elif view.startswith("attention "):
            maps = run.attention[view.removeprefix("attention ")][torch.as_tensor(positions)]  # (B, 1, T', H', W')
            out[view] = steps_to_keyframes(maps.float().mean(dim=(1, 3, 4)).numpy(), frames)
        elif view == GRU_GAIN and run.has_gru:
            out[view] = steps_to_keyframes(gru_gain(run.step_logits[positions], run.labels[positions]), frames)
        elif view == DECISION_STEP and run.has_gru:
            steps = run.step_logits.shape[1]
            onehot = np.eye(steps)[decision_steps(run.step_logits[positions])]
            out[view] = steps_to_keyframes(onehot, frames)
        else:
            raise ValueError(f"unknown or unavailable temporal view {view!r}; this run has {', '.join(available_views(run))}")
    return out


def auroc_per_clip(importance: np.ndarray, evidence: np.ndarray) -> np.ndarray:
    """``(B,)`` AUROC of each clip's ``(T,)`` importance as a detector of its evidence keyframes
    (NaN where every keyframe or none is evidence)."""
    values = torch.as_tensor(np.asarray(importance, dtype=np.float64))[:, None, None, :]
    truth = torch.as_tensor(np.asarray(evidence, dtype=bool))[:, None, None, :]
    return auroc_in_mask(values, truth).double().numpy()


def scoreable(evidence: np.ndarray) -> np.ndarray:
    """``(B,)`` bool: clips with at least one evidence keyframe and one other."""
    return evidence.any(axis=1) & ~evidence.all(axis=1)


def temporal_agreement(run, positions: Sequence[int] | np.ndarray | None = None,
                       views: Sequence[str] | None = None, small: bool = False) -> pd.DataFrame:
    """Each view's agreement with the evidence keyframes, per class and over all clips.

    Args:
        run: an opened run on synthetic data with temporal ground truth.
        positions: the clips to score (default: every clip of the run); clips that cannot be
            scored (all or no keyframes are evidence) are skipped and not counted.
        views: default every view the model has (:func:`available_views`).

    Returns:
        DataFrame: class (the class name, or "all" for every scored clip), view, auroc (mean over
        the clips), prior_auroc (the prior's mean over the same clips), clips.
    """
    if not has_temporal_truth(run.data_root):
        raise ValueError(f"{run.data_root or 'the data root'}: no synthetic temporal ground truth "
                         "(synthetic/temporal/; render the set with `tdrag synth`)")
    positions = np.arange(len(run)) if positions is None else np.asarray(positions, dtype=np.int64).reshape(-1)
    evidence = evidence_keyframes(run.cache, run.rows[positions], run.data_root)
    keep = scoreable(evidence)
    positions, evidence = positions[keep], evidence[keep]
    columns = ["class", "view", "auroc", "prior_auroc", "clips"]
    if positions.size == 0:
        return pd.DataFrame(columns=columns)
    prior = auroc_per_clip(expressive_prior(run.frames(positions)), evidence)
    labels = run.labels[positions]
    rows = []
    for view, importance in keyframe_importance(run, positions, views, small=small).items():
        auroc = auroc_per_clip(importance, evidence)
        for name, members in [*((run.class_names[c], labels == c) for c in np.unique(labels)), ("all", labels >= 0)]:
            rows.append({"class": name, "view": view, "auroc": float(np.nanmean(auroc[members])),
                         "prior_auroc": float(np.nanmean(prior[members])), "clips": int(members.sum())})
    return pd.DataFrame(rows, columns=columns)
