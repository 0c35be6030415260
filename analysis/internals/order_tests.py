"""Does a model read time? Order tests that need no ground truth, so they run on DFEW too.

Every clip is scored on its keyframes in four kinds of order:

- ``chosen``: the keyframes as selected (the model's normal input);
- ``shuffled <k>``: the same keyframes in a fixed random order (``shuffles`` orders, the same for
  every clip, drawn from ``seed``; never the identity or the reversal);
- ``reversed``: last keyframe first;
- ``static``: the clip's most expressive keyframe (:func:`most_expressive_keyframe`) repeated T times.

each with the GRU on and, for a model whose residual GRU head can be switched off
(``tdrag.models.tdrag.gru_branch_off``), off. A model that reads only an unordered bag of its
keyframes scores the same chosen, shuffled and reversed; one that reads order loses accuracy when
the order goes; one that reads the apex face alone scores as well on ``static``. The clips go
through the one loop evaluation uses (``tdrag.models.forward.forward_clips``: evaluation transform,
eval mode, autocast), each batch read once for all conditions.

    result = run_order_tests(run)                       # an opened run (analysis.open_run)
    result.summary                                      # condition, gru, war, uar, clips
    result.per_class                                    # class, condition, gru, recall, clips
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from tdrag import metrics
from tdrag.models.forward import forward_clips
from tdrag.models.tdrag import GRUHead, gru_branch_off

#: The order conditions besides the shuffles, in the order tables show them.
CHOSEN, REVERSED, STATIC = "chosen", "reversed", "static"


@dataclass
class OrderTestResult:
    """What :func:`order_tests` measured.

    Attributes:
        summary: one row per condition and GRU state: condition, gru ("on", "off", or "none" for
            a model without a GRU), war, uar, clips.
        per_class: one row per class, condition and GRU state: class, condition, gru, recall, clips.
        predictions: (condition, gru) -> (N,) int64 predicted classes, clips in row order.
    """

    summary: pd.DataFrame
    per_class: pd.DataFrame
    predictions: dict[tuple[str, str], np.ndarray]


def shuffle_orders(frames: int, shuffles: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    """Up to ``shuffles`` distinct fixed orders of ``frames`` keyframes: name -> ``(T,)``
    permutation, none of them the identity or the reversal (fewer when T is too small to have
    that many; none for T <= 2)."""
    identity, reverse = np.arange(frames), np.arange(frames)[::-1]
    wanted = min(int(shuffles), max(0, math.factorial(int(frames)) - 2))
    rng = np.random.default_rng([int(seed), int(frames)])
    orders: dict[str, np.ndarray] = {}
    while len(orders) < wanted:
        order = rng.permutation(frames)
        if any(np.array_equal(order, o) for o in (identity, reverse, *orders.values())):
            continue
        orders[f"shuffled {len(orders) + 1}"] = order
    return orders


def most_expressive_keyframe(clips: np.ndarray | torch.Tensor) -> np.ndarray:
    """``(B,)`` int64: the keyframe of each clip that differs most from its first keyframe (mean
    absolute difference over pixels and channels), a rule that needs no model and no labels.

    Args:
        clips: ``(B, T, S, S, 3)`` uint8 frames, as the cache stores them.
    """
    x = torch.as_tensor(np.asarray(clips) if not isinstance(clips, torch.Tensor) else clips).float()
    change = (x - x[:, :1]).abs().flatten(2).mean(dim=2)  # (B, T)
    return change.argmax(dim=1).numpy().astype(np.int64)


def reorder(clips: torch.Tensor, condition: str, orders: dict[str, np.ndarray]) -> torch.Tensor:
    """``clips (B, T, S, S, 3)`` with their keyframes in ``condition``'s order."""
    frames = clips.shape[1]
    if condition == CHOSEN:
        return clips
    if condition == REVERSED:
        return clips.flip(1)
    if condition == STATIC:
        apex = torch.as_tensor(most_expressive_keyframe(clips))
        index = apex[:, None].expand(-1, frames)
        return clips[torch.arange(clips.shape[0])[:, None], index]
    if condition in orders:
        return clips[:, torch.as_tensor(orders[condition])]
    raise ValueError(f"unknown order condition {condition!r}; choose from {', '.join(conditions(frames, orders))}")


def conditions(frames: int, orders: dict[str, np.ndarray]) -> list[str]:
    """Every condition for clips of ``frames`` keyframes, in table order."""
    return [CHOSEN, *orders, REVERSED, STATIC]


def gru_states(model: nn.Module) -> tuple[str, ...]:
    """("on", "off") for a model whose residual GRU head can be switched off, ("on",) for a GRU
    head without a pooled path, ("none",) for a model without a GRU."""
    head = getattr(model, "head", None)
    if not isinstance(head, GRUHead):
        return ("none",)
    return ("on", "off") if head.residual else ("on",)


def order_tests(
    model: nn.Module,
    batches,
    *,
    crop: int,
    class_names: Sequence[str],
    shuffles: int = 3,
    seed: int = 0,
    device: str | torch.device | None = None,
    amp: bool = False,
    progress: bool = False,
    total: int | None = None,
) -> OrderTestResult:
    """Score ``model`` on every clip of ``batches`` in every order condition, GRU on and off.

    Args:
        model: a tdrag model (any variant).
        batches: yields ``(clips, labels, ...)``: clips ``(B, T, S, S, 3)`` uint8, labels ``(B,)``
            (a cache DataLoader: ``tdrag.data.loader.make_loader(cache, rows, shuffle=False)``).
        crop: the evaluation centre crop (the run's ``data.crop``).
        class_names: the C class names (rows of ``per_class``).
        shuffles, seed: how many fixed shuffled orders, drawn from which seed.
    """
    states = gru_states(model)
    both = _GRUOnAndOff(model) if states == ("on", "off") else model
    preds: dict[tuple[str, str], list[np.ndarray]] = {}
    labels: list[np.ndarray] = []
    orders: dict[str, np.ndarray] | None = None
    for clips, batch_labels, *_ in tqdm(batches, desc="order tests", total=total, leave=False, disable=not progress):
        clips = torch.as_tensor(clips)
        if orders is None:
            orders = shuffle_orders(clips.shape[1], shuffles, seed)
        labels.append(np.asarray(batch_labels, dtype=np.int64))
        for condition in conditions(clips.shape[1], orders):
            x = reorder(clips, condition, orders)
            logits = forward_clips(both, [(x,)], crop=crop, device=device, amp=amp)[0].logits
            for gru, part in zip(states, logits.chunk(len(states), dim=1)):
                preds.setdefault((condition, gru), []).append(part.argmax(dim=1).numpy())
    if not labels:
        raise ValueError("order_tests: no clips")
    y = np.concatenate(labels)
    predictions = {key: np.concatenate(parts) for key, parts in preds.items()}
    return OrderTestResult(*_tables(y, predictions, tuple(class_names)), predictions)


class _GRUOnAndOff(nn.Module):
    """``x: (B, 3, T, H, W) -> (B, 2 C)``: a TDRAG's logits with the GRU on, then off, from one pass
    of its trunk (the GRU state changes the head alone)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, pool = self.model.head_inputs(x)
        on = self.model.head(features, pool)
        with gru_branch_off(self.model):
            off = self.model.head(features, pool)
        return torch.cat([on, off], dim=1)


def _tables(labels: np.ndarray, predictions: dict[tuple[str, str], np.ndarray],
            class_names: tuple[str, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The summary and per-class tables of the predictions under each (condition, gru)."""
    c = len(class_names)
    summary, per_class = [], []
    for (condition, gru), pred in predictions.items():
        summary.append({"condition": condition, "gru": gru, "war": metrics.war(labels, pred, c),
                        "uar": metrics.uar(labels, pred, c), "clips": len(labels)})
        recall = metrics.per_class(labels, pred, c)["recall"]
        for k, name in enumerate(class_names):
            support = int((labels == k).sum())
            per_class.append({"class": name, "condition": condition, "gru": gru,
                              "recall": float(recall[k]) if support else float("nan"), "clips": support})
    return pd.DataFrame(summary), pd.DataFrame(per_class)


def run_order_tests(run, shuffles: int = 3, seed: int = 0, batch_size: int | None = None,
                    progress: bool | None = None) -> OrderTestResult:
    """:func:`order_tests` over an opened run's clips (``analysis.internals.run.Run``)."""
    from tdrag.data.loader import make_loader

    loader = make_loader(run.cache, run.rows, batch_size=batch_size or run.batch_size, shuffle=False, num_workers=0)
    return order_tests(run.model, loader, crop=run.crop, class_names=run.class_names, shuffles=shuffles, seed=seed,
                       device=run.device, amp=run.amp, progress=run.progress if progress is None else progress,
                       total=len(loader))


def order_costs(summary: pd.DataFrame) -> pd.DataFrame:
    """Each condition's WAR and UAR minus the chosen order's, per GRU state (points, 0..100):
    the wide table a reader compares at a glance (conditions as rows, ``war <gru>`` columns)."""
    out = []
    for (condition, gru), row in summary.set_index(["condition", "gru"]).iterrows():
        base = summary[(summary.condition == CHOSEN) & (summary.gru == gru)].iloc[0]
        out.append({"condition": condition, "gru": gru, "war": 100 * row.war, "uar": 100 * row.uar,
                    "war_change": 100 * (row.war - base.war), "uar_change": 100 * (row.uar - base.uar)})
    return pd.DataFrame(out)
