"""A run's report: ``predictions.csv`` and ``report/`` (metrics.json, per-class recall, confusion matrix)."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tdrag import metrics
from tdrag.atomic import write_json, write_text
from tdrag.runs.epoch_log import csv_cell
from tdrag.runs.layout import RunPaths
from tdrag.runs.predictions import Predictions, write_predictions

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
    paths = RunPaths(run_dir)
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
    write_predictions(paths.predictions, selected, class_names)
    write_predictions(paths.predictions_last, last[1], class_names)
    write_json(paths.metrics, result)

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["checkpoint", "epoch", "class", "support", "precision", "recall", "f1"])
    markdown = [f"# Test results: {run_dir.name}", ""]
    for name in ("last", "best"):
        item = result[name]
        if item is None:
            continue
        for cls, figures in item["test"]["per_class"].items():
            writer.writerow([name, item["epoch"], cls, figures["support"], csv_cell(figures["precision"]),
                             csv_cell(figures["recall"]), csv_cell(figures["f1"])])
        markdown.append(_per_class_markdown(f"{item['label']} (epoch {item['epoch']}, checkpoints/{name}.pt)",
                                            item["test"]))
    markdown.append(f"**Model selection.** {SELECTION_NOTES[selection_split]}\n")
    markdown.append("WAR = accuracy; UAR = mean of the per-class recalls. "
                    f"`predictions.csv` and `confusion_matrix.csv` are those of checkpoints/{selected_name}.pt.\n")
    write_text(paths.report_file("per_class_recall.csv"), buffer.getvalue())
    write_text(paths.report_file("per_class_recall.md"), "\n".join(markdown))

    counts = metrics.confusion_matrix(selected.labels, selected.predictions, len(class_names))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["true\\predicted", *class_names])
    for name, row in zip(class_names, counts):
        writer.writerow([name, *[int(v) for v in row]])
    write_text(paths.report_file("confusion_matrix.csv"), buffer.getvalue())
    return result

