"""Writing the report of a run directory or a 5-fold cross-validation directory into its ``report/``.

For a **run directory** (``tdrag train`` / ``tdrag eval``): confusion matrices (counts and
row-normalised), per-class recall and training curves. For a **cross-validation directory**
(``tdrag cv``): each fold's report, and in ``report/`` the fold summary table (Markdown, LaTeX,
CSV), the pooled confusion matrices, per-class recall with the spread over folds, and every fold's
training curves in one figure. Files are written atomically::

    write_report("runs/demo/run")        # the paths written

Reading the files: :mod:`analysis.report.run_files`; the numbers: :mod:`analysis.report.results`;
the figures: :mod:`analysis.report.figures`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from matplotlib.figure import Figure

from analysis.plotting import save_figure
from analysis.report.figures import plot_confusion_matrix, plot_fold_curves, plot_per_class_recall, plot_training_curves
from analysis.report.results import (confusion_from_predictions, cv_summary_table, format_summary_table,
                                     per_class_from_confusion, per_class_table)
from analysis.report.run_files import (PathLike, ReportError, class_names_from_predictions, fold_dirs, load_log,
                                       load_predictions, load_summary, selected_checkpoint_label, summary_block)
from analysis.report.tables import to_latex, to_markdown
from tdrag.atomic import atomic_path, write_text
from tdrag.runs.layout import RunPaths

log = logging.getLogger(__name__)


def write_report(run_dir: PathLike, dpi: int = 120) -> list[Path]:
    """Write the report figures (and tables for a cv directory) into ``RUN_DIR/report/``.

    Figures are PNGs at ``dpi``. Returns the paths written. Raises ``ReportError`` naming the missing file when ``run_dir``
    holds neither test predictions (a run) nor ``summary.json`` (a cross-validation directory).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: no such run directory")
    if (run_dir / "summary.json").is_file() and not RunPaths(run_dir).predictions.is_file():
        return _write_cv_report(run_dir, dpi)
    return _write_run_report(run_dir, dpi)

def cv_summary(cv_dir: PathLike | str):
    """Write a cross-validation directory's report and return its formatted fold table; with
    ``cv_dir`` empty, a Note saying how to make one (``tdrag cv``)."""
    from analysis.plotting import Note

    if not cv_dir:
        return Note("No cross-validation directory given (CV_DIR): run `tdrag cv` to make one.")
    write_report(cv_dir)
    return format_summary_table(cv_summary_table(cv_dir))

def _write_run_report(run_dir: Path, dpi: int) -> list[Path]:
    preds = load_predictions(run_dir)  # raises with "run tdrag eval" when missing
    shortfall = RunPaths(run_dir).log_shortfall()
    if shortfall:  # curves that stop before the reported epoch would misstate the run
        raise ReportError(shortfall)
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
    paths = RunPaths(run_dir)
    if paths.log.is_file():
        figures["training_curves"] = plot_training_curves(load_log(run_dir), title=f"Training curves: {run_dir.name}")
    else:
        log.warning("%s has no %s; training curves skipped", run_dir, paths.log.name)
    return _save_all(figures, paths, dpi)

def _write_cv_report(cv_dir: Path, dpi: int) -> list[Path]:
    summary = load_summary(cv_dir)
    out = RunPaths(cv_dir).report  # a cross-validation directory keeps its report where a run does
    folds = [p for p in fold_dirs(cv_dir) if RunPaths(p).predictions.is_file()]
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
    logs = {p.name: load_log(p) for p in fold_dirs(cv_dir) if RunPaths(p).log.is_file()}
    if logs:
        figures["training_curves"] = plot_fold_curves(logs)
    return written + _save_all(figures, RunPaths(cv_dir), dpi)

def _checkpoint_caption(summary: dict, checkpoint: str) -> str:
    block = summary_block(summary, checkpoint)
    default = "selected checkpoint per fold" if checkpoint == "selected" else "last epoch per fold"
    return str(block.get("label") or default)

def _summary_note() -> str:
    return (
        "\nWAR = accuracy, UAR = mean per-class recall, per-class columns = recall, all in %. "
        "`mean ± std`: over folds (sample std); `pooled`: all folds' test predictions scored as one set.\n"
    )

def _save_all(figures: dict[str, Figure], paths: RunPaths, dpi: int) -> list[Path]:
    """Each figure as ``<name>.png`` in the report folder (one of ``tdrag.runs.layout.REPORT_FILES``,
    so that a fresh run in the folder recognises them as tdrag's own)."""
    return [save_figure(fig, paths.report_file(f"{name}.png"), dpi=dpi) for name, fig in figures.items()]

def _write(path: Path, text: str) -> Path:
    write_text(path, text)
    return path
