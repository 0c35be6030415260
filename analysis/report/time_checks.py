"""Time, checked over many runs: the order tests and the temporal agreement of several trained
runs (variants x seeds), summarised as mean +- std over seeds for a benchmark table.

Each run gives (``analysis.internals.order_tests.run_order_tests``,
``analysis.attribution.temporal.temporal_agreement``) an order-test summary, its per-class recall
and an agreement table; :func:`check_run` makes them for one run directory and
:func:`order_table` / :func:`agreement_table` pool them:

    records = [check_run(run_dir, variant, seed, truth_root) for ...]
    print(order_markdown(order_table(records, pairs=[("Fear", "Surprise")])))
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class TimeCheck:
    """One run's order tests and temporal agreement.

    Attributes:
        variant, seed: which run.
        order: the order tests' summary (condition, gru, war, uar, clips).
        order_per_class: their per-class recall (class, condition, gru, recall, clips).
        agreement: the temporal agreement (class, view, auroc, prior_auroc, clips); empty without
            temporal ground truth.
    """

    variant: str
    seed: int
    order: pd.DataFrame
    order_per_class: pd.DataFrame
    agreement: pd.DataFrame


def check_run(run_dir: str | os.PathLike, variant: str, seed: int, truth_root: str | os.PathLike | None = None,
              split: str = "test", small: bool = False, cache: str | os.PathLike | None = None,
              views: Sequence[str] | None = None, max_clips: int | None = None) -> TimeCheck:
    """Open ``run_dir`` (its validation-chosen checkpoint, or last.pt) and measure both.

    ``cache`` (with ``split="all"``) opens the run on another draw of its preset, such as the
    held-out draw of ``benchmarks/bench_heldout.py``; ``views`` limits the temporal views scored
    (default: all the model has); ``max_clips`` takes at most that many clips per class.
    """
    from analysis.internals.run import open_run
    from analysis.internals.order_tests import run_order_tests
    from analysis.attribution.temporal import available_views, has_temporal_truth, temporal_agreement

    run = open_run(run_dir, split=split, device="cpu", data_root=truth_root, progress=False, cache=cache,
                   max_clips=max_clips)
    result = run_order_tests(run)
    if views is not None:
        views = [v for v in views if v in available_views(run)]
    agreement = (temporal_agreement(run, views=views, small=small) if has_temporal_truth(run.data_root)
                 else pd.DataFrame())
    return TimeCheck(variant, int(seed), result.summary, result.per_class, agreement)


def _mean_std(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def order_table(records: Sequence[TimeCheck], pairs: Sequence[tuple[str, str]] = ()) -> pd.DataFrame:
    """Per variant, condition and GRU state: WAR (points) mean and std over seeds, its change from
    the chosen order, and for each pair the mean recall of its two classes (points).

    Returns a DataFrame with columns variant, condition, gru, seeds, war, war_std, war_change,
    war_change_std and ``<a>/<b> recall`` (+ ``_std``) per pair.
    """
    rows = []
    keys = sorted({(r.variant, c, g) for r in records for c, g in zip(r.order.condition, r.order.gru)},
                  key=lambda k: (_first_index(records, k[0]), _condition_rank(records, k[1]), _GRU_ORDER.index(k[2])))
    for variant, condition, gru in keys:
        runs = [r for r in records if r.variant == variant]
        war, change, pair_recall = [], [], {p: [] for p in pairs}
        for r in runs:
            here = r.order[(r.order.condition == condition) & (r.order.gru == gru)]
            base = r.order[(r.order.condition == "chosen") & (r.order.gru == gru)]
            if here.empty:
                continue
            war.append(100 * here.war.iloc[0])
            change.append(100 * (here.war.iloc[0] - base.war.iloc[0]))
            cls = r.order_per_class[(r.order_per_class.condition == condition) & (r.order_per_class.gru == gru)]
            for p in pairs:
                pair_recall[p].append(100 * cls[cls["class"].isin(p)].recall.mean())
        row = {"variant": variant, "condition": condition, "gru": gru, "seeds": len(war)}
        row["war"], row["war_std"] = _mean_std(war)
        row["war_change"], row["war_change_std"] = _mean_std(change)
        for p, values in pair_recall.items():
            row[f"{p[0]}/{p[1]} recall"], row[f"{p[0]}/{p[1]} recall_std"] = _mean_std(values)
        rows.append(row)
    return pd.DataFrame(rows)


def agreement_table(records: Sequence[TimeCheck], task: str = "all") -> pd.DataFrame:
    """Per variant and view: the agreement (AUROC) of ``task``'s row ("all" clips, or a class
    name) and the prior's, mean and std over seeds, and the clips scored per run."""
    rows = []
    variants = list(dict.fromkeys(r.variant for r in records))
    for variant in variants:
        runs = [r for r in records if r.variant == variant and not r.agreement.empty]
        views = list(dict.fromkeys(v for r in runs for v in r.agreement.view))
        for view in views:
            picked = [r.agreement[(r.agreement.view == view) & (r.agreement["class"] == task)] for r in runs]
            picked = [p for p in picked if not p.empty]
            if not picked:
                continue
            auroc, auroc_std = _mean_std([p.auroc.iloc[0] for p in picked])
            prior, prior_std = _mean_std([p.prior_auroc.iloc[0] for p in picked])
            rows.append({"variant": variant, "view": view, "seeds": len(picked), "auroc": auroc,
                         "auroc_std": auroc_std, "prior_auroc": prior, "prior_auroc_std": prior_std,
                         "clips": float(np.mean([p.clips.iloc[0] for p in picked]))})
    return pd.DataFrame(rows)


_GRU_ORDER = ("on", "off", "none")


def _first_index(records: Sequence[TimeCheck], variant: str) -> int:
    return next(i for i, r in enumerate(records) if r.variant == variant)


def _condition_rank(records: Sequence[TimeCheck], condition: str) -> int:
    order = list(dict.fromkeys(c for r in records for c in r.order.condition))
    return order.index(condition)


def _pm(mean: float, std: float, digits: int = 1, signed: bool = False) -> str:
    return f"{mean:+.{digits}f} ± {std:.{digits}f}" if signed else f"{mean:.{digits}f} ± {std:.{digits}f}"


def order_markdown(table: pd.DataFrame) -> str:
    """:func:`order_table` as Markdown (mean ± std over seeds)."""
    pair_columns = [c for c in table.columns if c.endswith(" recall")]
    head = ["variant", "condition", "GRU", "seeds", "WAR", "change"] + pair_columns
    lines = ["| " + " | ".join(head) + " |", "|---|---|---|---:|---:|---:|" + "---:|" * len(pair_columns)]
    for _, r in table.iterrows():
        cells = [r.variant, r.condition, r.gru, str(r.seeds), _pm(r.war, r.war_std),
                 _pm(r.war_change, r.war_change_std, signed=True)]
        cells += [_pm(r[c], r[c + "_std"]) for c in pair_columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def agreement_markdown(table: pd.DataFrame) -> str:
    """:func:`agreement_table` as Markdown (mean ± std over seeds)."""
    lines = ["| variant | view | seeds | AUROC | prior AUROC | clips per run |", "|---|---|---:|---:|---:|---:|"]
    for _, r in table.iterrows():
        lines.append(f"| {r.variant} | {r.view} | {r.seeds} | {_pm(r.auroc, r.auroc_std, 3)} | "
                     f"{_pm(r.prior_auroc, r.prior_auroc_std, 3)} | {r.clips:.0f} |")
    return "\n".join(lines)
