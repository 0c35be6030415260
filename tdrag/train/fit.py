"""``fit(config)`` trains one model on one fold into a run directory.

``fit`` leaves a complete run directory (``tdrag.runs.layout``) and is resumable: after every
epoch ``tdrag.train.saver.CheckpointSaver`` writes ``checkpoints/last.pt`` atomically with all a
resume needs, so ``fit(config, resume=True)`` continues a run killed at any point and, on a CPU,
ends with exactly the weights an uninterrupted run would have. A run is not resumed on a cache
rebuilt from other sources since (the fingerprints differ).

Order of work: the config, the device, the cache (keyframes, T, crop, classes, fold) and the model
are checked first; only then is the run directory touched: held for this process until ``fit``
returns (``tdrag.runs.lock``: a second training there refuses), and of it only tdrag's own files
(``tdrag.runs.layout.RUN_FILES``) are ever replaced.

Under ``torchrun`` each process trains on its shard with DistributedDataParallel: the model is
wrapped in DDP first and compiled after (``torch.compile(DDP(model))``, so the compiled graph
keeps DDP's bucketed all-reduce overlapping the backward pass); evaluation runs on the bare model
(compiled too when ``train.compile``), since ranks hold different numbers of evaluation batches
and DDP's forward would wait for collectives that never come. Only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DistributedSampler

from tdrag import distributed, ownership
from tdrag.config import Config, save_config
from tdrag.models.registry import build_model_from_config
from tdrag.runs.layout import RunExistsError, RunPaths, plan_run_dir
from tdrag.runs.lock import RunBusyError
from tdrag.runs.predictions import Predictions
from tdrag.runtime import place_model, resolve_device
from tdrag.train.data import RunData, check_run_dir_apart, load_run_data
from tdrag.train.engine import TrainingDiverged, seed_everything, train_one_epoch
from tdrag.train.evaluate import eval_loaders, evaluate_checkpoint, evaluate_splits, write_run_report
from tdrag.train.saver import CheckpointSaver, TrainProgress, gather_rng_states
from tdrag.train.schedule import build_optimizer, build_scheduler

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What ``fit`` returns.

    Attributes:
        run_dir: the run directory.
        history: one dict per epoch (the rows of log.csv).
        metrics: report/metrics.json's content (last and best checkpoints, labelled).
        best_epoch: epoch of checkpoints/best.pt (None when no epoch was evaluated).
    """

    run_dir: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    best_epoch: int | None = None


def fit(
    config: Config,
    callback=None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> RunResult:
    """Train ``config.model`` on fold ``config.data.fold`` of ``config.data.cache``.

    Args:
        config: the run's configuration; ``train.run_dir`` receives every file.
        callback: called on rank 0 with each epoch's log row (a dict), after the epoch's
            checkpoint is written, e.g. to draw live curves in a notebook.
        resume: continue from ``run_dir/checkpoints/last.pt`` when it exists.
        overwrite: replace an existing run in ``run_dir`` (tdrag's files only) instead of refusing.
        progress: show tqdm progress bars.

    Returns:
        RunResult with the run dir, the per-epoch history and the report's metrics.

    Raises:
        RunExistsError: ``run_dir`` holds a run and neither ``resume`` nor ``overwrite`` is set.
        RunBusyError: another process holds ``run_dir`` (``tdrag.runs.lock``); nothing is written.
        TrainingDiverged: the loss became NaN/inf (``last.pt`` keeps the last good epoch).
        CheckpointError: a checkpoint cannot be written (a full disk); the previous one is kept.
        ConfigError, CacheError, CheckpointError, OutputError: bad settings, cache or run folder,
            found before the run directory is touched.
    """
    had_group = torch.distributed.is_available() and torch.distributed.is_initialized()
    device = resolve_device(config.train.device)
    info = distributed.setup(device.type) if not had_group else distributed.current()
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)  # one GPU per process
    # cuDNN autotuning is global state: give the caller (a notebook kernel) back its setting.
    benchmark = torch.backends.cudnn.benchmark
    try:
        with contextlib.ExitStack() as held:
            return _fit(config, device, info, held, callback, resume, overwrite, progress)
    finally:
        torch.backends.cudnn.benchmark = benchmark
        if not had_group:
            distributed.cleanup()


def _fit(config: Config, device: torch.device, info: distributed.DistInfo, held: contextlib.ExitStack, callback,
         resume: bool, overwrite: bool, progress: bool) -> RunResult:
    t, paths = config.train, RunPaths(config.train.run_dir)
    # Inputs first: nothing in the run directory is touched until these pass.
    data = load_run_data(config)
    check_run_dir_apart(paths.root, config, data.cache)
    net = _initial_model(config, info)
    resume_from, stale = _claim_run_dir(paths, resume, overwrite, info, held)

    net = place_model(net, device, t.channels_last)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    sampler, train_loader = _train_loader(data, config, info)
    optimizer = build_optimizer(net, t)
    scheduler = build_scheduler(optimizer, len(train_loader), t)
    saver = CheckpointSaver(paths, config, data)
    if resume_from:
        if info.is_main:  # a kill mid-write left these; holding the run dir, nobody is writing them now
            ownership.remove_files(paths.root, paths.leftover_temps())
        so_far = saver.resume(resume_from, net, optimizer, scheduler, len(train_loader), info)
    else:
        so_far = TrainProgress.fresh(with_val=data.val_rows is not None)
        if info.is_main and stale:
            ownership.remove_files(paths.root, stale)
    if info.is_main:
        save_config(config, paths.config)

    model, eval_model = wrap_model(net, t.compile, info, device)
    loaders = eval_loaders(data, config, info)
    last_preds: dict[str, Predictions] | None = None
    best_preds: dict[str, Predictions] | None = None
    for epoch in range(so_far.epoch + 1, t.epochs + 1):
        started = time.perf_counter()
        sampler.set_epoch(epoch)
        stats = train_one_epoch(model, train_loader, optimizer, scheduler, config, device, epoch, info, progress,
                                saver.last_good())
        distributed.sync_buffers(net)
        _check_weights_finite(net, epoch, saver.last_good())
        evaluated = epoch % max(1, t.eval_every) == 0 or epoch == t.epochs
        preds = evaluate_splits(eval_model, loaders, data, config, device, info, progress) if evaluated else None
        row = _log_row(epoch, stats, preds, data, optimizer, started)
        improved = so_far.record(row, evaluated)
        if evaluated:
            last_preds = preds
        if improved:
            best_preds = preds
        rng_states = gather_rng_states(info)
        if info.is_main:
            saver.save(so_far, net, optimizer, scheduler, improved, rng_states)
            log.info("epoch %d/%d: loss %.4f acc %.3f test WAR %s UAR %s (%.1fs, %.1f clips/s)", epoch, t.epochs,
                     row["train_loss"], row["train_acc"], _fmt(row["test_war"]), _fmt(row["test_uar"]),
                     row["epoch_seconds"], row["clips_per_second"])
            if callback is not None:
                callback(dict(row))

    # Final report: the last epoch's predictions are at hand; the best epoch's are re-computed
    # from best.pt when they are not (e.g. after a resume).
    distributed.barrier()
    if last_preds is None:
        last_preds = evaluate_splits(eval_model, loaders, data, config, device, info, progress)
    if so_far.best["epoch"] is not None and best_preds is None:
        best_preds = evaluate_checkpoint(paths.best, config, data, loaders, device, info, progress)
    metrics = {}
    if info.is_main:
        metrics = write_run_report(paths.root, config, data.class_names, so_far.epoch or t.epochs, last_preds,
                                   so_far.best["epoch"], best_preds, data)
    distributed.barrier()
    return RunResult(run_dir=paths.root, history=so_far.history, metrics=metrics, best_epoch=so_far.best["epoch"])


def _initial_model(config: Config, info: distributed.DistInfo) -> nn.Module:
    """The network before training: seeded, built, with its pretrained trunk when asked."""
    seed_everything(config.train.seed)
    net = build_model_from_config(config.model)
    if config.model.pretrained:
        from tdrag.models.pretrained import load_pretrained

        summary = load_pretrained(net, config.model.pretrained)
        if info.is_main:
            log.info("model.pretrained: %s", summary.describe())
    if info.enabled and info.rank > 0:
        # The initial weights are rank 0's (DDP broadcasts them); dropout draws from a stream of
        # each rank's own (rank 0's is the single-process one), which checkpoints keep per rank.
        torch.manual_seed(config.train.seed + 1_000_003 * info.rank)
    return net


def _claim_run_dir(paths: RunPaths, resume: bool, overwrite: bool, info: distributed.DistInfo,
                   held: contextlib.ExitStack) -> tuple[Path | None, list[str]]:
    """Rank 0 holds the run dir (until ``held`` closes) and plans it; every rank learns the plan, or
    the refusal (so that no rank is left waiting in a collective for one that raised).

    Returns:
        ``(checkpoint to resume from or None, tdrag files to remove before a fresh start)``.
    """
    refusals = {"RunExistsError": RunExistsError, "RunBusyError": RunBusyError}
    outcome: tuple[str | None, list[str], str | None, str] = (None, [], None, "")
    if info.is_main:
        try:
            held.enter_context(paths.hold("train"))
            found, stale = plan_run_dir(paths.root, resume, overwrite)
            outcome = (str(found) if found else None, stale, None, "")
        except (RunExistsError, RunBusyError) as exc:
            outcome = (None, [], type(exc).__name__, str(exc))
    resume_from, stale, refused, why = distributed.broadcast_object(outcome)
    if refused:
        raise refusals[refused](why)
    return (Path(resume_from) if resume_from else None), stale


def _train_loader(data: RunData, config: Config, info: distributed.DistInfo):
    """``(sampler, loader)`` over this rank's share of the training rows, reshuffled each epoch."""
    from tdrag.data.loader import make_loader

    t = config.train
    sampler = DistributedSampler(np.arange(len(data.train_rows)), num_replicas=info.world_size, rank=info.rank,
                                 shuffle=True, seed=t.seed, drop_last=False)
    loader = make_loader(data.cache, data.train_rows, batch_size=t.batch_size, shuffle=False,
                         num_workers=config.data.num_workers, seed=t.seed, drop_last=False, sampler=sampler)
    return sampler, loader


def _log_row(epoch: int, stats: dict[str, float], preds: dict[str, Predictions] | None, data: RunData,
             optimizer: torch.optim.Optimizer, started: float) -> dict[str, Any]:
    """One log.csv row: the epoch's training figures, its WAR/UAR per split (None when not evaluated)."""
    row: dict[str, Any] = {"epoch": epoch, "train_loss": stats["train_loss"], "train_acc": stats["train_acc"],
                           "test_war": None, "test_uar": None}
    if data.val_rows is not None:
        row.update(val_war=None, val_uar=None)
    for split, p in (preds or {}).items():
        report = p.report(data.class_names)
        row[f"{split}_war"], row[f"{split}_uar"] = report["war"], report["uar"]
    row["lr"] = optimizer.param_groups[0]["lr"]
    row["epoch_seconds"] = time.perf_counter() - started
    row["clips_per_second"] = stats["clips"] / max(stats["seconds"], 1e-9)
    return row


# ----------------------------------------------------------------------------- model wrapping


def wrap_model(net: nn.Module, compile: bool, info: distributed.DistInfo,
               device: torch.device) -> tuple[nn.Module, nn.Module]:
    """``(model to train, model to evaluate)`` around the bare ``net``.

    Under DDP the training model is ``torch.compile(DDP(net))`` (DDP first: the compiled graph is
    split at DDP's gradient buckets, so their all-reduce overlaps the backward pass) and the
    evaluation model is ``torch.compile(net)`` (no DDP: see the module docstring). Without DDP
    both are the same ``torch.compile(net)``, or ``net`` itself when ``compile`` is off.
    """
    trained: nn.Module = net
    if info.enabled:
        trained = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    if not compile:
        return trained, net
    compiled_train = torch.compile(trained)
    compiled_eval = compiled_train if trained is net else torch.compile(net)
    return compiled_train, compiled_eval


def _check_weights_finite(net: nn.Module, epoch: int, last_good: str) -> None:
    flags = [torch.isfinite(p).all() for p in net.parameters()]
    if flags and not bool(torch.stack(flags).all()):
        raise TrainingDiverged(f"weights became non-finite during epoch {epoch}: run stopped; the last good "
                               f"checkpoint is {last_good}. Lower train.lr or set train.grad_clip.")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
