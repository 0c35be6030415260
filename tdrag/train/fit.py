"""``fit(config)`` trains one model on one fold into a run directory.

``fit`` leaves a complete run directory (``tdrag.runs.layout``) and is resumable:
``checkpoints/last.pt`` is written atomically after every epoch with the model, optimiser and
scheduler states, the epoch, the best-so-far record, the log rows, every rank's RNG states and
the fingerprint of the cache it trained on, so ``fit(config, resume=True)`` continues a run killed
at any point and, on a CPU, ends with exactly the weights an uninterrupted run would have. A run
is not resumed on a cache rebuilt from other sources since (the fingerprints differ).

Order of work: the config, the device, the cache (keyframes, T, crop, classes, fold) and the model
are checked first; only then is the run directory touched: held for this process until ``fit``
returns (``tdrag.runs.lock``: a second training there refuses), and of it only tdrag's own files
(``tdrag.runs.layout.RUN_FILES``) are ever replaced. Each checkpoint records the folder training
ran in, which anchors the config's relative data paths for every later reader of the run.

Under ``torchrun`` each process trains on its shard with DistributedDataParallel: the model is
wrapped in DDP first and compiled after (``torch.compile(DDP(model))``, so the compiled graph
keeps DDP's bucketed all-reduce overlapping the backward pass); evaluation runs on the bare model
(compiled too when ``train.compile``), since ranks hold different numbers of evaluation batches
and DDP's forward would wait for collectives that never come. Only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DistributedSampler

from tdrag import distributed, ownership
from tdrag.config import Config, config_to_dict, save_config
from tdrag.models.registry import build_model_from_config
from tdrag.runs.checkpoints import CheckpointError, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from tdrag.runs.epoch_log import write_log
from tdrag.runs.layout import RunExistsError, RunPaths, plan_run_dir
from tdrag.runs.lock import RunBusyError
from tdrag.runs.predictions import Predictions
from tdrag.runtime import resolve_device
from tdrag.train.data import load_run_data
from tdrag.train.engine import TrainingDiverged, seed_everything, train_one_epoch
from tdrag.train.evaluate import eval_loaders, evaluate_checkpoint, evaluate_splits, write_run_report
from tdrag.train.schedule import WarmupSchedule, build_optimizer, build_scheduler

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


def _gather_rng_states(info: distributed.DistInfo) -> list[dict[str, Any]] | None:
    """Every rank's RNG states, in rank order, on rank 0 (None elsewhere); a collective."""
    state = rng_state()
    if not info.enabled:
        return [state]
    gathered: list[Any] = [None] * info.world_size if info.is_main else None  # type: ignore[assignment]
    torch.distributed.gather_object(state, gathered, dst=0)
    return gathered if info.is_main else None


def _restore_rng(state: dict[str, Any], info: distributed.DistInfo, path: Path) -> None:
    per_rank = state.get("rng_per_rank")
    if per_rank and len(per_rank) == info.world_size:
        set_rng_state(per_rank[info.rank])
        return
    if per_rank and info.is_main:
        log.warning("%s: saved by %d process(es), resumed by %d: each rank restores rank 0's RNG states",
                    path, len(per_rank), info.world_size)
    set_rng_state(per_rank[0] if per_rank else state["rng"])


# --------------------------------------------------------------------------------- training


def _config_differences(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    keys = sorted(set(a) | set(b))
    out = []
    for key in keys:
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _config_differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}: {va!r} -> {vb!r}")
    return out


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
        ConfigError, CacheError, CheckpointError, OutputError: bad settings, cache or run folder,
            found before the run directory is touched.
    """
    had_group = torch.distributed.is_available() and torch.distributed.is_initialized()
    kind = resolve_device(config.train.device).type
    info = distributed.setup(kind) if not had_group else distributed.current()
    # cuDNN autotuning is global state: give the caller (a notebook kernel) back its setting.
    benchmark = torch.backends.cudnn.benchmark
    try:
        with contextlib.ExitStack() as held:
            return _fit(config, callback, resume, overwrite, progress, info, held)
    finally:
        torch.backends.cudnn.benchmark = benchmark
        if not had_group:
            distributed.cleanup()


def _fit(config: Config, callback, resume: bool, overwrite: bool, progress: bool, info,
         held: contextlib.ExitStack) -> RunResult:
    from tdrag.data.loader import make_loader

    t = config.train
    device = resolve_device(t.device, info.local_rank if info.enabled else None)
    run_dir = Path(t.run_dir)
    paths = RunPaths(run_dir)
    last_path, best_path = paths.last, paths.best

    # Inputs first: nothing in the run directory is touched until these pass.
    data = load_run_data(config)
    ownership.check_not_input(run_dir, [data.cache.path, config.data.root or None], "train.run_dir")
    class_names = data.class_names
    seed_everything(t.seed)
    net = build_model_from_config(config.model)
    if config.model.pretrained:
        from tdrag.models.pretrained import load_pretrained

        summary = load_pretrained(net, config.model.pretrained)
        if info.is_main:
            log.info("model.pretrained: %s", summary.describe())
    if info.enabled and info.rank > 0:
        # The initial weights are rank 0's (DDP broadcasts them); dropout draws from a stream of
        # each rank's own (rank 0's is the single-process one), which checkpoints keep per rank.
        torch.manual_seed(t.seed + 1_000_003 * info.rank)

    # Rank 0 holds the run dir (until fit returns) and inspects it; every rank learns the outcome
    # (or the refusal, so that no rank is left waiting in a collective for one that raised).
    refusals = {"RunExistsError": RunExistsError, "RunBusyError": RunBusyError}
    outcome: tuple[str | None, list[str], str | None, str] = (None, [], None, "")
    if info.is_main:
        try:
            held.enter_context(paths.hold("train"))
            found, stale = plan_run_dir(run_dir, resume, overwrite)
            outcome = (str(found) if found else None, stale, None, "")
        except (RunExistsError, RunBusyError) as exc:
            outcome = (None, [], type(exc).__name__, str(exc))
    resume_from, stale, refused, why = distributed.broadcast_object(outcome)
    if refused:
        raise refusals[refused](why)

    net = net.to(device)
    if t.channels_last and device.type == "cuda":
        net = net.to(memory_format=torch.channels_last_3d)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    sampler = DistributedSampler(np.arange(len(data.train_rows)), num_replicas=info.world_size, rank=info.rank,
                                 shuffle=True, seed=t.seed, drop_last=False)
    train_loader = make_loader(data.cache, data.train_rows, batch_size=t.batch_size, shuffle=False,
                               num_workers=config.data.num_workers, seed=t.seed, drop_last=False,
                               sampler=sampler)
    optimizer = build_optimizer(net, t)
    scheduler = build_scheduler(optimizer, len(train_loader), t)

    start_epoch, history = 0, []
    best: dict[str, Any] = {"epoch": None, "metric": "val_war" if data.val_rows is not None else "test_war",
                            "value": -math.inf}
    if resume_from:
        state = load_checkpoint(resume_from, map_location=device)
        _check_same_cache(state, data.cache, Path(resume_from))
        differences = _config_differences(state["config"], config_to_dict(config))
        if differences:
            log.warning("resuming %s with a changed config: %s", resume_from, "; ".join(differences))
        try:
            net.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            # The stored schedule settings came from the old config; follow the current one (the
            # same unless e.g. train.epochs was raised to extend a finished run).
            scheduler.lr_lambdas = [WarmupSchedule(len(train_loader), t) for _ in scheduler.lr_lambdas]
            start_epoch, history, best = int(state["epoch"]), list(state["history"]), dict(state["best"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise CheckpointError(f"{resume_from}: cannot resume from it: {exc}") from None
        _restore_rng(state, info, Path(resume_from))
        log.info("resuming %s after epoch %d", run_dir, start_epoch)
    elif info.is_main and stale:
        ownership.remove_files(run_dir, stale)
    if info.is_main:
        save_config(config, paths.config)

    model, eval_model = wrap_model(net, t.compile, info, device)
    loaders = eval_loaders(data, config, info)

    last_epoch_preds: dict[str, Predictions] | None = None
    best_preds: dict[str, Predictions] | None = None
    for epoch in range(start_epoch + 1, t.epochs + 1):
        epoch_started = time.perf_counter()
        sampler.set_epoch(epoch)
        last_good = str(last_path) if last_path.is_file() else "none (no epoch finished)"
        stats = train_one_epoch(model, train_loader, optimizer, scheduler, config, device, epoch, info,
                                progress, last_good)
        distributed.sync_buffers(net)
        if not _params_finite(net):
            raise TrainingDiverged(f"weights became non-finite during epoch {epoch}: run stopped; the last good "
                                   f"checkpoint is {last_good}. Lower train.lr or set train.grad_clip.")
        row: dict[str, Any] = {"epoch": epoch, "train_loss": stats["train_loss"], "train_acc": stats["train_acc"],
                               "test_war": None, "test_uar": None}
        if data.val_rows is not None:
            row.update(val_war=None, val_uar=None)
        evaluated = epoch % max(1, t.eval_every) == 0 or epoch == t.epochs
        if evaluated:
            preds = evaluate_splits(eval_model, loaders, data, config, device, info, progress)
            for split, p in preds.items():
                report = p.report(class_names)
                row[f"{split}_war"], row[f"{split}_uar"] = report["war"], report["uar"]
            last_epoch_preds = preds
        row["lr"] = optimizer.param_groups[0]["lr"]
        row["epoch_seconds"] = time.perf_counter() - epoch_started
        row["clips_per_second"] = stats["clips"] / max(stats["seconds"], 1e-9)
        history.append(row)

        improved = evaluated and row[best["metric"]] is not None and row[best["metric"]] > best["value"]
        if improved:
            best = {"epoch": epoch, "metric": best["metric"], "value": float(row[best["metric"]])}
            best_preds = last_epoch_preds
        rng_states = _gather_rng_states(info)
        if info.is_main:
            model_state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
            common = {"config": config_to_dict(config), "model": model_state, "epoch": epoch, "best": best,
                      "history": history, "cache_fingerprint": data.cache.fingerprint,
                      "class_names": list(class_names), "workdir": os.getcwd()}
            # best.pt before last.pt: a kill in between leaves last.pt at the previous epoch, whose
            # re-run rewrites best.pt the same way.
            if improved:
                save_checkpoint(best_path, common)
            save_checkpoint(last_path, {**common, "optimizer": optimizer.state_dict(),
                                        "scheduler": scheduler.state_dict(), "rng": rng_states[0],
                                        "rng_per_rank": rng_states})
            write_log(paths.log, history, data.val_rows is not None)
            log.info("epoch %d/%d: loss %.4f acc %.3f test WAR %s UAR %s (%.1fs, %.1f clips/s)", epoch, t.epochs,
                     row["train_loss"], row["train_acc"], _fmt(row["test_war"]), _fmt(row["test_uar"]),
                     row["epoch_seconds"], row["clips_per_second"])
            if callback is not None:
                callback(dict(row))

    # Final report: the last epoch's predictions are at hand; the best epoch's are re-computed
    # from best.pt when they are not (e.g. after a resume).
    distributed.barrier()
    if last_epoch_preds is None:
        last_epoch_preds = evaluate_splits(eval_model, loaders, data, config, device, info, progress)
    if best["epoch"] is not None and best_preds is None:
        best_preds = evaluate_checkpoint(best_path, config, data, loaders, device, info, progress)
    metrics = {}
    if info.is_main:
        metrics = write_run_report(run_dir, config, class_names, history[-1]["epoch"] if history else t.epochs,
                                    last_epoch_preds, best["epoch"], best_preds, data)
    distributed.barrier()
    return RunResult(run_dir=run_dir, history=history, metrics=metrics, best_epoch=best["epoch"])


def _check_same_cache(state: dict[str, Any], cache, path: Path) -> None:
    """Refuse to resume on a cache rebuilt from other sources than the run started on."""
    before, now = state.get("cache_fingerprint"), cache.fingerprint
    if before and now and before != now:
        raise CheckpointError(
            f"{path}: this run trained on the cache {cache.path} as it was built before (fingerprint {before}); it "
            f"has been rebuilt from changed sources since (fingerprint {now}). Resuming would continue on other "
            "data: pass --overwrite to start the run again, or point data.cache at the original cache"
        )


def _params_finite(model: nn.Module) -> bool:
    flags = [torch.isfinite(p).all() for p in model.parameters()]
    return bool(torch.stack(flags).all()) if flags else True


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


