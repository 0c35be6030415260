"""Is an attribution map faithful to the model, and does it point at the right place?

- :func:`deletion_curve` / :func:`insertion_curve` (Petsiuk et al., RISE): remove (or insert) the
  voxels -- or whole frames, for ``(B, T)`` maps -- in order of attribution, in ``steps`` equal
  steps, and record the target probability; a faithful map makes deletion fall fast (low AUC)
  and insertion rise fast (high AUC). Compare with a random order (:func:`random_maps`).
- :func:`pointing_game`, :func:`relevance_mass`: agreement with ground-truth masks
  ``(B, T, H, W)`` bool (the synthetic set's, see :mod:`analysis.internals.ground_truth`).
- :func:`randomisation_check` (Adebayo et al., "Sanity checks for saliency maps"): re-initialise
  the model from the classifier downward, one block at a time, and measure the Spearman rank
  correlation of each new map with the original; a map that survives randomisation does not
  explain the model.
- :func:`completeness_gap`: Integrated Gradients' ``|sum(attr) - (f(x) - f(b))| / |f(x) - f(b)|``.
- :func:`faithfulness_scores` (per clip) and :func:`faithfulness_summary` (per method and class).

All model evaluations run in eval mode under ``torch.no_grad`` (the submodules' modes are
restored after).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from analysis.attribution.attribute import attribute, check_clips, target_tensor
from analysis.attribution.methods import FRAME_METHODS
from analysis.internals.ground_truth import mass_in_mask
from tdrag.runtime import eval_mode, model_device


# --------------------------------------------------------------------------------------------
# Deletion / insertion


def blur_clips(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of every frame (space only): ``(B, 3, T, H, W) -> same``."""
    radius = max(1, int(math.ceil(3 * sigma)))
    coords = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    b, c, t, h, w = x.shape
    flat = x.permute(0, 2, 1, 3, 4).reshape(b * t * c, 1, h, w)
    # Reflect padding keeps the border from darkening; it needs radius < size.
    mode = "reflect" if radius < min(h, w) else "replicate"
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode=mode), kernel.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode=mode), kernel.view(1, 1, -1, 1))
    return flat.reshape(b, t, c, h, w).permute(0, 2, 1, 3, 4).contiguous()


def baseline_clips(x: torch.Tensor, baseline: str | float | torch.Tensor, blur_sigma: float | None = None) -> torch.Tensor:
    """The replacement clip: ``"blur"`` (Gaussian, sigma default W/10 px), ``"mean"`` (zeros in
    normalised space = mean colour), a float, or a tensor broadcastable to ``x``."""
    if isinstance(baseline, torch.Tensor):
        return baseline.to(device=x.device, dtype=x.dtype).expand_as(x)
    if baseline == "blur":
        return blur_clips(x, blur_sigma if blur_sigma is not None else x.shape[-1] / 10)
    if baseline == "mean":
        return torch.zeros_like(x)
    if isinstance(baseline, (int, float)):
        return torch.full_like(x, float(baseline))
    raise ValueError(f"baseline must be 'blur', 'mean', a float or a tensor, got {baseline!r}")


def _check_maps(maps: torch.Tensor, x: torch.Tensor) -> None:
    b, _, t, h, w = x.shape
    if tuple(maps.shape) not in ((b, t, h, w), (b, t)):
        raise ValueError(
            f"maps of shape {tuple(maps.shape)} do not fit clips {tuple(x.shape)}: expected "
            f"({b}, {t}, {h}, {w}) or ({b}, {t})"
        )


def ranks_of(maps: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Rank of each unit of each map, 0 = most important: ``(B, *S) -> (B, n)`` long.

    Ties (e.g. the zeros of a ReLU'd Grad-CAM) are broken at random, so that no spatial order
    (top-left first) sneaks into the curves.
    """
    flat = maps.reshape(maps.shape[0], -1)
    n = flat.shape[1]
    perm = torch.randperm(n, generator=generator).to(flat.device)
    order = perm[torch.sort(flat[:, perm], dim=1, descending=True, stable=True).indices]
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(n, device=flat.device).expand_as(order).contiguous())
    return ranks


@dataclass
class PerturbationCurve:
    """Result of :func:`deletion_curve` / :func:`insertion_curve`.

    fractions: ``(K + 1,)`` share of units removed/inserted at each step, 0 .. 1.
    scores: ``(B, K + 1)`` target probability (or logit) at each step.
    auc: ``(B,)`` trapezoidal area under ``scores`` over ``fractions``.
    """

    mode: str
    fractions: torch.Tensor
    scores: torch.Tensor
    auc: torch.Tensor


def perturbation_curve(
    model: nn.Module,
    clips: torch.Tensor,
    target: int | Sequence[int] | torch.Tensor,
    maps: torch.Tensor,
    mode: str = "deletion",
    steps: int = 16,
    baseline: str | float | torch.Tensor | None = None,
    blur_sigma: float | None = None,
    score: str = "probability",
    batch_size: int = 16,
    seed: int = 0,
) -> PerturbationCurve:
    """Deletion or insertion curve of ``maps`` for ``clips``.

    Args:
        clips: ``(B, 3, T, H, W)`` normalised.
        maps: ``(B, T, H, W)`` (units are voxels: all 3 channels of a pixel of a frame) or
            ``(B, T)`` (units are whole frames). Higher = more important.
        mode: "deletion" (start from the clip, replace the top units by the baseline) or
            "insertion" (start from the baseline, put back the top units of the clip).
        steps: K; step k touches ``round(k / K * n_units)`` units.
        baseline: replacement; default "mean" for deletion, "blur" for insertion (RISE's
            choices). See :func:`baseline_clips`.
        score: "probability" (softmax of the target) or "logit".
        batch_size: perturbed clips per forward pass.
        seed: tie-breaking of equal attribution values.
    """
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    if score not in ("probability", "logit"):
        raise ValueError(f"score must be 'probability' or 'logit', got {score!r}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    check_clips(clips)
    _check_maps(maps, clips)
    device = model_device(model)
    x = clips.detach().to(device=device, dtype=torch.float32)
    b = x.shape[0]
    tgt = target_tensor(target, b, device)
    if baseline is None:
        baseline = "mean" if mode == "deletion" else "blur"
    base = baseline_clips(x, baseline, blur_sigma)
    gen = torch.Generator().manual_seed(seed)
    ranks = ranks_of(maps.detach().float().to(device), gen)  # (B, n)
    n_units = ranks.shape[1]
    unit_shape = (b, 1, *maps.shape[1:]) + (1,) * (5 - maps.dim() - 1)
    counts = [round(k / steps * n_units) for k in range(steps + 1)]
    fractions = torch.tensor([c / n_units for c in counts])

    # Evaluate (step, clip) pairs in chunks of about batch_size clips.
    pairs = [(k, i) for k in range(steps + 1) for i in range(b)]
    scores = torch.empty(steps + 1, b)
    with eval_mode(model), torch.no_grad():
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start : start + batch_size]
            ks = torch.tensor([k for k, _ in chunk], device=device)
            idx = torch.tensor([i for _, i in chunk], device=device)
            limit = torch.tensor(counts, device=device)[ks]
            touched = (ranks[idx] < limit[:, None]).view(len(chunk), *unit_shape[1:])
            if mode == "deletion":
                batch = torch.where(touched, base[idx], x[idx])
            else:
                batch = torch.where(touched, x[idx], base[idx])
            out = model(batch).float()
            if score == "probability":
                out = out.softmax(dim=1)
            scores[ks.cpu(), idx.cpu()] = out.gather(1, tgt[idx][:, None])[:, 0].cpu()
    scores = scores.T.contiguous()
    return PerturbationCurve(mode, fractions, scores, curve_auc(fractions, scores))


def curve_auc(fractions: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """Trapezoidal area under ``scores (B, K+1)`` over ``fractions (K+1,)``: ``(B,)``."""
    return torch.trapezoid(scores, fractions.to(scores), dim=-1)


def deletion_curve(model, clips, target, maps, **options) -> PerturbationCurve:
    """:func:`perturbation_curve` with ``mode="deletion"`` (lower AUC = more faithful)."""
    return perturbation_curve(model, clips, target, maps, mode="deletion", **options)


def insertion_curve(model, clips, target, maps, **options) -> PerturbationCurve:
    """:func:`perturbation_curve` with ``mode="insertion"`` (higher AUC = more faithful)."""
    return perturbation_curve(model, clips, target, maps, mode="insertion", **options)


def random_maps(like: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Uniform random maps shaped like ``like``: the chance-level reference for the curves."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(like.shape, generator=gen).to(like.device)


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
# Model-parameter randomisation


def rank_average(values: torch.Tensor) -> torch.Tensor:
    """Ranks (1-based) of a 1D tensor with ties given their average rank (as Spearman needs)."""
    uniq, inverse, counts = torch.unique(values, sorted=True, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    average = ends - (counts.double() - 1) / 2
    return average[inverse]


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation of two tensors (flattened); NaN if either is constant."""
    ra = rank_average(a.detach().flatten().double().cpu())
    rb = rank_average(b.detach().flatten().double().cpu())
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = ra.norm() * rb.norm()
    return float(ra @ rb / denom) if denom > 0 else float("nan")


def default_cascade(model: nn.Module) -> list[str]:
    """Top-level children with parameters, last registered first (classifier down to stem).

    Our models register ``stem, layer1..layer4`` then the head (``fc`` or ``head``); models
    with another registration order should pass ``layers=`` explicitly.
    """
    names = [name for name, child in model.named_children() if any(True for _ in child.parameters())]
    return names[::-1]


def reinitialise(module: nn.Module, seed: int) -> None:
    """Re-draw ``module``'s parameters as at construction time, seeded (global RNG untouched).

    Every submodule with ``reset_parameters`` (conv, linear, BatchNorm -- which also resets its
    running statistics --, GRU, ...) is reset; any parameter left over (owned by a module
    without ``reset_parameters``) is redrawn from a normal with its old mean and std.
    """
    devices = [p.device for p in module.parameters() if p.device.type == "cuda"][:1]
    covered: set[int] = set()
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(seed)
        for sub in module.modules():
            reset = getattr(sub, "reset_parameters", None)
            if callable(reset):
                reset()
                covered.update(id(p) for p in sub.parameters(recurse=False))
        for p in module.parameters():
            if id(p) not in covered:
                mean, std = p.mean().item(), p.std().item() if p.numel() > 1 else 0.0
                p.normal_(mean, std if std > 0 else 0.02)


def randomisation_check(
    model: nn.Module,
    clips: torch.Tensor,
    target: int | Sequence[int] | torch.Tensor,
    method: str,
    layers: Sequence[str] | None = None,
    seed: int = 0,
    **options: Any,
) -> "pandas.DataFrame":  # noqa: F821
    """Cascading model-parameter randomisation, from the top layer down.

    A deep copy of ``model`` (the original is untouched) has ``layers`` re-initialised one more
    at a time (default :func:`default_cascade`: classifier first); after each step the maps are
    recomputed for the same ``target`` and compared with the original maps.

    Returns:
        DataFrame, one row per (step, clip): ``step`` (1 = first layer randomised), ``layer``
        (the layer randomised at that step), ``clip``, ``spearman`` (rank correlation of the maps)
        and ``spearman_abs`` (of their absolute values). Faithful maps fall towards 0.
    """
    import pandas as pd

    check_clips(clips)
    layers = list(layers) if layers is not None else default_cascade(model)
    if not layers:
        raise ValueError("randomisation_check: the model has no layers with parameters to randomise")
    original = attribute(model, clips, target, method, **options).cpu()
    copy_ = copy.deepcopy(model)
    rows = []
    for step, name in enumerate(layers, start=1):
        try:
            sub = copy_.get_submodule(name)
        except AttributeError as err:
            raise ValueError(f"randomisation_check: {name!r} is not a submodule of the model") from err
        reinitialise(sub, seed + step)
        maps = attribute(copy_, clips, target, method, **options).cpu()
        for i in range(maps.shape[0]):
            rows.append(
                {
                    "step": step,
                    "layer": name,
                    "clip": i,
                    "spearman": spearman(original[i], maps[i]),
                    "spearman_abs": spearman(original[i].abs(), maps[i].abs()),
                }
            )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Integrated Gradients completeness


def completeness_gap(
    model: nn.Module,
    clips: torch.Tensor,
    target: int | Sequence[int] | torch.Tensor,
    n_steps: int = 64,
    baseline: float | torch.Tensor = 0.0,
    maps: torch.Tensor | None = None,
    **options: Any,
) -> "pandas.DataFrame":  # noqa: F821
    """How far IG's attributions are from summing to ``f(x) - f(baseline)`` (target logit).

    Args:
        n_steps, baseline, **options: passed to ``attribute(..., "integrated_gradients")``.
        maps: IG maps already computed with the same baseline (skips recomputing them).

    Returns:
        DataFrame per clip: ``clip``, ``target``, ``attribution_sum``, ``output_difference``,
        ``gap`` = ``|attribution_sum - output_difference| / |output_difference|`` (NaN when the
        difference is 0).
    """
    import pandas as pd

    check_clips(clips)
    device = model_device(model)
    x = clips.detach().to(device=device, dtype=torch.float32)
    tgt = target_tensor(target, x.shape[0], device)
    if maps is None:
        maps = attribute(model, x, tgt, "integrated_gradients", n_steps=n_steps, baseline=baseline, **options)
    base = baseline.to(x).expand_as(x) if isinstance(baseline, torch.Tensor) else torch.full_like(x, float(baseline))
    with eval_mode(model), torch.no_grad():
        fx = model(x).double().gather(1, tgt[:, None])[:, 0]
        fb = model(base).double().gather(1, tgt[:, None])[:, 0]
    diff = (fx - fb).cpu()
    total = maps.double().flatten(1).sum(1).cpu()
    gap = (total - diff).abs() / diff.abs()
    gap = torch.where(diff != 0, gap, torch.full_like(gap, float("nan")))
    return pd.DataFrame(
        {
            "clip": range(x.shape[0]),
            "target": tgt.cpu().numpy(),
            "attribution_sum": total.numpy(),
            "output_difference": diff.numpy(),
            "gap": gap.numpy(),
        }
    )


# --------------------------------------------------------------------------------------------
# Summary


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
        masks: ``(N, T, H, W)`` bool ground truth; without it the pointing game and relevance
            mass are NaN. They are NaN for ``(B, T)`` maps (frame ablation) too.
        targets: "label", "prediction" or a tensor ``(N,)``.
        steps: deletion/insertion steps (baselines: RISE's defaults).
        include_random: add a "random" method (uniform random maps) as the chance reference.

    Returns:
        DataFrame, one row per (method, clip): ``method``, ``clip``, ``label``, ``target``,
        ``deletion_auc``, ``insertion_auc``, ``pointing_game``, ``relevance_mass`` and, for
        integrated_gradients, ``completeness_gap``.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    check_clips(clips)
    n = clips.shape[0]
    labels = torch.as_tensor(labels).long().cpu()
    if labels.numel() != n:
        raise ValueError(f"labels: expected {n} values, got {labels.numel()}")
    if masks is not None and (masks.shape[0] != n or masks.shape[1:] != clips.shape[2:]):
        raise ValueError(f"masks {tuple(masks.shape)} do not match clips {tuple(clips.shape)}")
    plan: dict[str, dict[str, Any]] = (
        {m: dict(o) for m, o in methods.items()} if isinstance(methods, Mapping) else {m: {} for m in methods}
    )
    if include_random:
        plan["random"] = {}
    device = model_device(model)
    rows: list[dict[str, Any]] = []
    batches = range(0, n, batch_size)
    for start in tqdm(batches, desc="faithfulness", disable=not progress):
        x = clips[start : start + batch_size].to(device)
        lab = labels[start : start + batch_size]
        if isinstance(targets, torch.Tensor):
            tgt = targets[start : start + batch_size].long().cpu()
        elif targets == "prediction":
            with eval_mode(model), torch.no_grad():
                tgt = model(x).argmax(1).cpu()
        elif targets == "label":
            tgt = lab
        else:
            raise ValueError(f"targets must be 'label', 'prediction' or a tensor, got {targets!r}")
        gt = masks[start : start + batch_size] if masks is not None else None
        for method, opts in plan.items():
            if method == "random":
                maps = random_maps(x[:, 0], seed=seed + start).cpu()
            else:
                maps = attribute(model, x, tgt, method, **opts).cpu()
            dele = deletion_curve(model, x, tgt, maps, steps=steps, seed=seed).auc
            ins = insertion_curve(model, x, tgt, maps, steps=steps, seed=seed).auc
            spatial = method not in FRAME_METHODS and gt is not None
            pg = pointing_game(maps, gt, per=pointing, tolerance=tolerance) if spatial else None
            rm = relevance_mass(maps, gt) if spatial else None
            gap = None
            if method == "integrated_gradients":
                ig_opts = {k: v for k, v in opts.items() if k != "n_steps"}
                gap = completeness_gap(
                    model, x, tgt, n_steps=opts.get("n_steps", 32), maps=maps, **ig_opts
                )["gap"].to_numpy()
            for i in range(x.shape[0]):
                rows.append(
                    {
                        "method": method,
                        "clip": start + i,
                        "label": int(lab[i]),
                        "target": int(tgt[i]),
                        "deletion_auc": float(dele[i]),
                        "insertion_auc": float(ins[i]),
                        "pointing_game": float(pg[i]) if pg is not None else float("nan"),
                        "relevance_mass": float(rm[i]) if rm is not None else float("nan"),
                        "completeness_gap": float(gap[i]) if gap is not None else float("nan"),
                    }
                )
    return pd.DataFrame(rows)


def summarise_scores(scores: "pandas.DataFrame", class_names: Sequence[str] | None = None) -> "pandas.DataFrame":  # noqa: F821
    """Mean per (method, class) plus an "all" row per method from :func:`faithfulness_scores`.

    ``class_names`` maps label indices to names (default: DFEW's seven classes).
    """
    import pandas as pd

    if class_names is None:
        from tdrag.data.labels import DFEW_CLASSES

        class_names = DFEW_CLASSES
    metrics = ["deletion_auc", "insertion_auc", "pointing_game", "relevance_mass", "completeness_gap"]
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
    class_names: Sequence[str] | None = None,
    **options: Any,
) -> "pandas.DataFrame":  # noqa: F821
    """Faithfulness per method and class: :func:`faithfulness_scores` then
    :func:`summarise_scores`. Columns: method, class, n, deletion_auc, insertion_auc,
    pointing_game, relevance_mass, completeness_gap (means; NaN where not applicable)."""
    scores = faithfulness_scores(model, clips, labels, methods, masks=masks, **options)
    return summarise_scores(scores, class_names)
