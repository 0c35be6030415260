"""The numbers of a run or a cross-validation directory as DataFrames: confusion matrices, per-class
recall, WAR / UAR, the fold summary table (every figure from ``tdrag.metrics``, scikit-learn semantics)::

    confusion = confusion_from_predictions(preds, names)         # (C, C) counts
    table = per_class_table(preds["label"], preds["prediction"], names)
    format_summary_table(cv_summary_table("runs/tdrag_cv"))      # mean ± std and pooled, as strings
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.report.run_files import (PathLike, class_names_from_predictions, fold_dirs, load_predictions,
                                       load_summary, predictions_path, summary_block)
from tdrag import metrics


def confusion_from_predictions(df: pd.DataFrame, class_names: Sequence[str]) -> np.ndarray:
    """(C, C) int64 counts, row = true class, column = predicted (``tdrag.metrics.confusion_matrix``)."""
    return metrics.confusion_matrix(df["label"].to_numpy(), df["prediction"].to_numpy(), len(class_names))

def pairs_from_confusion(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``(labels, predictions)`` a confusion matrix counts (one pair per clip), so that pooled
    matrices are scored by ``tdrag.metrics`` like any predictions."""
    counts = np.asarray(confusion, dtype=np.int64)
    c = counts.shape[0]
    flat = counts.reshape(-1)
    cells = np.repeat(np.arange(c * c), flat)
    return cells // c, cells % c

def per_class_table(labels: Sequence[int] | np.ndarray, predictions: Sequence[int] | np.ndarray,
                    class_names: Sequence[str]) -> pd.DataFrame:
    """DataFrame indexed by class: support, correct, precision, recall, f1 (``tdrag.metrics.per_class``,
    scikit-learn semantics); ``recall`` is NaN for a class without clips, so a figure says "n/a".
    ``table.attrs`` holds the set's ``war`` and ``uar`` (``tdrag.metrics``)."""
    figures = metrics.per_class(labels, predictions, len(class_names))
    counts = metrics.confusion_matrix(labels, predictions, len(class_names))
    support = figures["support"]
    table = pd.DataFrame(
        {"support": support, "correct": np.diag(counts).astype(np.int64), "precision": figures["precision"],
         "recall": np.where(support > 0, figures["recall"], np.nan), "f1": figures["f1"]},
        index=pd.Index(list(class_names), name="class"),
    )
    table.attrs["war"], table.attrs["uar"] = war_uar_of(labels, predictions, len(class_names))
    return table

def per_class_from_confusion(confusion: np.ndarray, class_names: Sequence[str]) -> pd.DataFrame:
    """:func:`per_class_table` of the clips a confusion matrix counts."""
    return per_class_table(*pairs_from_confusion(confusion), class_names)

def war_uar_of(labels: Sequence[int] | np.ndarray, predictions: Sequence[int] | np.ndarray,
               num_classes: int) -> tuple[float, float]:
    """``(WAR, UAR)`` from ``tdrag.metrics``."""
    return metrics.war(labels, predictions, num_classes), metrics.uar(labels, predictions, num_classes)

def prediction_summary(df: pd.DataFrame, class_names: Sequence[str]) -> pd.DataFrame:
    """One row: clips, WAR, UAR and macro-F1 (in %) of a predictions table (``tdrag.metrics``)."""
    y, p, n = df["label"].to_numpy(), df["prediction"].to_numpy(), len(class_names)
    return pd.DataFrame([{"clips": len(df), "WAR %": 100 * metrics.war(y, p, n), "UAR %": 100 * metrics.uar(y, p, n),
                          "macro-F1 %": 100 * metrics.macro_f1(y, p, n)}]).round(2)

def confusion_table(confusion: np.ndarray, class_names: Sequence[str]) -> pd.DataFrame:
    """A confusion matrix as a DataFrame: rows = true class, columns = predicted class."""
    return pd.DataFrame(np.asarray(confusion), index=pd.Index(list(class_names), name="true"),
                        columns=list(class_names))

def _pct(value) -> float:
    return float("nan") if value is None else 100.0 * float(value)

def cv_summary_table(cv_dir: PathLike, summary: dict | None = None, checkpoint: str = "selected") -> pd.DataFrame:
    """Numeric fold summary in percent: one row per fold, then ``mean``, ``std`` and ``pooled``.

    Columns: ``WAR``, ``UAR``, ``clips`` and, where the folds' prediction files exist, the recall
    of each class. ``mean``/``std`` are over folds (sample std, ddof=1); ``pooled`` scores all
    folds' predictions as one set. Both conventions appear in papers, so both are listed.

    Args:
        cv_dir: the cross-validation directory (``summary.json``, ``fold_<k>/``).
        summary: its parsed summary.json (read when None).
        checkpoint: "selected" (summary.json's top level and the folds' selected predictions: the
            best checkpoint, optimistic when chosen on the test fold) or "last" (``last_epoch`` and
            the folds' last-checkpoint predictions: no choice made on the test fold).
    """
    summary = load_summary(cv_dir) if summary is None else summary
    block = summary_block(summary, checkpoint)
    rows: dict[str, dict[str, float]] = {}
    for fold, figures in block["per_fold"].items():
        rows[_fold_label(fold)] = {"WAR": _pct(figures.get("war")), "UAR": _pct(figures.get("uar")),
                                   "clips": float(figures.get("num_clips", np.nan))}
    # Per-class recall per fold from the folds' own predictions, where present.
    pooled_confusion = None
    names: list[str] | None = None
    for path in fold_dirs(cv_dir):
        label = _fold_label(path.name)
        if label not in rows or not predictions_path(path, checkpoint).is_file():
            continue
        preds = load_predictions(path, checkpoint)
        names = class_names_from_predictions(preds)
        confusion = confusion_from_predictions(preds, names)
        pooled_confusion = confusion if pooled_confusion is None else pooled_confusion + confusion
        recall = per_class_from_confusion(confusion, names)["recall"]
        rows[label].update({name: 100.0 * r for name, r in recall.items()})
    table = pd.DataFrame.from_dict(rows, orient="index")
    folds = table.copy()
    table.loc["mean"] = folds.mean(axis=0, skipna=True)
    table.loc["std"] = folds.std(axis=0, ddof=1, skipna=True) if len(folds) > 1 else 0.0
    pooled = block.get("pooled", {})
    pooled_row = {"WAR": _pct(pooled.get("war")), "UAR": _pct(pooled.get("uar")),
                  "clips": float(pooled.get("num_clips", folds["clips"].sum()))}
    if pooled_confusion is not None and names is not None:
        pooled_row.update({n: 100.0 * r for n, r in per_class_from_confusion(pooled_confusion, names)["recall"].items()})
    table.loc["pooled"] = pd.Series(pooled_row)
    table.loc["std", "clips"] = np.nan
    table.index.name = "fold"
    return table

def _fold_label(name: str) -> str:
    """"1", "fold_1", 1 -> "fold 1"."""
    match = re.search(r"(\d+)$", str(name))
    return f"fold {match.group(1)}" if match else str(name)

def format_summary_table(table: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """Strings for publication: fold rows as numbers, ``mean ± std`` in one row, then ``pooled``."""
    folds = table.drop(index=[i for i in ("mean", "std", "pooled") if i in table.index])

    def number(value: float, column: str) -> str:
        if pd.isna(value):
            return "–"
        return f"{int(round(value))}" if column == "clips" else f"{value:.{digits}f}"

    out = {label: {c: number(v, c) for c, v in row.items()} for label, row in folds.iterrows()}
    if "mean" in table.index:
        mean_std = {}
        for c in table.columns:
            m = table.loc["mean", c]
            s = table.loc["std", c] if "std" in table.index else np.nan
            if c == "clips":
                mean_std[c] = number(table.loc["pooled", c] if "pooled" in table.index else m, c)
            elif pd.isna(s):
                mean_std[c] = number(m, c)
            else:
                mean_std[c] = f"{m:.{digits}f} ± {s:.{digits}f}"
        out["mean ± std"] = mean_std
    if "pooled" in table.index:
        out["pooled"] = {c: number(v, c) for c, v in table.loc["pooled"].items()}
    formatted = pd.DataFrame.from_dict(out, orient="index")[list(table.columns)]
    formatted.index.name = table.index.name
    return formatted
