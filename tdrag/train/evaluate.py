"""Evaluating a run: its test (and validation) loaders, a checkpoint's predictions, the report.

``evaluate_run(run_dir)`` re-scores a finished run's ``last.pt`` and ``best.pt`` and rewrites its
predictions and report (``tdrag eval``); ``fit`` uses the same steps after every epoch.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from tdrag import distributed, ownership
from tdrag.config import Config, replace
from tdrag.models.registry import build_model_from_config
from tdrag.runs.checkpoints import CheckpointError, checkpoint_config, load_checkpoint, load_weights
from tdrag.runs.epoch_log import repair_log
from tdrag.runs.layout import RunPaths
from tdrag.runs.predictions import Predictions
from tdrag.runs.report import write_report
from tdrag.runtime import place_model, resolve_device
from tdrag.train.data import RunData, cache_rebuilt_since, load_run_data
from tdrag.train.engine import evaluate

log = logging.getLogger(__name__)


def eval_loaders(data: RunData, config: Config, info: distributed.DistInfo) -> dict[str, Any]:
    """Loaders over this rank's shard of the test (and val) rows: built once per run, no padding."""
    from tdrag.data.loader import make_loader

    splits = {"test": data.test_rows}
    if data.val_rows is not None:
        splits["val"] = data.val_rows
    return {
        name: make_loader(data.cache, distributed.shard_rows(rows, info), batch_size=config.train.batch_size,
                          shuffle=False, num_workers=config.data.num_workers, seed=config.train.seed)
        for name, rows in splits.items()
    }


def evaluate_splits(model, loaders: dict[str, Any], data: RunData, config: Config, device, info,
                     progress) -> dict[str, Predictions]:
    return {
        name: evaluate(model, loader, device, crop=config.data.crop, amp=config.train.amp,
                       channels_last=config.train.channels_last, video_ids=data.cache.video_ids, info=info,
                       progress=progress, desc=f"eval {name}")
        for name, loader in loaders.items()
    }


def evaluate_checkpoint(path: Path, config: Config, data: RunData, loaders, device, info,
                         progress) -> dict[str, Predictions]:
    state = load_checkpoint(path, map_location="cpu")
    model = build_model_from_config(config.model)
    load_weights(model, state, path, config.model.name)
    model = place_model(model, device, config.train.channels_last)
    return evaluate_splits(model, loaders, data, config, device, info, progress)


def write_run_report(run_dir, config, class_names, last_epoch, last_preds, best_epoch, best_preds, data):
    selection = "val" if data.val_rows is not None else "test"
    extra = {"model": config.model.name, "dataset": data.cache.dataset, "fold": config.data.fold,
             "cache": config.data.cache, "keyframes": config.data.keyframes,
             "num_train_clips": int(len(data.train_rows)),
             "num_val_clips": int(len(data.val_rows)) if data.val_rows is not None else 0,
             "causal_time": bool(config.model.causal_time), "local_time": bool(config.model.local_time),
             "step_loss": config.train.step_loss}
    return write_report(
        run_dir, class_names,
        last=(last_epoch, last_preds["test"]),
        best=(best_epoch, best_preds["test"]) if best_epoch is not None else None,
        selection_split=selection,
        last_val=last_preds.get("val"),
        best_val=best_preds.get("val") if best_preds else None,
        extra=extra,
    )


def evaluate_run(run_dir: str | Path, device: str = "auto", cache: str | None = None,
                 progress: bool = True) -> dict[str, Any]:
    """Re-evaluate a run's ``last.pt`` and ``best.pt`` on its test (and val) split; rewrite the report.

    Args:
        run_dir: a run directory written by ``fit``.
        device: "auto", "cpu", "cuda", ...
        cache: use this frame cache instead of the one in the run's config (e.g. moved disks).
        progress: show progress bars.

    Returns:
        report/metrics.json's new content.

    Raises:
        RunBusyError: another process holds the run directory (a training still running there).
    """
    run_dir = Path(run_dir)
    paths = RunPaths(run_dir)
    last_path, best_path = paths.last, paths.best
    source = last_path if last_path.is_file() else best_path
    if not source.is_file():
        raise CheckpointError(f"{run_dir}: no checkpoints/last.pt or checkpoints/best.pt to evaluate")
    with paths.hold("eval"):
        ownership.remove_files(run_dir, paths.leftover_temps())  # left by killed writes; nobody else writes now
        return _evaluate_run(run_dir, source, device, cache, progress)


def _evaluate_run(run_dir: Path, source: Path, device: str, cache: str | None, progress: bool) -> dict[str, Any]:
    paths = RunPaths(run_dir)
    state = load_checkpoint(source)
    config = checkpoint_config(state, source)
    if cache:
        config = replace(config, data={"cache": str(cache)})
    dev = resolve_device(device, key="--device")
    data = load_run_data(config)
    if cache_rebuilt_since(state, data.cache):
        log.warning("%s: the cache %s was rebuilt from changed sources since this run trained on it; the "
                    "figures are for the cache as it is now", run_dir, data.cache.path)
    if source == paths.last and repair_log(paths.log, state.get("history") or [], data.val_rows is not None):
        log.warning("%s: did not match %s (epoch %s); rewritten from it", paths.log, source, state.get("epoch"))
    info = distributed.DistInfo()
    loaders = eval_loaders(data, config, info)
    results = {}
    for name, path in (("last", paths.last), ("best", paths.best)):
        if path.is_file():
            epoch = int(load_checkpoint(path)["epoch"])
            results[name] = (epoch, evaluate_checkpoint(path, config, data, loaders, dev, info, progress))
    if "last" not in results:
        # Only best.pt survives (e.g. a pruned run): report it as both.
        results["last"] = results["best"]
    best_epoch, best_preds = results.get("best", (None, None))
    return write_run_report(run_dir, config, data.class_names, results["last"][0], results["last"][1],
                             best_epoch, best_preds, data)
