"""The loops: train one epoch, evaluate a loader (the MAE way).

Run directories, resuming, checkpoints and reports live in ``tdrag.train.fit``, which calls these.

Determinism: the batch augmentation's generator is re-seeded from ``(seed, epoch, rank)`` each
epoch (:func:`epoch_generator`), so it carries no state across epochs; the shuffle order comes
from the sampler's ``set_epoch``; dropout draws from torch's global RNG, which checkpoints keep.

No host sync per step: the loss, the accuracy and a "first non-finite step" marker are
accumulated on the device; the host reads them every :data:`CHECK_EVERY` steps (and at the end of
the epoch), which is when a diverged run is stopped and the progress bar is refreshed. On a GPU
the Python loop therefore never waits for a step to finish before queueing the next one.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from tdrag import distributed
from tdrag.config import Config
from tdrag.errors import TdragError
from tdrag.models.forward import forward_clips
from tdrag.runs.predictions import Predictions
from tdrag.runtime import autocast, to_memory_format
from tdrag.train.losses import needs_inspection, training_loss

#: Steps between the host's reads of the running loss and the non-finite marker.
CHECK_EVERY = 50


class TrainingDiverged(TdragError, RuntimeError):
    """The loss (or the weights) became NaN or infinite; the run stopped."""


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
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


def _check_finite(bad_step: torch.Tensor, info: distributed.DistInfo, epoch: int, steps: int, last_good: str) -> None:
    """Raise TrainingDiverged when any rank saw a non-finite loss (one host read, one all-reduce)."""
    if info.enabled:
        torch.distributed.all_reduce(bad_step, op=torch.distributed.ReduceOp.MAX)
    first = int(bad_step.item())
    if first:
        raise TrainingDiverged(
            f"non-finite training loss at epoch {epoch}, step {first}/{steps}: run stopped; the last good "
            f"checkpoint is {last_good}. Lower train.lr or set train.grad_clip."
        )


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
    check_every: int = CHECK_EVERY,
) -> dict[str, float]:
    """One pass over the training loader (augment on the device, forward, loss, backward, step).

    Args:
        model: the network (DDP-wrapped and/or compiled).
        loader: yields ``(clips uint8 (B, T, S, S, 3), labels (B,), rows (B,))``.
        optimizer, scheduler: stepped once per batch.
        config: data (crop, crop_scale, flip) and train (amp, channels_last, step_loss,
            attention_penalty, label_smoothing, grad_clip, seed) settings.
        device: where to train.
        epoch: 1-based epoch number (seeds the augmentation).
        info: this rank's place (single process when None).
        progress: show a progress bar with the running loss and accuracy.
        last_good: the checkpoint named in the error when the loss turns non-finite.
        check_every: steps between host reads (see the module docstring).

    Returns:
        ``{"train_loss", "train_acc", "clips", "seconds"}`` summed over ranks (seconds: this rank's).

    Raises:
        TrainingDiverged: a non-finite loss on any rank (found at the next check).
    """
    from tdrag.data.augment import train_transform
    from tdrag.data.loader import to_device

    info = info or distributed.DistInfo()
    d, t = config.data, config.train
    internals = needs_inspection(t)
    model.train()
    generator = epoch_generator(t.seed, epoch, info.rank)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    bad_step = torch.zeros((), dtype=torch.int64, device=device)  # 0: every loss finite so far
    seen = 0
    started = time.perf_counter()
    steps = len(loader)
    bar = tqdm(loader, desc=f"epoch {epoch}/{t.epochs}", leave=False, disable=not (progress and info.is_main))
    for step, batch in enumerate(bar, start=1):
        clips, labels, _ = to_device(batch, device)
        x = train_transform(clips, crop=d.crop, scale=tuple(d.crop_scale), flip=d.flip, generator=generator)
        x = to_memory_format(x, t.channels_last)
        loss, logits = _train_step(model, x, labels, optimizer, scheduler, config, device, internals)
        bad_step = torch.where((bad_step == 0) & ~torch.isfinite(loss), torch.full_like(bad_step, step), bad_step)
        batch_size = labels.shape[0]
        seen += batch_size
        loss_sum += loss.double() * batch_size
        correct += (logits.argmax(dim=1) == labels).sum()
        if step % check_every == 0 or step == steps:
            _check_finite(bad_step, info, epoch, steps, last_good)
            if progress and info.is_main:
                bar.set_postfix(loss=f"{loss_sum.item() / seen:.3f}", acc=f"{correct.item() / seen:.3f}")
    _check_finite(bad_step, info, epoch, steps, last_good)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return _epoch_totals(loss_sum, correct, seen, info, time.perf_counter() - started)


def _train_step(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, optimizer: torch.optim.Optimizer, scheduler,
                config: Config, device: torch.device, internals: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward, loss, backward and one optimizer and scheduler step on an augmented batch
    ``x: (B, 3, T, H, W)``; returns the loss (detached, scalar) and the logits ``(B, C)`` (detached)."""
    t = config.train
    with autocast(device, t.amp):
        out = model(x, return_inspection=True) if internals else model(x)
    loss = training_loss(out, labels, t)
    logits = out if isinstance(out, torch.Tensor) else out.logits
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if t.grad_clip > 0:
        nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
    optimizer.step()
    scheduler.step()
    return loss.detach(), logits.detach()


def _epoch_totals(loss_sum: torch.Tensor, correct: torch.Tensor, seen: int, info: distributed.DistInfo,
                  seconds: float) -> dict[str, float]:
    """The epoch's mean loss and accuracy over every rank's clips (one all-reduce), and this rank's seconds."""
    totals = torch.stack([loss_sum, correct.double(), torch.full_like(loss_sum, seen)])
    if info.enabled:
        torch.distributed.all_reduce(totals)
    loss_total, correct_total, seen_total = totals.tolist()
    return {
        "train_loss": loss_total / max(seen_total, 1),
        "train_acc": correct_total / max(seen_total, 1),
        "clips": seen_total,
        "seconds": seconds,
    }


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
        model: the network (run in eval mode; every submodule's mode is restored afterwards).
        loader: yields ``(clips uint8 (B, T, S, S, 3), labels (B,), rows (B,))``.
        device: where to run (only the clips go there; labels and rows stay on the host).
        crop: side of the centre crop fed to the model.
        amp, channels_last: CUDA bf16 autocast / channels_last_3d layout.
        video_ids: cache video ids indexed by row (default: ``loader.dataset.cache.video_ids``).
        info: this rank's place; under DDP each rank passes a loader over its shard and all
            receive the gathered result, one entry per row.
        progress: show a progress bar.

    Returns:
        Predictions ordered by row: rows, video ids, labels, probabilities ``(N, C)`` float32.
    """
    info = info or distributed.DistInfo()
    total = len(loader) if hasattr(loader, "__len__") else None
    if total != 0:
        seen, (labels, rows) = forward_clips(model, loader, crop=crop, device=device, amp=amp,
                                             channels_last=channels_last, progress=progress and info.is_main,
                                             desc=desc, total=total)
        probs = torch.softmax(seen.logits, dim=1).numpy()
    else:  # a rank whose shard is empty still joins the gathering
        labels, rows, probs = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
    local = {"row": rows.astype(np.int64), "label": labels.astype(np.int64), "prob": probs.astype(np.float32)}
    merged = distributed.gather_rows(local, info)
    if video_ids is None:
        cache = getattr(getattr(loader, "dataset", None), "cache", None)
        video_ids = getattr(cache, "video_ids", None)
    ids = [str(video_ids[int(r)]) for r in merged["row"]] if video_ids is not None else [str(int(r)) for r in merged["row"]]
    return Predictions(rows=merged["row"], video_ids=ids, labels=merged["label"], probabilities=merged["prob"])
