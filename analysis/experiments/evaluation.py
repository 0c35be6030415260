"""One checkpoint of a run on a set of clips, with its GRU branch on and, when it has one, off.

The predictions come from the evaluation ``tdrag train`` and ``tdrag eval`` make
(``tdrag.train.evaluate.evaluate_splits``, through ``tdrag.models.forward.forward_clips``: the
same transform, eval mode, layout and precision), so the GRU-on figures of a run's own test fold
are its report's; the GRU-off pass is the same call inside ``tdrag.models.tdrag.gru_branch_off``::

    ev = evaluate_checkpoint("runs/ablation/runs/tdrag/seed_0", which="last")
    ev.war, ev.gru_off_war, ev.gru_changed        # the GRU's share, and what it changes
    ev.confusion                                  # (C, C) counts, true class by row
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from tdrag.metrics import confusion_matrix, uar, war


@dataclass(frozen=True)
class CheckpointEvaluation:
    """Predictions of one checkpoint on N clips.

    Attributes:
        checkpoint: the ``.pt`` file evaluated.
        rows: ``(N,)`` cache rows, in order.
        labels: ``(N,)`` int64 true classes.
        predictions: ``(N,)`` int64 predicted classes, GRU branch on.
        gru_off_predictions: ``(N,)`` the same with the GRU branch switched off; None for a model
            without a residual GRU head.
        num_classes: C.
    """

    checkpoint: Path
    rows: np.ndarray
    labels: np.ndarray
    predictions: np.ndarray
    gru_off_predictions: np.ndarray | None
    num_classes: int

    @property
    def war(self) -> float:
        return float(war(self.labels, self.predictions, self.num_classes))

    @property
    def uar(self) -> float:
        return float(uar(self.labels, self.predictions, self.num_classes))

    @property
    def confusion(self) -> list[list[int]]:
        """``(C, C)`` counts as nested lists (JSON), true class by row, in label order."""
        return confusion_matrix(self.labels, self.predictions, self.num_classes).tolist()

    @property
    def gru_off_war(self) -> float | None:
        if self.gru_off_predictions is None:
            return None
        return float(war(self.labels, self.gru_off_predictions, self.num_classes))

    @property
    def gru_off_confusion(self) -> list[list[int]] | None:
        if self.gru_off_predictions is None:
            return None
        return confusion_matrix(self.labels, self.gru_off_predictions, self.num_classes).tolist()

    @property
    def gru_changed(self) -> float | None:
        """Share of the clips whose prediction switching the GRU branch off changes: a finer
        measure of what the GRU does than the WAR, whose gains and losses can cancel."""
        if self.gru_off_predictions is None:
            return None
        return float(np.mean(self.predictions != self.gru_off_predictions))


def has_gru_branch(model: nn.Module) -> bool:
    """Whether ``model``'s GRU branch can be switched off (``gru_branch_off`` accepts it)."""
    from tdrag.models.tdrag import gru_branch_off

    with suppress(ValueError), gru_branch_off(model):
        return True
    return False


def evaluate_checkpoint(run_dir: str | os.PathLike, which: str = "auto", cache: str | os.PathLike | None = None,
                        rows: Sequence[int] | np.ndarray | None = None, device: str = "cpu",
                        progress: bool = False) -> CheckpointEvaluation:
    """Evaluate a run's checkpoint, GRU branch on and off.

    Args:
        run_dir: a run directory (or a ``.pt`` file).
        which: "auto" (``select_checkpoint``: best.pt only when chosen on a validation split),
            "best" or "last".
        cache: another frame cache (a held-out draw built with the run's keyframe rule, T and size;
            checked as the run's own is), instead of the run's ``data.cache``.
        rows: the cache rows to evaluate (default: the run's test fold).
        device: "cpu", "cuda", "auto", ...
    """
    from tdrag import distributed
    from tdrag.config import replace
    from tdrag.data.loader import make_loader
    from tdrag.models.tdrag import gru_branch_off
    from tdrag.models.registry import load_model
    from tdrag.runs.checkpoints import select_checkpoint
    from tdrag.runtime import resolve_device
    from tdrag.train.data import load_run_data
    from tdrag.train.evaluate import evaluate_splits

    dev = resolve_device(device, key="device")
    path = select_checkpoint(run_dir, which).path
    model, config = load_model(path, device=dev)
    if cache is not None:
        config = replace(config, data={"cache": str(cache)})
    data = load_run_data(config)  # the cache checked against the run: keyframes, T, crop, classes
    rows = data.test_rows if rows is None else np.asarray(rows, dtype=np.int64)
    loaders = {"test": make_loader(data.cache, rows, config.train.batch_size, shuffle=False)}

    def predict():
        return evaluate_splits(model, loaders, data, config, dev, distributed.DistInfo(), progress)["test"]

    on = predict()
    off = None
    if has_gru_branch(model):
        with gru_branch_off(model):
            off = predict().predictions
    return CheckpointEvaluation(checkpoint=path, rows=on.rows, labels=on.labels, predictions=on.predictions,
                                gru_off_predictions=off, num_classes=config.model.num_classes)
