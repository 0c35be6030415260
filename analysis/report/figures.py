"""The report's figures: confusion matrix, per-class recall, training curves (one run or every fold).

Every function returns a pyplot-free ``matplotlib.figure.Figure`` (``analysis.plotting.new_figure``)::

    fig = plot_confusion_matrix(confusion, names, normalize=True)
    fig = plot_per_class_recall(per_class_table(labels, predictions, names))
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from analysis.plotting import class_colors, new_figure
from analysis.report.results import pairs_from_confusion, war_uar_of
from tdrag import metrics


def plot_confusion_matrix(
    confusion: np.ndarray,
    class_names: Sequence[str],
    normalize: bool = False,
    title: str | None = None,
    cmap: str = "Blues",
) -> Figure:
    """Heatmap of a confusion matrix, class names on both axes, each cell annotated.

    Args:
        confusion: (C, C) counts, row = true class.
        class_names: the C class names in label order (the run's).
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
