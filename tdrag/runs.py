"""Run directory files: ``log.csv``, ``predictions.csv`` and the ``report/`` folder.

Layout of a run (DESIGN.md, "Runs")::

    RUN/config.yaml
    RUN/log.csv                      one row per epoch (LOG_COLUMNS)
    RUN/checkpoints/last.pt|best.pt
    RUN/predictions.csv              test predictions of the selected (best) checkpoint:
                                     video_id,label,prediction,prob_<Class>... (0-based indices)
    RUN/report/metrics.json          last and best checkpoints' figures, both labelled
    RUN/report/per_class_recall.csv  checkpoint,epoch,class,support,precision,recall,f1
    RUN/report/per_class_recall.md   the same as tables, with the model-selection note
    RUN/report/confusion_matrix.csv  counts of the selected checkpoint (row = true class)
    RUN/report/predictions_last.csv  test predictions of the last checkpoint (same columns)

``plan_run_dir`` decides, without touching anything, what a new run resumes from and which of
tdrag's files it replaces (``RunExistsError`` when neither resume nor overwrite allows going on).

Every file is written atomically. ``RUN_FILES`` lists every file tdrag writes into a run
directory (the report figures of ``python -m analysis report`` included): those are the only
files a fresh run replaces (``tdrag.ownership``); anything else a user keeps there stays.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tdrag import metrics
from tdrag.atomic import write_json, write_text
from tdrag.errors import TdragError

log = logging.getLogger(__name__)

#: Files tdrag (and ``python -m analysis report``) write into ``report/``.
REPORT_FILES: tuple[str, ...] = (
    "metrics.json", "per_class_recall.csv", "per_class_recall.md", "confusion_matrix.csv", "predictions_last.csv",
    "confusion_matrix.png", "confusion_matrix_normalized.png", "per_class_recall.png", "training_curves.png",
)
#: Every file of a run directory that tdrag writes, relative to it.
RUN_FILES: tuple[str, ...] = (
    "config.yaml", "log.csv", "predictions.csv", "checkpoints/last.pt", "checkpoints/best.pt",
    *(f"report/{name}" for name in REPORT_FILES),
)


def own_run_files(run_dir: str | os.PathLike) -> list[str]:
    """The files of ``RUN_FILES`` present in ``run_dir`` (relative paths), plus the temporary
    files an interrupted atomic write of one of them left (``.<name>.<random>.tmp``)."""
    run_dir = Path(run_dir)
    found = [rel for rel in RUN_FILES if (run_dir / rel).is_file()]
    for rel in RUN_FILES:
        path = run_dir / rel
        if path.parent.is_dir():
            found += [str(p.relative_to(run_dir)) for p in path.parent.glob(f".{path.name}.*.tmp")]
    return sorted(set(found))


LOG_COLUMNS = ("epoch", "train_loss", "train_acc", "test_war", "test_uar", "val_war", "val_uar",
               "lr", "epoch_seconds", "clips_per_second")

SELECTION_NOTES = {
    "test": (
        "The best epoch was chosen by WAR on the test fold itself (data.val_fraction = 0), as several "
        "DFEW codebases do: its figures are optimistic. The last epoch's figures involve no choice on "
        "the test fold; quote those, or set data.val_fraction > 0 to select on held-out training clips."
    ),
    "val": (
        "The best epoch was chosen by WAR on a validation split held out from the training fold "
        "(data.val_fraction > 0); the test fold played no part in the choice."
    ),
}


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


def log_columns(with_val: bool) -> list[str]:
    """log.csv's header (val columns only when a validation split exists)."""
    return [c for c in LOG_COLUMNS if with_val or not c.startswith("val_")]


def _cell(value: Any) -> str:
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
        writer.writerow([_cell(row.get(c)) for c in columns])
    write_text(path, buffer.getvalue())


def write_predictions(path: str | os.PathLike, predictions: Predictions, class_names: Sequence[str]) -> None:
    """``video_id,label,prediction,prob_<Class>...`` with 0-based class indices."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["video_id", "label", "prediction", *[f"prob_{name}" for name in class_names]])
    for vid, label, pred, probs in zip(predictions.video_ids, predictions.labels, predictions.predictions,
                                       predictions.probabilities):
        writer.writerow([vid, int(label), int(pred), *[f"{p:.6f}" for p in probs]])
    write_text(path, buffer.getvalue())


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _per_class_markdown(title: str, report: dict[str, Any]) -> str:
    lines = [f"### {title}", "", f"WAR {_fmt(report['war'])} · UAR {_fmt(report['uar'])} · "
             f"macro F1 {_fmt(report['macro_f1'])} · {report['num_clips']} clips", "",
             "| class | support | precision | recall | F1 |", "|---|---:|---:|---:|---:|"]
    for name, figures in report["per_class"].items():
        lines.append(f"| {name} | {figures['support']} | {_fmt(figures['precision'])} | "
                     f"{_fmt(figures['recall'])} | {_fmt(figures['f1'])} |")
    return "\n".join(lines) + "\n"


def write_report(
    run_dir: str | os.PathLike,
    class_names: Sequence[str],
    last: tuple[int, Predictions],
    best: tuple[int, Predictions] | None,
    selection_split: str,
    last_val: Predictions | None = None,
    best_val: Predictions | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write predictions.csv and report/ for a run; return the metrics.json content.

    Args:
        run_dir: the run directory.
        class_names: class names in index order.
        last: (epoch, test predictions) of ``checkpoints/last.pt``.
        best: (epoch, test predictions) of ``checkpoints/best.pt``; None when there is none (the
            last checkpoint is then the selected one).
        selection_split: "val" or "test": what the best epoch was chosen on.
        last_val, best_val: validation predictions, when a validation split exists.
        extra: more top-level entries for metrics.json (model, fold, ...).
    """
    run_dir = Path(run_dir)
    report_dir = run_dir / "report"
    selected_name, (selected_epoch, selected) = ("best", best) if best is not None else ("last", last)

    def entry(name: str, epoch: int, test: Predictions, val: Predictions | None) -> dict[str, Any]:
        item = {
            "epoch": int(epoch),
            "checkpoint": f"checkpoints/{name}.pt",
            "test": test.report(class_names),
        }
        if val is not None:
            item["val"] = val.report(class_names)
        return item

    result: dict[str, Any] = {
        **(extra or {}),
        "class_names": list(class_names),
        "last": {"label": "last epoch", **entry("last", *last, last_val)},
        "best": None if best is None else {
            "label": f"best epoch by {selection_split} WAR" + (" (optimistic)" if selection_split == "test" else ""),
            **entry("best", *best, best_val),
        },
        "selection": {
            "metric": f"{selection_split}_war",
            "split": selection_split,
            "optimistic": selection_split == "test",
            "note": SELECTION_NOTES[selection_split],
        },
        "predictions_csv": f"predictions.csv holds the test predictions of checkpoints/{selected_name}.pt "
                           f"(epoch {selected_epoch})",
    }
    write_predictions(run_dir / "predictions.csv", selected, class_names)
    write_predictions(report_dir / "predictions_last.csv", last[1], class_names)
    write_json(report_dir / "metrics.json", result)

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["checkpoint", "epoch", "class", "support", "precision", "recall", "f1"])
    markdown = [f"# Test results: {run_dir.name}", ""]
    for name in ("last", "best"):
        item = result[name]
        if item is None:
            continue
        for cls, figures in item["test"]["per_class"].items():
            writer.writerow([name, item["epoch"], cls, figures["support"], _cell(figures["precision"]),
                             _cell(figures["recall"]), _cell(figures["f1"])])
        markdown.append(_per_class_markdown(f"{item['label']} (epoch {item['epoch']}, checkpoints/{name}.pt)",
                                            item["test"]))
    markdown.append(f"**Model selection.** {SELECTION_NOTES[selection_split]}\n")
    markdown.append("WAR = accuracy; UAR = mean of the per-class recalls. "
                    f"`predictions.csv` and `confusion_matrix.csv` are those of checkpoints/{selected_name}.pt.\n")
    write_text(report_dir / "per_class_recall.csv", buffer.getvalue())
    write_text(report_dir / "per_class_recall.md", "\n".join(markdown))

    counts = metrics.confusion_matrix(selected.labels, selected.predictions, len(class_names))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["true\\predicted", *class_names])
    for name, row in zip(class_names, counts):
        writer.writerow([name, *[int(v) for v in row]])
    write_text(report_dir / "confusion_matrix.csv", buffer.getvalue())
    return result


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
        probs = [c[len("prob_"):] for c in header if c.startswith("prob_")]
        class_names = probs or None
    labels, preds = [], []
    li, pi, vi = header.index("label"), header.index("prediction"), header.index("video_id")
    ids = [row[vi] for _, row in rows]
    for line, row in rows:
        labels.append(parse_class_index(row[li], class_names, f"{path}:{line} (label)"))
        preds.append(parse_class_index(row[pi], class_names, f"{path}:{line} (prediction)"))
    return ids, np.asarray(labels, dtype=np.int64), np.asarray(preds, dtype=np.int64)


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


class RunExistsError(TdragError, RuntimeError):
    """The run directory already holds a run and neither resume nor overwrite was asked for."""


def _run_files_except_config(run_dir: Path) -> list[str]:
    return [f for f in own_run_files(run_dir) if f != "config.yaml"]


def plan_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> tuple[Path | None, list[str]]:
    """Decide, without touching anything, what a run in ``run_dir`` resumes from and what it replaces.

    Returns:
        ``(checkpoint to resume from or None, tdrag files to remove before starting)``.

    Raises:
        RunExistsError: the folder holds an earlier run and neither ``resume`` (with a
            ``last.pt`` to resume from) nor ``overwrite`` allows going on.
    """
    last = run_dir / "checkpoints" / "last.pt"
    earlier = _run_files_except_config(run_dir)
    if resume and last.is_file():
        return last, []
    if earlier and not overwrite:
        shown = ", ".join(earlier[:4]) + (" ..." if len(earlier) > 4 else "")
        if resume:
            raise RunExistsError(f"{run_dir}: --resume: no checkpoints/last.pt to resume from, but the folder holds "
                                 f"an earlier run's files ({shown}); pass --overwrite to replace them, or choose "
                                 "another train.run_dir")
        raise RunExistsError(f"{run_dir}: already holds a run ({shown}); pass --resume to continue it, --overwrite "
                             "to replace it, or choose another train.run_dir")
    if resume:
        log.info("%s: no checkpoints/last.pt to resume from; starting a fresh run", run_dir)
    return None, own_run_files(run_dir)
