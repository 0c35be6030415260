"""Classification metrics for DFER: WAR, UAR, confusion matrices, per-class figures, fold summaries.

DFER papers report two numbers:

- **WAR** (weighted average recall) is plain accuracy: recall averaged over classes weighted by
  their support, which equals correct / total.
- **UAR** (unweighted average recall) is the mean of the per-class recalls, so rare classes (DFEW's
  Disgust and Fear) count as much as common ones. A class absent from the labels has no recall and
  is left out of the mean (scikit-learn's ``balanced_accuracy_score`` does the same, with a warning).

Per-class precision, recall and F1 are scikit-learn's ``precision_recall_fscore_support(...,
labels=range(C), zero_division=0)``: a class never predicted has precision 0 (not undefined), a
class absent from the labels recall 0, and F1 is 0 wherever precision + recall is 0. Macro-F1 is
scikit-learn's ``f1_score(..., average="macro", zero_division=0)``: the mean F1 over the classes
that occur in the labels or the predictions, so a class that is present but never predicted counts
with F1 = 0 (DFEW's typical case: Disgust) instead of being skipped.

The 5-fold protocol is summarised two ways, and both are labelled in the output because papers mix
them: the mean +- std of the per-fold figures, and the figures of all folds' predictions pooled.

All functions take integer class indices (0-based) as numpy arrays or lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

ArrayLike = Sequence[int] | np.ndarray


def _as_labels(values: ArrayLike, name: str, num_classes: int) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of class indices, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name}: expected integer class indices, got dtype {array.dtype}")
    array = array.astype(np.int64)
    if array.size and (array.min() < 0 or array.max() >= num_classes):
        raise ValueError(f"{name}: class indices must lie in 0..{num_classes - 1}, got {array.min()}..{array.max()}")
    return array


def _check_pair(labels: ArrayLike, predictions: ArrayLike, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    y = _as_labels(labels, "labels", num_classes)
    p = _as_labels(predictions, "predictions", num_classes)
    if y.shape != p.shape:
        raise ValueError(f"labels and predictions differ in length: {y.size} vs {p.size}")
    return y, p


def confusion_matrix(labels: ArrayLike, predictions: ArrayLike, num_classes: int) -> np.ndarray:
    """Counts ``(C, C)`` int64: row = true class, column = predicted class."""
    y, p = _check_pair(labels, predictions, num_classes)
    return np.bincount(y * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """Row-normalised confusion matrix (each true class sums to 1; an empty row stays 0)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)


def war(labels: ArrayLike, predictions: ArrayLike, num_classes: int) -> float:
    """Weighted average recall = accuracy. NaN for an empty set."""
    y, p = _check_pair(labels, predictions, num_classes)
    return float((y == p).mean()) if y.size else float("nan")


def per_class(labels: ArrayLike, predictions: ArrayLike, num_classes: int) -> dict[str, np.ndarray]:
    """Per-class ``precision``, ``recall``, ``f1`` (float64), ``support`` and ``predicted`` counts.

    As scikit-learn with ``zero_division=0``: precision 0 for a class never predicted, recall 0
    for a class absent from the labels, F1 0 where precision + recall is 0.
    """
    counts = confusion_matrix(labels, predictions, num_classes)
    true_pos = np.diag(counts).astype(np.float64)
    support = counts.sum(axis=1)
    predicted = counts.sum(axis=0)
    precision = true_pos / np.maximum(predicted, 1)
    recall = true_pos / np.maximum(support, 1)
    denom = precision + recall
    f1 = 2 * precision * recall / np.where(denom > 0, denom, 1.0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64),
            "predicted": predicted.astype(np.int64)}


def uar(labels: ArrayLike, predictions: ArrayLike, num_classes: int) -> float:
    """Unweighted average recall: mean recall over the classes present in ``labels``."""
    figures = per_class(labels, predictions, num_classes)
    present = figures["support"] > 0
    return float(figures["recall"][present].mean()) if present.any() else float("nan")


def macro_f1(labels: ArrayLike, predictions: ArrayLike, num_classes: int) -> float:
    """Mean F1 over the classes that occur in ``labels`` or ``predictions`` (scikit-learn's macro
    average with ``zero_division=0``); NaN for an empty set."""
    figures = per_class(labels, predictions, num_classes)
    occurring = (figures["support"] > 0) | (figures["predicted"] > 0)
    return float(figures["f1"][occurring].mean()) if occurring.any() else float("nan")


def _finite_or_none(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def classification_report(
    labels: ArrayLike,
    predictions: ArrayLike,
    class_names: Sequence[str],
) -> dict[str, Any]:
    """Everything a report needs, as JSON-ready primitives (NaN becomes None).

    Returns ``{"num_clips", "war", "uar", "macro_f1", "per_class": {name: {precision, recall, f1,
    support}}, "confusion_matrix": [[counts]], "confusion_matrix_normalized": [[rates]]}``; the
    per-class figures and macro-F1 as scikit-learn gives them (see the module docstring).
    """
    num_classes = len(class_names)
    counts = confusion_matrix(labels, predictions, num_classes)
    figures = per_class(labels, predictions, num_classes)
    return {
        "num_clips": int(counts.sum()),
        "war": _finite_or_none(war(labels, predictions, num_classes)),
        "uar": _finite_or_none(uar(labels, predictions, num_classes)),
        "macro_f1": _finite_or_none(macro_f1(labels, predictions, num_classes)),
        "per_class": {
            name: {
                "precision": _finite_or_none(figures["precision"][i]),
                "recall": _finite_or_none(figures["recall"][i]),
                "f1": _finite_or_none(figures["f1"][i]),
                "support": int(figures["support"][i]),
            }
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": counts.tolist(),
        "confusion_matrix_normalized": normalize_rows(counts).tolist(),
    }


def aggregate_folds(
    folds: dict[str, tuple[ArrayLike, ArrayLike]],
    class_names: Sequence[str],
) -> dict[str, Any]:
    """Summarise a k-fold protocol both ways.

    Args:
        folds: ``{fold name: (labels, predictions)}`` for each fold's test split.
        class_names: class names in index order.

    Returns:
        ``{"per_fold": {fold: {"war", "uar", "num_clips"}}, "mean_std": {"war": {"mean", "std"},
        "uar": {...}, "description"}, "pooled": {classification_report over all folds' predictions
        concatenated, plus "description"}}``. The std is the sample std (ddof=1) over folds, 0 for
        a single fold.
    """
    if not folds:
        raise ValueError("aggregate_folds: no folds given")
    num_classes = len(class_names)
    per_fold: dict[str, dict[str, Any]] = {}
    all_labels, all_predictions = [], []
    for name, (labels, predictions) in folds.items():
        y, p = _check_pair(labels, predictions, num_classes)
        per_fold[str(name)] = {
            "war": _finite_or_none(war(y, p, num_classes)),
            "uar": _finite_or_none(uar(y, p, num_classes)),
            "num_clips": int(y.size),
        }
        all_labels.append(y)
        all_predictions.append(p)

    def mean_std(key: str) -> dict[str, float | None]:
        values = np.array([f[key] for f in per_fold.values() if f[key] is not None], dtype=np.float64)
        if values.size == 0:
            return {"mean": None, "std": None}
        std = float(values.std(ddof=1)) if values.size > 1 else 0.0
        return {"mean": float(values.mean()), "std": std}

    pooled = classification_report(np.concatenate(all_labels), np.concatenate(all_predictions), class_names)
    pooled["description"] = "WAR/UAR of all folds' test predictions pooled into one set"
    return {
        "folds": list(per_fold),
        "per_fold": per_fold,
        "mean_std": {
            "war": mean_std("war"),
            "uar": mean_std("uar"),
            "description": "mean +- sample std (ddof=1) of the per-fold WAR/UAR",
        },
        "pooled": pooled,
    }
