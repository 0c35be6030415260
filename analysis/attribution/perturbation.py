"""Deletion and insertion curves (Petsiuk et al., RISE): is an attribution map faithful to the model?

Remove (or insert) the voxels -- or whole frames, for ``(B, T)`` maps -- in order of attribution,
in ``steps`` equal steps, and record the target probability; a faithful map makes deletion fall
fast (low AUC) and insertion rise fast (high AUC). Compare with a random order (:func:`random_maps`).

    curve = deletion_curve(model, clips, target, maps, steps=16)      # curve.auc: (B,)

All model evaluations run in eval mode under ``torch.no_grad`` (the submodules' modes are
restored after).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from analysis.attribution.attribute import check_clips, target_tensor
from tdrag.runtime import eval_mode, model_device


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
