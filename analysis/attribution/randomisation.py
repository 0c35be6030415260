"""Cascading model-parameter randomisation (Adebayo et al., "Sanity checks for saliency maps").

Re-initialise the model from the classifier downward, one block at a time, and measure the
Spearman rank correlation of each new map with the original; a map that survives randomisation
does not explain the model.

    table = randomisation_check(model, clips, target, "gradcam", layer="layer4")
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from analysis.attribution.attribute import attribute, check_clips


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
