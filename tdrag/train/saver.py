"""Resuming and per-epoch saving of one run (the role timm's CheckpointSaver plays).

    saver = CheckpointSaver(RunPaths(run_dir), config, data)
    progress = saver.resume(path, net, optimizer, scheduler, steps_per_epoch, info)   # or TrainProgress.fresh(...)
    ...
    saver.save(progress, net, optimizer, scheduler, improved, rng_states)   # rank 0, after every epoch

After every epoch ``checkpoints/last.pt`` receives everything a resume needs (weights, optimiser
and scheduler states, the epoch, the best-so-far record, the log rows, every rank's RNG states),
``checkpoints/best.pt`` the weights when the selection metric improved, and ``log.csv`` the rows.
Every checkpoint also carries what readers of the run need: the config, the cache's class names
and fingerprint, and the folder training ran in (``tdrag.runs.checkpoints``).

A save that fails (a full disk, a file-size limit: torch's zip writer then raises
``RuntimeError("... unexpected pos ...")``, not an ``OSError``) ends the run with one
``CheckpointError`` line naming the file; the write is atomic, so the previous checkpoint of that
name stays intact and ``--resume`` continues from it.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tdrag import distributed
from tdrag.config import Config, config_to_dict
from tdrag.runs.checkpoints import (
    CheckpointError,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    stored_config,
)
from tdrag.runs.epoch_log import repair_log, write_log
from tdrag.runs.layout import RunPaths
from tdrag.train.data import RunData, cache_rebuilt_since
from tdrag.train.schedule import WarmupSchedule

log = logging.getLogger(__name__)


@dataclass
class TrainProgress:
    """Where a run stands: epochs done, the log rows so far, and the best epoch by the selection metric.

    ``best``: ``{"epoch": int | None, "metric": "val_war" or "test_war", "value": float}``.
    """

    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fresh(cls, with_val: bool) -> TrainProgress:
        """Nothing trained yet; the best epoch will be chosen by val WAR when there is a val split."""
        return cls(best={"epoch": None, "metric": "val_war" if with_val else "test_war", "value": -math.inf})

    def record(self, row: dict[str, Any], evaluated: bool) -> bool:
        """Add one epoch's log row; True when it improved the selection metric (a new best epoch)."""
        self.history.append(row)
        self.epoch = int(row["epoch"])
        value = row.get(self.best["metric"])
        if not evaluated or value is None or value <= self.best["value"]:
            return False
        self.best = {"epoch": self.epoch, "metric": self.best["metric"], "value": float(value)}
        return True


class CheckpointSaver:
    """Resumes a run from its last.pt and saves last.pt, best.pt and log.csv after each epoch.

    Args:
        paths: the run directory.
        config: the run's config (stored in every checkpoint, as a dict computed once).
        data: the run's cache and rows (its class names and fingerprint go into the checkpoints).
    """

    def __init__(self, paths: RunPaths, config: Config, data: RunData) -> None:
        self.paths = paths
        self.config = config
        self.with_val = data.val_rows is not None
        self.cache = data.cache
        self.carried = {"config": config_to_dict(config), "class_names": list(data.class_names),
                        "cache_fingerprint": data.cache.fingerprint, "workdir": os.getcwd()}

    def last_good(self) -> str:
        """The checkpoint a failure falls back on, for error messages."""
        return str(self.paths.last) if self.paths.last.is_file() else "none (no epoch finished)"

    def resume(self, path: Path, net: nn.Module, optimizer: torch.optim.Optimizer, scheduler,
               steps_per_epoch: int, info: distributed.DistInfo) -> TrainProgress:
        """Load ``path`` into the model, optimiser, scheduler and RNGs; return where the run stood.

        Raises:
            CheckpointError: the cache was rebuilt from other sources since, or the checkpoint
                does not fit this model / optimiser.
        """
        state = load_checkpoint(path, map_location=next(net.parameters()).device)
        if cache_rebuilt_since(state, self.cache):
            raise CheckpointError(
                f"{path}: this run trained on the cache {self.cache.path} as it was built before (fingerprint "
                f"{state['cache_fingerprint']}); it has been rebuilt from changed sources since (fingerprint "
                f"{self.cache.fingerprint}). Resuming would continue on other data: pass --overwrite to start the "
                "run again, or point data.cache at the original cache"
            )
        # Both in today's config format (a checkpoint of an older one is mapped first).
        differences = _config_differences(config_to_dict(stored_config(state, path)), self.carried["config"])
        if differences:
            log.warning("resuming %s with a changed config: %s", path, "; ".join(differences))
        try:
            net.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            # The stored schedule settings came from the old config; follow the current one (the
            # same unless e.g. train.epochs was raised to extend a finished run).
            scheduler.lr_lambdas = [WarmupSchedule(steps_per_epoch, self.config.train) for _ in scheduler.lr_lambdas]
            progress = TrainProgress(int(state["epoch"]), list(state["history"]), dict(state["best"]))
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise CheckpointError(f"{path}: cannot resume from it: {exc}") from None
        restore_rng(state, info, path)
        if info.is_main and repair_log(self.paths.log, progress.history, self.with_val):
            # Killed between the checkpoint and the log (or while writing the log): the checkpoint's
            # rows are the run's; without this a resume at the last epoch would keep the short log.
            log.warning("%s: did not match %s (epoch %d); rewritten from it", self.paths.log, path, progress.epoch)
        log.info("resuming %s after epoch %d", self.paths.root, progress.epoch)
        return progress

    def save(self, progress: TrainProgress, net: nn.Module, optimizer: torch.optim.Optimizer, scheduler,
             improved: bool, rng_states: list[dict[str, Any]]) -> None:
        """Write best.pt (when ``improved``), then last.pt and log.csv, for ``progress.epoch``.

        best.pt goes first: a kill in between leaves last.pt at the previous epoch, whose re-run
        rewrites best.pt the same way.
        """
        common = {**self.carried, "model": {k: v.detach().cpu() for k, v in net.state_dict().items()},
                  "epoch": progress.epoch, "best": progress.best, "history": progress.history}
        if improved:
            self._write(self.paths.best, common)
        self._write(self.paths.last, {**common, "optimizer": optimizer.state_dict(),
                                      "scheduler": scheduler.state_dict(), "rng": rng_states[0],
                                      "rng_per_rank": rng_states})
        write_log(self.paths.log, progress.history, self.with_val)

    def _write(self, path: Path, state: dict[str, Any]) -> None:
        try:
            save_checkpoint(path, state)
        except (OSError, RuntimeError) as exc:
            # torch's zip writer reports a short write (full disk, file-size limit) as RuntimeError.
            reason = " ".join((getattr(exc, "strerror", None) or str(exc) or type(exc).__name__).split())[:200]
            kept = f"the previous {path.name} is kept" if path.is_file() else f"no {path.name} was written"
            raise CheckpointError(f"{path}: cannot write the epoch {state['epoch']} checkpoint ({reason}); is the "
                                  f"disk full? {kept}, and --resume continues from {self.last_good()}") from None


def gather_rng_states(info: distributed.DistInfo) -> list[dict[str, Any]] | None:
    """Every rank's RNG states, in rank order, on rank 0 (None elsewhere); a collective."""
    state = rng_state()
    if not info.enabled:
        return [state]
    gathered: list[Any] = [None] * info.world_size if info.is_main else None  # type: ignore[assignment]
    torch.distributed.gather_object(state, gathered, dst=0)
    return gathered if info.is_main else None


def restore_rng(state: dict[str, Any], info: distributed.DistInfo, path: str | os.PathLike) -> None:
    """This rank's RNG states from a checkpoint (rank 0's when it was saved by another number of ranks)."""
    per_rank = state.get("rng_per_rank")
    if per_rank and len(per_rank) == info.world_size:
        set_rng_state(per_rank[info.rank])
        return
    if per_rank and info.is_main:
        log.warning("%s: saved by %d process(es), resumed by %d: each rank restores rank 0's RNG states",
                    path, len(per_rank), info.world_size)
    set_rng_state(per_rank[0] if per_rank else state["rng"])


def _config_differences(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _config_differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}: {va!r} -> {vb!r}")
    return out
