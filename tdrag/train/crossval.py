"""The DFEW k-fold protocol: one run per fold, then both aggregations of the test figures.

``cross_validate(config, folds)`` trains ``config`` on each fold into ``<run_dir>/fold_<k>`` and
writes ``<run_dir>/summary.json`` and ``summary.md``. The top level of summary.json is
``tdrag.metrics.aggregate_folds`` over each fold's selected (best) checkpoint, i.e. the folds'
``predictions.csv``; ``last_epoch`` holds the same aggregation for the last checkpoints
(``report/predictions_last.csv``). Each has two labelled figures: the mean +- std of the per-fold
WAR/UAR, and WAR/UAR of all folds' predictions pooled.

A fold whose run already finished (``tdrag.runs.layout.RunPaths.finished``: its report covers
``train.epochs``) is not retrained when ``resume`` is set, so a killed protocol continues where it
stopped. Every fold asked for is checked against the cache before the first one trains. The
protocol's folder is held for one process at a time, as each fold's run directory is.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tdrag import distributed
from tdrag.atomic import write_json, write_text
from tdrag.config import Config, replace
from tdrag.errors import TdragError
from tdrag.metrics import aggregate_folds
from tdrag.runs.layout import RunPaths
from tdrag.runs.predictions import read_predictions
from tdrag.runs.report import SELECTION_NOTES

log = logging.getLogger(__name__)


def fold_config(config: Config, fold: int, base: Path) -> Config:
    """``config`` for one fold: data.fold = k, train.run_dir = base/fold_k."""
    return replace(config, data={"fold": int(fold)}, train={"run_dir": str(base / f"fold_{fold}")})


class FoldError(TdragError, ValueError):
    """A fold asked for is not in the cache."""


def check_folds(config: Config, folds: Sequence[int] | None) -> list[int]:
    """The folds to run (default: all of the cache's), each checked against the cache and config."""
    from tdrag.data.cache import open_cache
    from tdrag.train.data import check_cache

    cache = open_cache(config.data.cache) if config.data.cache else None
    if cache is None:
        from tdrag.config import ConfigError

        raise ConfigError("data.cache: empty; prepare a frame cache (`tdrag prepare`) and set data.cache=PATH")
    chosen = list(cache.folds if folds is None else folds)
    missing = [k for k in chosen if k not in cache.folds]
    if missing:
        raise FoldError(f"--folds: fold(s) {', '.join(map(str, missing))} not in the cache {cache.path} (it has folds "
                        f"{', '.join(map(str, cache.folds))}); nothing was trained")
    for fold in chosen:
        check_cache(cache, replace(config, data={"fold": int(fold)}))
    return chosen


def cross_validate(
    config: Config,
    folds: Sequence[int] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train one run per fold and summarise; returns summary.json's content (on every rank).

    Args:
        config: the base config; ``train.run_dir`` becomes the protocol's folder.
        folds: fold numbers, e.g. (1, 2, 3, 4, 5); None: every fold of the cache.
        resume: skip finished folds and resume an interrupted one.
        overwrite: retrain folds that already hold runs.
        progress: progress bars.
    """
    from tdrag.runtime import resolve_device

    if folds is not None and not folds:
        raise FoldError("--folds: no folds given")
    folds = check_folds(config, folds)
    base = Path(config.train.run_dir)
    from tdrag.data.cache import open_cache
    from tdrag.train.data import check_run_dir_apart

    check_run_dir_apart(base, config, open_cache(config.data.cache))  # before the lock file is made there
    info = distributed.setup(resolve_device(config.train.device).type)
    try:
        with RunPaths(base).hold("cv") if info.is_main else contextlib.nullcontext():
            return _cross_validate(config, folds, base, info, resume, overwrite, progress)
    finally:
        distributed.cleanup()


def _cross_validate(config: Config, folds: list[int], base: Path, info, resume: bool, overwrite: bool,
                    progress: bool) -> dict[str, Any]:
    from tdrag.train.fit import fit

    for fold in folds:
        cfg = fold_config(config, fold, base)
        if resume and RunPaths(cfg.train.run_dir).finished(cfg.train.epochs):
            log.info("fold %d: finished run in %s, not retrained", fold, cfg.train.run_dir)
            continue
        log.info("fold %d: training into %s", fold, cfg.train.run_dir)
        fit(cfg, resume=resume, overwrite=overwrite, progress=progress)
    summary: dict[str, Any] = {}
    if info.is_main:
        summary = summarize(base, folds, config)
    distributed.barrier()
    return summary


def summarize(base: str | Path, folds: Sequence[int], config: Config | None = None) -> dict[str, Any]:
    """Aggregate the fold runs under ``base`` and write summary.json and summary.md."""
    base = Path(base)
    class_names: list[str] | None = None
    selected, last, epochs = {}, {}, {}
    selection = "test"
    for fold in folds:
        paths = RunPaths(base / f"fold_{fold}")
        fold_metrics = paths.read_metrics()
        if not fold_metrics or not fold_metrics.get("class_names"):
            raise FoldError(f"{paths.metrics}: missing or without class_names; finish fold {fold} (tdrag cv --resume) "
                            "or re-evaluate it (tdrag eval)")
        if class_names is not None and fold_metrics["class_names"] != class_names:
            raise FoldError(f"{paths.metrics}: classes {fold_metrics['class_names']} differ from the other folds' "
                            f"{class_names}")
        class_names = list(fold_metrics["class_names"])
        _, y, p = read_predictions(paths.predictions, class_names)
        selected[str(fold)] = (y, p)
        _, y_last, p_last = read_predictions(paths.predictions_last, class_names)
        last[str(fold)] = (y_last, p_last)
        selection = fold_metrics["selection"]["split"]
        epochs[str(fold)] = {
            "best": fold_metrics["best"]["epoch"] if fold_metrics.get("best") else None,
            "last": fold_metrics["last"]["epoch"],
        }
    summary = aggregate_folds(selected, class_names)
    summary["checkpoint"] = "best" if any(e["best"] is not None for e in epochs.values()) else "last"
    summary["label"] = ("best epoch per fold, chosen on " + selection
                        + (" (optimistic)" if selection == "test" else ""))
    summary["epochs"] = epochs
    summary["selection"] = {"split": selection, "optimistic": selection == "test", "note": SELECTION_NOTES[selection]}
    summary["last_epoch"] = aggregate_folds(last, class_names)
    summary["last_epoch"]["label"] = "last epoch per fold (no choice made on the test fold)"
    if config is not None:
        summary["model"] = config.model.name
        summary["keyframes"] = config.data.keyframes
    write_json(base / "summary.json", summary)
    write_text(base / "summary.md", _markdown(base, summary))
    return summary


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}"


def _markdown(base: Path, summary: dict[str, Any]) -> str:
    lines = [f"# {len(summary['folds'])}-fold summary: {base.name}", ""]
    if "model" in summary:
        lines += [f"Model `{summary['model']}`, {summary['keyframes']} keyframes.", ""]
    lines += ["| fold | best epoch | WAR (best) | UAR (best) | last epoch | WAR (last) | UAR (last) | clips |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for fold in summary["folds"]:
        b, l, e = summary["per_fold"][fold], summary["last_epoch"]["per_fold"][fold], summary["epochs"][fold]
        lines.append(f"| {fold} | {e['best'] if e['best'] is not None else '-'} | {_pct(b['war'])} | {_pct(b['uar'])} "
                     f"| {e['last']} | {_pct(l['war'])} | {_pct(l['uar'])} | {b['num_clips']} |")
    lines += ["", "| aggregation | checkpoint | WAR (%) | UAR (%) |", "|---|---|---:|---:|"]
    for name, block in ((summary["label"], summary), (summary["last_epoch"]["label"], summary["last_epoch"])):
        ms = block["mean_std"]
        lines.append(f"| mean ± std over folds | {name} | {_pct(ms['war']['mean'])} ± {_pct(ms['war']['std'])} "
                     f"| {_pct(ms['uar']['mean'])} ± {_pct(ms['uar']['std'])} |")
        lines.append(f"| pooled over all folds' predictions | {name} | {_pct(block['pooled']['war'])} "
                     f"| {_pct(block['pooled']['uar'])} |")
    lines += ["", "Mean ± std: sample standard deviation (ddof = 1) of the per-fold figures. Pooled: one WAR/UAR "
              "over every fold's test predictions together. Papers use either; say which.", "",
              f"**Model selection.** {summary['selection']['note']}", ""]
    return "\n".join(lines)
