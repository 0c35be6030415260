"""Reading a run directory or a cross-validation directory for the reports.

A **run directory** (``tdrag train`` / ``tdrag eval``; its files are named by
``tdrag.runs.layout.RunPaths``) holds the test predictions (``video_id, label, prediction,
prob_<class>...``: the class names travel in the ``prob_`` columns), the epoch log and the
metrics; a **cross-validation directory** (``tdrag cv``) holds ``summary.json`` and ``fold_<k>/`` run
directories. A missing or malformed file raises :class:`ReportError` (or ``PredictionsError``)
naming it::

    preds = load_predictions("runs/demo/run")           # label and prediction as class indices
    names = class_names_from_predictions(preds)
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from tdrag.errors import TdragError
from tdrag.runs.layout import RunPaths
from tdrag.runs.predictions import (PROB_PREFIX, PredictionsError, class_names_of, parse_class_index,
                                    read_predictions_table)

PathLike = str | os.PathLike

#: The checkpoints whose test predictions a run keeps: "selected" (``RunPaths.predictions``: the
#: best checkpoint, or the last when there is no best) and "last" (``RunPaths.predictions_last``).
CHECKPOINTS = ("selected", "last")


class ReportError(TdragError, FileNotFoundError):
    """A run directory lacks a file the report needs, or the file is malformed."""

def predictions_path(run_dir: PathLike, checkpoint: str = "selected") -> Path:
    """The file holding the test predictions of ``checkpoint`` (one of :data:`CHECKPOINTS`)."""
    if checkpoint not in CHECKPOINTS:
        raise ValueError(f"checkpoint must be one of {list(CHECKPOINTS)}, got {checkpoint!r}")
    paths = RunPaths(run_dir)
    return paths.predictions if checkpoint == "selected" else paths.predictions_last


def load_predictions(run_dir: PathLike, checkpoint: str = "selected") -> pd.DataFrame:
    """A run's test predictions with integer ``label`` and ``prediction`` columns (0-based).

    Args:
        run_dir: the run directory.
        checkpoint: "selected" for the selected checkpoint's predictions (the best checkpoint, or
            the last when there is no best); "last" for the last checkpoint's.
    """
    path = predictions_path(run_dir, checkpoint)
    if not path.is_file():
        raise ReportError(f"{run_dir} has no {path.relative_to(run_dir)} ({path}): run `tdrag eval {run_dir}` first")
    return read_predictions_csv(path)

def read_predictions_csv(path: PathLike) -> pd.DataFrame:
    """A predictions CSV (``video_id,label,prediction,prob_<class>...``), labels as class indices.

    Read with ``tdrag.runs.predictions.read_predictions_table`` / ``parse_class_index``: a short or cut-off row,
    or a label that is neither a class index nor a class name, raises ``PredictionsError`` naming
    ``<path>:<line>`` and the problem.
    """
    path = Path(path)
    header, rows = read_predictions_table(path)
    if not rows:
        raise PredictionsError(f"{path}: no predictions (header only)")
    names = class_names_of(header) or None  # None: indices only
    li, pi = header.index("label"), header.index("prediction")
    records = {column: [row[i] for _, row in rows] for i, column in enumerate(header)}
    df = pd.DataFrame(records, columns=header)
    df["label"] = [parse_class_index(row[li], names, f"{path}:{line} (label)") for line, row in rows]
    df["prediction"] = [parse_class_index(row[pi], names, f"{path}:{line} (prediction)") for line, row in rows]
    for column in header:
        if column.startswith(PROB_PREFIX):
            df[column] = pd.to_numeric(df[column], errors="coerce")
    df["label"] = df["label"].astype(np.int64)
    df["prediction"] = df["prediction"].astype(np.int64)
    df.attrs["path"] = str(path)  # named by class_names_from_predictions' error
    return df

def class_names_from_predictions(df: pd.DataFrame) -> list[str]:
    """Class names from the ``prob_<name>`` columns, in column order (the run's classes, as tdrag
    wrote them); ReportError for predictions without them: their classes are unknown."""
    names = class_names_of(list(df.columns))
    if not names:
        raise ReportError(f"{df.attrs.get('path', 'predictions')}: no prob_<class> columns: their class names are "
                          "unknown (re-run `tdrag eval` on the run to write them)")
    return names

def load_log(run_dir: PathLike) -> pd.DataFrame:
    """The run's epoch log (``RunPaths.log``): one row per epoch."""
    path = RunPaths(run_dir).log
    if not path.is_file():
        raise ReportError(f"{run_dir} has no {path.name} ({path}): it is written by `tdrag train`")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ReportError(f"{path}: not a readable CSV ({err})") from None
    if df.empty:
        raise ReportError(f"{path}: no epochs logged (empty file)")
    return df

def load_summary(cv_dir: PathLike) -> dict:
    """``CV_DIR/summary.json`` as written by ``tdrag cv`` (``tdrag.metrics.aggregate_folds``)."""
    path = Path(cv_dir) / "summary.json"
    if not path.is_file():
        raise ReportError(f"{cv_dir} has no summary.json ({path}): run `tdrag cv` first")
    try:
        summary = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ReportError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(summary, dict) or "per_fold" not in summary:
        raise ReportError(f"{path}: expected a dict with 'per_fold' (tdrag.metrics.aggregate_folds output)")
    return summary

def fold_dirs(cv_dir: PathLike) -> list[Path]:
    """``CV_DIR/fold_<k>`` directories in fold order."""
    found = [p for p in Path(cv_dir).glob("fold_*") if p.is_dir() and re.fullmatch(r"fold_\d+", p.name)]
    return sorted(found, key=lambda p: int(p.name.split("_")[1]))

def summary_block(summary: dict, checkpoint: str = "selected") -> dict:
    """The part of summary.json for ``checkpoint`` ("selected": top level; "last": ``last_epoch``)."""
    if checkpoint == "selected":
        return summary
    if checkpoint == "last":
        if "last_epoch" not in summary:
            raise ReportError("summary.json has no 'last_epoch' block (written by an older `tdrag cv`?)")
        return summary["last_epoch"]
    raise ValueError(f"checkpoint must be 'selected' or 'last', got {checkpoint!r}")

def selected_checkpoint_label(run_dir: PathLike) -> str | None:
    """Which checkpoint the selected predictions come from, per the run's metrics
    (``RunPaths.read_metrics``; None if unknown).

    E.g. "best epoch by test WAR (optimistic), epoch 7": the figures say whether the epoch was
    chosen on the test fold itself.
    """
    info = RunPaths(run_dir).read_metrics()
    if info is None:
        return None
    chosen = info.get("best") or info.get("last")
    if not isinstance(chosen, dict) or "label" not in chosen:
        return None
    epoch = chosen.get("epoch")
    return f"{chosen['label']}, epoch {epoch}" if epoch is not None else str(chosen["label"])
