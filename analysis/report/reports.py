"""Report figures and tables for a run directory or a 5-fold cross-validation directory.

A **run directory** (``tdrag train`` / ``tdrag eval``) holds ``predictions.csv`` (``video_id,
label, prediction, prob_<class>...``) and ``log.csv`` (one row per epoch). ``write_report`` adds to
its ``report/``: confusion matrices (counts and row-normalised), per-class recall, training curves.

A **cross-validation directory** (``tdrag cv``) holds ``summary.json`` and ``fold_<k>/`` run
directories. ``write_report`` writes each fold's report, and in ``report/``: the fold summary table
(Markdown, LaTeX, CSV), the pooled confusion matrices, per-class recall with the spread over folds,
and every fold's training curves in one figure.

Every function returns DataFrames or Figures; ``write_report`` saves them atomically. Example::

    preds = load_predictions("runs/demo/run")
    names = class_names_from_predictions(preds)
    fig = plot_confusion_matrix(confusion_from_predictions(preds, names), names, normalize=True)
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from analysis.plotting import class_colors, new_figure, save_figure
from analysis.report.tables import to_latex, to_markdown
from tdrag import metrics
from tdrag.atomic import atomic_path, write_text
from tdrag.data.labels import DFEW_CLASSES
from tdrag.errors import TdragError
from tdrag.runs.predictions import PredictionsError, parse_class_index, read_predictions_table

log = logging.getLogger(__name__)

PathLike = str | os.PathLike


#: Where a run keeps the test predictions of each checkpoint (tdrag.runs.layout).
CHECKPOINT_FILES = {"selected": "predictions.csv", "last": "report/predictions_last.csv"}


class ReportError(TdragError, FileNotFoundError):
    """A run directory lacks a file the report needs, or the file is malformed."""


# --------------------------------------------------------------------------------------- reading


def load_predictions(run_dir: PathLike, checkpoint: str = "selected") -> pd.DataFrame:
    """A run's test predictions with integer ``label`` and ``prediction`` columns (0-based).

    Args:
        run_dir: the run directory.
        checkpoint: "selected" for ``RUN_DIR/predictions.csv`` (the best checkpoint, or the last
            when there is no best); "last" for ``RUN_DIR/report/predictions_last.csv``.
    """
    if checkpoint not in CHECKPOINT_FILES:
        raise ValueError(f"checkpoint must be one of {list(CHECKPOINT_FILES)}, got {checkpoint!r}")
    path = Path(run_dir) / CHECKPOINT_FILES[checkpoint]
    if not path.is_file():
        raise ReportError(f"{run_dir} has no {CHECKPOINT_FILES[checkpoint]} ({path}): run `tdrag eval {run_dir}` first")
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
    probs = [c[len("prob_"):] for c in header if c.startswith("prob_")]
    names = probs or list(DFEW_CLASSES)
    li, pi = header.index("label"), header.index("prediction")
    records = {column: [row[i] for _, row in rows] for i, column in enumerate(header)}
    df = pd.DataFrame(records, columns=header)
    df["label"] = [parse_class_index(row[li], names, f"{path}:{line} (label)") for line, row in rows]
    df["prediction"] = [parse_class_index(row[pi], names, f"{path}:{line} (prediction)") for line, row in rows]
    for column in header:
        if column.startswith("prob_"):
            df[column] = pd.to_numeric(df[column], errors="coerce")
    df["label"] = df["label"].astype(np.int64)
    df["prediction"] = df["prediction"].astype(np.int64)
    return df


def class_names_from_predictions(df: pd.DataFrame) -> list[str]:
    """Class names from the ``prob_<name>`` columns, in column order; DFEW's classes otherwise."""
    names = [c[len("prob_"):] for c in df.columns if c.startswith("prob_")]
    return names or list(DFEW_CLASSES)


def load_log(run_dir: PathLike) -> pd.DataFrame:
    """``RUN_DIR/log.csv``: one row per epoch."""
    path = Path(run_dir) / "log.csv"
    if not path.is_file():
        raise ReportError(f"{run_dir} has no log.csv ({path}): it is written by `tdrag train`")
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


# ------------------------------------------------------------------------------------- computing


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
        checkpoint: "selected" (summary.json's top level and the folds' predictions.csv: the best
            checkpoint, optimistic when chosen on the test fold) or "last" (``last_epoch`` and
            ``report/predictions_last.csv``: no choice made on the test fold).
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
        if label not in rows or not (path / CHECKPOINT_FILES[checkpoint]).is_file():
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


def cv_summary(cv_dir: PathLike | str):
    """Write a cross-validation directory's report and return its formatted fold table; with
    ``cv_dir`` empty, a Note saying how to make one (``tdrag cv``)."""
    from analysis.plotting import Note

    if not cv_dir:
        return Note("No cross-validation directory given (CV_DIR): run `tdrag cv` to make one.")
    write_report(cv_dir)
    return format_summary_table(cv_summary_table(cv_dir))


def summary_block(summary: dict, checkpoint: str = "selected") -> dict:
    """The part of summary.json for ``checkpoint`` ("selected": top level; "last": ``last_epoch``)."""
    if checkpoint == "selected":
        return summary
    if checkpoint == "last":
        if "last_epoch" not in summary:
            raise ReportError("summary.json has no 'last_epoch' block (written by an older `tdrag cv`?)")
        return summary["last_epoch"]
    raise ValueError(f"checkpoint must be 'selected' or 'last', got {checkpoint!r}")


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


# -------------------------------------------------------------------------------------- plotting


def plot_confusion_matrix(
    confusion: np.ndarray,
    class_names: Sequence[str] = DFEW_CLASSES,
    normalize: bool = False,
    title: str | None = None,
    cmap: str = "Blues",
) -> Figure:
    """Heatmap of a confusion matrix, class names on both axes, each cell annotated.

    Args:
        confusion: (C, C) counts, row = true class.
        normalize: show row-normalised rates in percent (each true class sums to 100).
    """
    counts = np.asarray(confusion)
    values = 100.0 * metrics.normalize_rows(counts) if normalize else counts.astype(np.float64)
    num = len(class_names)
    side = 1.0 + 0.75 * num
    fig = new_figure(side + 1.2, side)
    ax = fig.subplots()
    vmax = 100.0 if normalize else max(float(values.max()), 1.0)
    image = ax.imshow(values, cmap=cmap, vmin=0.0, vmax=vmax)
    fig.colorbar(image, ax=ax, shrink=0.8, label="% of true class" if normalize else "clips")
    for i in range(num):
        for j in range(num):
            text = f"{values[i, j]:.1f}" if normalize else f"{int(counts[i, j])}"
            colour = "white" if values[i, j] > 0.6 * vmax else "black"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color=colour)
    ax.set_xticks(range(num), labels=list(class_names), rotation=45, ha="right")
    ax.set_yticks(range(num), labels=list(class_names))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    war, uar = war_uar_of(*pairs_from_confusion(counts), num)
    default = "Confusion matrix (row-normalised, %)" if normalize else "Confusion matrix (counts)"
    ax.set_title(f"{title or default}\nWAR {100 * war:.2f}  UAR {100 * uar:.2f}  n={int(counts.sum())}", fontsize=10)
    return fig


def plot_per_class_recall(
    recall: pd.DataFrame,
    title: str | None = None,
    spread: pd.Series | None = None,
) -> Figure:
    """Bar per class (class colours), recall in percent, WAR and UAR as dashed lines.

    Args:
        recall: ``per_class_table`` output (index = class names; support, correct, recall).
        spread: optional per-class std in percent (e.g. over folds), drawn as error bars.
    """
    names = list(recall.index)
    values = 100.0 * recall["recall"].to_numpy(dtype=np.float64)
    fig = new_figure(1.0 + 0.9 * len(names), 4.2)
    ax = fig.subplots()
    x = np.arange(len(names))
    yerr = None if spread is None else spread.reindex(names).to_numpy(dtype=np.float64)
    bars = ax.bar(x, np.nan_to_num(values), color=class_colors(names), yerr=yerr, capsize=3, edgecolor="black", linewidth=0.5)
    for bar, value in zip(bars, values):
        label = "n/a" if np.isnan(value) else f"{value:.1f}"
        # Inside the bar's foot, so error bars and the WAR/UAR lines never hide the value.
        ax.text(bar.get_x() + bar.get_width() / 2, 2.0, label, ha="center", va="bottom", fontsize=8,
                bbox=dict(boxstyle="round,pad=0.15", facecolor="white", alpha=0.85, linewidth=0))
    support = recall["support"].to_numpy()
    # WAR and UAR as tdrag.metrics gave them to per_class_table (kept in the table's attrs).
    if "war" not in recall.attrs or "uar" not in recall.attrs:
        raise ValueError("recall: expected a per_class_table(...) result (its attrs carry WAR and UAR)")
    war, uar = recall.attrs["war"], recall.attrs["uar"]
    ax.axhline(100 * war, color="black", linestyle="--", linewidth=1, label=f"WAR {100 * war:.2f}")
    ax.axhline(100 * uar, color="tab:red", linestyle=":", linewidth=1.5, label=f"UAR {100 * uar:.2f}")
    ax.set_xticks(x, labels=[f"{n}\n(n={s})" for n, s in zip(names, support)], fontsize=8)
    ax.set_ylabel("recall (%)")
    ax.set_ylim(0, 110)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title or "Per-class recall")
    ax.grid(axis="y", alpha=0.3)
    return fig


def _curve_groups(log_df: pd.DataFrame) -> dict[str, list[str]]:
    """Numeric log columns grouped into loss / accuracy-like / learning-rate panels."""
    numeric = [c for c in log_df.columns if pd.api.types.is_numeric_dtype(log_df[c]) and log_df[c].notna().any()]
    groups = {
        "loss": [c for c in numeric if "loss" in c.lower()],
        "accuracy": [c for c in numeric if re.search(r"acc|war|uar|f1", c.lower())],
        "learning rate": [c for c in numeric if c.lower() in ("lr", "learning_rate") or c.lower().endswith("_lr")],
    }
    return {k: v for k, v in groups.items() if v}


def plot_training_curves(log_df: pd.DataFrame, title: str | None = None) -> Figure:
    """Losses, accuracies (WAR/UAR) and the learning rate against the epoch, from ``log.csv``.

    Columns are found by name: ``*loss*``; ``*acc*``/``*war*``/``*uar*``/``*f1*`` (shown in percent
    when logged as fractions); ``lr``. Epochs without evaluation (blank cells) are skipped, so
    evaluation curves draw as points joined across the gaps.
    """
    groups = _curve_groups(log_df)
    if not groups:
        raise ValueError(f"log has no loss/accuracy/lr columns to plot: {list(log_df.columns)}")
    x = log_df["epoch"].to_numpy() if "epoch" in log_df else np.arange(1, len(log_df) + 1)
    fig = new_figure(4.3 * len(groups), 3.8)
    axes = np.atleast_1d(fig.subplots(1, len(groups)))
    for ax, (group, columns) in zip(axes, groups.items()):
        scale = 1.0
        if group == "accuracy" and all(log_df[c].max() <= 1.0 for c in columns):
            scale = 100.0
        for column in columns:
            series = log_df[column]
            ok = series.notna().to_numpy()
            marker = "o" if ok.sum() <= 30 else None
            ax.plot(x[ok], scale * series.to_numpy()[ok], marker=marker, markersize=3, label=column)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel({"loss": "loss", "accuracy": "%" if scale == 100.0 else "value", "learning rate": "lr"}[group])
        if group == "learning rate" and (log_df[columns].to_numpy(dtype=float) > 0).all():
            ax.set_yscale("log")
        ax.set_title(group)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def plot_fold_curves(logs: dict[str, pd.DataFrame], columns: Sequence[str] | None = None) -> Figure:
    """One panel per logged quantity, one line per fold (for a cross-validation directory)."""
    if not logs:
        raise ValueError("no fold logs to plot")
    first = _curve_groups(next(iter(logs.values())))
    accuracy_like = set(first.get("accuracy", []))
    if columns is None:
        candidates = first.get("loss", []) + first.get("accuracy", [])
        columns = [c for c in candidates if all(c in df for df in logs.values())]
    if not columns:
        raise ValueError("fold logs share no loss/accuracy columns")
    cols = min(len(columns), 3)
    rows = (len(columns) + cols - 1) // cols
    fig = new_figure(4.2 * cols, 3.4 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, column in zip(axes, columns):
        # Accuracy-like columns logged as fractions are shown in percent, as in plot_training_curves.
        percent = column in accuracy_like and all(df[column].max() <= 1.0 for df in logs.values())
        scale = 100.0 if percent else 1.0
        for fold, df in logs.items():
            x = df["epoch"].to_numpy() if "epoch" in df else np.arange(1, len(df) + 1)
            ok = df[column].notna().to_numpy()
            ax.plot(x[ok], scale * df[column].to_numpy()[ok], marker="o" if ok.sum() <= 30 else None,
                    markersize=3, label=fold)
        ax.set_title(column)
        ax.set_ylabel("%" if percent else ("loss" if "loss" in column.lower() else "value"))
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes[len(columns):]:
        ax.set_axis_off()
    fig.suptitle("Training curves per fold")
    return fig


# --------------------------------------------------------------------------------------- writing


def write_report(run_dir: PathLike, dpi: int = 120) -> list[Path]:
    """Write the report figures (and tables for a cv directory) into ``RUN_DIR/report/``.

    Figures are PNGs at ``dpi``. Returns the paths written. Raises ``ReportError`` naming the missing file when ``run_dir``
    holds neither ``predictions.csv`` (a run) nor ``summary.json`` (a cross-validation directory).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: no such run directory")
    if (run_dir / "summary.json").is_file() and not (run_dir / "predictions.csv").is_file():
        return _write_cv_report(run_dir, dpi)
    return _write_run_report(run_dir, dpi)


def selected_checkpoint_label(run_dir: PathLike) -> str | None:
    """Which checkpoint ``predictions.csv`` comes from, per ``report/metrics.json`` (None if unknown).

    E.g. "best epoch by test WAR (optimistic), epoch 7": the figures say whether the epoch was
    chosen on the test fold itself.
    """
    path = Path(run_dir) / "report" / "metrics.json"
    try:
        info = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(info, dict):
        return None
    chosen = info.get("best") or info.get("last")
    if not isinstance(chosen, dict) or "label" not in chosen:
        return None
    epoch = chosen.get("epoch")
    return f"{chosen['label']}, epoch {epoch}" if epoch is not None else str(chosen["label"])


def _write_run_report(run_dir: Path, dpi: int) -> list[Path]:
    preds = load_predictions(run_dir)  # raises with "run tdrag eval" when missing
    names = class_names_from_predictions(preds)
    confusion = confusion_from_predictions(preds, names)
    selected = selected_checkpoint_label(run_dir)
    suffix = f"\n{run_dir.name}: {selected}" if selected else f"\n{run_dir.name}"
    figures = {
        "confusion_matrix": plot_confusion_matrix(confusion, names, title=f"Confusion matrix (counts){suffix}"),
        "confusion_matrix_normalized": plot_confusion_matrix(
            confusion, names, normalize=True, title=f"Confusion matrix (row-normalised, %){suffix}"),
        "per_class_recall": plot_per_class_recall(per_class_table(preds["label"], preds["prediction"], names),
                                                   title=f"Per-class recall{suffix}"),
    }
    if (run_dir / "log.csv").is_file():
        figures["training_curves"] = plot_training_curves(load_log(run_dir), title=f"Training curves: {run_dir.name}")
    else:
        log.warning("%s has no log.csv; training curves skipped", run_dir)
    return _save_all(figures, run_dir / "report", dpi)


def _write_cv_report(cv_dir: Path, dpi: int) -> list[Path]:
    summary = load_summary(cv_dir)
    out = cv_dir / "report"
    folds = [p for p in fold_dirs(cv_dir) if (p / "predictions.csv").is_file()]
    written: list[Path] = []
    for fold in folds:
        written += _write_run_report(fold, dpi)

    # One table per checkpoint choice, each labelled: the selected (best) checkpoints may have
    # been chosen on the test fold itself; the last epochs involve no choice.
    tables = {"selected": cv_summary_table(cv_dir, summary)}
    if "last_epoch" in summary:
        tables["last"] = cv_summary_table(cv_dir, summary, checkpoint="last")
    num_folds = len(summary["per_fold"])
    markdown = [f"# {cv_dir.name}: {num_folds}-fold summary (%)", ""]
    latex = []
    for checkpoint, table in tables.items():
        label = _checkpoint_caption(summary, checkpoint)
        formatted = format_summary_table(table)
        markdown += [f"## {label}", "", to_markdown(formatted)]
        latex.append(to_latex(formatted, caption=f"{cv_dir.name}, {num_folds}-fold: {label} (%)",
                              label=f"tab:{cv_dir.name}-{checkpoint}"))
        name = "summary.csv" if checkpoint == "selected" else f"summary_{checkpoint}.csv"
        with atomic_path(out / name) as tmp:
            table.to_csv(tmp, float_format="%.4f")
        written.append(out / name)
    if "selection" in summary and summary["selection"].get("note"):
        markdown.append(f"**Model selection.** {summary['selection']['note']}\n")
    written.append(_write(out / "summary.md", "\n".join(markdown) + _summary_note()))
    written.append(_write(out / "summary.tex", "\n".join(latex)))
    table = tables["selected"]

    figures: dict[str, Figure] = {}
    if folds:
        preds = [load_predictions(p) for p in folds]
        names = class_names_from_predictions(preds[0])
        confusion = sum(confusion_from_predictions(p, names) for p in preds)
        figures["confusion_matrix"] = plot_confusion_matrix(confusion, names, title="Pooled confusion matrix (counts)")
        figures["confusion_matrix_normalized"] = plot_confusion_matrix(
            confusion, names, normalize=True, title="Pooled confusion matrix (row-normalised, %)")
        spread = table.loc["std", names] if len(folds) > 1 and set(names) <= set(table.columns) else None
        recall_title = "Per-class recall, folds pooled" + (" (error bars: std over folds)" if spread is not None else "")
        figures["per_class_recall"] = plot_per_class_recall(per_class_from_confusion(confusion, names), recall_title, spread)
    logs = {p.name: load_log(p) for p in fold_dirs(cv_dir) if (p / "log.csv").is_file()}
    if logs:
        figures["training_curves"] = plot_fold_curves(logs)
    return written + _save_all(figures, out, dpi)


def _checkpoint_caption(summary: dict, checkpoint: str) -> str:
    block = summary_block(summary, checkpoint)
    default = "selected checkpoint per fold" if checkpoint == "selected" else "last epoch per fold"
    return str(block.get("label") or default)


def _summary_note() -> str:
    return (
        "\nWAR = accuracy, UAR = mean per-class recall, per-class columns = recall, all in %. "
        "`mean ± std`: over folds (sample std); `pooled`: all folds' test predictions scored as one set.\n"
    )


def _save_all(figures: dict[str, Figure], folder: Path, dpi: int) -> list[Path]:
    return [save_figure(fig, folder / f"{name}.png", dpi=dpi) for name, fig in figures.items()]


def _write(path: Path, text: str) -> Path:
    write_text(path, text)
    return path
