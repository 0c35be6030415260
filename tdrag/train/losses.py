"""The training loss: cross-entropy on the logits, per-step supervision and attention penalties.

``training_loss(out, labels, train)`` takes the model's output for a batch (logits ``(B, C)``, or
the :class:`~tdrag.models.inspection.ModelInspection` of the same pass when the loss needs the
step logits or the attention masks; :func:`needs_inspection` says when) and returns the scalar
loss the optimiser minimises:

- ``train.step_loss = "last"``: cross-entropy of the final logits (the last GRU step's).
- ``"mean"`` / ``"linear"``: the cross-entropy of every GRU step's logits, averaged with weights
  uniform or rising toward later steps (``w_s`` proportional to ``s``, s = 1..S): intermediate
  readouts become trained predictions. Models without a GRU fall back to ``"last"``.
- ``train.attention_penalty`` with weight ``train.attention_penalty_weight`` > 0, averaged over
  the attention stages: ``"l1"``, the mean of M (attend to little), or ``"entropy"``, the spatial
  entropy of M normalised into a distribution per time step, divided by ``log(H W)`` so it lies in
  [0, 1] (peaked rather than flat maps).

Everything stays on the device (no host sync); the classification part is computed in float32.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from tdrag.config import TrainConfig
from tdrag.models.inspection import ModelInspection

#: The per-step supervisions and attention penalties by name (``train.step_loss``,
#: ``train.attention_penalty``).
STEP_LOSSES: tuple[str, ...] = ("last", "mean", "linear")
ATTENTION_PENALTIES: tuple[str, ...] = ("none", "l1", "entropy")


def needs_inspection(train: TrainConfig) -> bool:
    """Whether ``training_loss`` needs the model's internals (``model(x, return_inspection=True)``)."""
    return train.step_loss != "last" or (train.attention_penalty != "none" and train.attention_penalty_weight > 0)


def step_weights(steps: int, kind: str, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(S,)`` float32 weights summing to 1: ``"last"`` one-hot on the last step, ``"mean"``
    uniform, ``"linear"`` proportional to 1..S."""
    if steps < 1:
        raise ValueError(f"step_weights: need at least one step, got {steps}")
    if kind == "last":
        w = torch.zeros(steps)
        w[-1] = 1.0
    elif kind == "mean":
        w = torch.full((steps,), 1.0 / steps)
    elif kind == "linear":
        w = torch.arange(1, steps + 1, dtype=torch.float32)
        w = w / w.sum()
    else:
        raise ValueError(f"train.step_loss: unknown {kind!r} (known: {', '.join(STEP_LOSSES)})")
    return w.to(device)


def attention_penalty(masks: dict[str, torch.Tensor], kind: str) -> torch.Tensor:
    """Mean over stages of the penalty on masks ``M: (B, 1, T, H, W)`` in [0, 1]."""
    if not masks:
        raise ValueError("attention_penalty: the model has no attention masks")
    terms = []
    for m in masks.values():
        m = m.float()
        if kind == "l1":
            terms.append(m.mean())
        elif kind == "entropy":
            flat = m.flatten(3)  # (B, 1, T, H*W)
            p = flat / flat.sum(dim=-1, keepdim=True).clamp_min(1e-12)
            entropy = -(p * torch.log(p.clamp_min(1e-12))).sum(dim=-1)
            terms.append(entropy.mean() / math.log(max(2, flat.shape[-1])))
        else:
            raise ValueError(f"train.attention_penalty: unknown {kind!r} (known: {', '.join(ATTENTION_PENALTIES)})")
    return torch.stack(terms).mean()


def training_loss(out: torch.Tensor | ModelInspection, labels: torch.Tensor, train: TrainConfig) -> torch.Tensor:
    """The scalar loss of one batch (see the module docstring).

    Args:
        out: logits ``(B, C)`` or the batch's ModelInspection.
        labels: ``(B,)`` int64 classes.
        train: step_loss, label_smoothing, attention_penalty, attention_penalty_weight.
    """
    if isinstance(out, torch.Tensor):
        logits, inspection = out, None
    else:
        logits, inspection = out.logits, out
    smoothing = train.label_smoothing
    if inspection is not None and inspection.step_logits is not None and train.step_loss != "last":
        steps = inspection.step_logits.float()  # (B, S, C)
        b, s, c = steps.shape
        per_step = F.cross_entropy(steps.reshape(b * s, c), labels.repeat_interleave(s), reduction="none",
                                   label_smoothing=smoothing).view(b, s).mean(dim=0)
        loss = (per_step * step_weights(s, train.step_loss, per_step.device)).sum()
    else:
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=smoothing)
    if inspection is not None and train.attention_penalty != "none" and train.attention_penalty_weight > 0:
        if inspection.attention:
            loss = loss + train.attention_penalty_weight * attention_penalty(inspection.attention, train.attention_penalty)
    return loss
