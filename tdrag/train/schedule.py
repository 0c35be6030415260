"""Optimiser and learning-rate schedule from a ``TrainConfig``.

The schedule is stepped once per iteration (not per epoch) so that warm-up is smooth even over a
single epoch: the learning rate rises linearly from ~0 to ``lr`` over ``warmup_epochs`` epochs,
then follows either a half-cosine to 0 over the remaining epochs or a step decay (``x step_gamma``
every ``step_epochs`` epochs, counted from the start of training as in Former-DFER's StepLR).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tdrag.config import TrainConfig

#: The optimisers and schedules by name (``train.optimizer``, ``train.schedule``).
OPTIMIZERS: tuple[str, ...] = ("sgd", "adamw")
SCHEDULES: tuple[str, ...] = ("cosine", "step")


def build_optimizer(model: nn.Module, train: TrainConfig) -> torch.optim.Optimizer:
    """SGD (momentum, weight decay) or AdamW over the model's parameters.

    Biases and normalisation weights (1-D tensors) get no weight decay, the usual practice for
    both optimisers.
    """
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim <= 1 else decay).append(parameter)
    groups = [
        {"params": decay, "weight_decay": train.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if train.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=train.lr, momentum=train.momentum)
    if train.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=train.lr)
    raise ValueError(f"train.optimizer: unknown optimizer {train.optimizer!r} (known: {', '.join(OPTIMIZERS)})")


class WarmupSchedule:
    """Learning-rate multiplier per iteration: linear warm-up, then cosine or step decay.

    A plain callable object (not a lambda), so ``LambdaLR.state_dict`` stores its settings as
    primitives and a resumed run rebuilds the same curve.

    Args:
        steps_per_epoch: optimiser steps in one epoch.
        train: epochs, warmup_epochs, schedule, step_epochs, step_gamma.
    """

    def __init__(self, steps_per_epoch: int, train: TrainConfig):
        if train.schedule not in SCHEDULES:
            raise ValueError(f"train.schedule: unknown schedule {train.schedule!r} (known: {', '.join(SCHEDULES)})")
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.total = self.steps_per_epoch * max(1, train.epochs)
        self.warmup = self.steps_per_epoch * max(0, train.warmup_epochs)
        self.kind = train.schedule
        self.step_every = self.steps_per_epoch * max(1, train.step_epochs)
        self.gamma = train.step_gamma

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            # (step + 1) so the first iteration trains at lr / warmup rather than 0.
            return (step + 1) / self.warmup
        if self.kind == "cosine":
            progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.gamma ** (step // self.step_every)


def build_scheduler(
    optimizer: torch.optim.Optimizer, steps_per_epoch: int, train: TrainConfig
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-iteration ``LambdaLR`` following :class:`WarmupSchedule`."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupSchedule(steps_per_epoch, train))
