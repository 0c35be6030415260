"""Scoring attribution maps: against ground-truth masks, and every faithfulness check in one table.

- :func:`pointing_game`, :func:`relevance_mass` and the AUROC of a map as a detector of the mask's
  pixels (:func:`analysis.internals.ground_truth.auroc_in_mask`): agreement with ground-truth masks
  ``(B, T, H, W)`` bool (the synthetic set's, see :mod:`analysis.internals.ground_truth`).
- :func:`faithfulness_scores` (per clip) and :func:`faithfulness_summary` (per method and class)
  gather them with the deletion / insertion curves (:mod:`analysis.attribution.perturbation`) and
  Integrated Gradients' completeness gap (:mod:`analysis.attribution.completeness`). The
  randomisation sanity check is :mod:`analysis.attribution.randomisation`.

All model evaluations run in eval mode under ``torch.no_grad`` (the submodules' modes are
restored after).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from analysis.attribution.attribute import attribute, check_clips
from analysis.attribution.completeness import completeness_gap
from analysis.attribution.methods import FRAME_METHODS
from analysis.attribution.perturbation import deletion_curve, insertion_curve, random_maps
from analysis.internals.ground_truth import auroc_in_mask, mass_in_mask
from tdrag.runtime import eval_mode, model_device


# --------------------------------------------------------------------------------------------
# Agreement with ground-truth masks


def _check_masks(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    if maps.dim() != 4:
        raise ValueError(f"maps: expected (B, T, H, W), got {tuple(maps.shape)}")
    if masks.shape != maps.shape:
        raise ValueError(f"masks {tuple(masks.shape)} and maps {tuple(maps.shape)} differ in shape")
    return masks.to(device=maps.device, dtype=torch.bool)


def dilate_masks(masks: torch.Tensor, tolerance: int) -> torch.Tensor:
    """Grow ``(B, T, H, W)`` bool masks by ``tolerance`` pixels (square neighbourhood) per frame."""
    if tolerance <= 0:
        return masks
    b, t, h, w = masks.shape
    k = 2 * tolerance + 1
    grown = F.max_pool2d(masks.float().view(b * t, 1, h, w), k, stride=1, padding=tolerance)
    return grown.view(b, t, h, w) > 0


def pointing_game(
    maps: torch.Tensor,
    masks: torch.Tensor,
    per: str = "frame",
    tolerance: int = 0,
) -> torch.Tensor:
    """Does the map's maximum fall inside the ground truth?

    Args:
        maps: ``(B, T, H, W)`` attribution or attention maps.
        masks: ``(B, T, H, W)`` bool ground truth.
        per: "frame" (the maximum of each frame, scored on frames whose mask is not empty, then
            averaged per clip) or "clip" (the one maximum over the whole clip).
        tolerance: pixels by which the masks are grown first (a near miss counts as a hit).

    Returns:
        ``(B,)`` float hit rate in [0, 1]; NaN for a clip without ground truth. When several
        positions tie for the maximum, the hit is the share of them inside the mask, so a flat
        map scores the mask's area (chance) rather than a lucky first index.
    """
    if per not in ("frame", "clip"):
        raise ValueError(f"per must be 'frame' or 'clip', got {per!r}")
    masks = dilate_masks(_check_masks(maps, masks), tolerance)
    maps = maps.detach().float()
    b, t = maps.shape[:2]
    if per == "frame":
        values = maps.reshape(b, t, -1)
        inside = masks.reshape(b, t, -1)
    else:
        values = maps.reshape(b, 1, -1)
        inside = masks.reshape(b, 1, -1)
    top = values.amax(dim=-1, keepdim=True)
    is_max = torch.isclose(values, top.expand_as(values), rtol=1e-6, atol=0.0)
    hits = (is_max & inside).sum(-1).float() / is_max.sum(-1).float()
    valid = inside.any(-1)
    hits = torch.where(valid, hits, torch.zeros_like(hits))
    n_valid = valid.sum(-1).float()
    score = hits.sum(-1) / n_valid
    return torch.where(n_valid > 0, score, torch.full_like(score, float("nan"))).cpu()


def relevance_mass(maps: torch.Tensor, masks: torch.Tensor, absolute: bool = False) -> torch.Tensor:
    """Share of the positive attribution that lies inside the masks, per clip: ``(B,)``.

    ``absolute=True`` scores ``|map|`` instead of its positive part. NaN for a clip without
    ground truth or without positive attribution. The same score as attention's mass in mask:
    both are :func:`analysis.internals.ground_truth.mass_in_mask`.
    """
    _check_masks(maps, masks)
    return mass_in_mask(maps, masks, absolute=absolute)


# --------------------------------------------------------------------------------------------
# Every score in one table


def faithfulness_scores(
    model: nn.Module,
    clips: torch.Tensor,
    labels: torch.Tensor | Sequence[int],
    methods: Sequence[str] | Mapping[str, Mapping[str, Any]] = ("saliency", "integrated_gradients", "gradcam"),
    masks: torch.Tensor | None = None,
    targets: str | torch.Tensor = "label",
    steps: int = 16,
    batch_size: int = 4,
    pointing: str = "frame",
    tolerance: int = 0,
    include_random: bool = True,
    seed: int = 0,
    progress: bool = True,
) -> "pandas.DataFrame":  # noqa: F821
    """Per-clip faithfulness scores of several attribution methods.

    Args:
        clips: ``(N, 3, T, H, W)`` normalised; processed ``batch_size`` at a time.
        labels: ``(N,)`` true classes (the grouping of the summary).
        methods: names, or ``{name: options}`` (options go to :func:`attribute`).
        masks: ``(N, T, H, W)`` bool ground truth; without it the pointing game, relevance mass
            and AUROC are NaN. They are NaN for ``(B, T)`` maps (frame ablation) too.
        targets: "label", "prediction" or a tensor ``(N,)``.
        steps: deletion/insertion steps (baselines: RISE's defaults).
        include_random: add a "random" method (uniform random maps) as the chance reference.

    Returns:
        DataFrame, one row per (method, clip): ``method``, ``clip``, ``label``, ``target``,
        ``deletion_auc``, ``insertion_auc``, ``pointing_game``, ``relevance_mass``, ``auroc`` (of
        the map as a detector of the mask's pixels, per frame: :func:`auroc_in_mask`; 0.5 =
        chance) and, for integrated_gradients, ``completeness_gap``.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    labels = _checked_labels(clips, labels, masks)
    plan: dict[str, dict[str, Any]] = (
        {m: dict(o) for m, o in methods.items()} if isinstance(methods, Mapping) else {m: {} for m in methods}
    )
    if include_random:
        plan["random"] = {}
    device = model_device(model)
    rows: list[dict[str, Any]] = []
    for start in tqdm(range(0, clips.shape[0], batch_size), desc="faithfulness", disable=not progress):
        x = clips[start : start + batch_size].to(device)
        lab = labels[start : start + batch_size]
        tgt = _batch_targets(model, x, lab, targets, start)
        gt = masks[start : start + batch_size] if masks is not None else None
        for method, opts in plan.items():
            maps = random_maps(x[:, 0], seed=seed + start).cpu() if method == "random" else \
                attribute(model, x, tgt, method, **opts).cpu()
            scores = _map_scores(model, x, tgt, maps, gt, method, opts, steps=steps, pointing=pointing,
                                 tolerance=tolerance, seed=seed)
            rows += [{"method": method, "clip": start + i, "label": int(lab[i]), "target": int(tgt[i]),
                      **{name: float(values[i]) if values is not None else float("nan")
                         for name, values in scores.items()}}
                     for i in range(x.shape[0])]
    return pd.DataFrame(rows)


def _checked_labels(clips: torch.Tensor, labels: torch.Tensor | Sequence[int],
                    masks: torch.Tensor | None) -> torch.Tensor:
    """``labels`` as a CPU long tensor, after checking the clips, the labels and the masks agree."""
    check_clips(clips)
    n = clips.shape[0]
    labels = torch.as_tensor(labels).long().cpu()
    if labels.numel() != n:
        raise ValueError(f"labels: expected {n} values, got {labels.numel()}")
    if masks is not None and (masks.shape[0] != n or masks.shape[1:] != clips.shape[2:]):
        raise ValueError(f"masks {tuple(masks.shape)} do not match clips {tuple(clips.shape)}")
    return labels


def _batch_targets(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, targets: str | torch.Tensor,
                   start: int) -> torch.Tensor:
    """The class each clip of the batch (input positions ``start ..``) is scored for, on the CPU."""
    if isinstance(targets, torch.Tensor):
        return targets[start : start + x.shape[0]].long().cpu()
    if targets == "prediction":
        with eval_mode(model), torch.no_grad():
            return model(x).argmax(1).cpu()
    if targets == "label":
        return labels
    raise ValueError(f"targets must be 'label', 'prediction' or a tensor, got {targets!r}")


def _map_scores(model: nn.Module, x: torch.Tensor, target: torch.Tensor, maps: torch.Tensor, masks: torch.Tensor | None,
                method: str, options: dict[str, Any], *, steps: int, pointing: str, tolerance: int,
                seed: int) -> dict[str, Any]:
    """Every score of one method's ``maps`` of a batch: score name -> ``(B,)`` values, or None where
    it does not apply (ground truth without masks or for ``(B, T)`` maps, the completeness gap
    outside Integrated Gradients)."""
    spatial = method not in FRAME_METHODS and masks is not None
    gap = None
    if method == "integrated_gradients":
        ig_options = {k: v for k, v in options.items() if k != "n_steps"}
        gap = completeness_gap(model, x, target, n_steps=options.get("n_steps", 32), maps=maps,
                               **ig_options)["gap"].to_numpy()
    return {
        "deletion_auc": deletion_curve(model, x, target, maps, steps=steps, seed=seed).auc,
        "insertion_auc": insertion_curve(model, x, target, maps, steps=steps, seed=seed).auc,
        "pointing_game": pointing_game(maps, masks, per=pointing, tolerance=tolerance) if spatial else None,
        "relevance_mass": relevance_mass(maps, masks) if spatial else None,
        "auroc": auroc_in_mask(maps, masks) if spatial else None,
        "completeness_gap": gap,
    }


def summarise_scores(scores: "pandas.DataFrame", class_names: Sequence[str]) -> "pandas.DataFrame":  # noqa: F821
    """Mean per (method, class) plus an "all" row per method from :func:`faithfulness_scores`.

    ``class_names`` maps label indices to names: the run's (``run.class_names``), in label order.
    """
    import pandas as pd

    metrics = ["deletion_auc", "insertion_auc", "pointing_game", "relevance_mass", "auroc", "completeness_gap"]
    scores = scores.copy()
    scores["class"] = [class_names[i] if 0 <= i < len(class_names) else str(i) for i in scores["label"]]
    per_class = scores.groupby(["method", "class"], sort=False)[metrics].mean()
    per_class["n"] = scores.groupby(["method", "class"], sort=False).size()
    overall = scores.groupby("method", sort=False)[metrics].mean()
    overall["n"] = scores.groupby("method", sort=False).size()
    overall["class"] = "all"
    overall = overall.set_index("class", append=True)
    out = pd.concat([per_class, overall]).reset_index()
    order = {name: i for i, name in enumerate(list(class_names) + ["all"])}
    out["_order"] = out["class"].map(lambda c: order.get(c, len(order)))
    methods = list(dict.fromkeys(scores["method"]))
    out["_method"] = out["method"].map(methods.index)
    out = out.sort_values(["_method", "_order"]).drop(columns=["_order", "_method"]).reset_index(drop=True)
    return out[["method", "class", "n", *metrics]]


def faithfulness_summary(
    model: nn.Module,
    clips: torch.Tensor,
    labels: torch.Tensor | Sequence[int],
    methods: Sequence[str] | Mapping[str, Mapping[str, Any]] = ("saliency", "integrated_gradients", "gradcam"),
    masks: torch.Tensor | None = None,
    *,
    class_names: Sequence[str],
    **options: Any,
) -> "pandas.DataFrame":  # noqa: F821
    """Faithfulness per method and class: :func:`faithfulness_scores` then :func:`summarise_scores`
    (``class_names``: the run's, in label order). Columns: method, class, n, deletion_auc,
    insertion_auc, pointing_game, relevance_mass, auroc, completeness_gap (means; NaN where not
    applicable)."""
    scores = faithfulness_scores(model, clips, labels, methods, masks=masks, **options)
    return summarise_scores(scores, class_names)
