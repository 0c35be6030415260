"""Training and evaluation loops: ``fit(config)``, ``evaluate(...)``, ``predict_clips(...)``.

``fit`` trains one model on one fold of a frame cache and leaves a complete run directory (see
``tdrag.runs``). It is resumable: ``checkpoints/last.pt`` is written atomically after every epoch
with the model, optimiser and scheduler states, the epoch, the best-so-far record, the log rows and
every RNG state, so ``fit(config, resume=True)`` continues a run killed at any point, and on a CPU
ends with exactly the weights an uninterrupted run would have.

Determinism: the shuffle order of epoch ``e`` comes from ``DistributedSampler(seed).set_epoch(e)``
and the batch augmentation's generator is re-seeded from ``(seed, e, rank)`` each epoch, so neither
carries state across epochs; dropout draws from torch's global RNG, which the checkpoint restores.

Under ``torchrun`` each process trains on its shard with DistributedDataParallel; evaluation
shards the rows without padding and gathers ``(row, probabilities)`` from every rank (see
``tdrag.distributed``); only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DistributedSampler
from tqdm.auto import tqdm

from tdrag import distributed, runs
from tdrag.checkpoints import (
    CheckpointError,
    checkpoint_config,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    unwrap_model,
)
from tdrag.config import Config, config_to_dict, save_config
from tdrag.data.labels import DFEW_CLASSES
from tdrag.runs import Predictions
from tdrag.schedule import WarmupSchedule, build_optimizer, build_scheduler

log = logging.getLogger(__name__)

EpochCallback = Callable[[dict[str, Any]], None]


class TrainingDiverged(RuntimeError):
    """The loss (or the weights) became NaN or infinite; the run stopped."""


class RunExistsError(RuntimeError):
    """The run directory already holds a run and neither resume nor overwrite was asked for."""


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


# ------------------------------------------------------------------------------------ helpers


def resolve_device(spec: str, info: distributed.DistInfo | None = None) -> torch.device:
    """"auto" -> CUDA when available else CPU; under DDP on CUDA, this process's local GPU."""
    info = info or distributed.DistInfo()
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"train.device={spec!r} but CUDA is not available (use device=cpu or auto)")
        if info.enabled:
            device = torch.device("cuda", info.local_rank)
    return device


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_generator(seed: int, epoch: int, rank: int) -> torch.Generator:
    """The batch augmentation's generator for one epoch of one rank (fresh, so resumes are exact).

    A CPU generator: the crop boxes are a few numbers per clip, and CPU draws are the same on
    every machine.
    """
    generator = torch.Generator()
    generator.manual_seed((seed * 1_000_003 + epoch * 7919 + rank * 104_729) % 2**63)
    return generator


def _autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA when enabled; nothing on CPU (bf16 convolutions are slow there)."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _prepare_input(x: torch.Tensor, channels_last: bool, device: torch.device) -> torch.Tensor:
    if channels_last and device.type == "cuda":
        return x.contiguous(memory_format=torch.channels_last_3d)
    return x


def _class_names(num_classes: int) -> list[str]:
    if num_classes == len(DFEW_CLASSES):
        return list(DFEW_CLASSES)
    return [f"class_{i}" for i in range(num_classes)]


def _check_cache(cache, config: Config) -> None:
    """Refuse a cache whose keyframes or clip length differ from the config's data section."""
    method = cache.manifest.get("keyframes")
    if method is not None and method != config.data.keyframes:
        raise ValueError(
            f"{cache.path}: cache was prepared with keyframes={method!r} but the config says "
            f"data.keyframes={config.data.keyframes!r}; point data.cache at a matching cache"
        )
    if cache.num_frames != config.data.frames:
        raise ValueError(
            f"{cache.path}: cache holds T={cache.num_frames} frames per clip but the config says "
            f"data.frames={config.data.frames}"
        )
    if config.data.crop > cache.size:
        raise ValueError(f"{cache.path}: data.crop={config.data.crop} exceeds the cached frame size {cache.size}")


# ------------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    device: torch.device | str,
    crop: int,
    amp: bool = True,
    channels_last: bool = True,
    video_ids: Sequence[str] | None = None,
    info: distributed.DistInfo | None = None,
    progress: bool = False,
    desc: str = "eval",
) -> Predictions:
    """Predict every clip the loader yields (centre crop), gathered over ranks when distributed.

    Args:
        model: the network (eval mode is set here and restored afterwards).
        loader: yields ``(clips uint8 (B, T, S, S, 3), labels (B,), rows (B,))``.
        device: where to run.
        crop: side of the centre crop fed to the model.
        amp, channels_last: CUDA bf16 autocast / channels_last_3d (ignored on CPU).
        video_ids: cache video ids indexed by row (default: ``loader.dataset.cache.video_ids``).
        info: this rank's place; under DDP each rank passes a loader over its shard and all
            receive the gathered result, one entry per row.
        progress: show a progress bar.

    Returns:
        Predictions ordered by row: rows, video ids, labels, probabilities ``(N, C)`` float32.
    """
    from tdrag.data.loader import eval_transform, to_device

    device = torch.device(device)
    info = info or distributed.DistInfo()
    was_training = model.training
    model.eval()
    rows, labels, probs = [], [], []
    for batch in tqdm(loader, desc=desc, leave=False, disable=not (progress and info.is_main)):
        clips, y, r = to_device(batch, device)
        x = _prepare_input(eval_transform(clips, crop=crop), channels_last, device)
        with _autocast(device, amp):
            logits = model(x)
        probs.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
        labels.append(y.cpu().numpy())
        rows.append(r.cpu().numpy())
    model.train(was_training)
    num_classes = probs[0].shape[1] if probs else 0
    local = {
        "row": np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, np.int64),
        "label": np.concatenate(labels).astype(np.int64) if labels else np.zeros(0, np.int64),
        "prob": np.concatenate(probs).astype(np.float32) if probs else np.zeros((0, num_classes), np.float32),
    }
    merged = distributed.gather_rows(local, info)
    if video_ids is None:
        cache = getattr(getattr(loader, "dataset", None), "cache", None)
        video_ids = getattr(cache, "video_ids", None)
    ids = [str(video_ids[int(r)]) for r in merged["row"]] if video_ids is not None else [str(int(r)) for r in merged["row"]]
    return Predictions(rows=merged["row"], video_ids=ids, labels=merged["label"], probabilities=merged["prob"])


@torch.no_grad()
def predict_clips(
    model: nn.Module,
    clips_u8: torch.Tensor | np.ndarray,
    crop: int,
    device: torch.device | str | None = None,
    amp: bool = False,
) -> torch.Tensor:
    """Class probabilities for a batch of cached-format clips.

    Args:
        model: the network (put in eval mode).
        clips_u8: ``(B, T, S, S, 3)`` uint8 RGB clips (as stored in the cache).
        crop: side of the centre crop.
        device: where to run (default: the model's device).
        amp: bf16 autocast on CUDA.

    Returns:
        ``(B, C)`` float32 probabilities on the CPU.
    """
    from tdrag.data.loader import eval_transform

    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    clips = torch.as_tensor(clips_u8).to(device)
    model.eval()
    x = eval_transform(clips, crop=crop)
    with _autocast(device, amp):
        logits = model(x)
    return torch.softmax(logits.float(), dim=1).cpu()


# ---------------------------------------------------------------------------------- training


@dataclass
class _Data:
    cache: Any
    train_rows: np.ndarray
    test_rows: np.ndarray
    val_rows: np.ndarray | None


def _load_data(config: Config):
    from tdrag.data.cache import open_cache

    if not config.data.cache:
        raise ValueError("data.cache is empty: prepare a frame cache (`tdrag prepare`) and set data.cache=PATH")
    cache = open_cache(config.data.cache)
    _check_cache(cache, config)
    train_rows = cache.rows(config.data.fold, "train")
    test_rows = cache.rows(config.data.fold, "test")
    val_rows = None
    if config.data.val_fraction > 0:
        from tdrag.data.loader import split_train_val

        train_rows, val_rows = split_train_val(cache.labels[train_rows], train_rows, config.data.val_fraction,
                                               seed=config.train.seed)
    if len(train_rows) == 0 or len(test_rows) == 0:
        raise ValueError(f"{cache.path}: fold {config.data.fold} has {len(train_rows)} training and "
                         f"{len(test_rows)} test clips; both must be non-empty")
    return _Data(cache, train_rows, test_rows, val_rows)


def _eval_loaders(data: _Data, config: Config, info: distributed.DistInfo) -> dict[str, Any]:
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


def _evaluate_splits(model, loaders: dict[str, Any], data: _Data, config: Config, device, info,
                     progress) -> dict[str, Predictions]:
    return {
        name: evaluate(model, loader, device, crop=config.data.crop, amp=config.train.amp,
                       channels_last=config.train.channels_last, video_ids=data.cache.video_ids, info=info,
                       progress=progress, desc=f"eval {name}")
        for name, loader in loaders.items()
    }


def _params_finite(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def train_one_epoch(
    model: nn.Module,
    loader,
    optimizer: torch.optim.Optimizer,
    scheduler,
    config: Config,
    device: torch.device,
    epoch: int,
    info: distributed.DistInfo | None = None,
    progress: bool = False,
    last_good: str = "none",
) -> dict[str, float]:
    """One pass over the training loader (augment on the device, forward, backward, step).

    Args:
        model: the network (DDP-wrapped under torchrun).
        loader: yields ``(clips uint8 (B, T, S, S, 3), labels (B,), rows (B,))``.
        optimizer, scheduler: stepped once per batch.
        config: data (crop, crop_scale, flip) and train (amp, channels_last, label_smoothing,
            grad_clip, seed) settings.
        device: where to train.
        epoch: 1-based epoch number (seeds the augmentation).
        info: this rank's place (single process when None).
        progress: show a progress bar with the running loss and accuracy.
        last_good: the checkpoint named in the error when the loss turns non-finite.

    Returns:
        ``{"train_loss", "train_acc", "clips", "seconds"}`` summed over ranks (seconds: this rank's).

    Raises:
        TrainingDiverged: a non-finite loss on any rank.
    """
    info = info or distributed.DistInfo()
    from tdrag.data.loader import to_device, train_transform

    d, t = config.data, config.train
    model.train()
    generator = epoch_generator(t.seed, epoch, info.rank)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    seen = 0
    started = time.perf_counter()
    bar = tqdm(loader, desc=f"epoch {epoch}/{t.epochs}", leave=False, disable=not (progress and info.is_main))
    for step, batch in enumerate(bar, start=1):
        clips, labels, _ = to_device(batch, device)
        x = train_transform(clips, crop=d.crop, scale=tuple(d.crop_scale), flip=d.flip, generator=generator)
        x = _prepare_input(x, t.channels_last, device)
        with _autocast(device, t.amp):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=t.label_smoothing)
        if not distributed.all_true(bool(torch.isfinite(loss)), device):
            raise TrainingDiverged(
                f"non-finite training loss ({loss.item()}) at epoch {epoch}, step {step}/{len(loader)}: "
                f"run stopped; the last good checkpoint is {last_good}. Lower train.lr or set train.grad_clip."
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if t.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        optimizer.step()
        scheduler.step()
        batch_size = labels.shape[0]
        seen += batch_size
        loss_sum += loss.detach().double() * batch_size
        correct += (logits.detach().argmax(dim=1) == labels).sum()
        if progress and info.is_main:
            bar.set_postfix(loss=f"{loss_sum.item() / seen:.3f}", acc=f"{correct.item() / seen:.3f}", refresh=False)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    totals = torch.tensor([loss_sum.item(), float(correct.item()), float(seen)], dtype=torch.float64, device=device)
    if info.enabled:
        torch.distributed.all_reduce(totals)
    loss_total, correct_total, seen_total = totals.tolist()
    return {
        "train_loss": loss_total / max(seen_total, 1),
        "train_acc": correct_total / max(seen_total, 1),
        "clips": seen_total,
        "seconds": seconds,
    }


def _prepare_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> Path | None:
    """Return the checkpoint to resume from, clear the folder for a fresh run, or refuse."""
    last = run_dir / "checkpoints" / "last.pt"
    if resume:
        if last.is_file():
            return last
        log.info("%s: no checkpoints/last.pt to resume from; starting a fresh run", run_dir)
    elif last.is_file() or (run_dir / "log.csv").is_file():
        if not overwrite:
            raise RunExistsError(
                f"{run_dir}: already holds a run (checkpoints/last.pt or log.csv); pass --resume to continue "
                f"it, --overwrite to replace it, or choose another train.run_dir"
            )
    if not resume or not last.is_file():
        for name in ("checkpoints", "report"):
            shutil.rmtree(run_dir / name, ignore_errors=True)
        for name in ("log.csv", "predictions.csv"):
            (run_dir / name).unlink(missing_ok=True)
    return None


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
    callback: EpochCallback | None = None,
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
        overwrite: replace an existing run in ``run_dir`` instead of refusing.
        progress: show tqdm progress bars.

    Returns:
        RunResult with the run dir, the per-epoch history and the report's metrics.

    Raises:
        RunExistsError: ``run_dir`` holds a run and neither ``resume`` nor ``overwrite`` is set.
        TrainingDiverged: the loss became NaN/inf (``last.pt`` keeps the last good epoch).
    """
    had_group = torch.distributed.is_available() and torch.distributed.is_initialized()
    kind = resolve_device(config.train.device).type
    info = distributed.setup(kind) if not had_group else distributed.current()
    try:
        return _fit(config, callback, resume, overwrite, progress, info)
    finally:
        if not had_group:
            distributed.cleanup()


def _fit(config: Config, callback, resume: bool, overwrite: bool, progress: bool, info) -> RunResult:
    from tdrag.data.loader import make_loader
    from tdrag.models import build_model_from_config

    t = config.train
    device = resolve_device(t.device, info)
    run_dir = Path(t.run_dir)
    ckpt_dir = run_dir / "checkpoints"
    last_path, best_path = ckpt_dir / "last.pt", ckpt_dir / "best.pt"
    # Rank 0 inspects and clears the run dir; every rank learns the outcome (or the refusal, so
    # that no rank is left waiting in a collective for one that raised).
    outcome: tuple[str | None, str | None] = (None, None)
    if info.is_main:
        try:
            found = _prepare_run_dir(run_dir, resume, overwrite)
            outcome = (str(found) if found else None, None)
        except RunExistsError as exc:
            outcome = (None, str(exc))
    resume_from, refusal = distributed.broadcast_object(outcome)
    if refusal:
        raise RunExistsError(refusal)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    seed_everything(t.seed)
    data = _load_data(config)
    class_names = _class_names(config.model.num_classes)
    net = build_model_from_config(config.model).to(device)
    if t.channels_last and device.type == "cuda":
        net = net.to(memory_format=torch.channels_last_3d)

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
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{resume_from}: cannot resume from it: {exc}") from None
        start_epoch, history, best = int(state["epoch"]), list(state["history"]), dict(state["best"])
        set_rng_state(state["rng"])
        log.info("resuming %s after epoch %d", run_dir, start_epoch)
    if info.is_main:
        save_config(config, run_dir / "config.yaml")

    model: nn.Module = net
    if t.compile:
        model = torch.compile(model)
    if info.enabled:
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    # Evaluation runs on the bare (or compiled) model: ranks hold different numbers of eval batches,
    # and DDP's forward would wait for collectives that never come.
    eval_model = unwrap_model(model) if info.enabled else model
    eval_loaders = _eval_loaders(data, config, info)

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
            preds = _evaluate_splits(eval_model, eval_loaders, data, config, device, info, progress)
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
        if info.is_main:
            model_state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
            common = {"config": config_to_dict(config), "model": model_state, "epoch": epoch, "best": best,
                      "history": history}
            # best.pt before last.pt: a kill in between leaves last.pt at the previous epoch, whose
            # re-run rewrites best.pt the same way.
            if improved:
                save_checkpoint(best_path, common)
            save_checkpoint(last_path, {**common, "optimizer": optimizer.state_dict(),
                                        "scheduler": scheduler.state_dict(), "rng": rng_state()})
            runs.write_log(run_dir / "log.csv", history, data.val_rows is not None)
            log.info("epoch %d/%d: loss %.4f acc %.3f test WAR %s UAR %s (%.1fs, %.1f clips/s)", epoch, t.epochs,
                     row["train_loss"], row["train_acc"], _fmt(row["test_war"]), _fmt(row["test_uar"]),
                     row["epoch_seconds"], row["clips_per_second"])
            if callback is not None:
                callback(dict(row))

    # Final report: the last epoch's predictions are at hand; the best epoch's are re-computed
    # from best.pt when they are not (e.g. after a resume).
    distributed.barrier()
    if last_epoch_preds is None:
        last_epoch_preds = _evaluate_splits(eval_model, eval_loaders, data, config, device, info, progress)
    if best["epoch"] is not None and best_preds is None:
        best_preds = _evaluate_checkpoint(best_path, config, data, eval_loaders, device, info, progress)
    metrics = {}
    if info.is_main:
        metrics = _write_run_report(run_dir, config, class_names, history[-1]["epoch"] if history else t.epochs,
                                    last_epoch_preds, best["epoch"], best_preds, data)
    distributed.barrier()
    return RunResult(run_dir=run_dir, history=history, metrics=metrics, best_epoch=best["epoch"])


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _evaluate_checkpoint(path: Path, config: Config, data: _Data, loaders, device, info,
                         progress) -> dict[str, Predictions]:
    from tdrag.models import build_model_from_config

    state = load_checkpoint(path, map_location="cpu")
    model = build_model_from_config(config.model)
    model.load_state_dict(state["model"])
    model = model.to(device)
    if config.train.channels_last and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last_3d)
    return _evaluate_splits(model, loaders, data, config, device, info, progress)


def _write_run_report(run_dir, config, class_names, last_epoch, last_preds, best_epoch, best_preds, data):
    selection = "val" if data.val_rows is not None else "test"
    extra = {"model": config.model.name, "fold": config.data.fold, "cache": config.data.cache,
             "keyframes": config.data.keyframes, "num_train_clips": int(len(data.train_rows)),
             "num_val_clips": int(len(data.val_rows)) if data.val_rows is not None else 0}
    return runs.write_report(
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
    """
    run_dir = Path(run_dir)
    last_path, best_path = run_dir / "checkpoints" / "last.pt", run_dir / "checkpoints" / "best.pt"
    source = last_path if last_path.is_file() else best_path
    if not source.is_file():
        raise CheckpointError(f"{run_dir}: no checkpoints/last.pt or checkpoints/best.pt to evaluate")
    state = load_checkpoint(source)
    config = checkpoint_config(state, source)
    if cache:
        from tdrag.config import replace

        config = replace(config, data={"cache": str(cache)})
    dev = resolve_device(device)
    data = _load_data(config)
    class_names = _class_names(config.model.num_classes)
    info = distributed.DistInfo()
    loaders = _eval_loaders(data, config, info)
    results = {}
    for name, path in (("last", last_path), ("best", best_path)):
        if path.is_file():
            epoch = int(load_checkpoint(path)["epoch"])
            results[name] = (epoch, _evaluate_checkpoint(path, config, data, loaders, dev, info, progress))
    if "last" not in results:
        # Only best.pt survives (e.g. a pruned run): report it as both.
        results["last"] = results["best"]
    best_epoch, best_preds = results.get("best", (None, None))
    return _write_run_report(run_dir, config, class_names, results["last"][0], results["last"][1],
                             best_epoch, best_preds, data)
