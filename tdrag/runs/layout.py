"""The layout of a run directory: which files tdrag writes there, and what a new run may replace.

Layout of a run (DESIGN.md, "Runs")::

    RUN/config.yaml
    RUN/log.csv                      one row per epoch (tdrag.runs.epoch_log)
    RUN/checkpoints/last.pt|best.pt  (tdrag.runs.checkpoints)
    RUN/predictions.csv              test predictions of the selected (best) checkpoint:
                                     video_id,label,prediction,prob_<Class>... (0-based indices)
    RUN/report/metrics.json          last and best checkpoints' figures, both labelled (tdrag.runs.report)
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

import logging
import os
from pathlib import Path

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
