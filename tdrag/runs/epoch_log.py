"""``log.csv``: one row per epoch, rewritten whole (atomically) after each epoch.

The checkpoint ``last.pt`` carries the same rows (its ``history``) and is written first: a run
killed between the two writes has a log one epoch short, which :func:`repair_log` rewrites from
the checkpoint when the run is resumed or evaluated.
"""

from __future__ import annotations

import csv
import io
import math
import os
from typing import Any

from tdrag.atomic import write_text

LOG_COLUMNS = ("epoch", "train_loss", "train_acc", "test_war", "test_uar", "val_war", "val_uar",
               "lr", "epoch_seconds", "clips_per_second")


def log_columns(with_val: bool) -> list[str]:
    """log.csv's header (val columns only when a validation split exists)."""
    return [c for c in LOG_COLUMNS if with_val or not c.startswith("val_")]


def csv_cell(value: Any) -> str:
    """A number as tdrag's CSVs write it: 6 significant digits; empty for None, NaN and inf."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def write_log(path: str | os.PathLike, history: list[dict[str, Any]], with_val: bool) -> None:
    """Write every epoch row of ``history`` to ``path`` (rewritten whole each epoch, atomically)."""
    columns = log_columns(with_val)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in history:
        writer.writerow([csv_cell(row.get(c)) for c in columns])
    write_text(path, buffer.getvalue())


def read_log(path: str | os.PathLike) -> list[dict[str, Any]]:
    """log.csv rows as dicts of floats (ints for ``epoch``; None for empty cells)."""
    rows = []
    with open(path, newline="") as handle:
        for raw in csv.DictReader(handle):
            row: dict[str, Any] = {}
            for key, text in raw.items():
                if text == "" or text is None:
                    row[key] = None
                elif key == "epoch":
                    row[key] = int(text)
                else:
                    row[key] = float(text)
            rows.append(row)
    return rows


def logged_epochs(path: str | os.PathLike) -> list[int] | None:
    """The epochs log.csv holds, in order; None when it is missing or unreadable."""
    try:
        return [int(row["epoch"]) for row in read_log(path)]
    except (OSError, ValueError, KeyError, TypeError, csv.Error, UnicodeDecodeError):
        return None


def repair_log(path: str | os.PathLike, history: list[dict[str, Any]], with_val: bool) -> bool:
    """Make log.csv hold exactly the epochs of ``history`` (a checkpoint's rows), rewriting it when
    it does not (cut short, unreadable or missing). Returns whether it was rewritten."""
    if logged_epochs(path) == [int(row["epoch"]) for row in history]:
        return False
    write_log(path, history, with_val)
    return True
