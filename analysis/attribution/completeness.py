"""Integrated Gradients' completeness: ``|sum(attr) - (f(x) - f(b))| / |f(x) - f(b)|``.

IG's attributions sum to the difference of the target logit between the clip and the baseline when
the path integral is exact; the gap says how far the ``n_steps`` approximation is from it.

    completeness_gap(model, clips, target, n_steps=64)      # one row per clip
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from analysis.attribution.attribute import attribute, check_clips, target_tensor
from tdrag.runtime import eval_mode, model_device


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
