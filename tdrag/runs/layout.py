"""The layout of a run directory, in one place: ``RunPaths`` names every file, says whether the
run is finished, holds the directory for one process at a time, and finds the data a saved run
trained on from wherever it is opened.

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
    RUN/.tdrag.lock                  who holds the run directory now (tdrag.runs.lock)

``plan_run_dir`` decides, without touching anything, what a new run resumes from and which of
tdrag's files it replaces (``RunExistsError`` when neither resume nor overwrite allows going on).

Every file is written atomically. ``RUN_FILES`` lists every file tdrag writes into a run
directory (the report figures of ``python -m analysis report`` included): those are the only
files a fresh run replaces (``tdrag.ownership``); anything else a user keeps there stays.

**Paths of a saved run.** A config may name its data root and cache relative to the folder
training ran in (``runs/demo/data``). Training records that folder in each checkpoint
(``workdir``); :meth:`RunPaths.locate` turns such a path back into one that exists from here: the
path under the recorded folder, else the same path relative to the run directory as it was
then (a run copied or moved together with its data), else, for checkpoints without ``workdir``,
the folder the run directory's own path implies. Every reader of a run gets its config through
``tdrag.runs.checkpoints.checkpoint_config``, which applies this rule.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from tdrag.config import ConfigError, load_config
from tdrag.errors import TdragError
from tdrag.runs.epoch_log import logged_epochs
from tdrag.runs.lock import hold

log = logging.getLogger(__name__)

#: Files tdrag (and ``python -m analysis report``) write into ``report/``.
REPORT_FILES: tuple[str, ...] = (
    "metrics.json", "per_class_recall.csv", "per_class_recall.md", "confusion_matrix.csv", "predictions_last.csv",
    "confusion_matrix.png", "confusion_matrix_normalized.png", "per_class_recall.png", "training_curves.png",
)
#: Every file of a run directory that tdrag writes (and a fresh run may replace), relative to it.
RUN_FILES: tuple[str, ...] = (
    "config.yaml", "log.csv", "predictions.csv", "checkpoints/last.pt", "checkpoints/best.pt",
    *(f"report/{name}" for name in REPORT_FILES),
)


class RunPaths:
    """The files of one run directory, by what they hold.

    Example::

        paths = RunPaths("runs/demo/run")
        paths.last, paths.metrics            # runs/demo/run/checkpoints/last.pt, .../report/metrics.json
        paths.finished()                     # the report covers the epochs config.yaml asks for
        with paths.hold("tdrag eval"):       # this process alone writes here until the block ends
            ...
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunPaths({str(self.root)!r})"

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def log(self) -> Path:
        return self.root / "log.csv"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.pt"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.pt"

    @property
    def predictions(self) -> Path:
        """Test predictions of the selected checkpoint (best.pt when there is one)."""
        return self.root / "predictions.csv"

    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def metrics(self) -> Path:
        return self.report / "metrics.json"

    @property
    def predictions_last(self) -> Path:
        """Test predictions of last.pt."""
        return self.report / "predictions_last.csv"

    @property
    def lock(self) -> Path:
        """Who holds the directory (tdrag's own; never removed, see ``tdrag.runs.lock``)."""
        return self.root / ".tdrag.lock"

    def report_file(self, name: str) -> Path:
        """``report/<name>``, one of :data:`REPORT_FILES`."""
        if name not in REPORT_FILES:
            raise ValueError(f"{name!r} is not a report file (known: {', '.join(REPORT_FILES)})")
        return self.report / name

    def read_metrics(self) -> dict | None:
        """report/metrics.json's content, or None when there is none (yet) or it is unreadable."""
        try:
            metrics = json.loads(self.metrics.read_text())
        except (OSError, ValueError):
            return None
        return metrics if isinstance(metrics, dict) else None

    def finished(self, epochs: int | None = None) -> bool:
        """Whether the run trained for ``epochs`` epochs (default: its config.yaml's ``train.epochs``)
        and wrote its checkpoints, predictions and report for that epoch.

        The report is written last, after the final epoch's checkpoint, so a run killed at any
        point (or resumed with more epochs) is not finished.
        """
        metrics = self.read_metrics()
        if not (metrics and self.last.is_file() and self.predictions.is_file()):
            return False
        if epochs is None:
            try:
                epochs = load_config(self.config).train.epochs
            except ConfigError:
                return False
        last = metrics.get("last") or {}
        return isinstance(last.get("epoch"), int) and last["epoch"] >= epochs and self.log_shortfall() is None

    def log_shortfall(self) -> str | None:
        """One line saying how log.csv falls short of the epoch the report (metrics.json) covers,
        or None when it does not (or there is no report or no readable log). A run killed
        between writing its checkpoint and its log leaves such a log; ``tdrag train --resume``
        and ``tdrag eval`` rewrite it from ``last.pt``."""
        metrics = self.read_metrics()
        reported = ((metrics or {}).get("last") or {}).get("epoch")
        if not isinstance(reported, int):
            return None
        epochs = logged_epochs(self.log)
        if epochs is None or (epochs and epochs[-1] >= reported):
            return None  # none or unreadable: its readers say so themselves
        held = f"ends at epoch {epochs[-1] if epochs else 0}"
        return (f"{self.log}: {held}, but {self.metrics} reports epoch {reported}; the log was cut short (a run "
                f"killed between its checkpoint and its log): `tdrag eval {self.root}` rewrites it from {self.last}")

    @contextlib.contextmanager
    def hold(self, what: str) -> Iterator[None]:
        """Hold the run directory for this process while the block runs (``RunBusyError`` naming
        the holder when another process holds it); ``what`` names the command, e.g. "tdrag train"."""
        with hold(self.lock, self.root, what):
            yield

    def own_files(self) -> list[str]:
        """The files of ``RUN_FILES`` present (relative paths), plus the temporary files an
        interrupted atomic write of one of them left (``.<name>.<random>.tmp``)."""
        found = [rel for rel in RUN_FILES if (self.root / rel).is_file()]
        return sorted(set(found + self.leftover_temps()))

    def leftover_temps(self) -> list[str]:
        """The temporary files (``.<name>.<random>.tmp``) killed atomic writes of ``RUN_FILES`` left,
        relative to the run directory: removed by whoever holds the directory next."""
        found = []
        for rel in RUN_FILES:
            path = self.root / rel
            if path.parent.is_dir():
                found += [str(p.relative_to(self.root)) for p in path.parent.glob(f".{path.name}.*.tmp")]
        return sorted(set(found))

    def locate(self, path: str, workdir: str | os.PathLike | None, trained_run_dir: str) -> str:
        """A path of the run's config (``data.root``, ``data.cache``) as it can be opened from here.

        Args:
            path: the path as the config holds it ("" stays "").
            workdir: the folder training ran in (recorded in its checkpoints); None for
                checkpoints written before it was recorded.
            trained_run_dir: the config's ``train.run_dir``, where the run was written then.

        Returns:
            The first of these that exists: ``path`` under ``workdir``; the same path relative to
            this run directory as it was relative to ``trained_run_dir`` then (the run moved with
            its data). When neither does, the first (so that an error names what training used).
        """
        if not path:
            return path
        base = Path(workdir) if workdir else self._implied_workdir(trained_run_dir)
        then = base / Path(path).expanduser()
        if then.exists():
            return str(then)
        beside = Path(os.path.normpath(self.root.resolve() / os.path.relpath(then, base / trained_run_dir)))
        return str(beside) if beside.exists() else str(then)

    def _implied_workdir(self, trained_run_dir: str) -> Path:
        """The folder a relative ``trained_run_dir`` was relative to, read off this run directory's
        own path (``/x/runs/demo/run`` for ``runs/demo/run`` implies ``/x``); else the working folder."""
        here, then = self.root.resolve().parts, Path(trained_run_dir).parts
        if not Path(trained_run_dir).is_absolute() and then and here[len(here) - len(then):] == then:
            return Path(*here[: len(here) - len(then)])
        return Path.cwd()


class RunExistsError(TdragError, RuntimeError):
    """The run directory already holds a run and neither resume nor overwrite was asked for."""


def plan_run_dir(run_dir: str | os.PathLike, resume: bool, overwrite: bool) -> tuple[Path | None, list[str]]:
    """Decide, without touching anything, what a run in ``run_dir`` resumes from and what it replaces.

    Returns:
        ``(checkpoint to resume from or None, tdrag files to remove before starting)``.

    Raises:
        RunExistsError: the folder holds an earlier run and neither ``resume`` (with a
            ``last.pt`` to resume from) nor ``overwrite`` allows going on.
    """
    paths = RunPaths(run_dir)
    own = paths.own_files()
    earlier = [f for f in own if f != "config.yaml"]
    if resume and paths.last.is_file():
        return paths.last, []
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
    return None, own
