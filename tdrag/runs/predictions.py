"""Per-clip predictions of an evaluation pass, and the predictions CSVs of a run.

``predictions.csv`` (and ``report/predictions_last.csv``) hold ``video_id,label,prediction,
prob_<Class>...`` with 0-based class indices; the readers check every row and name the file and
line of the first bad one.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tdrag import metrics
from tdrag.atomic import write_text
from tdrag.errors import TdragError


@dataclass
class Predictions:
    """Per-clip outputs of one evaluation pass, ordered by cache row.

    Attributes:
        rows: ``(N,)`` int64 cache rows.
        video_ids: N video ids.
        labels: ``(N,)`` int64 true classes.
        probabilities: ``(N, C)`` float32 softmax outputs.
    """

    rows: np.ndarray
    video_ids: list[str]
    labels: np.ndarray
    probabilities: np.ndarray

    @property
    def predictions(self) -> np.ndarray:
        """``(N,)`` int64 arg-max classes."""
        return self.probabilities.argmax(axis=1).astype(np.int64) if len(self.rows) else np.zeros(0, np.int64)

    def report(self, class_names: Sequence[str]) -> dict[str, Any]:
        """``tdrag.metrics.classification_report`` of these predictions."""
        return metrics.classification_report(self.labels, self.predictions, class_names)


#: The columns of a class's probability are named after the class: ``prob_<Class>``.
PROB_PREFIX = "prob_"


def class_names_of(columns: Sequence[str]) -> list[str]:
    """The class names of a predictions table's ``prob_<Class>`` columns, in column order (the run's
    label order, as :func:`write_predictions` wrote them); empty when there are none."""
    return [c[len(PROB_PREFIX):] for c in columns if c.startswith(PROB_PREFIX)]


def write_predictions(path: str | os.PathLike, predictions: Predictions, class_names: Sequence[str]) -> None:
    """``video_id,label,prediction,prob_<Class>...`` with 0-based class indices."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["video_id", "label", "prediction", *[f"{PROB_PREFIX}{name}" for name in class_names]])
    for vid, label, pred, probs in zip(predictions.video_ids, predictions.labels, predictions.predictions,
                                       predictions.probabilities):
        writer.writerow([vid, int(label), int(pred), *[f"{p:.6f}" for p in probs]])
    write_text(path, buffer.getvalue())


class PredictionsError(TdragError, ValueError):
    """A predictions CSV that is missing, cut off or malformed (the message names the file and line)."""


PREDICTION_COLUMNS = ("video_id", "label", "prediction")


def read_predictions_table(path: str | os.PathLike) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and rows of a predictions CSV, every row checked: ``(header, [(line, cells)])``.

    Raises PredictionsError naming ``path:line`` for a missing column, a row with too few or too
    many cells (a file cut off mid-write), an empty file, or unreadable bytes.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            table = list(csv.reader(handle))
    except FileNotFoundError:
        raise PredictionsError(f"{path}: predictions file not found (run `tdrag eval` on the run)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PredictionsError(f"{path}: cannot read predictions ({exc})") from None
    if not table:
        raise PredictionsError(f"{path}: empty file, expected the header {','.join(PREDICTION_COLUMNS)},prob_...")
    header = [cell.strip() for cell in table[0]]
    missing = [c for c in PREDICTION_COLUMNS if c not in header]
    if missing:
        raise PredictionsError(f"{path}:1: not a tdrag predictions CSV (no column {', '.join(missing)})")
    rows = []
    for line, row in enumerate(table[1:], start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise PredictionsError(f"{path}:{line}: {len(row)} cells where the header has {len(header)} "
                                   "(a cut-off or malformed row)")
        rows.append((line, row))
    return header, rows


def parse_class_index(value: str, class_names: Sequence[str] | None, where: str) -> int:
    """A label cell: a 0-based index (or a class name when ``class_names`` is given), range-checked."""
    text = str(value).strip()
    if class_names is not None and text in class_names:
        return list(class_names).index(text)
    try:
        index = int(text)
    except ValueError:
        known = f" or one of {', '.join(class_names)}" if class_names is not None else ""
        raise PredictionsError(f"{where}: label {text!r} is not a class index{known}") from None
    if index < 0 or (class_names is not None and index >= len(class_names)):
        upper = f"..{len(class_names) - 1}" if class_names is not None else " or more"
        raise PredictionsError(f"{where}: label {index} is outside 0{upper}")
    return index


def read_predictions(path: str | os.PathLike,
                     class_names: Sequence[str] | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(video_ids, labels (N,), predictions (N,))`` from a predictions CSV written here.

    ``class_names`` (default: taken from the ``prob_<Class>`` columns) bounds the indices.
    Raises PredictionsError naming the file and line of the first bad row.
    """
    header, rows = read_predictions_table(path)
    if class_names is None:
        class_names = class_names_of(header) or None
    labels, preds = [], []
    li, pi, vi = header.index("label"), header.index("prediction"), header.index("video_id")
    ids = [row[vi] for _, row in rows]
    for line, row in rows:
        labels.append(parse_class_index(row[li], class_names, f"{path}:{line} (label)"))
        preds.append(parse_class_index(row[pi], class_names, f"{path}:{line} (prediction)"))
    return ids, np.asarray(labels, dtype=np.int64), np.asarray(preds, dtype=np.int64)

